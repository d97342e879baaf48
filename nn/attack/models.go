package attack

import "github.com/sglr-pipe/sglr-pipe/nn/model"

// Model is a classifier seen from outside: logits and the input gradient of a
// soft-target cross-entropy, both in eval mode.
type Model interface {
	Classes() int
	InputSize() int
	// Logits for n samples: x is n*InputSize, out n*K.
	Logits(x []float32, n int, out []float32) error
	// InputGrad: loss = sum_i sum_k -target[i,k]*log softmax(f(x_i))_k (soft-target CE summed over the n samples)
	// and its gradient w.r.t. x (n*InputSize) written into grad. Eval mode.
	InputGrad(x []float32, n int, target []float32, grad []float32) (loss float64, err error)
}

// GradModel is a Model that can also back-propagate a loss given its gradient
// with respect to the logits. The evaluation attacks (CW∞, APGD with the DLR
// losses, FAB) differentiate losses other than the soft-target cross-entropy
// of Model.InputGrad; they compute dLoss/dlogits themselves and ask the model
// for the vector-Jacobian product.
type GradModel interface {
	Model
	// LogitsVJP writes J(x)ᵀ·upstream into grad (n*InputSize), J the Jacobian
	// of the logits w.r.t. x in eval mode; upstream is n*K (dLoss/dlogits).
	LogitsVJP(x []float32, n int, upstream []float32, grad []float32) error
}

// InputShaper is implemented by models that know the image shape of their
// inputs. The Square attack places its squares on the C×H×W grid it
// reports; for a model without it the input is a flat 1×1×D row.
type InputShaper interface {
	// InputShape returns the per-sample shape C,H,W; its product is InputSize.
	InputShape() []int
}

// LossGrader is a GradModel that evaluates a loss of its logits and the
// loss's input gradient in one pass over the model, instead of a Logits
// call followed by a LogitsVJP call (two forward passes). The evaluation
// attacks use it when the model offers it and fall back to Logits and
// LogitsVJP otherwise.
type LossGrader interface {
	GradModel
	// LossGrad runs the n samples x (n*InputSize) once: it writes their
	// logits into logits (n*K), calls loss once per sample i (never
	// concurrently) and writes the returned loss into losses[i] (len n), and
	// writes J(x)ᵀ·up into grad (n*InputSize), up the dLoss/dlogits the
	// calls wrote and J the Jacobian of the Eval-mode logits.
	LossGrad(x []float32, n int, loss model.RowLoss, logits []float32, losses []float64, grad []float32) error
}

// The Evaluator is the model the attacks run on in the pipeline.
var (
	_ LossGrader  = (*model.Evaluator)(nil)
	_ InputShaper = (*model.Evaluator)(nil)
)
