package model

import (
	"fmt"
	"sync"
)

// Trainer runs data-parallel training steps: each batch is split over
// workers replicas, each with private weights (gorgonia machines sharing
// weight tensors crash) and Train-mode Nets, run concurrently; their
// gradients are averaged into Grads, weighted by sub-batch size, so that the
// result equals one full-batch step up to float rounding when the model has
// no BatchNorm.
//
// With BatchNorm each replica normalises with its own sub-batch statistics
// (like torch.nn.DataParallel without SyncBatchNorm), and the running
// statistics of the replicas are averaged, weighted by sub-batch size, into
// the master weights (num_batches_tracked counts the step once).
//
// The master weights (Weights) belong to the Trainer: the optimiser updates
// them in place between steps, and every Step pushes them to the replicas it
// uses. A Trainer is not safe for concurrent use.
type Trainer struct {
	master   *Weights
	batch    int
	replicas []*trainReplica
	grads    [][]float32
	logits   []float32
	// bufferAcc accumulates the replicas' running statistics in reduce, by
	// position in Params; allocated on the first step with BatchNorm.
	bufferAcc map[int][]float64
	// awp is StepAWP's scratch, allocated on its first call.
	awp *awpScratch
}

// trainReplica holds one worker's Nets, one per (purpose, sub-batch size),
// compiled on first use.
type trainReplica struct {
	nets map[trainNetKey]*Net
	n    int     // sub-batch size of the current step
	loss float64 // loss of the current step
	net  *Net    // net of the current step
}

type trainNetKey struct {
	purpose Purpose
	batch   int
}

// NewTrainer prepares a Trainer for batches of up to batch samples over
// workers replicas, starting from a copy of w.
func NewTrainer(w *Weights, batch, workers int) (*Trainer, error) {
	if err := w.Validate(); err != nil {
		return nil, fmt.Errorf("new trainer: %w", err)
	}
	if batch < 1 {
		return nil, fmt.Errorf("new trainer: batch size must be positive, got %d", batch)
	}
	if workers < 1 {
		return nil, fmt.Errorf("new trainer: workers must be positive, got %d", workers)
	}
	t := &Trainer{master: w.Clone(), batch: batch, replicas: make([]*trainReplica, workers)}
	for i := range t.replicas {
		t.replicas[i] = &trainReplica{nets: map[trainNetKey]*Net{}}
	}
	t.grads = make([][]float32, len(w.Params))
	for i, p := range w.Params {
		if !p.Buffer {
			t.grads[i] = make([]float32, len(p.Data))
		}
	}
	t.logits = make([]float32, batch*w.Arch.Classes)
	return t, nil
}

// Weights returns the master weights, owned by the Trainer. The optimiser
// updates them in place; the next Step uses the updated values.
func (t *Trainer) Weights() *Weights { return t.master }

// SetWeights copies w into the master weights.
func (t *Trainer) SetWeights(w *Weights) error {
	if err := w.Validate(); err != nil {
		return fmt.Errorf("trainer set weights: %w", err)
	}
	if !sameLayout(t.master, w) {
		return fmt.Errorf("trainer set weights: %s weights do not match the trainer's %s model", w.Arch.Kind, t.master.Arch.Kind)
	}
	for i, p := range w.Params {
		copy(t.master.Params[i].Data, p.Data)
	}
	return nil
}

// Grads returns the gradients of the last step, aligned with
// Weights().Params (nil for buffers), averaged over the whole batch. The
// slices are owned by the Trainer and overwritten by the next step.
func (t *Trainer) Grads() [][]float32 { return t.grads }

// Step computes the mean soft-target cross-entropy of n samples x
// (n*InputSize) against target (n*Classes) in Train mode, the averaged
// gradients (see Grads) and the updated BatchNorm running statistics. The
// returned logits (n*Classes) are owned by the Trainer and valid until the
// next step.
func (t *Trainer) Step(x, target []float32, n int) (float64, []float32, error) {
	return t.step(PurposeTrain, x, nil, target, n, 0, true)
}

// StepTRADES is Step for the TRADES objective mean CE(f(x), target) +
// beta·mean KL(softmax f(x) ‖ softmax f(xAdv)); the logits are f(x).
func (t *Trainer) StepTRADES(x, xAdv, target []float32, n int, beta float64) (float64, []float32, error) {
	return t.step(PurposeTrainTRADES, x, xAdv, target, n, beta, true)
}

// StepMART is Step for the MART objective (see PurposeTrainMART) of the
// clean inputs x, the adversarial inputs xAdv and target with weight beta;
// the logits are f(x).
func (t *Trainer) StepMART(x, xAdv, target []float32, n int, beta float64) (float64, []float32, error) {
	return t.step(PurposeTrainMART, x, xAdv, target, n, beta, true)
}

// step runs purpose's objective over the replicas and reduces their
// results; the master running statistics take the replicas' only when
// updateStats is set (the AWP proxy step leaves them alone).
func (t *Trainer) step(purpose Purpose, x, xAdv, target []float32, n int, beta float64, updateStats bool) (float64, []float32, error) {
	arch := t.master.Arch
	d, k := arch.InputSize(), arch.Classes
	if n < 1 || n > t.batch {
		return 0, nil, fmt.Errorf("trainer step: %d samples, want 1 to %d", n, t.batch)
	}
	if purpose != PurposeTrain && purpose != PurposeTrainTRADES && purpose != PurposeTrainMART {
		return 0, nil, fmt.Errorf("trainer step: %s is not a training purpose", purpose)
	}
	if len(x) != n*d || len(target) != n*k || (purpose != PurposeTrain && len(xAdv) != n*d) {
		return 0, nil, fmt.Errorf("trainer step: inputs have %d values, targets %d (and x_adv %d), want %d and %d for %d samples",
			len(x), len(target), len(xAdv), n*d, n*k, n)
	}
	used := min(len(t.replicas), n)
	var wg sync.WaitGroup
	errs := make([]error, used)
	lo := 0
	for r := range used {
		size := n / used
		if r < n%used {
			size++
		}
		rep := t.replicas[r]
		rep.n = size
		start := lo
		lo += size
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[r] = t.runReplica(rep, purpose, start, size, x, xAdv, target, beta)
		}()
	}
	wg.Wait()
	for r, err := range errs {
		if err != nil {
			return 0, nil, fmt.Errorf("trainer step, replica %d: %w", r, err)
		}
	}
	return t.reduce(t.replicas[:used], n, updateStats), t.logits[:n*k], nil
}

// runReplica pushes the master weights into the replica's Net for this
// sub-batch, runs the step and leaves loss, logits and the Net's gradients
// for reduce.
func (t *Trainer) runReplica(rep *trainReplica, purpose Purpose, start, size int, x, xAdv, target []float32, beta float64) error {
	key := trainNetKey{purpose: purpose, batch: size}
	net, ok := rep.nets[key]
	if !ok {
		var err error
		if net, err = NewNet(t.master, size, purpose, NetOptions{Mode: Train}); err != nil {
			return err
		}
		rep.nets[key] = net
	} else if err := net.SetWeights(t.master); err != nil {
		return err
	}
	d, k := t.master.Arch.InputSize(), t.master.Arch.Classes
	xs, ts, out := x[start*d:(start+size)*d], target[start*k:(start+size)*k], t.logits[start*k:(start+size)*k]
	var err error
	switch purpose {
	case PurposeTrainTRADES:
		rep.loss, err = net.TrainStepTRADES(xs, xAdv[start*d:(start+size)*d], ts, out, beta)
	case PurposeTrainMART:
		rep.loss, err = net.TrainStepMART(xs, xAdv[start*d:(start+size)*d], ts, out, beta)
	default:
		rep.loss, err = net.TrainStep(xs, ts, out)
	}
	rep.net = net
	return err
}

// reduce averages the replicas' losses, gradients and, with updateStats,
// running statistics (weights size/n) into the Trainer's outputs and master
// buffers.
func (t *Trainer) reduce(reps []*trainReplica, n int, updateStats bool) float64 {
	loss := 0.0
	for _, g := range t.grads {
		clear(g)
	}
	if t.bufferAcc == nil {
		t.bufferAcc = map[int][]float64{}
	}
	for _, acc := range t.bufferAcc {
		clear(acc)
	}
	for _, rep := range reps {
		share := float64(rep.n) / float64(n)
		loss += share * rep.loss
		grads := rep.net.Grads()
		for i, g := range grads {
			if g == nil {
				continue
			}
			dst := t.grads[i]
			for j, v := range g {
				dst[j] += float32(share) * v
			}
		}
		if !updateStats {
			continue
		}
		for i, s := range rep.net.specs {
			if s.role != roleRunningMean && s.role != roleRunningVar {
				continue
			}
			acc, ok := t.bufferAcc[i]
			if !ok {
				acc = make([]float64, s.numel())
				t.bufferAcc[i] = acc
			}
			data := rep.net.values[i].Data().([]float32)
			for j, v := range data {
				acc[j] += share * float64(v)
			}
		}
	}
	if !updateStats {
		return loss
	}
	for i, acc := range t.bufferAcc {
		dst := t.master.Params[i].Data
		for j, v := range acc {
			dst[j] = float32(v)
		}
	}
	// Every replica started from the master count and advanced it by the
	// same number of batch-statistics updates; take the first one's value.
	for i, s := range reps[0].net.specs {
		if s.role == roleBatchCount {
			t.master.Params[i].Data[0] = reps[0].net.values[i].Data().([]float32)[0]
		}
	}
	return loss
}
