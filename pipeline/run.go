package pipeline

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sourcegraph/conc/pool"

	"github.com/sglr-pipe/sglr-pipe/artifacts"
	"github.com/sglr-pipe/sglr-pipe/stages"
)

// ToolVersion is recorded in every action as the tool that produced it. The
// CLI sets it from its build information.
var ToolVersion = "sglr-pipe (devel)"

// Instance statuses in a run record.
const (
	StatusCached    = "cached"
	StatusRan       = "ran"
	StatusFailed    = "failed"
	StatusSkipped   = "skipped"
	StatusCancelled = "cancelled"
)

// Run statuses.
const (
	RunOK        = "ok"
	RunFailed    = "failed"
	RunCancelled = "cancelled"
)

// RunError is returned by Run when an instance failed or the run was
// cancelled. It lists every failure, not just the first.
type RunError struct {
	Failures  []InstanceError
	Cancelled bool  // the context was cancelled (Ctrl-C) or --fail-fast stopped the run
	Cause     error // the context's error when Cancelled by the caller's context
}

// InstanceError is the failure of one instance.
type InstanceError struct {
	Instance string
	Err      error
}

// Error lists the failures one per line.
func (e *RunError) Error() string {
	var b strings.Builder
	switch {
	case len(e.Failures) == 0 && e.Cancelled:
		b.WriteString("run cancelled")
	case len(e.Failures) == 1:
		b.WriteString("1 instance failed")
	default:
		fmt.Fprintf(&b, "%d instances failed", len(e.Failures))
	}
	if len(e.Failures) > 0 && e.Cancelled {
		b.WriteString(" (run cancelled)")
	}
	for _, f := range e.Failures {
		fmt.Fprintf(&b, "\n  %s: %v", f.Instance, f.Err)
	}
	return b.String()
}

// Unwrap exposes each failure's error and the cancellation cause, so
// errors.Is(err, context.Canceled) works.
func (e *RunError) Unwrap() []error {
	errs := make([]error, 0, len(e.Failures)+1)
	for _, f := range e.Failures {
		errs = append(errs, f.Err)
	}
	if e.Cause != nil {
		errs = append(errs, e.Cause)
	}
	return errs
}

// Run executes the pipeline: every selected instance is a cache hit or runs
// once its inputs are ready, concurrently within the core budget. The run
// record is stored (also for failed and cancelled runs) and returned with a
// *RunError when anything failed or the context was cancelled.
func (p *Pipeline) Run(ctx context.Context, opts Options) (*artifacts.Run, error) {
	if opts.Store == nil {
		return nil, errors.New("run: no store")
	}
	if len(opts.Only) > 0 {
		// --only needs everything it reads to be cached: check before starting.
		if _, err := p.Plan(ctx, opts); err != nil {
			return nil, err
		}
	}
	sel, err := p.selection(opts)
	if err != nil {
		return nil, err
	}
	s := newScheduler(p, sel, opts)
	started := time.Now()
	s.run(ctx)
	finished := time.Now()

	record := &artifacts.Run{
		ID:       artifacts.NewRunID(started),
		Pipeline: p.File,
		Name:     p.Expansion.Spec.Name,
		Args:     opts.Args,
		Started:  started,
		Finished: finished,
		Status:   RunOK,
	}
	runErr := &RunError{}
	var refErrs []error
	for _, n := range p.Nodes {
		st := s.states[n.index]
		ri := artifacts.RunInstance{
			ID: n.ID(), Stage: n.Decl(), Uses: n.Uses(), Axes: axesOf(n), Params: n.Params,
			Key: st.key, Status: st.status, Reason: st.reason,
			Inputs: st.inputs, Outputs: st.outputs, Seconds: st.seconds,
		}
		switch st.status {
		case StatusFailed:
			ri.Error = st.err.Error()
			runErr.Failures = append(runErr.Failures, InstanceError{Instance: n.ID(), Err: st.err})
		case StatusCancelled:
			runErr.Cancelled = true
		case StatusCached, StatusRan:
			if err := opts.Store.SetRef(refName(p.File, n.ID()), st.key); err != nil {
				refErrs = append(refErrs, fmt.Errorf("remember key of %s: %w", n.ID(), err))
			}
		}
		record.Instances = append(record.Instances, ri)
	}
	switch {
	case ctx.Err() != nil:
		record.Status = RunCancelled
		runErr.Cancelled, runErr.Cause = true, ctx.Err()
	case len(runErr.Failures) > 0 || runErr.Cancelled:
		record.Status = RunFailed
	}
	if err := opts.Store.PutRun(record); err != nil {
		return record, errors.Join(fmt.Errorf("store run record %s: %w", record.ID, err), runErrOrNil(runErr))
	}
	if err := runErrOrNil(runErr); err != nil {
		return record, err
	}
	if len(refErrs) > 0 {
		return record, errors.Join(refErrs...)
	}
	return record, nil
}

func runErrOrNil(e *RunError) error {
	if len(e.Failures) == 0 && !e.Cancelled {
		return nil
	}
	return e
}

// instanceState is what happened to one instance. A worker writes it before
// reporting on the done channel; the coordinator and later workers read it
// after, so the channel orders every access.
type instanceState struct {
	status  string
	key     string
	reason  string
	inputs  map[string][]artifacts.Digest
	outputs map[string]artifacts.Digest
	err     error
	started time.Time
	seconds float64
	waiting int // producers not yet settled
}

type scheduler struct {
	p     *Pipeline
	sel   *selection
	opts  Options
	exec  Executor
	jobs  int
	cores *coreBudget
	sink  *eventSink

	states []*instanceState

	// mu guards the status and outputs of instances that a repair may change
	// while other workers read them (see rebuild), and repairs.
	mu      sync.Mutex
	repairs map[int]*repair
}

func newScheduler(p *Pipeline, sel *selection, opts Options) *scheduler {
	jobs := opts.Jobs
	if jobs <= 0 {
		jobs = runtime.NumCPU()
	}
	exec := opts.Executor
	if exec == nil {
		exec = LocalExecutor{}
	}
	s := &scheduler{
		p: p, sel: sel, opts: opts, exec: exec, jobs: jobs,
		cores: newCoreBudget(jobs), sink: &eventSink{fn: opts.Events},
		states:  make([]*instanceState, len(p.Nodes)),
		repairs: map[int]*repair{},
	}
	for i := range s.states {
		s.states[i] = &instanceState{}
	}
	return s
}

// run drives every selected instance to a final status. The coordinator (this
// goroutine) owns scheduling decisions; workers on a conc pool look up the
// cache and execute, then report on done.
func (s *scheduler) run(ctx context.Context) {
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan *Node, len(s.p.Nodes))
	workers := pool.New().WithMaxGoroutines(s.jobs)
	defer workers.Wait()

	active, settled := 0, 0
	var settle, decide func(n *Node)
	settle = func(n *Node) {
		settled++
		for _, c := range n.Consumers {
			cs := s.states[c.index]
			if s.sel.mode[c.index] == modeSkip {
				continue
			}
			cs.waiting--
			if cs.waiting == 0 {
				decide(c)
			}
		}
	}
	decide = func(n *Node) {
		for _, from := range n.Producers {
			status := s.statusOf(from)
			if status == StatusCached || status == StatusRan {
				continue
			}
			if status == StatusCancelled {
				s.finish(n, StatusCancelled, "upstream "+from.ID()+" cancelled", nil)
			} else {
				s.finish(n, StatusSkipped, "upstream "+from.ID()+" "+status, nil)
			}
			settle(n)
			return
		}
		if runCtx.Err() != nil {
			s.finish(n, StatusCancelled, "run cancelled before it started", nil)
			settle(n)
			return
		}
		workers.Go(func() {
			s.process(runCtx, n)
			done <- n
		})
	}

	for _, n := range s.p.Nodes {
		if s.sel.mode[n.index] == modeSkip {
			s.states[n.index].status, s.states[n.index].reason = StatusSkipped, "not selected"
			s.sink.emit(Event{Instance: n.ID(), Kind: EventPlan, Message: "not selected"})
			continue
		}
		active++
		s.states[n.index].waiting = len(n.Producers)
		s.sink.emit(Event{Instance: n.ID(), Kind: EventPlan, Message: "pending"})
	}
	for _, n := range s.p.Nodes {
		if s.sel.mode[n.index] != modeSkip && len(n.Producers) == 0 {
			decide(n)
		}
	}
	for settled < active {
		n := <-done
		if s.states[n.index].status == StatusFailed && s.opts.FailFast {
			cancel()
		}
		settle(n)
	}
}

// process brings one ready instance to a final status: a cache hit, or an
// execution whose outputs and action are stored.
func (s *scheduler) process(ctx context.Context, n *Node) {
	st := s.states[n.index]
	store := s.opts.Store
	byDigest, _ := s.exec.(InputsByDigest)
	withPaths := byDigest == nil || !byDigest.InputsByDigest()
	ks, inputs, err := n.keySpec(store, s.outputsOf, withPaths)
	if err != nil {
		s.finish(n, StatusFailed, "", err)
		return
	}
	st.inputs = ks.Inputs
	if st.key, err = CacheKey(ks); err != nil {
		s.finish(n, StatusFailed, "", err)
		return
	}
	reason := s.sel.forced[n.index]
	if reason == "" {
		look, err := lookupCache(store, st.key, outputPorts(n), s.opts.verifies(n))
		if err != nil {
			s.finish(n, StatusFailed, "", err)
			return
		}
		if look.hit {
			s.setOutputs(n, look.action.Outputs)
			s.finish(n, StatusCached, "", nil)
			return
		}
		reason = look.reason
		if reason == "" {
			reason = explainMiss(store, refName(s.p.File, n.ID()), st.key, ks)
		}
		if s.sel.mode[n.index] == modeCacheOnly {
			s.finish(n, StatusFailed, reason, fmt.Errorf("needed by --only but not cached (%s)", reason))
			return
		}
	}
	st.reason = reason

	res, err := s.executeRepairing(ctx, n, &ks, &inputs, reason)
	if err != nil {
		if ctx.Err() != nil {
			s.finish(n, StatusCancelled, reason, nil)
		} else {
			s.finish(n, StatusFailed, reason, err)
		}
		return
	}
	st.inputs = ks.Inputs
	if st.key, err = CacheKey(ks); err != nil {
		s.finish(n, StatusFailed, reason, err)
		return
	}
	if err := s.record(n, ks, st.key, res, st.started, st.seconds); err != nil {
		s.finish(n, StatusFailed, reason, err)
		return
	}
	s.setOutputs(n, res.Outputs)
	s.finish(n, StatusRan, reason, nil)
}

// executeRepairing executes n and, when the stage failed because an input
// object's bytes no longer match their digest, rebuilds the producer of that
// object and executes n again with the inputs the rebuild left (a corrupt
// object is a cache miss of its producer, exactly as a deleted one is). ks and
// inputs are updated in place when a rebuild changed them.
func (s *scheduler) executeRepairing(ctx context.Context, n *Node, ks *KeySpec, inputs *map[string][]stages.Input, reason string) (*Result, error) {
	repaired := map[artifacts.Digest]bool{}
	for {
		res, err := s.execute(ctx, n, *ks, *inputs, reason)
		if err == nil || ctx.Err() != nil {
			return res, err
		}
		d, ok := artifacts.CorruptObject(err)
		if !ok {
			return nil, err
		}
		if repaired[d] {
			return nil, fmt.Errorf("%w (still corrupt after its producer was rebuilt)", err)
		}
		repaired[d] = true
		from := s.producerOf(n, d)
		if from == nil {
			return nil, err
		}
		if s.sel.mode[from.index] == modeCacheOnly {
			return nil, fmt.Errorf("%w; its producer %s is outside --only: run without --only to rebuild it", err, from.ID())
		}
		if rerr := s.rebuild(ctx, from, d, n); rerr != nil {
			return nil, fmt.Errorf("%w; rebuilding it with %s failed: %v", err, from.ID(), rerr)
		}
		byDigest, _ := s.exec.(InputsByDigest)
		withPaths := byDigest == nil || !byDigest.InputsByDigest()
		newKS, newInputs, kerr := n.keySpec(s.opts.Store, s.outputsOf, withPaths)
		if kerr != nil {
			return nil, kerr
		}
		*ks, *inputs = newKS, newInputs
	}
}

// execute runs n once on the executor within the core budget.
func (s *scheduler) execute(ctx context.Context, n *Node, ks KeySpec, inputs map[string][]stages.Input, reason string) (*Result, error) {
	st := s.states[n.index]
	checkpoints, err := checkpointDir(s.opts.Store, ks)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", n.ID(), err)
	}
	if rs, ok := n.Stage.(ResumableStage); ok && checkpoints != "" {
		if note := rs.ResumeFrom(n.Params, checkpoints); note != "" {
			reason += "; " + note
		}
	}
	cores := min(coresWanted(n), s.jobs)
	if err := s.cores.acquire(ctx, cores); err != nil {
		return nil, err
	}
	s.sink.emit(Event{Instance: n.ID(), Kind: EventStart, Message: reason})
	st.started = time.Now()
	res, err := s.exec.Execute(ctx, &Task{
		Instance: n.ID(), Uses: n.Uses(), Stage: n.Stage, Params: n.Params, Seed: n.Seed,
		Inputs: inputs, Progress: newInstanceProgress(s.sink, n.ID()), Store: s.opts.Store,
		Checkpoints: checkpoints,
	})
	s.cores.release(cores)
	st.seconds = time.Since(st.started).Seconds()
	return res, err
}

// repair is one rebuild of a settled instance during a run; consumers that
// find the same corrupt object wait for the same rebuild.
type repair struct {
	done chan struct{}
	err  error
}

// rebuild executes the settled instance p again, because reader found its
// output object d corrupt, and records the fresh action under p's key. The
// new output overwrites the corrupt object (the same bytes under the same
// name, for a deterministic stage); if p now gives other bytes, the corrupt
// object is removed from the store and reader's key changes with them. Each
// instance is rebuilt at most once per run.
func (s *scheduler) rebuild(ctx context.Context, p *Node, d artifacts.Digest, reader *Node) error {
	s.mu.Lock()
	r, started := s.repairs[p.index]
	if !started {
		r = &repair{done: make(chan struct{})}
		s.repairs[p.index] = r
	}
	s.mu.Unlock()
	if started {
		select {
		case <-r.done:
			return r.err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	defer close(r.done)
	ps := s.states[p.index]
	reason := fmt.Sprintf("output object %s corrupt (read by %s)", shortDigest(d), reader.ID())
	byDigest, _ := s.exec.(InputsByDigest)
	withPaths := byDigest == nil || !byDigest.InputsByDigest()
	ks, inputs, err := p.keySpec(s.opts.Store, s.outputsOf, withPaths)
	if err != nil {
		r.err = err
		return err
	}
	res, err := s.executeRepairing(ctx, p, &ks, &inputs, reason)
	if err == nil {
		var key string
		if key, err = CacheKey(ks); err == nil {
			err = s.record(p, ks, key, res, ps.started, ps.seconds)
			ps.key, ps.inputs = key, ks.Inputs
		}
	}
	if err != nil {
		r.err = err
		s.sink.emit(Event{Instance: p.ID(), Kind: EventFailed, Err: "rebuild: " + err.Error()})
		return err
	}
	s.mu.Lock()
	ps.outputs, ps.status, ps.reason = res.Outputs, StatusRan, reason
	s.mu.Unlock()
	s.sink.emit(Event{Instance: p.ID(), Kind: EventDone, Seconds: ps.seconds})
	if !slices.Contains(slices.Collect(maps.Values(res.Outputs)), d) {
		if rm, ok := s.opts.Store.(objectRemover); ok {
			_ = rm.RemoveObject(d) // best effort: a later read of d fails its check again
		}
	}
	return nil
}

// objectRemover is implemented by stores that can delete an object.
type objectRemover interface {
	RemoveObject(d artifacts.Digest) error
}

// producerOf returns the producer of n whose outputs include d.
func (s *scheduler) producerOf(n *Node, d artifacts.Digest) *Node {
	for _, p := range n.Producers {
		for _, od := range s.outputsOf(p) {
			if od == d {
				return p
			}
		}
	}
	return nil
}

// outputsOf returns the outputs recorded for m so far.
func (s *scheduler) outputsOf(m *Node) map[string]artifacts.Digest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.states[m.index].outputs
}

func (s *scheduler) setOutputs(m *Node, outputs map[string]artifacts.Digest) {
	s.mu.Lock()
	s.states[m.index].outputs = outputs
	s.mu.Unlock()
}

func (s *scheduler) statusOf(m *Node) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.states[m.index].status
}

func shortDigest(d artifacts.Digest) string {
	if len(d) > 12 {
		return string(d[:12])
	}
	return string(d)
}

// record writes the action of a finished execution.
func (s *scheduler) record(n *Node, ks KeySpec, key string, res *Result, started time.Time, seconds float64) error {
	for _, port := range outputPorts(n) {
		if _, ok := res.Outputs[port]; !ok {
			return fmt.Errorf("executor returned no digest for output %q", port)
		}
	}
	var tags map[string][]map[string]string
	if hasTags(ks.Tags) {
		tags = ks.Tags
	}
	err := s.opts.Store.PutAction(&artifacts.Action{
		Key: key, Instance: n.ID(), Stage: n.Uses(), Version: n.Spec.Version,
		Params: n.Params, Seed: n.Seed, Inputs: ks.Inputs, InputTags: tags, Outputs: res.Outputs,
		Summary: res.Summary, Started: started.UTC(), Seconds: seconds, Tool: ToolVersion,
	})
	if err != nil {
		return fmt.Errorf("record action: %w", err)
	}
	return nil
}

// finish sets an instance's final status and emits its event.
func (s *scheduler) finish(n *Node, status, reason string, err error) {
	st := s.states[n.index]
	s.mu.Lock()
	st.status, st.err = status, err
	if reason != "" {
		st.reason = reason
	}
	s.mu.Unlock()
	e := Event{Instance: n.ID(), Seconds: st.seconds}
	switch status {
	case StatusCached:
		e.Kind = EventCached
	case StatusRan:
		e.Kind = EventDone
	case StatusFailed:
		e.Kind, e.Err = EventFailed, err.Error()
	case StatusSkipped:
		e.Kind, e.Message = EventSkipped, st.reason
	case StatusCancelled:
		e.Kind, e.Message = EventCancelled, st.reason
	}
	s.sink.emit(e)
}

func axesOf(n *Node) map[string]string {
	if len(n.Instance.Axes) == 0 {
		return nil
	}
	axes := make(map[string]string, len(n.Instance.Axes))
	for _, b := range n.Instance.Axes {
		axes[b.Axis] = b.Label
	}
	return axes
}
