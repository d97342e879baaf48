package artifacts

import (
	"bytes"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// samplePredictions holds n samples of K=3 under two attacks for one checkpoint.
func samplePredictions(n int) *Predictions {
	p := &Predictions{K: 3, Meta: map[string]string{"stage": "eval", "eps": "0.0313725"}}
	for _, attack := range []string{"clean", "pgd"} {
		for i := range n {
			p.IDs = append(p.IDs, int64(10+i))
			p.Labels = append(p.Labels, int32(i%3))
			p.Logits = append(p.Logits, float32(i)-1.5, 0.25*float32(i), -float32(i)/7)
			p.Attack = append(p.Attack, attack)
			p.Checkpoint = append(p.Checkpoint, "labels=sglr/best")
		}
	}
	return p
}

func encodePredictions(t testing.TB, p *Predictions) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := WritePredictions(&buf, p); err != nil {
		t.Fatalf("WritePredictions: %v", err)
	}
	return buf.Bytes()
}

func TestPredictionsRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		p    *Predictions
	}{
		{"two attacks", samplePredictions(5)},
		{"empty", &Predictions{K: 10, IDs: []int64{}, Labels: []int32{}, Logits: []float32{}, Attack: []string{}, Checkpoint: []string{}}},
		{"one class, no meta", &Predictions{K: 1, IDs: []int64{-4}, Labels: []int32{0}, Logits: []float32{3e38},
			Attack: []string{"autoattack"}, Checkpoint: []string{""}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "predictions")
			data := encodePredictions(t, tt.p)
			if err := os.WriteFile(path, data, 0o644); err != nil {
				t.Fatal(err)
			}
			got, err := ReadPredictionsFile(path)
			if err != nil {
				t.Fatalf("ReadPredictionsFile: %v", err)
			}
			if !reflect.DeepEqual(got, tt.p) {
				t.Errorf("round trip changed the predictions:\n got %+v\nwant %+v", got, tt.p)
			}
			if again := encodePredictions(t, got); !bytes.Equal(again, data) {
				t.Error("re-encoding the decoded predictions gives different bytes")
			}
		})
	}
}

func TestPredictionsValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(p *Predictions)
		want   string
	}{
		{"no classes", func(p *Predictions) { p.K = 0 }, "K=0"},
		{"short labels", func(p *Predictions) { p.Labels = p.Labels[1:] }, "labels for"},
		{"short attacks", func(p *Predictions) { p.Attack = p.Attack[1:] }, "attacks for"},
		{"short checkpoints", func(p *Predictions) { p.Checkpoint = p.Checkpoint[1:] }, "checkpoints for"},
		{"short logits", func(p *Predictions) { p.Logits = p.Logits[1:] }, "logits, want"},
		{"label out of range", func(p *Predictions) { p.Labels[2] = 3 }, "outside [0,3)"},
		{"NaN logit", func(p *Predictions) { p.Logits[4] = float32(math.NaN()) }, "not finite"},
		{"infinite logit", func(p *Predictions) { p.Logits[0] = float32(math.Inf(-1)) }, "not finite"},
		{"duplicate id in a group", func(p *Predictions) { p.IDs[1] = p.IDs[0] }, "both hold id 10"},
		{"empty meta key", func(p *Predictions) { p.Meta[""] = "x" }, "empty key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := samplePredictions(4)
			tt.mutate(p)
			err := p.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate: %v, want an error containing %q", err, tt.want)
			}
			if err := WritePredictions(&bytes.Buffer{}, p); err == nil {
				t.Error("WritePredictions accepted invalid predictions")
			}
		})
	}
	if err := samplePredictions(4).Validate(); err != nil {
		t.Errorf("the same id under two attacks is valid, got %v", err)
	}
}

func TestReadPredictionsRejectsOtherKindsAndTruncation(t *testing.T) {
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"labels artifact", encodeLabels(t, sampleLabels(3, true, true)), `kind is "labels"`},
		{"table artifact", encodeTable(t, sampleTable()), `kind is "table"`},
		{"truncated", encodePredictions(t, samplePredictions(3))[:100], ""},
		{"empty file", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ReadPredictions(bytes.NewReader(tt.data))
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("got %v, want an error wrapping ErrCorrupt", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not mention %q", err, tt.want)
			}
		})
	}
}

func FuzzReadPredictions(f *testing.F) {
	f.Add(encodePredictions(f, samplePredictions(3)))
	f.Add(encodePredictions(f, &Predictions{K: 2, IDs: []int64{}, Labels: []int32{}, Logits: []float32{},
		Attack: []string{}, Checkpoint: []string{}}))
	f.Add(encodeLabels(f, sampleLabels(2, true, true)))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ReadPredictions(bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		if _, err := ReadPredictions(bytes.NewReader(encodePredictions(t, p))); err != nil {
			t.Fatalf("re-encoded predictions do not read: %v", err)
		}
	})
}
