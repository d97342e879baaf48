package model

import (
	"errors"
	"fmt"
	"slices"
	"sync"
)

// Evaluator runs a model over any number of samples (it is the
// attack.LossGrader the attacks run on in the pipeline): it cuts the input
// into chunks and runs them on its workers, each worker with its own
// Eval-mode Nets and private weights.
//
// The chunk size is chosen per call from n, the batch size and the worker
// count only: c = min(batch, roundUp(ceil(n/workers), chunkGrain)), so that a
// call on fewer than batch×workers samples still keeps every worker busy
// (117 points on 2 workers run as 64+53, not as one 256-row chunk). The last
// chunk runs on a Net of roundUp(rows, chunkGrain) rows (at most c), so it
// is padded by fewer than chunkGrain rows (by none when c = batch and the
// rows fill it). Padding rows are zeros (zero targets and zero upstream, so
// they add nothing to the loss or the products) and their outputs are
// dropped. Every chunk is computed the same way whichever worker runs it, so
// results depend on n, batch and workers, not on scheduling.
//
// Nets are compiled on first use per (worker, purpose, rows) and cached. Rows
// take at most batch/chunkGrain+1 values (multiples of chunkGrain below batch,
// and batch), and each worker keeps at most maxChunkNets Nets per purpose,
// evicting the least recently used, so memory stays bounded by
// workers × purposes × maxChunkNets Nets of at most batch rows. Calls are
// serialised by a mutex; the Evaluator is safe for concurrent use.
type Evaluator struct {
	mu      sync.Mutex
	weights *Weights // private master copy, pushed to workers lazily
	version uint64   // bumped by SetWeights
	batch   int
	workers []*evalWorker
	losses  []float64 // per-chunk losses of the current InputGrad call
	// lossMu serialises the RowLoss calls of a LossGrad call's chunks, which
	// run on several workers at once.
	lossMu sync.Mutex
}

// chunkGrain is the granularity of chunk sizes below the batch size: the
// padding of a chunk stays under chunkGrain rows while the number of
// distinct graph sizes stays at most batch/chunkGrain+1.
const chunkGrain = 16

// maxChunkNets bounds the Nets a worker keeps per purpose; beyond it the
// least recently used one is dropped (and recompiled if needed again).
const maxChunkNets = 8

// evalWorker owns one goroutine's Nets, built on first use.
type evalWorker struct {
	nets                             []*chunkNet
	uses                             uint64 // counter ordering the nets' last uses
	padX, padTarget, padOut, padGrad []float32
}

// chunkNet is a worker's cached Net for one purpose and row count, with the
// Evaluator weight version it carries and when it was last used.
type chunkNet struct {
	purpose Purpose
	rows    int
	net     *Net
	version uint64
	lastUse uint64
}

// NewEvaluator prepares an Evaluator for w with chunks of batch samples run
// on workers goroutines. The graphs are compiled on first use.
func NewEvaluator(w *Weights, batch, workers int) (*Evaluator, error) {
	if err := w.Validate(); err != nil {
		return nil, fmt.Errorf("new evaluator: %w", err)
	}
	if batch < 1 {
		return nil, fmt.Errorf("new evaluator: batch size must be positive, got %d", batch)
	}
	if workers < 1 {
		return nil, fmt.Errorf("new evaluator: workers must be positive, got %d", workers)
	}
	e := &Evaluator{weights: w.Clone(), version: 1, batch: batch, workers: make([]*evalWorker, workers)}
	for i := range e.workers {
		e.workers[i] = &evalWorker{}
	}
	return e, nil
}

// SetWeights replaces the evaluated weights (copied; w can change afterwards).
func (e *Evaluator) SetWeights(w *Weights) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := w.Validate(); err != nil {
		return fmt.Errorf("evaluator set weights: %w", err)
	}
	if !sameLayout(e.weights, w) {
		return fmt.Errorf("evaluator set weights: %s weights do not match the evaluator's %s model", w.Arch.Kind, e.weights.Arch.Kind)
	}
	for i, p := range w.Params {
		copy(e.weights.Params[i].Data, p.Data)
	}
	e.version++
	return nil
}

// Classes is the number of logits per sample.
func (e *Evaluator) Classes() int { return e.weights.Arch.Classes }

// InputSize is the number of scalars per input sample.
func (e *Evaluator) InputSize() int { return e.weights.Arch.InputSize() }

// InputShape is the per-sample input shape C,H,W of the architecture (a
// fresh slice), so that shape-aware attacks such as Square place their
// squares on the image grid.
func (e *Evaluator) InputShape() []int { return slices.Clone(e.weights.Arch.Input) }

// Batch is the largest chunk size: calls on fewer than Batch()×workers
// samples run in smaller chunks (see Evaluator).
func (e *Evaluator) Batch() int { return e.batch }

// Logits writes the Eval-mode logits of n samples x (n*InputSize) into out
// (n*Classes).
func (e *Evaluator) Logits(x []float32, n int, out []float32) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	d, k := e.InputSize(), e.Classes()
	if err := e.checkSizes(n, map[string][2]int{"x": {len(x), n * d}, "out": {len(out), n * k}}); err != nil {
		return fmt.Errorf("evaluator logits: %w", err)
	}
	return e.forChunks(n, func(wk *evalWorker, chunk, lo, hi, rows int) error {
		net, err := e.net(wk, PurposeLogits, rows)
		if err != nil {
			return err
		}
		if hi-lo == rows {
			return net.Logits(x[lo*d:hi*d], out[lo*k:hi*k])
		}
		wk.pad(e.batch, d, k)
		padX, padOut := wk.padX[:rows*d], wk.padOut[:rows*k]
		copy(padX, x[lo*d:hi*d])
		clear(padX[(hi-lo)*d:])
		if err := net.Logits(padX, padOut); err != nil {
			return err
		}
		copy(out[lo*k:hi*k], padOut)
		return nil
	})
}

// InputGrad computes sum_i sum_k −target[i,k]·log softmax(f(x_i))_k over the
// n samples in Eval mode and writes its gradient with respect to x into grad.
func (e *Evaluator) InputGrad(x []float32, n int, target []float32, grad []float32) (float64, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	d, k := e.InputSize(), e.Classes()
	if err := e.checkSizes(n, map[string][2]int{"x": {len(x), n * d}, "target": {len(target), n * k}, "grad": {len(grad), n * d}}); err != nil {
		return 0, fmt.Errorf("evaluator input gradient: %w", err)
	}
	_, chunks := e.chunking(n)
	if cap(e.losses) < chunks {
		e.losses = make([]float64, chunks)
	}
	losses := e.losses[:chunks]
	err := e.forChunks(n, func(wk *evalWorker, chunk, lo, hi, rows int) error {
		net, err := e.net(wk, PurposeInputGrad, rows)
		if err != nil {
			return err
		}
		if hi-lo == rows {
			losses[chunk], err = net.InputGrad(x[lo*d:hi*d], target[lo*k:hi*k], grad[lo*d:hi*d])
			return err
		}
		wk.pad(e.batch, d, k)
		padX, padTarget, padGrad := wk.padX[:rows*d], wk.padTarget[:rows*k], wk.padGrad[:rows*d]
		copy(padX, x[lo*d:hi*d])
		clear(padX[(hi-lo)*d:])
		copy(padTarget, target[lo*k:hi*k])
		clear(padTarget[(hi-lo)*k:])
		if losses[chunk], err = net.InputGrad(padX, padTarget, padGrad); err != nil {
			return err
		}
		copy(grad[lo*d:hi*d], padGrad)
		return nil
	})
	if err != nil {
		return 0, err
	}
	total := 0.0
	for _, l := range losses {
		total += l
	}
	return total, nil
}

// LogitsVJP writes J(x)ᵀ·upstream into grad (n*InputSize) for the n samples
// x (n*InputSize), J the Jacobian of the Eval-mode logits with respect to x
// and upstream dLoss/dlogits (n*Classes). Attacks on losses other than the
// cross-entropy compute dLoss/dlogits themselves and back-propagate it here.
func (e *Evaluator) LogitsVJP(x []float32, n int, upstream []float32, grad []float32) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	d, k := e.InputSize(), e.Classes()
	if err := e.checkSizes(n, map[string][2]int{"x": {len(x), n * d}, "upstream": {len(upstream), n * k}, "grad": {len(grad), n * d}}); err != nil {
		return fmt.Errorf("evaluator logits vector-Jacobian product: %w", err)
	}
	return e.forChunks(n, func(wk *evalWorker, chunk, lo, hi, rows int) error {
		net, err := e.net(wk, PurposeVJP, rows)
		if err != nil {
			return err
		}
		if hi-lo == rows {
			return net.LogitsVJP(x[lo*d:hi*d], upstream[lo*k:hi*k], grad[lo*d:hi*d])
		}
		wk.pad(e.batch, d, k)
		padX, padUp, padGrad := wk.padX[:rows*d], wk.padTarget[:rows*k], wk.padGrad[:rows*d]
		copy(padX, x[lo*d:hi*d])
		clear(padX[(hi-lo)*d:])
		copy(padUp, upstream[lo*k:hi*k])
		clear(padUp[(hi-lo)*k:])
		if err := net.LogitsVJP(padX, padUp, padGrad); err != nil {
			return err
		}
		copy(grad[lo*d:hi*d], padGrad)
		return nil
	})
}

// LossGrad runs the n samples x (n*InputSize) once: it writes their
// Eval-mode logits into logits (n*Classes), calls loss on every sample i
// (one call at a time, in no fixed order), storing its result in losses[i]
// (n values), and writes J(x)ᵀ·up into grad (n*InputSize), up the
// dLoss/dlogits the calls wrote. It computes what Logits followed by
// LogitsVJP computes, with the same bits, in one forward pass instead of
// two; the evaluation attacks call it once per iteration.
func (e *Evaluator) LossGrad(x []float32, n int, loss RowLoss, logits []float32, losses []float64, grad []float32) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	d, k := e.InputSize(), e.Classes()
	if err := e.checkSizes(n, map[string][2]int{"x": {len(x), n * d}, "logits": {len(logits), n * k}, "losses": {len(losses), n}, "grad": {len(grad), n * d}}); err != nil {
		return fmt.Errorf("evaluator loss gradient: %w", err)
	}
	if loss == nil {
		return errors.New("evaluator loss gradient: loss is nil")
	}
	return e.forChunks(n, func(wk *evalWorker, chunk, lo, hi, rows int) error {
		net, err := e.net(wk, PurposeLossGrad, rows)
		if err != nil {
			return err
		}
		call := lossCall[float32]{loss: loss, first: lo, rows: hi - lo, losses: losses, mu: &e.lossMu}
		if hi-lo == rows {
			return netLossGrad(net, x[lo*d:hi*d], call, logits[lo*k:hi*k], grad[lo*d:hi*d])
		}
		wk.pad(e.batch, d, k)
		padX, padOut, padGrad := wk.padX[:rows*d], wk.padOut[:rows*k], wk.padGrad[:rows*d]
		copy(padX, x[lo*d:hi*d])
		clear(padX[(hi-lo)*d:])
		if err := netLossGrad(net, padX, call, padOut, padGrad); err != nil {
			return err
		}
		copy(logits[lo*k:hi*k], padOut)
		copy(grad[lo*d:hi*d], padGrad)
		return nil
	})
}

// forChunks runs do for every chunk [lo,hi) of the n samples (see
// chunking), chunk c on worker c mod workers, workers in parallel; rows is
// the row count of the Net the chunk runs on (hi−lo rounded up to
// chunkGrain, at most the chunk size). It returns the first error in chunk
// order.
func (e *Evaluator) forChunks(n int, do func(wk *evalWorker, chunk, lo, hi, rows int) error) error {
	size, chunks := e.chunking(n)
	errs := make([]error, chunks)
	var wg sync.WaitGroup
	for w, wk := range e.workers {
		if w >= chunks {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := w; c < chunks; c += len(e.workers) {
				lo, hi := c*size, min((c+1)*size, n)
				errs[c] = do(wk, c, lo, hi, min(size, roundUp(hi-lo, chunkGrain)))
			}
		}()
	}
	wg.Wait()
	for c, err := range errs {
		if err != nil {
			return fmt.Errorf("chunk %d: %w", c, err)
		}
	}
	return nil
}

// chunking returns the chunk size for n samples, min(batch,
// roundUp(ceil(n/workers), chunkGrain)), and the number of chunks; it
// depends on n, the batch size and the worker count only.
func (e *Evaluator) chunking(n int) (size, chunks int) {
	if n <= 0 {
		return 1, 0
	}
	perWorker := (n + len(e.workers) - 1) / len(e.workers)
	size = min(e.batch, roundUp(perWorker, chunkGrain))
	return size, (n + size - 1) / size
}

// net returns the worker's Net for purpose with rows samples, built on
// first use (evicting the least recently used Net of that purpose when the
// worker already keeps maxChunkNets) and carrying the current weights.
func (e *Evaluator) net(wk *evalWorker, purpose Purpose, rows int) (*Net, error) {
	switch purpose {
	case PurposeLogits, PurposeInputGrad, PurposeVJP, PurposeLossGrad:
	default:
		return nil, fmt.Errorf("evaluator: no %s nets", purpose)
	}
	wk.uses++
	var found, oldest *chunkNet
	oldestAt, kept := -1, 0
	for i, cn := range wk.nets {
		if cn.purpose != purpose {
			continue
		}
		if cn.rows == rows {
			found = cn
			break
		}
		kept++
		if oldest == nil || cn.lastUse < oldest.lastUse {
			oldest, oldestAt = cn, i
		}
	}
	if found == nil {
		n, err := NewNet(e.weights, rows, purpose, NetOptions{Mode: Eval})
		if err != nil {
			return nil, err
		}
		if kept >= maxChunkNets {
			wk.nets = slices.Delete(wk.nets, oldestAt, oldestAt+1)
		}
		found = &chunkNet{purpose: purpose, rows: rows, net: n, version: e.version}
		wk.nets = append(wk.nets, found)
	}
	found.lastUse = wk.uses
	if found.version != e.version {
		if err := found.net.SetWeights(e.weights); err != nil {
			return nil, err
		}
		found.version = e.version
	}
	return found.net, nil
}

func (e *Evaluator) checkSizes(n int, sizes map[string][2]int) error {
	if n < 0 {
		return fmt.Errorf("negative sample count %d", n)
	}
	for _, name := range []string{"x", "target", "upstream", "out", "logits", "losses", "grad"} {
		if s, ok := sizes[name]; ok && s[0] != s[1] {
			return fmt.Errorf("%s has %d values, want %d for %d samples", name, s[0], s[1], n)
		}
	}
	return nil
}

// pad allocates the worker's padding buffers once; padTarget also holds the
// padded upstream of LogitsVJP.
func (wk *evalWorker) pad(batch, d, k int) {
	if wk.padX == nil {
		wk.padX = make([]float32, batch*d)
		wk.padGrad = make([]float32, batch*d)
		wk.padTarget = make([]float32, batch*k)
		wk.padOut = make([]float32, batch*k)
	}
}

// roundUp rounds n up to a multiple of m.
func roundUp(n, m int) int { return (n + m - 1) / m * m }

// sameLayout reports whether a and b have the same parameter names and shapes.
func sameLayout(a, b *Weights) bool {
	if len(a.Params) != len(b.Params) {
		return false
	}
	for i, p := range a.Params {
		q := b.Params[i]
		if p.Name != q.Name || len(p.Shape) != len(q.Shape) {
			return false
		}
		for j := range p.Shape {
			if p.Shape[j] != q.Shape[j] {
				return false
			}
		}
	}
	return true
}
