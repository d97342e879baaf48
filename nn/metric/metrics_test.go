package metric

import (
	"math"
	"slices"
	"testing"
)

func TestSoftmaxAndLogSoftmax(t *testing.T) {
	ln2, ln3 := math.Log(2), math.Log(3)
	tests := []struct {
		name   string
		logits []float32
		n, k   int
		want   []float64 // softmax
	}{
		{"ratios 1:2:3", []float32{0, float32(ln2), float32(ln3)}, 1, 3, []float64{1.0 / 6, 2.0 / 6, 3.0 / 6}},
		{"huge logits stay finite", []float32{1000, 1000, -1000, 1000}, 2, 2, []float64{0.5, 0.5, 0, 1}},
		{"shift invariant", []float32{5, 5 + float32(ln2)}, 1, 2, []float64{1.0 / 3, 2.0 / 3}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := make([]float32, len(tc.logits))
			Softmax(tc.logits, tc.n, tc.k, p)
			if !closeTo(p, tc.want, 1e-6) {
				t.Errorf("softmax %v, want %v", p, tc.want)
			}
			lp := make([]float32, len(tc.logits))
			LogSoftmax(tc.logits, tc.n, tc.k, lp)
			for i, w := range tc.want {
				if w == 0 {
					if lp[i] > -1000 {
						t.Errorf("log-softmax[%d] = %v, want about -2000", i, lp[i])
					}
					continue
				}
				if math.Abs(float64(lp[i])-math.Log(w)) > 1e-6 {
					t.Errorf("log-softmax[%d] = %v, want %v", i, lp[i], math.Log(w))
				}
			}
		})
	}
}

func TestArgmaxAccuracyCorrectMask(t *testing.T) {
	nan := float32(math.NaN())
	logits := []float32{
		0.1, 0.7, 0.2, // argmax 1
		0.5, 0.5, 0.1, // tie: first index, 0
		-1, -3, -2, // argmax 0
		0, nan, 9, // NaN counts as largest: 1
	}
	got := make([]int32, 4)
	Argmax(logits, 4, 3, got)
	if want := []int32{1, 0, 0, 1}; !slices.Equal(got, want) {
		t.Errorf("Argmax = %v, want %v", got, want)
	}
	labels := []int32{1, 1, 0, 2}
	if acc := Accuracy(logits, labels, 3); acc != 0.5 {
		t.Errorf("Accuracy = %v, want 0.5", acc)
	}
	mask := make([]bool, 4)
	CorrectMask(logits, labels, 3, mask)
	if want := []bool{true, false, true, false}; !slices.Equal(mask, want) {
		t.Errorf("CorrectMask = %v, want %v", mask, want)
	}
	if acc := Accuracy(nil, nil, 3); acc != 0 {
		t.Errorf("Accuracy of nothing = %v", acc)
	}
}

func TestSoftCEAndKL(t *testing.T) {
	ln2 := math.Log(2)
	tests := []struct {
		name    string
		logits  []float32
		targets []float32
		n, k    int
		ce, kl  float64
	}{
		{"uniform logits, hard target", []float32{0, 0}, []float32{1, 0}, 1, 2, ln2, ln2},
		{"matching prediction", []float32{0, float32(ln2)}, []float32{1.0 / 3, 2.0 / 3}, 1, 2,
			-(math.Log(1.0/3)/3 + 2*math.Log(2.0/3)/3), 0},
		{"mean over rows", []float32{0, 0, 0, 0}, []float32{1, 0, 0.5, 0.5}, 2, 2, ln2, ln2 / 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := SoftCE(tc.logits, tc.targets, tc.n, tc.k); math.Abs(got-tc.ce) > 1e-6 {
				t.Errorf("SoftCE = %v, want %v", got, tc.ce)
			}
			if got := KL(tc.targets, tc.logits, tc.n, tc.k); math.Abs(got-tc.kl) > 1e-6 {
				t.Errorf("KL = %v, want %v", got, tc.kl)
			}
		})
	}
}

// closeTo reports whether got matches want within tol everywhere.
func closeTo(got []float32, want []float64, tol float64) bool {
	return slices.EqualFunc(got, want, func(g float32, w float64) bool { return math.Abs(float64(g)-w) <= tol })
}
