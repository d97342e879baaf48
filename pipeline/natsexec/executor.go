package natsexec

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/sglr-pipe/sglr-pipe/pipeline"
	"github.com/sglr-pipe/sglr-pipe/stages"
)

// ExecutorConfig configures the coordinator's side.
type ExecutorConfig struct {
	// Labels returns the worker labels an instance requires; nil or an
	// empty list means any worker may run it.
	Labels func(instance string) []string
	// ExecBase is the directory that relative `exec:` paths are resolved
	// against (the pipeline file's directory), as the local resolver does.
	ExecBase string
	// SubmitTimeout bounds how long submitting one task keeps retrying
	// while NATS is unreachable; 0 means five minutes.
	SubmitTimeout time.Duration
}

// Executor is the coordinator's pipeline.Executor: it submits each task to
// the work queue and waits for a worker's result. Inputs travel by digest
// (it implements pipeline.InputsByDigest), so the coordinator downloads
// nothing to submit. Create it with NewExecutor and Close it after the run.
type Executor struct {
	nc      *nats.Conn
	js      jetstream.JetStream
	tasks   jetstream.Stream
	results jetstream.Stream
	cfg     ExecutorConfig
	run     string // token naming this coordinator's results and progress

	mu      sync.Mutex
	pending map[string]*pendingTask // by task id
	bySeq   map[uint64]*pendingTask // by task-stream sequence, once published

	subs      []*nats.Subscription
	submitted atomic.Int64
	stop      chan struct{}
	stopped   sync.WaitGroup
}

// NewExecutor sets up the streams (if missing) and listens for results,
// progress and undeliverable tasks of this coordinator.
func NewExecutor(ctx context.Context, nc *nats.Conn, cfg ExecutorConfig) (*Executor, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	if err := Setup(ctx, js); err != nil {
		return nil, err
	}
	e := &Executor{
		nc: nc, js: js, cfg: cfg, run: nuid.Next(),
		pending: map[string]*pendingTask{}, bySeq: map[uint64]*pendingTask{}, stop: make(chan struct{}),
	}
	if e.cfg.SubmitTimeout <= 0 {
		e.cfg.SubmitTimeout = 5 * time.Minute
	}
	err = retryNATS(ctx, time.Minute, func(ctx context.Context) error {
		var err error
		if e.tasks, err = js.Stream(ctx, TaskStream); err != nil {
			return err
		}
		e.results, err = js.Stream(ctx, ResultStream)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("bind streams: %w", err)
	}
	for subject, handler := range map[string]nats.MsgHandler{
		resultSubjects + e.run + ".*":                   e.onResult,
		progressSubjects + e.run + ".*":                 e.onProgress,
		maxDeliveriesAdvisory + "." + TaskStream + ".*": e.onMaxDeliveries,
	} {
		sub, err := nc.Subscribe(subject, handler)
		if err != nil {
			e.Close()
			return nil, fmt.Errorf("subscribe %s: %w", subject, err)
		}
		e.subs = append(e.subs, sub)
	}
	if err := nc.FlushTimeout(10 * time.Second); err != nil {
		e.Close()
		return nil, fmt.Errorf("subscribe: %w", err)
	}
	e.stopped.Add(1)
	go e.recoverLoop()
	return e, nil
}

// InputsByDigest implements pipeline.InputsByDigest: workers fetch inputs.
func (e *Executor) InputsByDigest() bool { return true }

// Submitted returns how many tasks this executor has put on the work queue.
func (e *Executor) Submitted() int64 { return e.submitted.Load() }

// Execute implements pipeline.Executor: it submits t and waits for its
// result. When ctx is cancelled it withdraws the task (or tells the worker
// running it to stop) and returns ctx's error. A worker's failure comes back
// as an error naming the worker.
func (e *Executor) Execute(ctx context.Context, t *pipeline.Task) (*pipeline.Result, error) {
	msg, err := e.taskMessage(t)
	if err != nil {
		return nil, err
	}
	data, err := json.Marshal(msg)
	if err != nil {
		return nil, fmt.Errorf("encode task: %w", err)
	}
	progress := t.Progress
	if progress == nil {
		progress = stages.NopProgress{}
	}
	p := &pendingTask{id: msg.Task, done: make(chan resultMessage, 1), progress: progress}
	e.mu.Lock()
	e.pending[p.id] = p
	e.mu.Unlock()
	defer e.forget(p)

	nm := nats.NewMsg(taskSubject(msg.Labels))
	nm.Data = data
	nm.Header.Set(jetstream.MsgIDHeader, msg.Task) // a retried publish is stored once
	err = retryNATS(ctx, e.cfg.SubmitTimeout, func(ctx context.Context) error {
		ack, err := e.js.PublishMsg(ctx, nm)
		if err != nil {
			return err
		}
		e.mu.Lock()
		p.seq = ack.Sequence
		e.bySeq[ack.Sequence] = p
		e.mu.Unlock()
		return nil
	})
	if err != nil {
		if ctx.Err() != nil {
			// The publish may have reached the stream, and a worker may have
			// started the task, before its acknowledgement came back: withdraw
			// it all the same.
			e.withdraw(p)
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("submit to NATS: %w", err)
	}
	e.submitted.Add(1)

	select {
	case r := <-p.done:
		return e.result(t, r)
	case <-ctx.Done():
		e.withdraw(p)
		return nil, ctx.Err()
	}
}

// Close stops listening. Tasks still waiting are not withdrawn: cancel
// their contexts first.
func (e *Executor) Close() error {
	select {
	case <-e.stop:
		return nil
	default:
		close(e.stop)
	}
	var errs []error
	for _, s := range e.subs {
		if err := s.Unsubscribe(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
			errs = append(errs, err)
		}
	}
	e.stopped.Wait()
	return errors.Join(errs...)
}

// maxDeliveriesAdvisory is the subject prefix on which JetStream announces
// a message that reached its consumer's MaxDeliver.
const maxDeliveriesAdvisory = "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES"

// pendingTask is a submitted task whose result has not come yet.
type pendingTask struct {
	id        string
	seq       uint64 // in the task stream; 0 until the publish is acknowledged
	done      chan resultMessage
	delivered bool // a result went to done (guarded by Executor.mu)

	progress stages.Progress
	pmu      sync.Mutex // serialises the translation below
	started  bool       // progress.Start was called for the current worker
	total    int64
	count    int64
	unit     string
}

// taskMessage describes t for a worker.
func (e *Executor) taskMessage(t *pipeline.Task) (*taskMessage, error) {
	spec := t.Stage.Spec()
	uses := t.Uses
	if uses == "" {
		uses = spec.Name
	}
	params, err := encodeParams(t.Params)
	if err != nil {
		return nil, err
	}
	msg := &taskMessage{
		Protocol: protocolVersion, Run: e.run, Task: nuid.Next(), Instance: t.Instance,
		Uses: uses, Version: spec.Version, Params: params, Seed: t.Seed,
		Inputs: map[string][]inputRef{}, Cores: spec.CoresWanted(),
	}
	for port, ins := range t.Inputs {
		for _, in := range ins {
			ref := inputRef{Digest: in.Digest}
			if len(in.Tags) > 0 {
				ref.Tags = in.Tags
			}
			msg.Inputs[port] = append(msg.Inputs[port], ref)
		}
	}
	if e.cfg.Labels != nil {
		if msg.Labels, err = CheckLabels(e.cfg.Labels(t.Instance)); err != nil {
			return nil, err
		}
	}
	if path, ok := strings.CutPrefix(uses, "exec:"); ok {
		if !filepath.IsAbs(path) {
			path = filepath.Join(e.cfg.ExecBase, path)
		}
		if msg.ExecPath, err = filepath.Abs(path); err != nil {
			return nil, fmt.Errorf("%s: %w", uses, err)
		}
	}
	if msg.Key, err = keyOf(uses, spec.Version, t.Params, t.Seed, msg.Inputs); err != nil {
		return nil, err
	}
	return msg, nil
}

// result turns a worker's report into the Executor's answer. Outputs must
// all be in the shared store before they are reported as done.
func (e *Executor) result(t *pipeline.Task, r resultMessage) (*pipeline.Result, error) {
	where := "on worker " + r.Worker
	if r.Worker == "" {
		where = "on the work queue"
	}
	if r.Error != "" {
		return nil, fmt.Errorf("%s: %s", where, r.Error)
	}
	for _, port := range t.Stage.Spec().Outputs {
		d, ok := r.Outputs[port.Name]
		if !ok {
			return nil, fmt.Errorf("%s: the worker reported no output %q", where, port.Name)
		}
		if !t.Store.Has(d) {
			return nil, fmt.Errorf("%s: output %q (%s) is not in the shared store", where, port.Name, d)
		}
	}
	return &pipeline.Result{Outputs: r.Outputs, Summary: r.Summary}, nil
}

// withdraw takes a task back after its context was cancelled: the queued
// message is deleted and a worker already running it is told to stop.
func (e *Executor) withdraw(p *pendingTask) {
	_ = e.nc.Publish(cancelSubjects+e.run+"."+p.id, nil)
	e.mu.Lock()
	seq := p.seq
	e.mu.Unlock()
	if seq != 0 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = e.tasks.DeleteMsg(ctx, seq) // gone already when a worker acknowledged it
		cancel()
	}
	_ = e.nc.FlushTimeout(2 * time.Second)
}

// forget drops a task from the tables once Execute returns.
func (e *Executor) forget(p *pendingTask) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.pending, p.id)
	if p.seq != 0 {
		delete(e.bySeq, p.seq)
	}
}

// deliver hands the first result of a task to its Execute; later ones
// (from a redelivered task that ran twice) are ignored.
func (e *Executor) deliver(id string, r resultMessage) {
	e.mu.Lock()
	defer e.mu.Unlock()
	p := e.pending[id]
	if p == nil || p.delivered {
		return
	}
	p.delivered = true
	p.done <- r
}

// onResult receives results as workers publish them.
func (e *Executor) onResult(m *nats.Msg) {
	var r resultMessage
	if err := json.Unmarshal(m.Data, &r); err != nil {
		return
	}
	e.deliver(lastToken(m.Subject), r)
}

// onProgress forwards a worker's progress to the task's Progress.
func (e *Executor) onProgress(m *nats.Msg) {
	e.mu.Lock()
	p := e.pending[lastToken(m.Subject)]
	e.mu.Unlock()
	if p == nil {
		return
	}
	var pm progressMessage
	if err := json.Unmarshal(m.Data, &pm); err != nil {
		return
	}
	p.apply(pm)
}

// apply translates a progress snapshot into Progress calls.
func (p *pendingTask) apply(pm progressMessage) {
	p.pmu.Lock()
	defer p.pmu.Unlock()
	switch pm.Kind {
	case progressStarted:
		p.started = false // a redelivered task starts over on its new worker
		p.progress.Status("on worker " + pm.Worker)
	case progressStatus:
		p.progress.Status(pm.Message)
	case progressBar:
		if !p.started || pm.Total != p.total || pm.Unit != p.unit || pm.Done < p.count {
			p.started, p.total, p.unit, p.count = true, pm.Total, pm.Unit, 0
			p.progress.Start(pm.Total, pm.Unit)
		}
		if pm.Done > p.count {
			p.progress.Add(pm.Done - p.count)
			p.count = pm.Done
		}
	}
}

// onMaxDeliveries fails a task that JetStream gave up delivering: every
// worker that took it died or lost its connection before finishing.
func (e *Executor) onMaxDeliveries(m *nats.Msg) {
	var adv struct {
		StreamSeq  uint64 `json:"stream_seq"`
		Deliveries uint64 `json:"deliveries"`
	}
	if err := json.Unmarshal(m.Data, &adv); err != nil {
		return
	}
	e.mu.Lock()
	p := e.bySeq[adv.StreamSeq]
	e.mu.Unlock()
	if p == nil {
		return
	}
	go func() { // do not block the subscription with a request
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if r, ok := e.lookupResult(ctx, p.id); ok { // it did finish, the ack was lost
			e.deliver(p.id, r)
			return
		}
		_ = e.tasks.DeleteMsg(ctx, adv.StreamSeq)
		e.deliver(p.id, resultMessage{Task: p.id, Error: fmt.Sprintf(
			"delivered %d times and never finished: each worker that took it died, was stopped or lost its connection",
			adv.Deliveries)})
	}()
}

// recoverLoop collects results published while this coordinator was
// disconnected: after every reconnection, and every half minute in case a
// live message was missed otherwise.
func (e *Executor) recoverLoop() {
	defer e.stopped.Done()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	seen := e.nc.Stats().Reconnects
	last := time.Now()
	for {
		select {
		case <-e.stop:
			return
		case <-tick.C:
		}
		n := e.nc.Stats().Reconnects
		if n == seen && time.Since(last) < 30*time.Second {
			continue
		}
		seen, last = n, time.Now()
		e.recoverResults()
	}
}

// recoverResults looks every published, unanswered task up in the result stream.
func (e *Executor) recoverResults() {
	e.mu.Lock()
	var ids []string
	for id, p := range e.pending {
		if p.seq != 0 && !p.delivered {
			ids = append(ids, id)
		}
	}
	e.mu.Unlock()
	for _, id := range ids {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		r, ok := e.lookupResult(ctx, id)
		cancel()
		if ok {
			e.deliver(id, r)
		}
	}
}

// lookupResult reads the stored result of a task, if there is one.
func (e *Executor) lookupResult(ctx context.Context, id string) (resultMessage, bool) {
	raw, err := e.results.GetLastMsgForSubject(ctx, resultSubjects+e.run+"."+id)
	if err != nil {
		return resultMessage{}, false
	}
	var r resultMessage
	if err := json.Unmarshal(raw.Data, &r); err != nil {
		return resultMessage{}, false
	}
	return r, true
}

// lastToken returns the part of a subject after its last dot.
func lastToken(subject string) string {
	return subject[strings.LastIndexByte(subject, '.')+1:]
}

var (
	_ pipeline.Executor       = (*Executor)(nil)
	_ pipeline.InputsByDigest = (*Executor)(nil)
)
