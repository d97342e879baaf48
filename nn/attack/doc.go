// Package attack crafts adversarial examples against a Model: the
// training attacks of an Attacker (PGD, FGSM with random start, the TRADES
// KL attack) and the evaluation attacks (CW∞, APGD-CE, APGD-T, FAB-T,
// Square and the AutoAttack composite), which Run selects by name from a
// Spec. It defines the model interfaces the attacks need (Model, GradModel,
// LossGrader, InputShaper); model.Evaluator implements all of them.
//
// The threat model is a Norm: L∞ (the zero value, what every configuration
// that names no norm computes), L2 or L1 (Supports lists which attack has
// which; project.go holds the projections).
//
// Invariants:
//
//   - Inputs are n float32 samples in [0,1]; every iterate is projected to
//     the eps-ball of the norm around the clean input and clipped to [0,1];
//     a stored L2/L1 point is checked after rounding to float32 to be within
//     eps. The output xAdv may alias x. Losses are computed in float64.
//   - Every random choice is drawn from the caller's rng, so the result is
//     deterministic for a given rng state.
//   - Models are queried in Eval mode. An attack stops on a NaN input
//     gradient with an error wrapping ErrNaNGradient: the model diverged.
//   - An Attacker keeps its scratch buffers across calls (so training
//     allocates nothing per batch once the largest batch has been seen) and
//     serves one goroutine at a time; the evaluation attacks allocate per
//     call and keep nothing.
package attack
