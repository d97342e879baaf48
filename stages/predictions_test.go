package stages

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/sglr-pipe/sglr-pipe/artifacts"
)

func TestEnvPredictionsRoundTrip(t *testing.T) {
	preds := []*artifacts.Predictions{
		{K: 2, IDs: []int64{1, 2}, Labels: []int32{0, 1}, Logits: []float32{1, -1, 0.5, 2},
			Attack: []string{"clean", "clean"}, Checkpoint: []string{"best", "best"}, Meta: map[string]string{"stage": "eval"}},
		{K: 2, IDs: []int64{1}, Labels: []int32{0}, Logits: []float32{0, 3},
			Attack: []string{"pgd"}, Checkpoint: []string{"final"}},
	}
	producer := &Env{Instance: "eval", OutDir: t.TempDir(), Progress: NopProgress{}}
	tags := []map[string]string{{"method": "at"}, {"method": "sglr"}}
	var inputs []Input
	for i, p := range preds {
		port := []string{"a", "b"}[i]
		if err := producer.WritePredictions(port, p); err != nil {
			t.Fatal(err)
		}
		inputs = append(inputs, fileInput(t, producer.OutputPath(port), tags[i]))
	}
	single := &Env{Instance: "calibrate", Inputs: map[string][]Input{"predictions": inputs[:1]}}
	got, err := single.ReadPredictions("predictions")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, preds[0]) {
		t.Errorf("ReadPredictions: got %+v, want %+v", got, preds[0])
	}
	gathered := &Env{Instance: "report", Inputs: map[string][]Input{"predictions": inputs}}
	all, gotTags, err := gathered.ReadPredictionsAll("predictions")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(all, preds) || !reflect.DeepEqual(gotTags, tags) {
		t.Errorf("ReadPredictionsAll: got %+v with tags %v, want %+v with %v", all, gotTags, preds, tags)
	}
}

func TestEnvPredictionsErrors(t *testing.T) {
	env := &Env{Instance: "eval", OutDir: t.TempDir(), Progress: NopProgress{}}
	err := env.WritePredictions("predictions", &artifacts.Predictions{K: 0})
	if err == nil || !strings.Contains(err.Error(), `output "predictions" (predictions)`) {
		t.Errorf("WritePredictions of invalid predictions: %v", err)
	}
	if err := env.WriteDataset("data", testDataset(0)); err != nil {
		t.Fatal(err)
	}
	consumer := &Env{Instance: "calibrate", Inputs: map[string][]Input{"predictions": {fileInput(t, env.OutputPath("data"), nil)}}}
	_, err = consumer.ReadPredictions("predictions")
	if !errors.Is(err, artifacts.ErrCorrupt) || !strings.Contains(err.Error(), `input "predictions" (predictions `) {
		t.Errorf("ReadPredictions of a dataset: %v", err)
	}
	if _, _, err := consumer.ReadPredictionsAll("missing"); err == nil || !strings.Contains(err.Error(), "not connected") {
		t.Errorf("ReadPredictionsAll of an unconnected port: %v", err)
	}
}
