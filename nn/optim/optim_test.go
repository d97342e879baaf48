package optim

import (
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/sglr-pipe/sglr-pipe/nn/model"
)

// sgdGrads are the gradients of the 2-element weight [1, −2] at steps 1–3.
var sgdGrads = [][]float32{{0.5, 0.25}, {-0.3, 0.1}, {0.2, -0.4}}

func TestSGDStepMatchesHandComputedTorchUpdates(t *testing.T) {
	// Worked by hand with lr 0.1, e.g. momentum 0.9, wd 0.1, Nesterov, w[0]:
	// step 1: d = 0.5 + 0.1·1 = 0.6; buf = 0.6; d = 0.6 + 0.9·0.6 = 1.14; w = 1 − 0.114 = 0.886.
	// step 2: d = −0.3 + 0.0886 = −0.2114; buf = 0.54 − 0.2114 = 0.3286;
	//         d = −0.2114 + 0.29574 = 0.08434; w = 0.886 − 0.008434 = 0.877566.
	tests := []struct {
		name     string
		momentum float64
		wd       float64
		nesterov bool
		want     [3][2]float64
		wantBuf  []float64 // after step 3; nil = no buffer kept
	}{
		{"plain", 0, 0, false, [3][2]float64{{0.95, -2.025}, {0.98, -2.035}, {0.96, -1.995}}, nil},
		{"weight decay", 0, 0.1, false, [3][2]float64{{0.94, -2.005}, {0.9606, -1.99495}, {0.930994, -1.9350005}}, nil},
		{"momentum", 0.9, 0, false, [3][2]float64{{0.95, -2.025}, {0.935, -2.0575}, {0.9015, -2.04675}}, []float64{0.335, -0.1075}},
		{"momentum+wd", 0.9, 0.1, false, [3][2]float64{{0.94, -2.005}, {0.9066, -1.99945}, {0.847474, -1.9344605}}, []float64{0.59126, -0.649895}},
		{"momentum+wd+nesterov", 0.9, 0.1, true, [3][2]float64{{0.886, -2.0095}, {0.877566, -1.9943695}, {0.796275646, -1.8759445295}}, []float64{0.5834966, -0.64979195}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			params := []*model.Param{{Name: "w", Shape: []int{2}, Data: []float32{1, -2}}}
			opt := NewSGD(params, tc.momentum, tc.wd, tc.nesterov)
			for step, g := range sgdGrads {
				opt.Step(params, [][]float32{g}, 0.1)
				for j, want := range tc.want[step] {
					if got := params[0].Data[j]; math.Abs(float64(got)-want) > 2e-6 {
						t.Errorf("step %d w[%d] = %.9f, want %.9f", step+1, j, got, want)
					}
				}
			}
			buf := opt.State()[0]
			if tc.wantBuf == nil {
				if buf != nil {
					t.Fatalf("momentum 0 kept a buffer %v", buf)
				}
				return
			}
			for j, want := range tc.wantBuf {
				if math.Abs(float64(buf[j])-want) > 2e-6 {
					t.Errorf("buf[%d] = %.9f, want %.9f", j, buf[j], want)
				}
			}
		})
	}
}

func TestSGDSkipsBuffersAndMissingGradients(t *testing.T) {
	params := []*model.Param{
		{Name: "bn.running_mean", Shape: []int{2}, Data: []float32{3, 4}, Buffer: true},
		{Name: "w", Shape: []int{1}, Data: []float32{1}},
		{Name: "frozen", Shape: []int{1}, Data: []float32{7}},
	}
	opt := NewSGD(params, 0.9, 0.5, false)
	opt.Step(params, [][]float32{nil, {1}, nil}, 0.1)
	if got := params[0].Data; !slices.Equal(got, []float32{3, 4}) {
		t.Errorf("buffer changed to %v", got)
	}
	if got := params[2].Data[0]; got != 7 {
		t.Errorf("param without gradient changed to %v", got)
	}
	if got, want := params[1].Data[0], float32(1-0.1*1.5); math.Abs(float64(got-want)) > 1e-7 {
		t.Errorf("w = %v, want %v", got, want)
	}
	if st := opt.State(); st[0] != nil || st[2] != nil || st[1] == nil {
		t.Errorf("state %v: want buffers only for stepped params", st)
	}
}

func TestSGDStateResumesExactly(t *testing.T) {
	newParams := func() []*model.Param { return []*model.Param{{Name: "w", Shape: []int{2}, Data: []float32{1, -2}}} }
	full := newParams()
	opt := NewSGD(full, 0.9, 0.1, true)
	for _, g := range sgdGrads {
		opt.Step(full, [][]float32{g}, 0.1)
	}

	first := newParams()
	opt1 := NewSGD(first, 0.9, 0.1, true)
	for _, g := range sgdGrads[:2] {
		opt1.Step(first, [][]float32{g}, 0.1)
	}
	resumed := []*model.Param{{Name: "w", Shape: []int{2}, Data: slices.Clone(first[0].Data)}}
	opt2 := NewSGD(resumed, 0.9, 0.1, true)
	if err := opt2.SetState(resumed, opt1.State()); err != nil {
		t.Fatal(err)
	}
	opt2.Step(resumed, [][]float32{sgdGrads[2]}, 0.1)
	if !slices.Equal(resumed[0].Data, full[0].Data) {
		t.Errorf("resumed weights %v, uninterrupted %v", resumed[0].Data, full[0].Data)
	}
}

func TestSGDSetStateRejectsMismatches(t *testing.T) {
	params := []*model.Param{
		{Name: "w", Shape: []int{2}, Data: []float32{1, 2}},
		{Name: "bn.running_var", Shape: []int{1}, Data: []float32{1}, Buffer: true},
	}
	tests := []struct {
		name  string
		state [][]float32
		want  string
	}{
		{"too few buffers", [][]float32{{0, 0}}, "1 buffers for 2 params"},
		{"wrong length", [][]float32{{0}, nil}, "param w has 2 values, momentum buffer 1"},
		{"buffer with momentum", [][]float32{{0, 0}, {0}}, "buffer bn.running_var has a momentum buffer"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := NewSGD(params, 0.9, 0, false).SetState(params, tc.state)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("SetState(%v): error %v, want one containing %q", tc.state, err, tc.want)
			}
		})
	}
}

func TestValidateSGD(t *testing.T) {
	tests := []struct {
		momentum, wd float64
		ok           bool
	}{
		{0.9, 5e-4, true},
		{0, 0, true},
		{1, 0, false},
		{-0.1, 0, false},
		{math.NaN(), 0, false},
		{0.9, -1, false},
		{0.9, math.Inf(1), false},
	}
	for _, tc := range tests {
		if err := ValidateSGD(tc.momentum, tc.wd); (err == nil) != tc.ok {
			t.Errorf("ValidateSGD(%v, %v) = %v, want ok=%v", tc.momentum, tc.wd, err, tc.ok)
		}
	}
}
