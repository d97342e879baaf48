package bestfinal

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/sglr-pipe/sglr-pipe/artifacts"
	"github.com/sglr-pipe/sglr-pipe/stages"
	"github.com/sglr-pipe/sglr-pipe/stages/stagetest"
)

func TestBestFinalStage(t *testing.T) {
	dir := t.TempDir()
	var inputs []stages.Input
	for i, label := range []string{"hard", "sglr"} {
		path := filepath.Join(dir, label)
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := artifacts.WriteCurve(f, &artifacts.Table{Columns: []artifacts.Column{
			{Name: artifacts.ColEpoch, Ints: []int64{1, 2}},
			{Name: artifacts.ColValCleanAcc, Floats: []float64{0.5, 0.5}},
			{Name: artifacts.ColValRobustAcc, Floats: []float64{0.1 * float64(i+1), 0.2}},
		}}); err != nil {
			t.Fatal(err)
		}
		f.Close()
		inputs = append(inputs, stagetest.Input(t, path, map[string]string{"labels": label}))
	}
	env := &stages.Env{Instance: "summary", Params: stages.Params{}, Inputs: map[string][]stages.Input{"curves": inputs},
		Progress: stages.NopProgress{}, OutDir: dir}
	if err := (Stage{}).Run(context.Background(), env); err != nil {
		t.Fatal(err)
	}
	tbl, err := artifacts.ReadTableFile(env.OutputPath("table"))
	if err != nil {
		t.Fatal(err)
	}
	if tbl.Len() != 2 || tbl.Column("best_epoch").Ints[1] != 1 {
		t.Errorf("table %+v", tbl)
	}
}
