package metric

import (
	"errors"
	"fmt"
	"math"

	"github.com/sglr-pipe/sglr-pipe/nn/internal/vec"
)

// Calibration metrics of a classifier's softmax confidences, as SGLR reports
// them (Guo et al. 2017, "On Calibration of Modern Neural Networks"): the
// expected and maximum calibration errors over equal-width confidence bins,
// the negative log-likelihood, the multi-class Brier score, the reliability
// bins behind a reliability diagram, the histogram of the confidence on the
// labelled class, and temperature scaling. Every function takes logits
// [n,K] (float32, row-major) and n labels in [0,K), and computes in float64
// in a fixed order, so results are deterministic.
//
// Binning: with B bins, bin m (0-based) holds the confidences in
// (m/B, (m+1)/B]; the first bin also holds 0. The confidence of a sample is
// its largest softmax probability and its prediction the first class that
// reaches it (as Argmax).

// CalibrationBin is one equal-width confidence bin of a reliability diagram.
type CalibrationBin struct {
	Lo, Hi     float64 // the bin holds confidences in (Lo, Hi] (the first bin also Lo = 0)
	Count      int     // samples whose confidence falls in the bin
	Accuracy   float64 // fraction of those samples classified correctly; NaN when Count = 0
	Confidence float64 // mean confidence of those samples; NaN when Count = 0
}

// HistogramBin is one equal-width bin of a histogram of probabilities.
type HistogramBin struct {
	Lo, Hi float64 // the bin holds values in (Lo, Hi] (the first bin also Lo = 0)
	Count  int
}

// Calibration summarises n predictions.
type Calibration struct {
	N        int
	Accuracy float64 // fraction of samples whose prediction is the label
	// ECE is Σ_m (|B_m|/n)·|acc(B_m) − conf(B_m)| over the bins.
	ECE float64
	// MCE is max_m |acc(B_m) − conf(B_m)| over the non-empty bins.
	MCE float64
	// NLL is the mean of −log softmax(z_i)_{y_i}.
	NLL float64
	// Brier is the mean over samples of Σ_k (p_ik − [k = y_i])².
	Brier float64
	Bins  []CalibrationBin // the reliability bins ECE and MCE are computed from
}

// Temperature search range of FitTemperature: a minimum outside it is
// clamped to the nearer end.
const (
	MinTemperature = 0.01
	MaxTemperature = 100.0
)

// Calibrate computes accuracy, ECE, MCE, NLL, Brier score and the
// reliability bins of logits [len(labels),k] with the given number of
// equal-width confidence bins. It returns an error for no samples, sizes that
// disagree, a label outside [0,k), a logit that is not finite, or bins < 1.
func Calibrate(logits []float32, labels []int32, k, bins int) (*Calibration, error) {
	if err := checkCalibrationInput(logits, labels, k); err != nil {
		return nil, fmt.Errorf("calibrate: %w", err)
	}
	if bins < 1 {
		return nil, fmt.Errorf("calibrate: %d bins, want at least 1", bins)
	}
	n := len(labels)
	c := &Calibration{N: n, Bins: make([]CalibrationBin, bins)}
	correctIn := make([]float64, bins) // per bin: correct samples
	confIn := make([]float64, bins)    // per bin: sum of confidences
	correct := 0
	var nll, brier float64
	p := make([]float64, k)
	for i, y := range labels {
		row := logits[i*k : (i+1)*k]
		vec.Softmax(row, p)
		pred := vec.Argmax(row)
		conf := p[pred]
		b := probabilityBin(conf, bins)
		c.Bins[b].Count++
		confIn[b] += conf
		if pred == int(y) {
			correct++
			correctIn[b]++
		}
		nll += vec.LogSumExp(row) - float64(row[y])
		for j, pj := range p {
			if j == int(y) {
				pj -= 1
			}
			brier += pj * pj
		}
	}
	for b := range c.Bins {
		bin := &c.Bins[b]
		bin.Lo, bin.Hi = binEdges(b, bins)
		if bin.Count == 0 {
			bin.Accuracy, bin.Confidence = math.NaN(), math.NaN()
			continue
		}
		cnt := float64(bin.Count)
		bin.Accuracy, bin.Confidence = correctIn[b]/cnt, confIn[b]/cnt
		gap := math.Abs(bin.Accuracy - bin.Confidence)
		c.ECE += cnt / float64(n) * gap
		c.MCE = max(c.MCE, gap)
	}
	c.Accuracy = float64(correct) / float64(n)
	c.NLL = nll / float64(n)
	c.Brier = brier / float64(n)
	return c, nil
}

// ECE is the expected calibration error of logits with the given number of
// equal-width confidence bins (15 in SGLR); see Calibrate for the errors.
func ECE(logits []float32, labels []int32, k, bins int) (float64, error) {
	c, err := Calibrate(logits, labels, k, bins)
	if err != nil {
		return 0, err
	}
	return c.ECE, nil
}

// MCE is the maximum calibration error of logits over the non-empty
// equal-width confidence bins; see Calibrate for the errors.
func MCE(logits []float32, labels []int32, k, bins int) (float64, error) {
	c, err := Calibrate(logits, labels, k, bins)
	if err != nil {
		return 0, err
	}
	return c.MCE, nil
}

// NLL is the mean negative log-likelihood −log softmax(z_i)_{y_i} of the
// labels under logits [len(labels),k], computed stably.
func NLL(logits []float32, labels []int32, k int) (float64, error) {
	if err := checkCalibrationInput(logits, labels, k); err != nil {
		return 0, fmt.Errorf("nll: %w", err)
	}
	return scaledNLL(logits, labels, k, 1), nil
}

// Brier is the multi-class Brier score: the mean over samples of
// Σ_k (p_k − y_k)², p the softmax of the logits and y the one-hot label.
func Brier(logits []float32, labels []int32, k int) (float64, error) {
	c, err := Calibrate(logits, labels, k, 1)
	if err != nil {
		return 0, err
	}
	return c.Brier, nil
}

// LabelConfidenceHistogram counts, over bins equal-width bins of [0,1], the
// softmax probability each sample gives its labelled class (SGLR Fig. B.3:
// how confident the model is in the label, right or wrong).
func LabelConfidenceHistogram(logits []float32, labels []int32, k, bins int) ([]HistogramBin, error) {
	if err := checkCalibrationInput(logits, labels, k); err != nil {
		return nil, fmt.Errorf("label confidence histogram: %w", err)
	}
	if bins < 1 {
		return nil, fmt.Errorf("label confidence histogram: %d bins, want at least 1", bins)
	}
	hist := make([]HistogramBin, bins)
	for b := range hist {
		hist[b].Lo, hist[b].Hi = binEdges(b, bins)
	}
	p := make([]float64, k)
	for i, y := range labels {
		vec.Softmax(logits[i*k:(i+1)*k], p)
		hist[probabilityBin(p[y], bins)].Count++
	}
	return hist, nil
}

// FitTemperature returns the temperature T > 0 that minimises the mean NLL of
// the labels under logits/T (temperature scaling, Guo et al. 2017), fitted on
// held-out predictions and then applied to others with ScaleLogits; it does
// not change any prediction, only the confidences.
//
// The NLL of β·z is convex in β = 1/T, so it is unimodal in log T; the search
// is a golden-section search on log T over [MinTemperature, MaxTemperature]
// to a width of 1e-9 in log T. When every sample's logits are all equal the
// NLL does not depend on T and FitTemperature returns 1.
func FitTemperature(logits []float32, labels []int32, k int) (float64, error) {
	if err := checkCalibrationInput(logits, labels, k); err != nil {
		return 0, fmt.Errorf("fit temperature: %w", err)
	}
	flat := true
	for i := 0; i < len(labels) && flat; i++ {
		row := logits[i*k : (i+1)*k]
		for _, v := range row {
			flat = flat && v == row[0]
		}
	}
	if flat {
		return 1, nil
	}
	f := func(logT float64) float64 { return scaledNLL(logits, labels, k, math.Exp(-logT)) }
	invPhi := (math.Sqrt(5) - 1) / 2
	a, b := math.Log(MinTemperature), math.Log(MaxTemperature)
	c, d := b-invPhi*(b-a), a+invPhi*(b-a)
	fc, fd := f(c), f(d)
	for b-a > 1e-9 {
		if fc <= fd { // the minimum lies in [a, d]
			b, d, fd = d, c, fc
			c = b - invPhi*(b-a)
			fc = f(c)
		} else { // in [c, b]
			a, c, fc = c, d, fd
			d = a + invPhi*(b-a)
			fd = f(d)
		}
	}
	return math.Exp((a + b) / 2), nil
}

// ScaleLogits returns logits/t as a new slice (temperature scaling); t must
// be positive and finite.
func ScaleLogits(logits []float32, t float64) ([]float32, error) {
	if !(t > 0) || math.IsInf(t, 1) {
		return nil, fmt.Errorf("scale logits: temperature %v must be positive and finite", t)
	}
	out := make([]float32, len(logits))
	for i, v := range logits {
		out[i] = float32(float64(v) / t)
	}
	return out, nil
}

// scaledNLL is the mean of −log softmax(beta·z_i)_{y_i}; inputs are checked.
func scaledNLL(logits []float32, labels []int32, k int, beta float64) float64 {
	total := 0.0
	for i, y := range labels {
		row := logits[i*k : (i+1)*k]
		m := math.Inf(-1)
		for _, v := range row {
			m = max(m, beta*float64(v))
		}
		z := 0.0
		for _, v := range row {
			z += math.Exp(beta*float64(v) - m)
		}
		total += m + math.Log(z) - beta*float64(row[y])
	}
	return total / float64(len(labels))
}

// probabilityBin is the bin of p ∈ [0,1] among bins equal-width bins
// (m/B, (m+1)/B], the first also holding 0. It agrees with binEdges even
// where p·B rounds across an edge.
func probabilityBin(p float64, bins int) int {
	b := int(math.Ceil(p*float64(bins))) - 1
	b = min(max(b, 0), bins-1)
	if lo, _ := binEdges(b, bins); b > 0 && p <= lo {
		b--
	} else if _, hi := binEdges(b, bins); b < bins-1 && p > hi {
		b++
	}
	return b
}

// binEdges are the edges of bin b of bins equal-width bins of [0,1].
func binEdges(b, bins int) (lo, hi float64) {
	return float64(b) / float64(bins), float64(b+1) / float64(bins)
}

// checkCalibrationInput checks logits [len(labels),k] and labels.
func checkCalibrationInput(logits []float32, labels []int32, k int) error {
	if k < 1 {
		return fmt.Errorf("%d classes, want at least 1", k)
	}
	n := len(labels)
	if n == 0 {
		return errors.New("no samples")
	}
	if len(logits) != n*k {
		return fmt.Errorf("%d logits for %d samples of %d classes, want %d", len(logits), n, k, n*k)
	}
	for i, y := range labels {
		if y < 0 || int(y) >= k {
			return fmt.Errorf("sample %d: label %d outside [0,%d)", i, y, k)
		}
	}
	for i, v := range logits {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return fmt.Errorf("sample %d: logit %v is not finite", i/k, v)
		}
	}
	return nil
}
