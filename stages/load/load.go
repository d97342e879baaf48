// Package load is the built-in `load` stage: it reads an image dataset
// (Fashion-MNIST, MNIST, CIFAR-10/100, the embedded fashion-mnist-mini subset,
// or a seeded synthetic set) and writes its train, val and test splits as
// dataset artifacts.
//
// Sample ids are the index in the source split; test ids are offset by
// TestIDOffset so they never collide with train ids, and val samples (held
// out of the train split) keep their train ids.
package load

//go:generate go run ./internal/minigen -src /usr/share/datasets/fashion-mnist -out mini

import (
	"context"
	"fmt"
	"math"
	"strconv"

	"github.com/sglr-pipe/sglr-pipe/artifacts"
	"github.com/sglr-pipe/sglr-pipe/stages"
	"github.com/sglr-pipe/sglr-pipe/stages/load/internal/datafile"
)

// Dataset names accepted by the `dataset` parameter.
const (
	FashionMNIST     = "fashion-mnist"
	MNIST            = "mnist"
	CIFAR10          = "cifar10"
	CIFAR100         = "cifar100"
	FashionMNISTMini = "fashion-mnist-mini"
	Synthetic        = "synthetic"
)

// Stage is the `load` stage.
type Stage struct{}

func init() { stages.Builtin.Register(Stage{}) }

// Spec declares the stage: no inputs, three dataset outputs.
func (Stage) Spec() stages.Spec {
	return stages.Spec{
		Name:    "load",
		Version: "1",
		Doc: "Loads an image dataset and writes its train, val (held out of train) and test splits. " +
			"Sizes of 0 mean all; a given size draws a class-balanced subset chosen by subset_seed.",
		Outputs: []stages.Port{
			{Name: "train", Kind: artifacts.KindDataset, Doc: "training samples (train split minus val)"},
			{Name: "val", Kind: artifacts.KindDataset, Doc: "samples held out of the train split, for checkpoint selection"},
			{Name: "test", Kind: artifacts.KindDataset, Doc: "test split samples"},
		},
		Params: []stages.Param{
			{Name: "dataset", Type: stages.TypeString, Required: true,
				Enum: []string{FashionMNIST, MNIST, CIFAR10, CIFAR100, FashionMNISTMini, Synthetic},
				Doc:  "which dataset; fashion-mnist-mini is a 2000+1000 balanced subset embedded in the binary"},
			{Name: "path", Type: stages.TypeString, Default: "",
				Doc: "directory holding the dataset files (fashion-mnist defaults to " + DebianFashionMNISTDir + ")"},
			{Name: "train", Type: stages.TypeInt, Default: int64(0), Min: stages.Float(0),
				Doc: "training samples; 0 = all that remain after val (synthetic: 1000)"},
			{Name: "val", Type: stages.TypeInt, Default: int64(0), Min: stages.Float(0),
				Doc: "samples held out of the train split (synthetic: 0 means 200)"},
			{Name: "test", Type: stages.TypeInt, Default: int64(0), Min: stages.Float(0),
				Doc: "test samples; 0 = all (synthetic: 500)"},
			{Name: "subset_seed", Type: stages.TypeInt, Default: int64(0),
				Doc: "chooses the subsets drawn (and the synthetic data); independent of the pipeline seed"},
			{Name: "classes", Type: stages.TypeInt, Default: int64(10), Min: stages.Float(2), Max: stages.Float(1000),
				Doc: "synthetic only: number of classes"},
			{Name: "shape", Type: stages.TypeList, Default: []any{int64(1), int64(28), int64(28)},
				Doc: "synthetic only: per-sample shape (C,H,W)"},
		},
	}
}

// Run loads the dataset, draws the subsets and writes the three splits.
func (Stage) Run(ctx context.Context, env *stages.Env) error {
	p, err := parseParams(env.Params)
	if err != nil {
		return err
	}
	env.Progress.Status("reading " + p.dataset)
	src, err := readSource(p)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	splits, err := selectSplits(src, p)
	if err != nil {
		return err
	}
	for _, port := range []string{"train", "val", "test"} {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := env.WriteDataset(port, splits[port]); err != nil {
			return err
		}
		env.Report(port, len(splits[port].Labels))
	}
	env.Report("source", src.origin)
	env.Report("classes", len(src.classNames))
	return nil
}

// loadParams are the stage's parameters, checked.
type loadParams struct {
	dataset          string
	path             string
	train, val, test int
	subsetSeed       int64
	classes          int
	shape            []int
}

// parseParams reads and checks env params that the schema cannot check.
func parseParams(ps stages.Params) (loadParams, error) {
	p := loadParams{
		dataset:    ps.String("dataset"),
		path:       ps.String("path"),
		train:      int(ps.Int("train")),
		val:        int(ps.Int("val")),
		test:       int(ps.Int("test")),
		subsetSeed: ps.Int("subset_seed"),
		classes:    int(ps.Int("classes")),
	}
	if p.train < 0 || p.val < 0 || p.test < 0 {
		return p, fmt.Errorf("train %d, val %d, test %d: sizes must be >= 0", p.train, p.val, p.test)
	}
	if p.dataset == Synthetic {
		if p.classes < 2 {
			return p, fmt.Errorf("synthetic: classes %d: need at least 2", p.classes)
		}
		shape, err := parseShape(ps.List("shape"))
		if err != nil {
			return p, fmt.Errorf("synthetic: shape: %w", err)
		}
		p.shape = shape
	}
	return p, nil
}

// parseShape converts a list param to positive ints.
func parseShape(list []any) ([]int, error) {
	if len(list) == 0 {
		return nil, fmt.Errorf("empty: give the per-sample shape, e.g. [1, 28, 28]")
	}
	shape := make([]int, len(list))
	for i, v := range list {
		var d float64
		switch x := v.(type) {
		case int64:
			d = float64(x)
		case int:
			d = float64(x)
		case float64:
			d = x
		case string:
			n, err := strconv.Atoi(x)
			if err != nil {
				return nil, fmt.Errorf("element %d %q is not an integer", i, x)
			}
			d = float64(n)
		default:
			return nil, fmt.Errorf("element %d (%v) is not an integer", i, v)
		}
		if d != math.Trunc(d) || d < 1 || d > 1<<16 {
			return nil, fmt.Errorf("element %d (%v) must be an integer in 1..65536", i, v)
		}
		shape[i] = int(d)
	}
	return shape, nil
}

// readSource decodes the whole dataset named by p.
func readSource(p loadParams) (*source, error) {
	switch p.dataset {
	case FashionMNIST:
		dir, hint := p.path, "set path: to the directory holding the Fashion-MNIST IDX files"
		if dir == "" {
			dir, hint = DebianFashionMNISTDir, "install Debian's dataset-fashion-mnist or set path:"
		}
		return loadIDXDir(FashionMNIST, dir, FashionMNISTClasses, hint)
	case MNIST:
		if p.path == "" {
			return nil, fmt.Errorf("mnist: no path: set path: to the directory holding train-images-idx3-ubyte[.gz] and the other MNIST IDX files")
		}
		return loadIDXDir(MNIST, p.path, MNISTClasses, "set path: to the directory holding the MNIST IDX files")
	case CIFAR10, CIFAR100:
		format := datafile.CIFAR10
		if p.dataset == CIFAR100 {
			format = datafile.CIFAR100
		}
		if p.path == "" {
			return nil, fmt.Errorf("%s: no path: set path: to the directory holding the %s binary version files", p.dataset, p.dataset)
		}
		return loadCIFAR(p.path, format)
	case FashionMNISTMini:
		return loadMini()
	case Synthetic:
		trainN, valN, testN := p.train, p.val, p.test
		if trainN == 0 {
			trainN = syntheticTrain
		}
		if valN == 0 {
			valN = syntheticVal
		}
		if testN == 0 {
			testN = syntheticTest
		}
		return makeSynthetic(p.subsetSeed, p.shape, p.classes, trainN+valN, testN)
	default:
		return nil, fmt.Errorf("dataset %q unknown: want one of fashion-mnist, mnist, cifar10, cifar100, fashion-mnist-mini, synthetic", p.dataset)
	}
}

// selectSplits draws val out of the train split, then train from what
// remains, then test, and builds the three datasets.
func selectSplits(src *source, p loadParams) (map[string]*artifacts.Dataset, error) {
	k := len(src.classNames)
	nTrain, nTest := src.train.size(), src.test.size()
	val, train, test := p.val, p.train, p.test
	if p.dataset == Synthetic && val == 0 {
		val = syntheticVal
	}
	if val+train > nTrain {
		return nil, fmt.Errorf("%s: train %d + val %d = %d exceeds the %d samples of the train split", p.dataset, train, val, train+val, nTrain)
	}
	if val == nTrain {
		return nil, fmt.Errorf("%s: val %d takes the whole train split, leaving no training samples", p.dataset, val)
	}
	if test > nTest {
		return nil, fmt.Errorf("%s: test %d exceeds the %d samples of the test split", p.dataset, test, nTest)
	}
	valIdx := balancedSubset(allIndices(nTrain), src.train.labels, k, val, subsetRNG(p.subsetSeed, streamVal))
	trainIdx := without(nTrain, valIdx)
	if train > 0 {
		trainIdx = balancedSubset(trainIdx, src.train.labels, k, train, subsetRNG(p.subsetSeed, streamTrain))
	}
	testIdx := allIndices(nTest)
	if test > 0 {
		testIdx = balancedSubset(testIdx, src.test.labels, k, test, subsetRNG(p.subsetSeed, streamTest))
	}
	meta := func(split string) map[string]string {
		return map[string]string{
			"source":      p.dataset,
			"origin":      src.origin,
			"split":       split,
			"subset_seed": strconv.FormatInt(p.subsetSeed, 10),
		}
	}
	return map[string]*artifacts.Dataset{
		"train": gather(src, src.train, trainIdx, 0, meta("train")),
		"val":   gather(src, src.train, valIdx, 0, meta("val")),
		"test":  gather(src, src.test, testIdx, TestIDOffset, meta("test")),
	}, nil
}

// gather copies the samples at idx out of s into a dataset. The labels are
// the dataset's own, so they are also recorded as the clean labels with no
// sample flipped.
func gather(src *source, s split, idx []int, idOffset int64, meta map[string]string) *artifacts.Dataset {
	dim := 1
	for _, d := range src.shape {
		dim *= d
	}
	ds := &artifacts.Dataset{
		Shape:       append([]int(nil), src.shape...),
		Images:      make([]float32, 0, len(idx)*dim),
		Labels:      make([]int32, len(idx)),
		IDs:         make([]int64, len(idx)),
		ClassNames:  append([]string(nil), src.classNames...),
		CleanLabels: make([]int32, len(idx)),
		Flipped:     make([]bool, len(idx)),
		Meta:        meta,
	}
	for j, i := range idx {
		ds.Images = append(ds.Images, s.images[i*dim:(i+1)*dim]...)
		ds.Labels[j] = s.labels[i]
		ds.CleanLabels[j] = s.labels[i]
		ds.IDs[j] = int64(i) + idOffset
	}
	return ds
}
