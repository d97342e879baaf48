package optim

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// Schedule gives the learning rate for a training step. epoch is 0-based,
// iter is the 0-based batch index within the epoch and itersPerEpoch the
// number of batches per epoch. Schedules that work per epoch ignore iter;
// per-iteration schedules evaluate at the fractional epoch
// t = epoch + iter/itersPerEpoch (t = epoch when itersPerEpoch <= 0), so the
// first batch of every epoch sees exactly the per-epoch value.
type Schedule interface {
	LR(epoch int, iter, itersPerEpoch int) float64
}

// ScheduleKinds lists the names ParseSchedule accepts.
var ScheduleKinds = []string{"constant", "piecewise", "cosine"}

// ParseSchedule builds the schedule named kind ("constant"; "piecewise",
// also spelled "step" or "multistep"; "cosine") from user-given values and
// says clearly what is wrong with them. milestones and factor are used by
// piecewise only, epochs by cosine only (which decays to 0, PyTorch's default
// eta_min).
func ParseSchedule(kind string, lr float64, milestones []int, factor float64, epochs int, perIteration bool) (Schedule, error) {
	if math.IsNaN(lr) || math.IsInf(lr, 0) || lr <= 0 {
		return nil, fmt.Errorf("lr schedule %q: learning rate %v must be finite and > 0", kind, lr)
	}
	switch strings.ToLower(kind) {
	case "constant":
		return Constant(lr), nil
	case "piecewise", "step", "multistep":
		if math.IsNaN(factor) || math.IsInf(factor, 0) || factor <= 0 {
			return nil, fmt.Errorf("lr schedule %q: decay factor %v must be finite and > 0", kind, factor)
		}
		for i, m := range milestones {
			if m < 0 {
				return nil, fmt.Errorf("lr schedule %q: milestone %d is negative", kind, m)
			}
			if i > 0 && m <= milestones[i-1] {
				return nil, fmt.Errorf("lr schedule %q: milestones %v must be strictly increasing", kind, milestones)
			}
		}
		return Piecewise(lr, milestones, factor, perIteration), nil
	case "cosine":
		if epochs <= 0 {
			return nil, fmt.Errorf("lr schedule %q: epochs %d must be > 0", kind, epochs)
		}
		return Cosine(lr, epochs, perIteration, 0), nil
	default:
		return nil, fmt.Errorf("lr schedule %q: unknown kind (known: %s)", kind, strings.Join(ScheduleKinds, ", "))
	}
}

// Constant is a fixed learning rate.
func Constant(lr float64) Schedule { return constantSchedule(lr) }

// Piecewise is step decay as torch.optim.lr_scheduler.MultiStepLR stepped
// once at the end of each epoch: lr·factor^(number of milestones <= epoch),
// so with milestones [100,150] epochs 0–99 run at lr and epoch 100 at
// lr·factor. (The SGLS reference calls scheduler.step(epoch) with 1-based
// epochs, which decays one epoch earlier; pass milestones−1 to reproduce it.)
//
// perIteration evaluates the same step function at the fractional epoch
// t = epoch + iter/itersPerEpoch. With integer milestones the decay still
// lands on the first batch of the milestone epoch, so the two modes agree;
// the robust-overfitting reference evaluates at (iter+1)/itersPerEpoch, which
// decays one batch earlier, a difference not reproduced here.
func Piecewise(lr float64, milestones []int, factor float64, perIteration bool) Schedule {
	ms := slices.Clone(milestones)
	slices.Sort(ms)
	return piecewiseSchedule{lr: lr, milestones: ms, factor: factor, perIteration: perIteration}
}

// Cosine is cosine annealing over epochs, as CosineAnnealingLR with T_max =
// epochs: minLR + (lr−minLR)·(1+cos(π·t/epochs))/2, with t the epoch or,
// when perIteration, the fractional epoch. t is clamped to [0, epochs].
func Cosine(lr float64, epochs int, perIteration bool, minLR float64) Schedule {
	return cosineSchedule{lr: lr, epochs: epochs, perIteration: perIteration, minLR: minLR}
}

type constantSchedule float64

func (c constantSchedule) LR(int, int, int) float64 { return float64(c) }

type piecewiseSchedule struct {
	lr           float64
	milestones   []int
	factor       float64
	perIteration bool
}

func (p piecewiseSchedule) LR(epoch, iter, itersPerEpoch int) float64 {
	t := float64(epoch)
	if p.perIteration {
		t = fractionalEpoch(epoch, iter, itersPerEpoch)
	}
	passed := 0
	for _, m := range p.milestones {
		if float64(m) <= t {
			passed++
		}
	}
	return p.lr * math.Pow(p.factor, float64(passed))
}

type cosineSchedule struct {
	lr           float64
	epochs       int
	perIteration bool
	minLR        float64
}

func (c cosineSchedule) LR(epoch, iter, itersPerEpoch int) float64 {
	if c.epochs <= 0 {
		return c.lr
	}
	t := float64(epoch)
	if c.perIteration {
		t = fractionalEpoch(epoch, iter, itersPerEpoch)
	}
	t = min(max(t, 0), float64(c.epochs))
	return c.minLR + (c.lr-c.minLR)*(1+math.Cos(math.Pi*t/float64(c.epochs)))/2
}

// fractionalEpoch is epoch + iter/itersPerEpoch, or epoch when the number of
// iterations per epoch is unknown.
func fractionalEpoch(epoch, iter, itersPerEpoch int) float64 {
	if itersPerEpoch <= 0 {
		return float64(epoch)
	}
	return float64(epoch) + float64(iter)/float64(itersPerEpoch)
}
