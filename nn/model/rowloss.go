package model

import (
	"sync"

	"github.com/sglr-pipe/sglr-pipe/nn/internal/vec"
	"github.com/sglr-pipe/sglr-pipe/nn/ops"
)

// RowLoss computes the loss of sample i from its logits z (len K) and writes
// dLoss/dz into up (len K, zeroed by the caller). It must depend on sample
// i's logits and its own state only, so that rows can be evaluated in any
// order. A PurposeLossGrad net runs it inside the graph (ops.LogitsLoss),
// so the input gradient of the loss costs one forward pass, and has the
// bits of Logits followed by LogitsVJP of the upstream the loss wrote.
type RowLoss func(i int, z, up []float32) float64

// lossCall is one run's loss for netLossGrad: loss on rows samples,
// starting at sample first, losses written at their sample index.
type lossCall[T vec.Float] struct {
	loss   func(i int, z, up []T) float64
	first  int
	rows   int
	losses []float64
	mu     *sync.Mutex
}

// bind binds the call's loss to a net's hook for the next run.
func (c lossCall[T]) bind(h *ops.LossHook) error {
	return ops.BindLoss(h, c.loss, c.first, c.rows, c.losses, c.mu)
}
