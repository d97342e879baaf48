package stages

import (
	"fmt"
	"math"
	"slices"

	"github.com/sglr-pipe/sglr-pipe/artifacts"
)

// summaryColumns are the value columns of a best-final table, in order.
var summaryColumns = []string{"epochs", "best_epoch", "best_val_robust_acc", "final_val_robust_acc", "diff",
	"best_val_clean_acc", "final_val_clean_acc", "best_recovered", "final_recovered"}

// BestFinal summarises curves (tags[i] the matrix tags of curves[i], nil
// allowed): one string column per tag axis (sorted), then epochs, best_epoch,
// best_val_robust_acc, final_val_robust_acc, diff, best_val_clean_acc,
// final_val_clean_acc, best_recovered, final_recovered (NaN when the curve
// has no recovered column or does not know the flipped labels). Only validated epochs (val_robust_acc not NaN) count;
// "final" is the last of them, which train always validates.
func BestFinal(curves []*artifacts.Table, tags []map[string]string) (*artifacts.Table, error) {
	if tags != nil && len(tags) != len(curves) {
		return nil, fmt.Errorf("%d curves but %d tag sets", len(curves), len(tags))
	}
	var axes []string
	for _, tg := range tags {
		for axis := range tg {
			if slices.Contains(summaryColumns, axis) {
				return nil, fmt.Errorf("matrix axis %q clashes with the best-final column of that name: rename the axis", axis)
			}
			if !slices.Contains(axes, axis) {
				axes = append(axes, axis)
			}
		}
	}
	slices.Sort(axes)
	rows := len(curves)
	t := &artifacts.Table{Meta: map[string]string{"sglr.table": "best-final"}}
	for _, axis := range axes {
		col := artifacts.Column{Name: axis, Strings: make([]string, rows)}
		for i := range rows {
			if tags != nil {
				col.Strings[i] = tags[i][axis]
			}
		}
		t.Columns = append(t.Columns, col)
	}
	epochs := artifacts.Column{Name: "epochs", Ints: make([]int64, rows)}
	bestEpoch := artifacts.Column{Name: "best_epoch", Ints: make([]int64, rows)}
	floats := make([]artifacts.Column, len(summaryColumns)-2)
	for j, name := range summaryColumns[2:] {
		floats[j] = artifacts.Column{Name: name, Floats: make([]float64, rows)}
	}
	for i, c := range curves {
		s, err := summarise(c)
		if err != nil {
			return nil, fmt.Errorf("curve %d (tags %v): %w", i+1, tagsOf(tags, i), err)
		}
		epochs.Ints[i], bestEpoch.Ints[i] = s.epochs, s.bestEpoch
		for j, v := range []float64{s.bestRobust, s.finalRobust, s.bestRobust - s.finalRobust, s.bestClean, s.finalClean,
			s.bestRecovered, s.finalRecovered} {
			floats[j].Floats[i] = v
		}
	}
	t.Columns = append(t.Columns, epochs, bestEpoch)
	t.Columns = append(t.Columns, floats...)
	return t, nil
}

// curveSummary is the best and final validated epochs of one curve.
type curveSummary struct {
	epochs, bestEpoch       int64
	bestRobust, finalRobust float64
	bestClean, finalClean   float64
	// recovered share at the best and final epochs (NaN when unknown)
	bestRecovered, finalRecovered float64
}

func summarise(c *artifacts.Table) (curveSummary, error) {
	epoch := c.Column(artifacts.ColEpoch)
	robust, clean := c.Column(artifacts.ColValRobustAcc), c.Column(artifacts.ColValCleanAcc)
	if epoch == nil || epoch.Ints == nil || robust == nil || robust.Floats == nil || clean == nil || clean.Floats == nil {
		return curveSummary{}, fmt.Errorf("not a train curve: want int64 %q and float64 %q, %q columns",
			artifacts.ColEpoch, artifacts.ColValRobustAcc, artifacts.ColValCleanAcc)
	}
	s := curveSummary{epochs: int64(len(epoch.Ints)), bestRobust: math.Inf(-1),
		bestRecovered: math.NaN(), finalRecovered: math.NaN()}
	recovered := func(i int) float64 { return math.NaN() }
	if col := c.Column(artifacts.ColRecovered); col != nil && col.Floats != nil {
		recovered = func(i int) float64 { return col.Floats[i] }
	}
	found := false
	for i, r := range robust.Floats {
		if math.IsNaN(r) {
			continue
		}
		found = true
		if r > s.bestRobust {
			s.bestEpoch, s.bestRobust, s.bestClean, s.bestRecovered = epoch.Ints[i], r, clean.Floats[i], recovered(i)
		}
		s.finalRobust, s.finalClean, s.finalRecovered = r, clean.Floats[i], recovered(i)
	}
	if !found {
		return s, fmt.Errorf("no validated epoch (every val_robust_acc is NaN)")
	}
	return s, nil
}

func tagsOf(tags []map[string]string, i int) map[string]string {
	if tags == nil {
		return nil
	}
	return tags[i]
}
