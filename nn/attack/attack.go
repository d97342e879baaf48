package attack

import (
	"errors"
	"fmt"
	"math"

	"github.com/sglr-pipe/sglr-pipe/nn/internal/vec"
)

// ErrNaNGradient is wrapped by every attack error caused by a NaN input
// gradient, which means the model itself has diverged (e.g. a learning rate
// too high); callers test for it with errors.Is.
var ErrNaNGradient = errors.New("input gradient is NaN")

// Success reports, per sample, whether the model misclassifies xAdv, that is
// whether an attack that produced xAdv succeeded against labels. xAdv holds n
// samples of m.InputSize() values; labels holds n class indices.
func Success(m Model, xAdv []float32, labels []int32, n int) ([]bool, error) {
	d, k, err := modelDims(m)
	if err != nil {
		return nil, err
	}
	if err := checkBatch(xAdv, labels, n, d, k); err != nil {
		return nil, err
	}
	logits := make([]float32, n*k)
	if n > 0 {
		if err := m.Logits(xAdv, n, logits); err != nil {
			return nil, fmt.Errorf("success: logits of %d samples: %w", n, err)
		}
	}
	wrong := make([]bool, n)
	for i := range n {
		wrong[i] = vec.Argmax(logits[i*k:(i+1)*k]) != int(labels[i])
	}
	return wrong, nil
}

// RobustAccuracy is the fraction of the n samples of xAdv the model still
// classifies as labels: the accuracy under the attack that produced xAdv
// (natural accuracy when xAdv is the clean input).
func RobustAccuracy(m Model, xAdv []float32, labels []int32, n int) (float64, error) {
	if n <= 0 {
		return 0, fmt.Errorf("robust accuracy: need at least one sample, got n=%d", n)
	}
	wrong, err := Success(m, xAdv, labels, n)
	if err != nil {
		return 0, err
	}
	correct := 0
	for _, w := range wrong {
		if !w {
			correct++
		}
	}
	return float64(correct) / float64(n), nil
}

// modelDims returns the model's input size D and class count K, checked.
func modelDims(m Model) (d, k int, err error) {
	if m == nil {
		return 0, 0, errors.New("attack: model is nil")
	}
	d, k = m.InputSize(), m.Classes()
	if d <= 0 || k <= 0 {
		return 0, 0, fmt.Errorf("attack: model has input size %d and %d classes; both must be positive", d, k)
	}
	return d, k, nil
}

// checkBatch validates the shapes of n samples and their labels.
func checkBatch(x []float32, labels []int32, n, d, k int) error {
	if n < 0 {
		return fmt.Errorf("attack: sample count n=%d is negative", n)
	}
	if len(x) != n*d {
		return fmt.Errorf("attack: inputs have %d values, want n*InputSize = %d*%d = %d", len(x), n, d, n*d)
	}
	if len(labels) != n {
		return fmt.Errorf("attack: %d labels for %d samples", len(labels), n)
	}
	for i, y := range labels {
		if y < 0 || int(y) >= k {
			return fmt.Errorf("attack: label %d of sample %d is outside [0,%d)", y, i, k)
		}
	}
	return nil
}

// checkUnitBox rejects clean inputs outside [0,1] (or NaN): the eps-ball
// clipped to [0,1] would not contain them.
func checkUnitBox(x []float32, d int) error {
	for i, v := range x {
		if !(v >= 0 && v <= 1) {
			return fmt.Errorf("attack: input value %v (sample %d, feature %d) is outside [0,1]", v, i/d, i%d)
		}
	}
	return nil
}

// checkEps validates an L∞ radius.
func checkEps(name string, eps float64) error {
	if !(eps >= 0) || math.IsInf(eps, 1) {
		return fmt.Errorf("%s: eps %v must be a finite number >= 0", name, eps)
	}
	return nil
}

// checkRadius validates an eps-ball radius and a step size used by steps > 0
// steps; a zero step is accepted only with a zero radius, where nothing moves.
func checkRadius(name string, eps, step float64, steps int) error {
	if err := checkEps(name, eps); err != nil {
		return err
	}
	if steps < 0 {
		return fmt.Errorf("%s: steps %d must be >= 0", name, steps)
	}
	if steps > 0 && !(eps == 0 && step == 0) && (!(step > 0) || math.IsInf(step, 1)) {
		return fmt.Errorf("%s: step %v must be a finite number > 0", name, step)
	}
	return nil
}

// grow returns s resized to n, reusing its storage when large enough.
func grow[T any](s []T, n int) []T {
	if cap(s) >= n {
		return s[:n]
	}
	return make([]T, n)
}

// project clamps v to [c−eps, c+eps] ∩ [0,1], with the min/max builtins
// (branch-free, unlike math.Min/Max, whose NaN handling is not needed here).
func project(v float64, c float32, eps float64) float32 {
	return float32(min(max(v, max(float64(c)-eps, 0)), min(float64(c)+eps, 1)))
}
