package metric

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// logitsOf turns rows of probabilities into logits log p, whose softmax is p.
func logitsOf(probs ...[]float64) []float32 {
	var out []float32
	for _, row := range probs {
		for _, v := range row {
			out = append(out, float32(math.Log(v)))
		}
	}
	return out
}

func TestCalibrationHandComputed(t *testing.T) {
	tests := []struct {
		name                    string
		logits                  []float32
		labels                  []int32
		k, bins                 int
		acc, ece, mce, nll, bri float64
		counts                  []int
	}{
		{
			// 4 bins: (0,.25] (.25,.5] (.5,.75] (.75,1].
			// bin 3: conf .9 (right), .8 (wrong): acc .5, conf .85, gap .35.
			// bin 2: conf .6 (right), .7 (wrong), .55 (right): acc 2/3, conf 1.85/3, gap .05.
			// ECE = 2/5·.35 + 3/5·.05 = .17; MCE = .35.
			// Brier = (.02 + 1.28 + .32 + .98 + .405)/5 = .601.
			// NLL = −(ln .9 + ln .2 + ln .6 + ln .3 + ln .55)/5 = 0.8054867713878948.
			name: "two classes, two bins used",
			logits: logitsOf([]float64{.9, .1}, []float64{.8, .2}, []float64{.4, .6}, []float64{.3, .7},
				[]float64{.55, .45}),
			labels: []int32{0, 1, 1, 0, 0}, k: 2, bins: 4,
			acc: .6, ece: .17, mce: .35, nll: 0.8054867713878948, bri: .601,
			counts: []int{0, 0, 3, 2},
		},
		{
			// 15 bins. (.5,.3,.2) labelled 2: predicted 0, wrong, conf .5 in bin 7 (gap .5).
			// uniform labelled 0: the tie goes to class 0, right, conf 1/3 on the edge 5/15, so bin 4 (gap 2/3).
			// ECE = (.5 + 2/3)/2 = 0.5833…; MCE = 2/3.
			// Brier = ((.25 + .09 + .64) + (4/9 + 1/9 + 1/9))/2 = (.98 + 2/3)/2 = 0.8233…
			// NLL = (−ln .2 + ln 3)/2.
			name:   "three classes, tie and bin edge",
			logits: logitsOf([]float64{.5, .3, .2}, []float64{1. / 3, 1. / 3, 1. / 3}),
			labels: []int32{2, 0}, k: 3, bins: 15,
			acc: .5, ece: (.5 + 2./3) / 2, mce: 2. / 3, nll: (-math.Log(.2) + math.Log(3)) / 2, bri: (.98 + 2./3) / 2,
			counts: []int{0, 0, 0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0},
		},
		{
			// One bin with conf .75 and 3 of 4 right: perfectly calibrated.
			// Brier = (3·(.0625·2) + (.5625·2))/4 = .375.
			name:   "calibrated bin",
			logits: logitsOf([]float64{.75, .25}, []float64{.75, .25}, []float64{.75, .25}, []float64{.75, .25}),
			labels: []int32{0, 0, 0, 1}, k: 2, bins: 10,
			acc: .75, ece: 0, mce: 0, nll: -(3*math.Log(.75) + math.Log(.25)) / 4, bri: .375,
			counts: []int{0, 0, 0, 0, 0, 0, 0, 4, 0, 0},
		},
	}
	const tol = 1e-6
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Calibrate(tt.logits, tt.labels, tt.k, tt.bins)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range []struct {
				name      string
				got, want float64
			}{{"accuracy", c.Accuracy, tt.acc}, {"ECE", c.ECE, tt.ece}, {"MCE", c.MCE, tt.mce},
				{"NLL", c.NLL, tt.nll}, {"Brier", c.Brier, tt.bri}} {
				if math.Abs(m.got-m.want) > tol {
					t.Errorf("%s = %.9f, want %.9f", m.name, m.got, m.want)
				}
			}
			for b, bin := range c.Bins {
				if bin.Count != tt.counts[b] {
					t.Errorf("bin %d (%v,%v] holds %d samples, want %d", b, bin.Lo, bin.Hi, bin.Count, tt.counts[b])
				}
				if empty := bin.Count == 0; empty != math.IsNaN(bin.Accuracy) || empty != math.IsNaN(bin.Confidence) {
					t.Errorf("bin %d: count %d with accuracy %v, confidence %v", b, bin.Count, bin.Accuracy, bin.Confidence)
				}
			}
			for _, f := range []struct {
				name string
				fn   func() (float64, error)
				want float64
			}{
				{"ECE", func() (float64, error) { return ECE(tt.logits, tt.labels, tt.k, tt.bins) }, tt.ece},
				{"MCE", func() (float64, error) { return MCE(tt.logits, tt.labels, tt.k, tt.bins) }, tt.mce},
				{"NLL", func() (float64, error) { return NLL(tt.logits, tt.labels, tt.k) }, tt.nll},
				{"Brier", func() (float64, error) { return Brier(tt.logits, tt.labels, tt.k) }, tt.bri},
			} {
				got, err := f.fn()
				if err != nil || math.Abs(got-f.want) > tol {
					t.Errorf("%s() = %v, %v; want %v", f.name, got, err, f.want)
				}
			}
		})
	}
}

func TestLabelConfidenceHistogram(t *testing.T) {
	// Probabilities on the label: .9, .2, .6, .3, .55 over 4 bins.
	logits := logitsOf([]float64{.9, .1}, []float64{.8, .2}, []float64{.4, .6}, []float64{.3, .7}, []float64{.55, .45})
	hist, err := LabelConfidenceHistogram(logits, []int32{0, 1, 1, 0, 0}, 2, 4)
	if err != nil {
		t.Fatal(err)
	}
	want := []HistogramBin{{0, .25, 1}, {.25, .5, 1}, {.5, .75, 2}, {.75, 1, 1}}
	for b := range want {
		if hist[b] != want[b] {
			t.Errorf("bin %d = %+v, want %+v", b, hist[b], want[b])
		}
	}
}

func TestProbabilityBinAgreesWithEdges(t *testing.T) {
	for _, bins := range []int{1, 3, 7, 10, 15} {
		for b := range bins {
			lo, hi := binEdges(b, bins)
			for _, p := range []float64{hi, math.Nextafter(hi, 0), math.Nextafter(lo, 1), (lo + hi) / 2} {
				if got := probabilityBin(p, bins); got != b {
					t.Errorf("%d bins: p=%v in bin %d, want %d (%v,%v]", bins, p, got, b, lo, hi)
				}
			}
		}
		if got := probabilityBin(0, bins); got != 0 {
			t.Errorf("%d bins: p=0 in bin %d, want 0", bins, got)
		}
	}
}

// calibratedSample draws n samples whose labels follow the softmax of their
// logits (a perfectly calibrated model), with logits of scale spread.
func calibratedSample(seed uint64, n, k int, spread float64) ([]float32, []int32) {
	rng := rand.New(rand.NewPCG(seed, 7))
	logits := make([]float32, n*k)
	labels := make([]int32, n)
	p := make([]float32, k)
	for i := range n {
		row := logits[i*k : (i+1)*k]
		for j := range row {
			row[j] = float32(spread * rng.NormFloat64())
		}
		Softmax(row, 1, k, p)
		u, acc := rng.Float64(), 0.0
		labels[i] = int32(k - 1)
		for j, pj := range p {
			if acc += float64(pj); u < acc {
				labels[i] = int32(j)
				break
			}
		}
	}
	return logits, labels
}

func TestTemperatureScaling(t *testing.T) {
	const k, bins = 5, 15
	valLogits, valLabels := calibratedSample(1, 4000, k, 1.5)
	testLogits, testLabels := calibratedSample(2, 4000, k, 1.5)

	tCal, err := FitTemperature(valLogits, valLabels, k)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(tCal-1) > 0.1 {
		t.Errorf("temperature of a calibrated model = %v, want about 1", tCal)
	}

	over := func(z []float32) []float32 { // a deliberately over-confident model: logits × 5
		out := make([]float32, len(z))
		for i, v := range z {
			out[i] = 5 * v
		}
		return out
	}
	overVal, overTest := over(valLogits), over(testLogits)
	tOver, err := FitTemperature(overVal, valLabels, k)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(tOver/5-1) > 0.1 {
		t.Errorf("temperature of the over-confident model = %v, want about 5", tOver)
	}
	scaled, err := ScaleLogits(overTest, tOver)
	if err != nil {
		t.Fatal(err)
	}
	before, err := Calibrate(overTest, testLabels, k, bins)
	if err != nil {
		t.Fatal(err)
	}
	after, err := Calibrate(scaled, testLabels, k, bins)
	if err != nil {
		t.Fatal(err)
	}
	if !(after.NLL < before.NLL-0.1) {
		t.Errorf("temperature scaling took test NLL from %v to %v, want a clear drop", before.NLL, after.NLL)
	}
	if !(after.ECE < before.ECE/2) {
		t.Errorf("temperature scaling took test ECE from %v to %v, want it at least halved", before.ECE, after.ECE)
	}
	if after.Accuracy != before.Accuracy {
		t.Errorf("temperature scaling changed accuracy from %v to %v", before.Accuracy, after.Accuracy)
	}
	// The fitted T is a minimum of the validation NLL.
	at := func(temp float64) float64 { return scaledNLL(overVal, valLabels, k, 1/temp) }
	for _, f := range []float64{0.9, 1.1} {
		if at(tOver*f) < at(tOver) {
			t.Errorf("NLL at T=%v (%v) is below NLL at the fitted T=%v (%v)", tOver*f, at(tOver*f), tOver, at(tOver))
		}
	}
}

func TestFitTemperatureEdgeCases(t *testing.T) {
	// Equal logits: T does not matter, 1 is returned.
	if got, err := FitTemperature(make([]float32, 6), []int32{0, 1, 1}, 2); err != nil || got != 1 {
		t.Errorf("flat logits: T = %v, %v; want 1", got, err)
	}
	// Perfectly separated with margins: the NLL keeps falling as T shrinks.
	got, err := FitTemperature(logitsOf([]float64{.9, .1}, []float64{.2, .8}), []int32{0, 1}, 2)
	if err != nil || math.Abs(got-MinTemperature) > 1e-6 {
		t.Errorf("separable data: T = %v, %v; want the lower end %v", got, err, MinTemperature)
	}
	// Always wrong: the NLL keeps falling as T grows.
	got, err = FitTemperature(logitsOf([]float64{.9, .1}, []float64{.2, .8}), []int32{1, 0}, 2)
	if err != nil || math.Abs(got-MaxTemperature) > 1e-4 {
		t.Errorf("always-wrong data: T = %v, %v; want the upper end %v", got, err, MaxTemperature)
	}
}

func TestCalibrationRejectsBadInput(t *testing.T) {
	good := logitsOf([]float64{.5, .5}, []float64{.9, .1})
	tests := []struct {
		name   string
		logits []float32
		labels []int32
		k      int
		bins   int
		want   string
	}{
		{"no samples", nil, nil, 2, 15, "no samples"},
		{"no classes", good, []int32{0, 1}, 0, 15, "0 classes"},
		{"short logits", good[:3], []int32{0, 1}, 2, 15, "3 logits for 2 samples"},
		{"label out of range", good, []int32{0, 2}, 2, 15, "label 2 outside [0,2)"},
		{"negative label", good, []int32{-1, 0}, 2, 15, "label -1"},
		{"NaN logit", []float32{0, float32(math.NaN()), 1, 2}, []int32{0, 1}, 2, 15, "not finite"},
		{"infinite logit", []float32{0, 1, float32(math.Inf(1)), 2}, []int32{0, 1}, 2, 15, "not finite"},
		{"no bins", good, []int32{0, 1}, 2, 0, "0 bins"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := map[string]error{}
			_, calls["Calibrate"] = Calibrate(tt.logits, tt.labels, tt.k, tt.bins)
			_, calls["LabelConfidenceHistogram"] = LabelConfidenceHistogram(tt.logits, tt.labels, tt.k, tt.bins)
			if tt.bins > 0 {
				_, calls["NLL"] = NLL(tt.logits, tt.labels, tt.k)
				_, calls["Brier"] = Brier(tt.logits, tt.labels, tt.k)
				_, calls["FitTemperature"] = FitTemperature(tt.logits, tt.labels, tt.k)
			}
			for name, err := range calls {
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Errorf("%s: %v, want an error containing %q", name, err, tt.want)
				}
			}
		})
	}
	for _, temp := range []float64{0, -1, math.NaN(), math.Inf(1)} {
		if _, err := ScaleLogits(good, temp); err == nil || !strings.Contains(err.Error(), "must be positive and finite") {
			t.Errorf("ScaleLogits with temperature %v: error %v, want one about the temperature", temp, err)
		}
	}
}
