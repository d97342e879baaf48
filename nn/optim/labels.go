package optim

import (
	"fmt"
	"math"

	"github.com/sglr-pipe/sglr-pipe/nn/internal/vec"
)

// CheckLabels reports a hard label outside [0,k), the user mistake that
// would otherwise make the label helpers below panic.
func CheckLabels(labels []int32, k int) error {
	if k <= 0 {
		return fmt.Errorf("labels: %d classes", k)
	}
	for i, y := range labels {
		if y < 0 || int(y) >= k {
			return fmt.Errorf("labels: sample %d has label %d, outside [0,%d)", i, y, k)
		}
	}
	return nil
}

// OneHot writes one-hot targets [len(labels),k] into out: the hard-label
// strategy (plain cross-entropy). Labels must lie in [0,k) (see CheckLabels).
func OneHot(labels []int32, k int, out []float32) {
	Smooth(labels, k, 0, out)
}

// Smooth writes label-smoothing targets (1−ε)·onehot(y) + ε/K into out
// [len(labels),k], as F.cross_entropy(..., label_smoothing=ε).
func Smooth(labels []int32, k int, eps float64, out []float32) {
	if len(out) < len(labels)*k {
		panic(fmt.Sprintf("smooth: %d labels of %d classes need %d values, out has %d", len(labels), k, len(labels)*k, len(out)))
	}
	off := float32(eps / float64(k))
	on := float32(1 - eps + eps/float64(k))
	for i, y := range labels {
		row := out[i*k : (i+1)*k]
		checkLabel(y, k)
		for j := range row {
			row[j] = off
		}
		row[y] = on
	}
}

// DistillTargets writes knowledge-distillation targets
// (1−α)·onehot(y) + α·p_teacher into out [len(labels),k]; teacher holds the
// teacher's probabilities [len(labels),k].
//
// Proposition 2 of the SGLR paper: the distillation loss
// (1−α)·H(q,p) + α·KL(p_t‖p), with q = onehot(y) and p = softmax(z), has
// gradient (1−α)(p−q) + α(p−p_t) = p − [(1−α)q + α·p_t] with respect to the
// logits z, which is the gradient of the soft cross-entropy with this target.
// The two losses differ only by the constant α·H(p_t), so training with
// SoftCE on these targets is knowledge distillation.
func DistillTargets(labels []int32, teacher []float32, k int, alpha float64, out []float32) {
	n := len(labels)
	if len(teacher) < n*k || len(out) < n*k {
		panic(fmt.Sprintf("distill: %d labels of %d classes need %d values, teacher has %d, out %d", n, k, n*k, len(teacher), len(out)))
	}
	for i, y := range labels {
		checkLabel(y, k)
		for j := range k {
			t := alpha * float64(teacher[i*k+j])
			if j == int(y) {
				t += 1 - alpha
			}
			out[i*k+j] = float32(t)
		}
	}
}

// Given validates soft labels supplied by the user as a table [n,k] (for
// example a labels artifact), which are then used unchanged as targets
// (gather rows with Gather): every value finite and in [0,1], every row
// summing to 1 within 1e-3.
func Given(soft []float32, n, k int) error {
	if k <= 0 || n < 0 {
		return fmt.Errorf("soft labels: %d rows of %d classes", n, k)
	}
	if len(soft) != n*k {
		return fmt.Errorf("soft labels: %d values for %d rows of %d classes (want %d)", len(soft), n, k, n*k)
	}
	for i := range n {
		sum := 0.0
		for j, v := range soft[i*k : (i+1)*k] {
			f := float64(v)
			if math.IsNaN(f) || f < 0 || f > 1 {
				return fmt.Errorf("soft labels: row %d class %d is %v, not a probability", i, j, v)
			}
			sum += f
		}
		if math.Abs(sum-1) > 1e-3 {
			return fmt.Errorf("soft labels: row %d sums to %v, not 1", i, sum)
		}
	}
	return nil
}

// SGLRConfig holds the self-guided label refinement settings.
type SGLRConfig struct {
	// Lambda is the weight of the CLEAN prediction in the self-guided target
	// f~ = λ·softmax(f(x)) + (1−λ)·softmax(f(x')); the reference uses 0.2.
	Lambda float64
	// Alpha is the momentum of the per-sample history S ← α·S + (1−α)·f~
	// (reference 0.9).
	Alpha float64
	// WarmupEpochs is the number of initial epochs (0-based epochs below it)
	// trained on the hard label, without updating the bank (reference es).
	WarmupEpochs int
	// FixedR < 0 (set −1 for the reference behaviour) uses the bank S itself
	// as target; 0 <= FixedR <= 1 uses r·p~ + (1−r)·onehot(y) with r fixed
	// (see SGLRBank). Beware: the zero value 0 means r = 0, the hard label.
	FixedR float64
}

// Validate reports a user mistake in the SGLR settings.
func (c SGLRConfig) Validate() error {
	if math.IsNaN(c.Lambda) || c.Lambda < 0 || c.Lambda > 1 {
		return fmt.Errorf("sglr: lambda %v out of range [0,1]", c.Lambda)
	}
	if math.IsNaN(c.Alpha) || c.Alpha < 0 || c.Alpha >= 1 {
		return fmt.Errorf("sglr: alpha %v out of range [0,1)", c.Alpha)
	}
	if c.WarmupEpochs < 0 {
		return fmt.Errorf("sglr: warm-up epochs %d must be >= 0", c.WarmupEpochs)
	}
	if math.IsNaN(c.FixedR) || c.FixedR > 1 {
		return fmt.Errorf("sglr: fixed r %v must be negative (off) or in [0,1]", c.FixedR)
	}
	return nil
}

// SGLRBank is the per-training-sample soft-label bank of self-guided label
// refinement. S [N,K] starts as onehot(y_hard); after warm-up, each batch
// calls Update (before computing the loss) and trains on Targets.
//
// After k updates of a sample, S = α^k·onehot(y) + (1−α)·Σ_j α^(k−j)·f~_j,
// which is the paper's y = r·p~ + (1−r)·y_hard with r = 1−α^k and p~ the
// bias-corrected running average of f~ alone. With FixedR = r >= 0 the bank
// also keeps that history H = (1−α)·Σ_j α^(k−j)·f~_j (starting from 0;
// its row sum is 1−α^k because every f~ sums to 1), and the target is
// r·H/ΣH + (1−r)·onehot(y): the same p~ with r held fixed instead of growing
// (onehot for a sample not yet updated).
type SGLRBank struct {
	k      int
	cfg    SGLRConfig
	labels []int32
	s      []float32 // S [N,K]
	hist   []float32 // H [N,K], only with FixedR >= 0
}

// NewSGLRBank builds the bank for the hard labels of the N training samples
// (row i of the bank belongs to training sample i).
func NewSGLRBank(labels []int32, k int, cfg SGLRConfig) (*SGLRBank, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := CheckLabels(labels, k); err != nil {
		return nil, fmt.Errorf("sglr bank: %w", err)
	}
	b := &SGLRBank{k: k, cfg: cfg, labels: append([]int32(nil), labels...), s: make([]float32, len(labels)*k)}
	OneHot(labels, k, b.s)
	if cfg.FixedR >= 0 {
		b.hist = make([]float32, len(labels)*k)
	}
	return b, nil
}

// Refining reports whether epoch (0-based) is past warm-up, i.e. whether the
// trainer should call Update for its batches.
func (b *SGLRBank) Refining(epoch int) bool { return epoch >= b.cfg.WarmupEpochs }

// Update folds the batch's detached probabilities into the bank rows:
// f~ = λ·pClean + (1−λ)·pAdv and S[rows] ← α·S[rows] + (1−α)·f~ (likewise the
// history with FixedR). pClean and pAdv are [len(rows),K]. Arithmetic is
// float64, stored as float32.
func (b *SGLRBank) Update(rows []int, pClean, pAdv []float32) {
	k := b.k
	if len(pClean) < len(rows)*k || len(pAdv) < len(rows)*k {
		panic(fmt.Sprintf("sglr update: %d rows need %d probabilities, have clean %d, adv %d", len(rows), len(rows)*k, len(pClean), len(pAdv)))
	}
	lam, alpha := b.cfg.Lambda, b.cfg.Alpha
	for r, row := range rows {
		s := b.s[row*k : (row+1)*k]
		for j := range k {
			f := lam*float64(pClean[r*k+j]) + (1-lam)*float64(pAdv[r*k+j])
			s[j] = float32(alpha*float64(s[j]) + (1-alpha)*f)
			if b.hist != nil {
				h := &b.hist[row*k+j]
				*h = float32(alpha*float64(*h) + (1-alpha)*f)
			}
		}
	}
}

// Targets writes the training targets of rows [len(rows),K] into out: the
// one-hot hard label during warm-up (epoch < WarmupEpochs), afterwards S[rows]
// or, with FixedR = r >= 0, r·p~ + (1−r)·onehot(y).
func (b *SGLRBank) Targets(rows []int, epoch int, out []float32) {
	k := b.k
	if len(out) < len(rows)*k {
		panic(fmt.Sprintf("sglr targets: %d rows need %d values, out has %d", len(rows), len(rows)*k, len(out)))
	}
	for r, row := range rows {
		dst := out[r*k : (r+1)*k]
		y := int(b.labels[row])
		switch {
		case !b.Refining(epoch):
			clear(dst)
			dst[y] = 1
		case b.hist == nil:
			copy(dst, b.s[row*k:(row+1)*k])
		default:
			h := b.hist[row*k : (row+1)*k]
			sum := 0.0
			for _, v := range h {
				sum += float64(v)
			}
			rr := b.cfg.FixedR
			if sum <= 0 {
				rr = 0 // no history yet: p~ undefined, keep the hard label
			}
			for j := range k {
				t := 0.0
				if rr > 0 {
					t = rr * float64(h[j]) / sum
				}
				if j == y {
					t += 1 - rr
				}
				dst[j] = float32(t)
			}
		}
	}
}

// Bank returns a copy of S [N,K], the refined soft labels (exported as the
// labels artifact after training).
func (b *SGLRBank) Bank() []float32 { return append([]float32(nil), b.s...) }

// State returns copies of the bank S and of the history H (nil unless
// FixedR >= 0), for checkpoints.
func (b *SGLRBank) State() (bank, history []float32) {
	if b.hist != nil {
		history = append([]float32(nil), b.hist...)
	}
	return b.Bank(), history
}

// SetState restores a checkpoint taken by State on a bank of the same shape
// and configuration.
func (b *SGLRBank) SetState(bank, history []float32) error {
	if len(bank) != len(b.s) {
		return fmt.Errorf("sglr bank state: %d values, bank holds %d", len(bank), len(b.s))
	}
	if (b.hist == nil) != (history == nil) || len(history) != len(b.hist) {
		return fmt.Errorf("sglr bank state: history of %d values, bank expects %d", len(history), len(b.hist))
	}
	copy(b.s, bank)
	copy(b.hist, history)
	return nil
}

// Recovered measures label recovery: among the samples whose label was
// flipped by noise (flipped[i]), the share whose bank argmax equals the clean
// class clean[i], and how many flipped samples there are (share is 0 when
// there are none). Entries beyond the shorter of clean, flipped and the
// bank are ignored.
func (b *SGLRBank) Recovered(clean []int32, flipped []bool) (share float64, n int) {
	k := b.k
	hits := 0
	for i, f := range flipped {
		if !f || i >= len(clean) || (i+1)*k > len(b.s) {
			continue
		}
		n++
		if vec.Argmax(b.s[i*k:(i+1)*k]) == int(clean[i]) {
			hits++
		}
	}
	if n == 0 {
		return 0, 0
	}
	return float64(hits) / float64(n), n
}

// checkLabel panics on a label outside [0,k): the caller should have run
// CheckLabels on user data.
func checkLabel(y int32, k int) {
	if y < 0 || int(y) >= k {
		panic(fmt.Sprintf("label %d outside [0,%d)", y, k))
	}
}
