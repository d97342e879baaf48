package attack

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/sglr-pipe/sglr-pipe/nn/internal/vec"
	"github.com/sglr-pipe/sglr-pipe/nn/model"
)

// evalBuffers are the per-call scratch buffers of the evaluation attacks,
// sized for the largest active set.
type evalBuffers struct {
	logits []float32 // na*K
	up     []float32 // na*K upstream dLoss/dlogits
	grad   []float32 // na*D input gradient
	loss   []float64 // na per-sample loss
}

// size grows the buffers for na samples of d inputs and k classes.
func (b *evalBuffers) size(na, d, k int) {
	b.logits = grow(b.logits, na*k)
	b.up = grow(b.up, na*k)
	b.grad = grow(b.grad, na*d)
	b.loss = grow(b.loss, na)
}

// lossGrad evaluates the na samples x at once: logits into b.logits, the
// per-sample loss into b.loss and its input gradient into b.grad, with one
// LossGrad call for the whole set when m is a LossGrader, else one Logits
// and one LogitsVJP call.
func (b *evalBuffers) lossGrad(m GradModel, x []float32, na, d, k int, loss model.RowLoss) error {
	if lg, ok := m.(LossGrader); ok {
		if err := lg.LossGrad(x, na, loss, b.logits[:na*k], b.loss[:na], b.grad[:na*d]); err != nil {
			return fmt.Errorf("loss gradient of %d samples: %w", na, err)
		}
	} else if err := b.twoPassLossGrad(m, x, na, k, loss); err != nil {
		return err
	}
	for j, g := range b.grad {
		if g != g {
			return fmt.Errorf("%w at sample %d, feature %d", ErrNaNGradient, j/d, j%d)
		}
	}
	return nil
}

// twoPassLossGrad is lossGrad for a model that is not a LossGrader: the
// logits, then the loss in Go, then the vector-Jacobian product of its
// upstream (a second forward pass and the backward pass).
func (b *evalBuffers) twoPassLossGrad(m GradModel, x []float32, na, k int, loss model.RowLoss) error {
	if err := m.Logits(x, na, b.logits); err != nil {
		return fmt.Errorf("logits of %d samples: %w", na, err)
	}
	clear(b.up)
	for i := range na {
		b.loss[i] = loss(i, b.logits[i*k:(i+1)*k], b.up[i*k:(i+1)*k])
	}
	if err := m.LogitsVJP(x, na, b.up, b.grad); err != nil {
		return fmt.Errorf("logits vector-Jacobian product of %d samples: %w", na, err)
	}
	return nil
}

// checkEvalInputs validates the shapes, labels and [0,1] range of an
// evaluation attack's inputs and its output buffer; it returns D and K.
func checkEvalInputs(name string, m GradModel, x []float32, labels []int32, n int, xAdv []float32) (d, k int, err error) {
	if m == nil {
		return 0, 0, fmt.Errorf("%s: model is nil", name)
	}
	d, k, err = modelDims(m)
	if err != nil {
		return 0, 0, fmt.Errorf("%s: %w", name, err)
	}
	if err := checkBatch(x, labels, n, d, k); err != nil {
		return 0, 0, fmt.Errorf("%s: %w", name, err)
	}
	if len(xAdv) != n*d {
		return 0, 0, fmt.Errorf("%s: output has %d values, want n*InputSize = %d*%d = %d", name, len(xAdv), n, d, n*d)
	}
	if err := checkUnitBox(x, d); err != nil {
		return 0, 0, fmt.Errorf("%s: %w", name, err)
	}
	return d, k, nil
}

// correctIndices returns the indices of the samples of x the model
// classifies as labels, with the logits of all n samples in logits.
func correctIndices(m Model, x []float32, labels []int32, n, k int, logits []float32) ([]int, error) {
	if n == 0 {
		return nil, nil
	}
	if err := m.Logits(x, n, logits); err != nil {
		return nil, fmt.Errorf("clean logits of %d samples: %w", n, err)
	}
	var idx []int
	for i, y := range labels {
		if vec.Argmax(logits[i*k:(i+1)*k]) == int(y) {
			idx = append(idx, i)
		}
	}
	return idx, nil
}

// scatterRows copies row j of src (each size values) to row idx[j] of dst
// for every j with take[j].
func scatterRows(dst, src []float32, size int, idx []int, take []bool) {
	for j, i := range idx {
		if take[j] {
			copy(dst[i*size:(i+1)*size], src[j*size:(j+1)*size])
		}
	}
}

// uniformLinfStart writes x0 + eps·t/‖t‖∞ clipped to [0,1] into x, with t
// uniform in [−1,1]^D per sample: the random start of APGD.
func uniformLinfStart(x0, x []float32, d int, eps float64, rng *rand.Rand) {
	t := make([]float64, d)
	for i := 0; i < len(x0)/d; i++ {
		hi := 0.0
		for j := range t {
			t[j] = 2*rng.Float64() - 1
			hi = max(hi, math.Abs(t[j]))
		}
		for j := range t {
			v := float64(x0[i*d+j]) + eps*t[j]/(hi+1e-12)
			x[i*d+j] = float32(math.Min(math.Max(v, 0), 1))
		}
	}
}

// topClasses writes the indices of the classes of z in decreasing order of
// logit (ties to the lower index) into order (len K).
func topClasses(z []float32, order []int) {
	for j := range order {
		order[j] = j
	}
	// Insertion sort: K is small and the order must be stable.
	for a := 1; a < len(order); a++ {
		for b := a; b > 0 && z[order[b]] > z[order[b-1]]; b-- {
			order[b], order[b-1] = order[b-1], order[b]
		}
	}
}
