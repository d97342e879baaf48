package pipeline

import (
	"context"
	"sync"

	"github.com/sglr-pipe/sglr-pipe/stages"
)

// coreBudget hands out cores so that running stages never want more than the
// budget in total. Waiters are served first come, first served, so a stage
// that wants many cores is not starved by a stream of small ones.
type coreBudget struct {
	mu      sync.Mutex
	free    int
	waiters []*coreWaiter
}

type coreWaiter struct {
	n     int
	ready chan struct{}
}

func newCoreBudget(total int) *coreBudget { return &coreBudget{free: total} }

// acquire takes n cores, waiting until they are free or ctx is done.
func (b *coreBudget) acquire(ctx context.Context, n int) error {
	b.mu.Lock()
	if len(b.waiters) == 0 && b.free >= n {
		b.free -= n
		b.mu.Unlock()
		return nil
	}
	w := &coreWaiter{n: n, ready: make(chan struct{})}
	b.waiters = append(b.waiters, w)
	b.mu.Unlock()

	select {
	case <-w.ready:
		return nil
	case <-ctx.Done():
		b.mu.Lock()
		defer b.mu.Unlock()
		select {
		case <-w.ready: // granted while we were giving up: hand the cores back
			b.free += n
			b.wake()
		default:
			for i, x := range b.waiters {
				if x == w {
					b.waiters = append(b.waiters[:i], b.waiters[i+1:]...)
					break
				}
			}
			b.wake() // a removed head may unblock smaller waiters behind it
		}
		return ctx.Err()
	}
}

// release returns n cores.
func (b *coreBudget) release(n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.free += n
	b.wake()
}

// wake grants cores to waiters in order while the head fits. Called with mu held.
func (b *coreBudget) wake() {
	for len(b.waiters) > 0 && b.waiters[0].n <= b.free {
		w := b.waiters[0]
		b.waiters = b.waiters[1:]
		b.free -= w.n
		close(w.ready)
	}
}

// CoresStage is implemented by a stage whose instances want a number of
// cores that depends on their parameters (train: its `workers`), rather than
// the fixed Spec.Cores.
type CoresStage interface {
	CoresFor(params stages.Params) int
}

// coresWanted is the cores instance n reserves from the budget: what its
// stage says for its params, else its spec's, at least 1.
func coresWanted(n *Node) int {
	if cs, ok := n.Stage.(CoresStage); ok {
		return max(1, cs.CoresFor(n.Params))
	}
	return n.Spec.CoresWanted()
}
