// Package ops holds the gorgonia operations the models are built from, with
// their gradient ops and kernels: Linear, ChannelBias, Conv2d (im2col or
// Winograd F(2×2,3×3)), BatchNorm (optionally fused with a ReLU), ReLU,
// MaxPool2 (optionally fused with a ReLU), AvgPool4, Flatten, the losses
// SoftCrossEntropySum and KLDivergenceSum, and LogitsLoss, which runs a
// loss written in Go on the logits inside a graph. It also selects the BLAS
// every graph runs on (see BLAS).
//
// Invariants:
//
//   - An op owns its output: it allocates it on its first run and writes
//     every later run of its graph into it (the same for the buffers its
//     gradient ops need). This is safe under a TapeMachine, which runs each
//     node once per run and lets an op overwrite only a value whose last
//     reader it is; so a value read from a graph is valid until the graph
//     runs again, and callers copy out what they keep.
//   - Every run recomputes every gradient: nothing accumulates across
//     RunAll calls.
//   - Inputs are dense float32 or float64 tensors of one dtype (never
//     views); outputs have the inputs' dtype, and so has the arithmetic,
//     except for the softmax losses, the BatchNorm statistics and the
//     channel-bias gradient, which accumulate in float64.
//   - An op belongs to one graph and runs on one goroutine at a time; the
//     convolutions of a graph may share one ConvWorkspace because a graph's
//     ops run one after another.
//
// Every binary that links this package links gorgonia, whose start-up check
// needs go4.org/unsafe/assume-no-moving-gc at the version pinned in go.mod.
package ops
