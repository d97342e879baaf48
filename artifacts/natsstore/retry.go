package natsstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Transient reports whether err is worth retrying once the connection is
// back: a timeout, a lost or re-establishing connection, or JetStream not
// answering yet (a server that is starting).
func Transient(err error) bool {
	for _, t := range []error{
		nats.ErrTimeout, context.DeadlineExceeded, nats.ErrNoResponders, nats.ErrConnectionReconnecting,
		nats.ErrDisconnected, jetstream.ErrNoStreamResponse, jetstream.ErrJetStreamNotEnabled,
		jetstream.ErrJetStreamNotEnabledForAccount, jetstream.ErrNoHeartbeat,
	} {
		if errors.Is(err, t) {
			return true
		}
	}
	return false
}

// attemptTimeout bounds one try of a metadata call, so that a request lost
// in a reconnect is retried instead of waiting for the whole budget.
const attemptTimeout = 5 * time.Second

// stallTimeout is how long a transfer may go without moving a byte before
// the try is abandoned and retried (a connection that died mid-transfer).
const stallTimeout = 30 * time.Second

// errStalled marks a transfer abandoned because no byte moved for stallTimeout.
var errStalled = errors.New("transfer stalled")

// retry calls fn until it succeeds, fails with an error that is not
// Transient, or budget has passed. Each try gets a context bounded by per.
func retry(ctx context.Context, budget, per time.Duration, fn func(context.Context) error) error {
	deadline := time.Now().Add(budget)
	wait := 50 * time.Millisecond
	for {
		actx, cancel := context.WithTimeout(ctx, per)
		err := fn(actx)
		cancel()
		if err == nil || !(Transient(err) || errors.Is(err, errStalled)) || ctx.Err() != nil || time.Now().Add(wait).After(deadline) {
			if err != nil && ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, time.Second)
	}
}

// retryMeta retries a small request within the store's timeout.
func (s *Store) retryMeta(ctx context.Context, fn func(context.Context) error) error {
	return retry(ctx, s.timeout, min(attemptTimeout, s.timeout), fn)
}

// retryTransfer retries an upload or download within the store's transfer
// budget. A try is abandoned when no byte moves for stallTimeout: fn calls
// touch whenever bytes move.
func (s *Store) retryTransfer(ctx context.Context, fn func(ctx context.Context, touch func()) error) error {
	return retry(ctx, s.transfer, s.transfer, func(ctx context.Context) error {
		ctx, cancel := context.WithCancelCause(ctx)
		defer cancel(nil)
		var mu sync.Mutex
		last := time.Now()
		touch := func() {
			mu.Lock()
			last = time.Now()
			mu.Unlock()
		}
		done := make(chan struct{})
		defer close(done)
		go func() {
			tick := time.NewTicker(stallTimeout / 10)
			defer tick.Stop()
			for {
				select {
				case <-done:
					return
				case <-ctx.Done():
					return
				case now := <-tick.C:
					mu.Lock()
					idle := now.Sub(last)
					mu.Unlock()
					if idle > stallTimeout {
						cancel(errStalled)
						return
					}
				}
			}
		}()
		err := fn(ctx, touch)
		if err != nil && errors.Is(context.Cause(ctx), errStalled) {
			return fmt.Errorf("%w: %w", errStalled, err)
		}
		return err
	})
}
