package stages

import (
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/sglr-pipe/sglr-pipe/artifacts"
)

func TestEnvModelRoundTrip(t *testing.T) {
	model := &artifacts.Model{
		Arch: `{"kind":"mlp","input":[1,1,2],"classes":2,"hidden":[1]}`,
		Tensors: []artifacts.Tensor{
			{Name: "layers.0.weight", Shape: []int{1, 2}, Data: []float32{0.5, -0.25}},
			{Name: "layers.0.bias", Shape: []int{1}, Data: []float32{0.125}},
		},
		Meta: map[string]string{"epoch": "3"},
	}
	producer := &Env{Instance: "train", OutDir: t.TempDir(), Progress: NopProgress{}}
	if err := producer.WriteModel("best", model); err != nil {
		t.Fatal(err)
	}
	consumer := &Env{Instance: "eval", Inputs: map[string][]Input{"model": {fileInput(t, producer.OutputPath("best"), nil)}}}
	got, err := consumer.ReadModel("model")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, model) {
		t.Errorf("got %+v, want %+v", got, model)
	}
}

func TestEnvModelErrors(t *testing.T) {
	env := &Env{Instance: "train", OutDir: t.TempDir(), Progress: NopProgress{}}
	err := env.WriteModel("best", &artifacts.Model{Arch: "{"})
	if err == nil || !strings.Contains(err.Error(), `output "best" (model)`) {
		t.Errorf("WriteModel of an invalid model: %v", err)
	}
	if _, statErr := os.Stat(env.OutputPath("best")); !errors.Is(statErr, os.ErrNotExist) {
		t.Errorf("a failed write left %s behind (%v)", env.OutputPath("best"), statErr)
	}
	if err := env.WriteDataset("data", testDataset(0)); err != nil {
		t.Fatal(err)
	}
	consumer := &Env{Instance: "eval", Inputs: map[string][]Input{"model": {fileInput(t, env.OutputPath("data"), nil)}}}
	_, err = consumer.ReadModel("model")
	if !errors.Is(err, artifacts.ErrCorrupt) || !strings.Contains(err.Error(), `input "model" (model `) {
		t.Errorf("ReadModel of a dataset: %v", err)
	}
}
