// Command class-subset is an example external sglr-pipe stage, built as its
// own executable with stages.Serve. It keeps the samples of some classes of
// a dataset, relabelled 0..k-1 in the order the classes are listed:
//
//	subset:
//	  uses: exec:./bin/class-subset
//	  inputs: {dataset: data.train}
//	  with: {classes: [cat, dog, 3], per_class: 500}
//
// Build it with `go build -o bin/class-subset ./examples/plugins/class-subset`.
// A plugin in your own module looks the same: it imports the stages and
// artifacts packages of sglr-pipe and nothing else of ours. README.md,
// "Adding a stage (plugins)", sets up such a module (a replace directive to
// a clone: the module is not published), and ../howto.sh checks that those
// steps work as written.
package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"

	"github.com/sglr-pipe/sglr-pipe/artifacts"
	"github.com/sglr-pipe/sglr-pipe/stages"
)

func main() { stages.Serve(classSubset{}) }

// classSubset is the stage. It has no state: everything comes from the Env.
type classSubset struct{}

// Spec declares the stage. Bump Version whenever the output for the same
// inputs and params changes: it enters every cache key.
func (classSubset) Spec() stages.Spec {
	return stages.Spec{
		Name:    "class-subset",
		Version: "v1",
		Doc: "Keeps the samples of the listed classes, relabelled 0..k-1 in list order. A sample is kept when its " +
			"label and, if known, its clean label are both among the classes; clean labels, flipped flags and ids are kept.",
		Inputs:  []stages.Port{{Name: "dataset", Kind: artifacts.KindDataset, Doc: "the dataset to subset"}},
		Outputs: []stages.Port{{Name: "dataset", Kind: artifacts.KindDataset, Doc: "the kept samples"}},
		Params: []stages.Param{
			{Name: "classes", Type: stages.TypeList, Required: true,
				Doc: "classes to keep, by name or index, in their new label order"},
			{Name: "per_class", Type: stages.TypeInt, Default: int64(0), Min: stages.Float(0),
				Doc: "keep at most this many samples per class, drawn with the instance seed (0 = all)"},
		},
	}
}

// Run reads the dataset, subsets it and writes it.
func (classSubset) Run(ctx context.Context, env *stages.Env) error {
	in, err := env.ReadDataset("dataset")
	if err != nil {
		return fmt.Errorf("%s: %w", env.Instance, err)
	}
	classes, err := resolveClasses(env.Params.List("classes"), in.ClassNames)
	if err != nil {
		return fmt.Errorf("%s: param classes: %w", env.Instance, err)
	}
	perClass := int(env.Params.Int("per_class"))
	if perClass < 0 {
		return fmt.Errorf("%s: param per_class %d is negative", env.Instance, perClass)
	}
	env.Progress.Start(int64(in.Len()), "samples")
	keep, crossing := selectSamples(in, classes)
	env.Progress.Add(int64(in.Len()))
	if err := ctx.Err(); err != nil {
		return err
	}
	if perClass > 0 {
		keep = drawPerClass(keep, in.Labels, perClass, env.Seed)
	}
	if len(keep) == 0 {
		return fmt.Errorf("%s: no sample of classes %v in %d samples", env.Instance, names(classes, in.ClassNames), in.Len())
	}
	out := subset(in, keep, classes)
	env.Report("kept", len(keep))
	env.Report("dropped_cross_subset", crossing)
	return env.WriteDataset("dataset", out)
}

// resolveClasses turns the classes param (names or indices) into old class
// indices, in list order.
func resolveClasses(list []any, classNames []string) ([]int32, error) {
	if len(list) == 0 {
		return nil, fmt.Errorf("empty list; name at least one of %s", strings.Join(classNames, ", "))
	}
	byName := make(map[string]int32, len(classNames))
	for i, n := range classNames {
		byName[n] = int32(i)
	}
	seen := map[int32]bool{}
	out := make([]int32, 0, len(list))
	for i, v := range list {
		var c int32
		switch x := v.(type) {
		case string:
			idx, ok := byName[x]
			if !ok {
				return nil, fmt.Errorf("element %d: no class %q (classes: %s)", i, x, strings.Join(classNames, ", "))
			}
			c = idx
		case int64:
			if x < 0 || x >= int64(len(classNames)) {
				return nil, fmt.Errorf("element %d: class index %d outside [0,%d)", i, x, len(classNames))
			}
			c = int32(x)
		default:
			return nil, fmt.Errorf("element %d: %v is neither a class name nor an index", i, v)
		}
		if seen[c] {
			return nil, fmt.Errorf("element %d: class %q listed twice", i, classNames[c])
		}
		seen[c] = true
		out = append(out, c)
	}
	return out, nil
}

// selectSamples returns the positions of samples whose label (and clean
// label, when known) is among classes, and how many samples were dropped
// because only one of the two was.
func selectSamples(d *artifacts.Dataset, classes []int32) (keep []int, crossing int) {
	in := make([]bool, len(d.ClassNames))
	for _, c := range classes {
		in[c] = true
	}
	for i, l := range d.Labels {
		labelIn := in[l]
		cleanIn := d.CleanLabels == nil || in[d.CleanLabels[i]]
		switch {
		case labelIn && cleanIn:
			keep = append(keep, i)
		case labelIn || (d.CleanLabels != nil && in[d.CleanLabels[i]]):
			crossing++
		}
	}
	return keep, crossing
}

// drawPerClass keeps at most n positions per label, drawn uniformly with
// seed, in their original order.
func drawPerClass(keep []int, labels []int32, n int, seed uint64) []int {
	rng := rand.New(rand.NewPCG(seed, 0x636c73)) // "cls"
	byLabel := map[int32][]int{}
	var order []int32
	for _, i := range keep {
		l := labels[i]
		if _, ok := byLabel[l]; !ok {
			order = append(order, l)
		}
		byLabel[l] = append(byLabel[l], i)
	}
	var out []int
	for _, l := range order {
		members := byLabel[l]
		if len(members) > n {
			rng.Shuffle(len(members), func(a, b int) { members[a], members[b] = members[b], members[a] })
			members = members[:n]
		}
		out = append(out, members...)
	}
	slices.Sort(out)
	return out
}

// subset copies the kept samples with labels remapped to positions in classes.
func subset(d *artifacts.Dataset, keep []int, classes []int32) *artifacts.Dataset {
	remap := make([]int32, len(d.ClassNames))
	for newLabel, old := range classes {
		remap[old] = int32(newLabel)
	}
	size := d.SampleSize()
	out := &artifacts.Dataset{
		Shape:      slices.Clone(d.Shape),
		Images:     make([]float32, 0, len(keep)*size),
		Labels:     make([]int32, len(keep)),
		IDs:        make([]int64, len(keep)),
		ClassNames: names(classes, d.ClassNames),
		Meta:       map[string]string{},
	}
	for k, v := range d.Meta {
		out.Meta[k] = v
	}
	idx := make([]string, len(classes))
	for i, c := range classes {
		idx[i] = strconv.Itoa(int(c))
	}
	out.Meta["class_subset.from"] = strings.Join(idx, ",")
	if d.CleanLabels != nil {
		out.CleanLabels = make([]int32, len(keep))
	}
	if d.Flipped != nil {
		out.Flipped = make([]bool, len(keep))
	}
	for j, i := range keep {
		out.Images = append(out.Images, d.Images[i*size:(i+1)*size]...)
		out.Labels[j] = remap[d.Labels[i]]
		out.IDs[j] = d.IDs[i]
		if d.CleanLabels != nil {
			out.CleanLabels[j] = remap[d.CleanLabels[i]]
		}
		if d.Flipped != nil {
			out.Flipped[j] = d.Flipped[i]
		}
	}
	return out
}

// names returns the class names of indices.
func names(classes []int32, classNames []string) []string {
	out := make([]string, len(classes))
	for i, c := range classes {
		out[i] = classNames[c]
	}
	return out
}
