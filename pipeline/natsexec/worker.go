package natsexec

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sglr-pipe/sglr-pipe/artifacts"
	"github.com/sglr-pipe/sglr-pipe/artifacts/natsstore"
	"github.com/sglr-pipe/sglr-pipe/pipeline"
	"github.com/sglr-pipe/sglr-pipe/stages"
)

// WorkerConfig configures a worker.
type WorkerConfig struct {
	Name   string   // shown to coordinators and in logs; "" means host-pid
	Labels []string // what this machine offers (e.g. gpu); tasks requiring others are left to other workers
	Cores  int      // core budget for concurrent tasks; 0 means every CPU
	// AllowExec lists the executables and directories that `exec:` stages
	// may be run from. Empty refuses every exec: stage: a pipeline file must
	// not be a way to run arbitrary commands on someone's workers.
	AllowExec []string
	// OpenExec opens an external plugin (the CLI passes stages/exec.Open);
	// nil refuses every exec: stage.
	OpenExec func(path string) (stages.Stage, error)
	Registry *stages.Registry // built-in stages; nil means stages.Builtin
	// AckWait is how long a task may go without an acknowledgement before it
	// is redelivered to another worker; running tasks are kept alive with
	// in-progress acks every third of it. 0 means 30 seconds.
	AckWait time.Duration
	// MaxDeliver is how many times a task is delivered before JetStream
	// gives up and the coordinator reports it failed; 0 means 10.
	MaxDeliver int
	// PollInterval is how often an idle worker looks for redelivered tasks
	// (new tasks wake it at once); 0 means one second.
	PollInterval time.Duration
	Log          func(format string, args ...any) // nil discards
}

// Worker pulls tasks from the work queue and runs them. Create it with
// NewWorker, then call Run.
type Worker struct {
	nc       *nats.Conn
	js       jetstream.JetStream
	store    *natsstore.Store
	cfg      WorkerConfig
	registry *stages.Registry
	allow    []string // AllowExec, absolute with symlinks resolved
	lanes    []lane   // most specific label set first

	mu        sync.Mutex
	running   map[string]context.CancelCauseFunc // by run.task
	cancelled map[string]time.Time               // run.task -> when the coordinator withdrew it
}

// lane is one label set this worker serves, with its shared consumer.
type lane struct {
	labels   []string
	subject  string
	consumer jetstream.Consumer
}

// errWithdrawn is the cause of a task context the coordinator cancelled.
var errWithdrawn = errors.New("withdrawn by the coordinator")

// NewWorker checks cfg, sets up the streams (if missing) and the consumers
// of every label set the worker serves. Objects move through store.
func NewWorker(ctx context.Context, nc *nats.Conn, store *natsstore.Store, cfg WorkerConfig) (*Worker, error) {
	if store == nil {
		return nil, errors.New("worker: no store")
	}
	labels, err := CheckLabels(cfg.Labels)
	if err != nil {
		return nil, err
	}
	if len(labels) > MaxWorkerLabels {
		return nil, fmt.Errorf("%d labels: a worker may have at most %d", len(labels), MaxWorkerLabels)
	}
	cfg.Labels = labels
	if cfg.Cores < 0 {
		return nil, fmt.Errorf("cores must be at least 1, got %d", cfg.Cores)
	}
	if cfg.Cores == 0 {
		cfg.Cores = runtime.NumCPU()
	}
	if cfg.Name == "" {
		host, _ := os.Hostname()
		cfg.Name = fmt.Sprintf("%s-%d", host, os.Getpid())
	}
	if cfg.AckWait <= 0 {
		cfg.AckWait = 30 * time.Second
	}
	if cfg.MaxDeliver <= 0 {
		cfg.MaxDeliver = 10
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = time.Second
	}
	if cfg.Log == nil {
		cfg.Log = func(string, ...any) {}
	}
	w := &Worker{
		nc: nc, store: store, cfg: cfg, registry: cfg.Registry,
		running: map[string]context.CancelCauseFunc{}, cancelled: map[string]time.Time{},
	}
	if w.registry == nil {
		w.registry = stages.Builtin
	}
	for _, p := range cfg.AllowExec {
		abs, err := filepath.Abs(p)
		if err == nil {
			abs, err = filepath.EvalSymlinks(abs)
		}
		if err != nil {
			return nil, fmt.Errorf("--allow-exec %s: %w", p, err)
		}
		w.allow = append(w.allow, abs)
	}
	if w.js, err = jetstream.New(nc); err != nil {
		return nil, err
	}
	if err := Setup(ctx, w.js); err != nil {
		return nil, err
	}
	for mask := uint(0); mask < 1<<len(labels); mask++ {
		var set []string
		for i, l := range labels {
			if mask&(1<<i) != 0 {
				set = append(set, l)
			}
		}
		ln := lane{labels: set, subject: taskSubject(set)}
		ccfg := jetstream.ConsumerConfig{
			Durable: "sglr-tasks-" + laneName(set), Description: "sglr-pipe workers with labels " + laneName(set),
			FilterSubject: ln.subject, AckPolicy: jetstream.AckExplicitPolicy, DeliverPolicy: jetstream.DeliverAllPolicy,
			AckWait: cfg.AckWait, MaxDeliver: cfg.MaxDeliver, InactiveThreshold: 24 * time.Hour,
		}
		err := retryNATS(ctx, time.Minute, func(ctx context.Context) error {
			var err error
			ln.consumer, err = w.js.CreateOrUpdateConsumer(ctx, TaskStream, ccfg)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("consumer %s: %w", ccfg.Durable, err)
		}
		w.lanes = append(w.lanes, ln)
	}
	// Most specific first: a labelled task can only run where its labels are.
	slices.SortStableFunc(w.lanes, func(a, b lane) int { return len(b.labels) - len(a.labels) })
	return w, nil
}

// Name returns the worker's name.
func (w *Worker) Name() string { return w.cfg.Name }

// Run takes tasks until ctx is cancelled, running as many at once as the
// core budget allows. On cancellation running tasks stop and go back to the
// queue for another worker; Run returns once they have.
func (w *Worker) Run(ctx context.Context) error {
	wake := make(chan struct{}, 1)
	notify := func(*nats.Msg) {
		select {
		case wake <- struct{}{}:
		default:
		}
	}
	var subs []*nats.Subscription
	defer func() {
		for _, s := range subs {
			_ = s.Unsubscribe()
		}
	}()
	for _, ln := range w.lanes {
		s, err := w.nc.Subscribe(ln.subject, notify) // a plain subscriber sees every new task
		if err != nil {
			return fmt.Errorf("subscribe %s: %w", ln.subject, err)
		}
		subs = append(subs, s)
	}
	s, err := w.nc.Subscribe(cancelSubjects+">", w.onCancel)
	if err != nil {
		return fmt.Errorf("subscribe %s>: %w", cancelSubjects, err)
	}
	subs = append(subs, s)
	if err := w.nc.FlushTimeout(10 * time.Second); err != nil {
		w.cfg.Log("subscribing to new tasks: %v (polling meanwhile)", err)
	}

	poll := time.NewTicker(w.cfg.PollInterval)
	defer poll.Stop()
	released := make(chan int, w.cfg.Cores)
	free := w.cfg.Cores
	woken := false
	var tasks sync.WaitGroup
	defer tasks.Wait()
	for {
		for free < 1 {
			select {
			case n := <-released:
				free += n
			case <-ctx.Done():
				return nil
			}
		}
		msg := w.next(ctx)
		if msg == nil && woken {
			// A plain subscriber may hear of a task a moment before the
			// stream hands it out: look again shortly.
			for _, d := range []time.Duration{2 * time.Millisecond, 10 * time.Millisecond, 50 * time.Millisecond} {
				time.Sleep(d)
				if msg = w.next(ctx); msg != nil {
					break
				}
			}
		}
		woken = false
		if msg == nil {
			select {
			case <-wake:
				woken = true
			case <-poll.C:
			case n := <-released:
				free += n
			case <-ctx.Done():
				return nil
			}
			continue
		}
		task, params, err := decodeTask(msg.Data())
		if err != nil {
			w.reject(msg, task, err)
			continue
		}
		keepAlive := w.keepAlive(msg)
		need := max(1, min(task.Cores, w.cfg.Cores))
		for free < need {
			select {
			case n := <-released:
				free += n
			case <-ctx.Done():
				keepAlive()
				_ = msg.Nak()
				return nil
			}
		}
		free -= need
		tasks.Add(1)
		go func() {
			defer tasks.Done()
			defer func() { released <- need }()
			defer keepAlive()
			w.handle(ctx, msg, task, params)
		}()
	}
}

// next takes one task, trying the most specific label set first; nil when
// none is waiting.
func (w *Worker) next(ctx context.Context) jetstream.Msg {
	for _, ln := range w.lanes {
		if ctx.Err() != nil {
			return nil
		}
		batch, err := ln.consumer.FetchNoWait(1)
		if err != nil {
			continue // connection trouble: the poll tick tries again
		}
		var got jetstream.Msg
		for m := range batch.Messages() {
			got = m
		}
		if got != nil {
			return got
		}
	}
	return nil
}

// keepAlive sends in-progress acks for msg until the returned stop is called.
func (w *Worker) keepAlive(msg jetstream.Msg) (stop func()) {
	done := make(chan struct{})
	go func() {
		tick := time.NewTicker(w.cfg.AckWait / 3)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				_ = msg.InProgress()
			}
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { close(done) }) }
}

// handle runs one task and reports how it went.
func (w *Worker) handle(ctx context.Context, msg jetstream.Msg, task *taskMessage, params stages.Params) {
	id := task.Run + "." + task.Task
	tctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	w.mu.Lock()
	_, withdrawn := w.cancelled[id]
	if !withdrawn {
		w.running[id] = cancel
	}
	w.mu.Unlock()
	if withdrawn {
		_ = msg.Term()
		return
	}
	defer func() {
		w.mu.Lock()
		delete(w.running, id)
		w.mu.Unlock()
	}()

	delivery := uint64(1)
	if md, err := msg.Metadata(); err == nil {
		delivery = md.NumDelivered
	}
	w.cfg.Log("%s: start (delivery %d)", task.Instance, delivery)
	w.publishProgress(task, progressMessage{Kind: progressStarted})
	started := time.Now()
	res, err := w.execute(tctx, task, params)
	seconds := time.Since(started).Seconds()
	switch {
	case err == nil:
		r := resultMessage{Task: task.Task, Worker: w.cfg.Name, Outputs: res.Outputs, Summary: res.Summary, Seconds: seconds}
		if w.report(msg, task, r) {
			w.cfg.Log("%s: done in %.1fs", task.Instance, seconds)
		}
	case errors.Is(context.Cause(tctx), errWithdrawn):
		_ = msg.Term()
		w.cfg.Log("%s: stopped: %v", task.Instance, errWithdrawn)
	case ctx.Err() != nil:
		_ = msg.Nak()
		w.cfg.Log("%s: stopped: handed back to the queue for another worker", task.Instance)
	case natsstore.Transient(err):
		_ = msg.NakWithDelay(time.Second)
		w.cfg.Log("%s: handed back to the queue after trouble with NATS: %v", task.Instance, err)
	default:
		r := resultMessage{Task: task.Task, Worker: w.cfg.Name, Error: err.Error(), Seconds: seconds}
		if w.report(msg, task, r) {
			w.cfg.Log("%s: failed: %v", task.Instance, err)
		}
	}
}

// execute resolves the stage and runs it on the task's inputs.
func (w *Worker) execute(ctx context.Context, task *taskMessage, params stages.Params) (*pipeline.Result, error) {
	st, err := w.stage(task)
	if err != nil {
		return nil, err
	}
	res, err := w.executeOnce(ctx, task, st, params)
	// A local copy of an input found corrupt as the stage read it is dropped
	// and fetched again (the download is checked); once, so that an object
	// corrupt in the shared store fails the task, naming it.
	if d, ok := artifacts.CorruptObject(err); ok && ctx.Err() == nil && taskReads(task, d) {
		if derr := w.store.DropLocal(d); derr == nil {
			w.cfg.Log("%s: local copy of input %s was corrupt: fetching it again", task.Instance, d)
			res, err = w.executeOnce(ctx, task, st, params)
		}
	}
	return res, err
}

// taskReads reports whether d is one of the task's inputs.
func taskReads(task *taskMessage, d artifacts.Digest) bool {
	for _, refs := range task.Inputs {
		for _, ref := range refs {
			if ref.Digest == d {
				return true
			}
		}
	}
	return false
}

// executeOnce fetches the inputs and runs the stage in a scratch directory of
// the mirror; outputs are uploaded as they are stored.
func (w *Worker) executeOnce(ctx context.Context, task *taskMessage, st stages.Stage, params stages.Params) (*pipeline.Result, error) {
	if err := checkParams(st.Spec(), params); err != nil {
		return nil, fmt.Errorf("refused: its params do not fit stage %s %s: %w", task.Uses, task.Version, err)
	}
	inputs := map[string][]stages.Input{}
	for port, refs := range task.Inputs {
		for _, ref := range refs {
			path, err := w.store.Path(ref.Digest)
			if err != nil {
				return nil, fmt.Errorf("fetch input %s (%s): %w", port, ref.Digest, err)
			}
			inputs[port] = append(inputs[port], stages.Input{Digest: ref.Digest, Path: path, Tags: ref.Tags})
		}
	}
	return pipeline.LocalExecutor{}.Execute(ctx, &pipeline.Task{
		Instance: task.Instance, Uses: task.Uses, Stage: st, Params: params, Seed: task.Seed,
		Inputs: inputs, Progress: w.remoteProgress(task), Store: w.store,
	})
}

// stage finds the stage a task names: a built-in of the same version, or an
// exec: plugin that the allowlist permits.
func (w *Worker) stage(task *taskMessage) (stages.Stage, error) {
	if strings.HasPrefix(task.Uses, "exec:") {
		return w.openExec(task)
	}
	st, ok := w.registry.Lookup(task.Uses)
	if !ok {
		return nil, fmt.Errorf("this worker has no stage %q (it has %s): run the same sglr-pipe version on the coordinator and the workers",
			task.Uses, strings.Join(w.registry.Names(), ", "))
	}
	if v := st.Spec().Version; v != task.Version {
		return nil, fmt.Errorf("this worker has stage %s version %s, the coordinator planned with version %s: run the same sglr-pipe version on the coordinator and the workers",
			task.Uses, v, task.Version)
	}
	return st, nil
}

// openExec applies the exec: policy: refused unless the worker was started
// with --allow-exec and the executable lies in an allowed place; then it
// must be the same executable the coordinator described (same version,
// which carries the executable's digest).
func (w *Worker) openExec(task *taskMessage) (stages.Stage, error) {
	if len(w.allow) == 0 || w.cfg.OpenExec == nil {
		return nil, fmt.Errorf("refused to run %s: this worker runs external exec: stages only when started with --allow-exec PATH naming where they may come from",
			task.Uses)
	}
	if !filepath.IsAbs(task.ExecPath) {
		return nil, fmt.Errorf("refused to run %s: the task names no absolute executable path (%q)", task.Uses, task.ExecPath)
	}
	real, err := filepath.EvalSymlinks(task.ExecPath)
	if err != nil {
		return nil, fmt.Errorf("%s: %s on this worker: %w", task.Uses, task.ExecPath, err)
	}
	if !w.allowed(real) {
		return nil, fmt.Errorf("refused to run %s: %s is not under an --allow-exec path of this worker (%s)",
			task.Uses, real, strings.Join(w.allow, ", "))
	}
	st, err := w.cfg.OpenExec(real)
	if err != nil {
		return nil, err
	}
	if v := st.Spec().Version; v != task.Version {
		return nil, fmt.Errorf("%s on this worker (%s) is version %s, the coordinator's is %s: the executables differ",
			task.Uses, real, v, task.Version)
	}
	return st, nil
}

// allowed reports whether path is an allowed executable or lies under an
// allowed directory.
func (w *Worker) allowed(path string) bool {
	for _, a := range w.allow {
		rel, err := filepath.Rel(a, path)
		if err == nil && !filepath.IsAbs(rel) && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			return true
		}
	}
	return false
}

// report publishes a task's result and then acknowledges the task; if the
// result cannot be published the task goes back to the queue.
func (w *Worker) report(msg jetstream.Msg, task *taskMessage, r resultMessage) bool {
	data, err := json.Marshal(r)
	if err != nil {
		data, _ = json.Marshal(resultMessage{Task: r.Task, Worker: r.Worker, Error: fmt.Sprintf("encode result: %v", err)})
	}
	subject := resultSubjects + task.Run + "." + task.Task
	err = retryNATS(context.Background(), 2*time.Minute, func(ctx context.Context) error {
		_, err := w.js.Publish(ctx, subject, data)
		return err
	})
	if err != nil {
		_ = msg.NakWithDelay(time.Second)
		w.cfg.Log("%s: cannot publish the result (%v): handed back to the queue", task.Instance, err)
		return false
	}
	err = retryNATS(context.Background(), time.Minute, func(ctx context.Context) error { return msg.DoubleAck(ctx) })
	if err != nil {
		w.cfg.Log("%s: result published, but the acknowledgement failed (%v): the task may run again elsewhere", task.Instance, err)
	}
	return true
}

// reject answers a task this worker cannot even decode: the coordinator
// gets the reason as the instance's failure when the task names one.
func (w *Worker) reject(msg jetstream.Msg, task *taskMessage, err error) {
	w.cfg.Log("rejected a task: %v", err)
	if task != nil && task.Run != "" && task.Task != "" && !strings.ContainsAny(task.Run+task.Task, ".*> ") {
		w.report(msg, task, resultMessage{Task: task.Task, Worker: w.cfg.Name, Error: err.Error()})
		return
	}
	_ = msg.TermWithReason(err.Error())
}

// onCancel stops a task the coordinator withdrew, and remembers it for a
// while in case its message is already on its way to this worker.
func (w *Worker) onCancel(m *nats.Msg) {
	id := strings.TrimPrefix(m.Subject, cancelSubjects)
	w.mu.Lock()
	defer w.mu.Unlock()
	now := time.Now()
	w.cancelled[id] = now
	for k, t := range w.cancelled {
		if now.Sub(t) > 10*time.Minute {
			delete(w.cancelled, k)
		}
	}
	if cancel := w.running[id]; cancel != nil {
		cancel(errWithdrawn)
	}
}

// publishProgress sends a progress report to the coordinator (best effort).
func (w *Worker) publishProgress(task *taskMessage, pm progressMessage) {
	pm.Worker = w.cfg.Name
	data, err := json.Marshal(pm)
	if err != nil {
		return
	}
	_ = w.nc.Publish(progressSubjects+task.Run+"."+task.Task, data)
}

// remoteProgress is the stages.Progress of one task: throttled snapshots
// published for the coordinator.
func (w *Worker) remoteProgress(task *taskMessage) *pipeline.ThrottledProgress {
	return pipeline.NewThrottledProgress(
		func(done, total int64, unit string) {
			w.publishProgress(task, progressMessage{Kind: progressBar, Done: done, Total: total, Unit: unit})
		},
		func(msg string) { w.publishProgress(task, progressMessage{Kind: progressStatus, Message: msg}) })
}
