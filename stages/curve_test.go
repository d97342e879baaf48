package stages

import (
	"strings"
	"testing"

	"github.com/sglr-pipe/sglr-pipe/artifacts"
)

func TestEnvCurveRoundTrip(t *testing.T) {
	curve := &artifacts.Table{Columns: []artifacts.Column{
		{Name: artifacts.ColEpoch, Ints: []int64{1, 2}},
		{Name: "val_robust_acc", Floats: []float64{0.25, 0.5}},
	}}
	producer := &Env{Instance: "train", OutDir: t.TempDir(), Progress: NopProgress{}}
	if err := producer.WriteCurve("curve", curve); err != nil {
		t.Fatal(err)
	}
	in := fileInput(t, producer.OutputPath("curve"), map[string]string{"labels": "sglr"})
	consumer := &Env{Instance: "summary", Inputs: map[string][]Input{"one": {in}, "many": {in, in}}}
	got, err := consumer.ReadCurve("one")
	if err != nil {
		t.Fatal(err)
	}
	if got.Column("val_robust_acc").Floats[1] != 0.5 {
		t.Errorf("read back %+v", got)
	}
	all, tags, err := consumer.ReadCurves("many")
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 || tags[1]["labels"] != "sglr" {
		t.Errorf("gathered %d curves with tags %v", len(all), tags)
	}
	// A table is not a curve: the kind is checked and the error names the port.
	if err := producer.WriteTable("table", curve); err != nil {
		t.Fatal(err)
	}
	wrong := &Env{Instance: "summary", Inputs: map[string][]Input{"one": {fileInput(t, producer.OutputPath("table"), nil)}}}
	if _, err := wrong.ReadCurve("one"); err == nil || !strings.Contains(err.Error(), `input "one" (curve`) {
		t.Errorf("got %v, want a kind error naming the port", err)
	}
	if err := producer.WriteCurve("bad", &artifacts.Table{Columns: []artifacts.Column{{Name: "lr", Floats: []float64{1}}}}); err == nil {
		t.Error("a curve without an epoch column was written")
	}
}
