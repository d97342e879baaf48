package stages

import (
	"math"
	"strings"
	"testing"

	"github.com/sglr-pipe/sglr-pipe/artifacts"
)

func curveOf(robust, clean []float64) *artifacts.Table {
	epochs := make([]int64, len(robust))
	for i := range epochs {
		epochs[i] = int64(i + 1)
	}
	return &artifacts.Table{Columns: []artifacts.Column{
		{Name: artifacts.ColEpoch, Ints: epochs},
		{Name: artifacts.ColValCleanAcc, Floats: clean},
		{Name: artifacts.ColValRobustAcc, Floats: robust},
	}}
}

func TestBestFinal(t *testing.T) {
	nan := math.NaN()
	curves := []*artifacts.Table{
		curveOf([]float64{0.2, 0.4, 0.4, 0.3}, []float64{0.5, 0.6, 0.7, 0.8}),  // tie at 2 and 3: the earlier wins
		curveOf([]float64{nan, 0.3, nan, 0.35}, []float64{nan, 0.5, nan, 0.6}), // unvalidated epochs skipped
	}
	tags := []map[string]string{{"labels": "hard"}, {"labels": "sglr"}}
	tbl, err := BestFinal(curves, tags)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]float64{
		"best_val_robust_acc":  {0.4, 0.35},
		"final_val_robust_acc": {0.3, 0.35},
		"best_val_clean_acc":   {0.6, 0.6},
		"final_val_clean_acc":  {0.8, 0.6},
	}
	for name, w := range want {
		got := tbl.Column(name).Floats
		for i := range w {
			if got[i] != w[i] {
				t.Errorf("%s = %v, want %v", name, got, w)
			}
		}
	}
	if d := tbl.Column("diff").Floats; math.Abs(d[0]-0.1) > 1e-12 || d[1] != 0 {
		t.Errorf("diff %v, want [0.1 0]", d)
	}
	if be := tbl.Column("best_epoch").Ints; be[0] != 2 || be[1] != 4 {
		t.Errorf("best_epoch %v, want [2 4]", be)
	}
	if l := tbl.Column("labels").Strings; l[0] != "hard" || l[1] != "sglr" {
		t.Errorf("labels column %v", l)
	}
	for _, name := range []string{"best_recovered", "final_recovered"} {
		if got := tbl.Column(name).Floats; !math.IsNaN(got[0]) || !math.IsNaN(got[1]) {
			t.Errorf("%s = %v without a recovered curve column, want NaN", name, got)
		}
	}
	withRecovered := curveOf([]float64{0.2, 0.5, 0.3}, []float64{0.5, 0.6, 0.7})
	withRecovered.Columns = append(withRecovered.Columns, artifacts.Column{Name: artifacts.ColRecovered, Floats: []float64{0, 0.25, 0.75}})
	if tbl, err = BestFinal([]*artifacts.Table{withRecovered}, nil); err != nil {
		t.Fatal(err)
	}
	if b, f := tbl.Column("best_recovered").Floats[0], tbl.Column("final_recovered").Floats[0]; b != 0.25 || f != 0.75 {
		t.Errorf("recovered best %v final %v, want 0.25 (epoch 2) and 0.75 (epoch 3)", b, f)
	}
	for _, tc := range []struct {
		name   string
		curves []*artifacts.Table
		tags   []map[string]string
		err    string
	}{
		{"never validated", []*artifacts.Table{curveOf([]float64{nan}, []float64{nan})}, nil, "no validated epoch"},
		{"not a train curve", []*artifacts.Table{{Columns: []artifacts.Column{{Name: "epoch", Ints: []int64{1}}}}}, nil, "not a train curve"},
		{"axis clash", curves[:1], []map[string]string{{"diff": "x"}}, "clashes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := BestFinal(tc.curves, tc.tags); err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("got %v, want an error mentioning %q", err, tc.err)
			}
		})
	}
}
