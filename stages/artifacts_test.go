package stages

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/sglr-pipe/sglr-pipe/artifacts"
)

func testDataset(label int32) *artifacts.Dataset {
	return &artifacts.Dataset{
		Shape:      []int{1, 1, 2},
		Images:     []float32{0, 0.5, 1, 0.25},
		Labels:     []int32{label, 0},
		IDs:        []int64{1, 2},
		ClassNames: []string{"a", "b"},
	}
}

func TestEnvArtifactRoundTrip(t *testing.T) {
	env := &Env{Instance: "noisy[noise=0.2]", OutDir: t.TempDir(), Progress: NopProgress{}}
	tests := []struct {
		port  string
		write func() error
		read  func(e *Env) (any, error)
		want  any
	}{
		{
			port:  "dataset",
			write: func() error { return env.WriteDataset("dataset", testDataset(1)) },
			read:  func(e *Env) (any, error) { return e.ReadDataset("dataset") },
			want:  testDataset(1),
		},
		{
			port: "labels",
			write: func() error {
				return env.WriteLabels("labels", &artifacts.Labels{IDs: []int64{1}, Soft: []float32{0.3, 0.7}, K: 2})
			},
			read: func(e *Env) (any, error) { return e.ReadLabels("labels") },
			want: &artifacts.Labels{IDs: []int64{1}, Soft: []float32{0.3, 0.7}, K: 2},
		},
		{
			port: "metrics",
			write: func() error {
				return env.WriteTable("metrics", &artifacts.Table{Columns: []artifacts.Column{{Name: "acc", Floats: []float64{0.9}}}})
			},
			read: func(e *Env) (any, error) { return e.ReadTable("metrics") },
			want: &artifacts.Table{Columns: []artifacts.Column{{Name: "acc", Floats: []float64{0.9}}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.port, func(t *testing.T) {
			if err := tt.write(); err != nil {
				t.Fatal(err)
			}
			consumer := &Env{Instance: "train", Inputs: map[string][]Input{
				tt.port: {fileInput(t, env.OutputPath(tt.port), nil)},
			}}
			got, err := tt.read(consumer)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestEnvGatheredInputs(t *testing.T) {
	dir := t.TempDir()
	producer := &Env{Instance: "noisy", OutDir: dir}
	var ins []Input
	for i, noise := range []string{"0.0", "0.2"} {
		port := "dataset" + noise
		if err := producer.WriteDataset(port, testDataset(int32(i))); err != nil {
			t.Fatal(err)
		}
		ins = append(ins, fileInput(t, producer.OutputPath(port), map[string]string{"noise": noise}))
	}
	env := &Env{Instance: "report", Inputs: map[string][]Input{"datasets": ins}}
	ds, tags, err := env.ReadDatasets("datasets")
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 2 || ds[1].Labels[0] != 1 || tags[0]["noise"] != "0.0" || tags[1]["noise"] != "0.2" {
		t.Errorf("ReadDatasets = %v, %v", ds, tags)
	}
	if _, _, err := env.ReadTables("datasets"); !errors.Is(err, artifacts.ErrCorrupt) ||
		!strings.Contains(err.Error(), `input "datasets", table 1 of 2`) {
		t.Errorf("reading datasets as tables: %v", err)
	}
}

// TestEnvArtifactErrorsNamePortOnly checks that Env's errors name the port
// but not the instance, which the run adds once.
func TestEnvArtifactErrorsNamePortOnly(t *testing.T) {
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk")
	if err := os.WriteFile(junk, []byte("not arrow"), 0o644); err != nil {
		t.Fatal(err)
	}
	env := &Env{Instance: "eval[method=sglr]", OutDir: dir, Inputs: map[string][]Input{"dataset": {fileInput(t, junk, nil)}}}
	unwritable := &Env{Instance: "eval[method=sglr]", OutDir: filepath.Join(dir, "missing-dir")}
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"corrupt input", second(env.ReadDataset("dataset")), `input "dataset"`},
		{"unconnected input", second(env.ReadLabels("labels")), `input "labels" is not connected`},
		{"unconnected gathered input", third(env.ReadDatasets("rows")), `input "rows" is not connected`},
		{"invalid value", env.WriteTable("metrics", &artifacts.Table{Columns: []artifacts.Column{{Name: "x"}}}), `output "metrics" (table): write table`},
		{"unwritable output", unwritable.WriteDataset("out", testDataset(0)), `create output "out"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.err == nil || !strings.HasPrefix(tt.err.Error(), tt.want) {
				t.Errorf("error %v, want one starting %q", tt.err, tt.want)
			}
		})
	}
	if _, err := os.Stat(env.OutputPath("metrics")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a failed write left its output file behind: %v", err)
	}
}

func second[T any](_ T, err error) error { return err }

func third[A, B any](_ A, _ B, err error) error { return err }
