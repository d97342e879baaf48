// Package optim holds the training recipe around the models: the SGD
// optimiser with PyTorch's semantics, learning-rate schedules, the reference
// augmentation (random crop and horizontal flip), and the label targets a
// model trains on: one-hot, label smoothing, distillation, given soft
// labels and the SGLR bank of self-guided label refinement.
//
// Invariants:
//
//   - SGD computes in float32, each operation rounded (never fused), so
//     results are identical on every platform; it updates the parameters in
//     place and keeps one momentum buffer per entry of the Weights.Params it
//     was made for.
//   - Schedules are pure functions of the epoch and the iteration.
//   - Augment.Apply and the target helpers write into caller buffers and
//     allocate nothing; Apply draws from the caller's rng in a fixed order.
//   - An SGLRBank owns its bank; Bank and State return copies and SetState
//     copies in.
package optim
