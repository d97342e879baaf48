// Package model holds the classifiers: architectures (mlp, cnn and the
// residual nets of resnet.go: preact-resnet18, resnet18/34/50, wrn-34-10,
// wrn-28-10) and their deterministic initialisation (Arch, Init, InitWith
// with PyTorch's defaults or Kaiming-normal),
// weights named and laid out as the equivalent PyTorch modules' state_dicts
// (Weights, Param), compiled forward and backward graphs (Net), evaluation
// over any number of samples on several workers (Evaluator), data-parallel
// training steps (Trainer), and the batching of a dataset (Batches,
// Gather). It knows nothing of YAML, Arrow or the store.
//
// Invariants:
//
//   - Samples are row-major float32 slices: n inputs are n·InputSize values
//     (NCHW), their logits n·Classes. Weights are float32; a Net computes in
//     float32 unless NetOptions.Dtype asks for float64 (the gradient tests).
//   - Constructors and SetWeights copy the weights they are given; the
//     caller keeps its Weights. Trainer.Weights is the exception: it returns
//     the master weights the Trainer owns, which the optimiser updates in
//     place between steps.
//   - Slices a Net or a Trainer returns (Grads, step logits) are owned by it
//     and overwritten by its next call. Every run recomputes the gradients:
//     nothing accumulates across runs.
//   - A Net and a Trainer serve one goroutine at a time; the Evaluator
//     serialises its calls and is safe for concurrent use. An Evaluator's
//     results depend on n, its batch size and its worker count only, not on
//     scheduling.
//   - BatchNorm follows PyTorch: Train mode normalises with the biased batch
//     statistics and updates the running ones (momentum 0.1, unbiased
//     variance) after each pass; Eval mode reads the running statistics.
package model
