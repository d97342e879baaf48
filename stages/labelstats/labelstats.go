// Package labelstats is the built-in `label-stats` stage: a table with one row
// per gathered input dataset, giving its size, class count, how many labels
// are flipped and the per-class label counts, beside the dataset's matrix tags.
package labelstats

import (
	"context"
	"fmt"
	"math"
	"slices"

	"github.com/sglr-pipe/sglr-pipe/artifacts"
	"github.com/sglr-pipe/sglr-pipe/stages"
)

// Stage is the `label-stats` stage.
type Stage struct{}

func init() { stages.Builtin.Register(Stage{}) }

// Spec declares the stage: gathered datasets in, one table out.
func (Stage) Spec() stages.Spec {
	return stages.Spec{
		Name:    "label-stats",
		Version: "1",
		Doc: "One row per input dataset: its matrix tags, n, classes, flipped (-1 if unknown), " +
			"noise_rate (flipped/n, NaN if unknown) and n_<class> label counts.",
		Inputs: []stages.Port{{Name: "datasets", Kind: artifacts.KindDataset, Multi: true,
			Doc: "datasets to describe, usually gathered with x.dataset[]"}},
		Outputs: []stages.Port{{Name: "table", Kind: artifacts.KindTable, Doc: "one row per input dataset"}},
	}
}

// Run reads every gathered dataset and writes the table.
func (Stage) Run(ctx context.Context, env *stages.Env) error {
	datasets, tags, err := env.ReadDatasets("datasets")
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	table, err := Table(datasets, tags)
	if err != nil {
		return err
	}
	if err := env.WriteTable("table", table); err != nil {
		return err
	}
	env.Report("rows", len(datasets))
	return nil
}

// Table builds the label statistics of datasets, tags[i] being the matrix
// tags of datasets[i] (nil tags allowed). Columns, in order: one string
// column per tag axis (sorted; "" where a dataset lacks the axis), n,
// classes, flipped, noise_rate, then n_<class> for every class name in order
// of first appearance across the datasets.
func Table(datasets []*artifacts.Dataset, tags []map[string]string) (*artifacts.Table, error) {
	if tags != nil && len(tags) != len(datasets) {
		return nil, fmt.Errorf("%d datasets but %d tag sets", len(datasets), len(tags))
	}
	tagOf := func(i int) map[string]string {
		if tags == nil {
			return nil
		}
		return tags[i]
	}
	var axes, classes []string
	for i, ds := range datasets {
		for axis := range tagOf(i) {
			if !slices.Contains(axes, axis) {
				axes = append(axes, axis)
			}
		}
		for _, name := range ds.ClassNames {
			if !slices.Contains(classes, name) {
				classes = append(classes, name)
			}
		}
	}
	slices.Sort(axes)
	for _, axis := range axes {
		if slices.Contains([]string{"n", "classes", "flipped", "noise_rate"}, axis) {
			return nil, fmt.Errorf("matrix axis %q clashes with the label-stats column of that name: rename the axis", axis)
		}
	}
	rows := len(datasets)
	t := &artifacts.Table{Meta: map[string]string{"sglr.table": "label-stats"}}
	for _, axis := range axes {
		col := artifacts.Column{Name: axis, Strings: make([]string, rows)}
		for i := range datasets {
			col.Strings[i] = tagOf(i)[axis]
		}
		t.Columns = append(t.Columns, col)
	}
	n := artifacts.Column{Name: "n", Ints: make([]int64, rows)}
	k := artifacts.Column{Name: "classes", Ints: make([]int64, rows)}
	flipped := artifacts.Column{Name: "flipped", Ints: make([]int64, rows)}
	rate := artifacts.Column{Name: "noise_rate", Floats: make([]float64, rows)}
	counts := make([]artifacts.Column, len(classes))
	for c, name := range classes {
		counts[c] = artifacts.Column{Name: "n_" + name, Ints: make([]int64, rows)}
	}
	for i, ds := range datasets {
		n.Ints[i] = int64(len(ds.Labels))
		k.Ints[i] = int64(len(ds.ClassNames))
		flipped.Ints[i], rate.Floats[i] = -1, math.NaN()
		if ds.Flipped != nil {
			if len(ds.Flipped) != len(ds.Labels) {
				return nil, fmt.Errorf("dataset %d: %d labels but %d flipped flags", i, len(ds.Labels), len(ds.Flipped))
			}
			flipped.Ints[i] = 0
			for _, f := range ds.Flipped {
				if f {
					flipped.Ints[i]++
				}
			}
			rate.Floats[i] = 0
			if len(ds.Labels) > 0 {
				rate.Floats[i] = float64(flipped.Ints[i]) / float64(len(ds.Labels))
			}
		}
		column := make([]int, len(ds.ClassNames)) // class index in ds -> counts column
		for c, name := range ds.ClassNames {
			column[c] = slices.Index(classes, name)
		}
		for j, l := range ds.Labels {
			if l < 0 || int(l) >= len(ds.ClassNames) {
				return nil, fmt.Errorf("dataset %d: sample %d has label %d, not one of its %d classes", i, j, l, len(ds.ClassNames))
			}
			counts[column[l]].Ints[i]++
		}
	}
	t.Columns = append(t.Columns, n, k, flipped, rate)
	t.Columns = append(t.Columns, counts...)
	return t, nil
}
