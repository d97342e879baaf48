package natsexec

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sglr-pipe/sglr-pipe/artifacts"
	"github.com/sglr-pipe/sglr-pipe/artifacts/natsstore"
	"github.com/sglr-pipe/sglr-pipe/pipeline"
	"github.com/sglr-pipe/sglr-pipe/stages"
	stageexec "github.com/sglr-pipe/sglr-pipe/stages/exec"
)

// Test stages: small, deterministic, and each exercising one thing.

// genStage writes n rows v = scale*i + (seed mod 1000)/1000, reporting a
// progress step per row.
type genStage struct{}

func (genStage) Spec() stages.Spec {
	return stages.Spec{
		Name: "gen", Version: "v1",
		Outputs: []stages.Port{{Name: "table", Kind: artifacts.KindTable}},
		Params: []stages.Param{
			{Name: "n", Type: stages.TypeInt, Default: int64(3)},
			{Name: "scale", Type: stages.TypeFloat, Default: 1.0},
			{Name: "extra", Type: stages.TypeList, Default: []any{}},
		},
	}
}

func (genStage) Run(ctx context.Context, env *stages.Env) error {
	n, scale := env.Params.Int("n"), env.Params.Float("scale")
	v := &artifacts.Column{Name: "v", Floats: []float64{}}
	env.Progress.Start(n, "rows")
	for i := int64(0); i < n; i++ {
		v.Floats = append(v.Floats, scale*float64(i)+float64(env.Seed%1000)/1000)
		env.Progress.Add(1)
	}
	for _, e := range env.Params.List("extra") { // an integral float must still be a float here
		v.Floats = append(v.Floats, e.(float64))
	}
	env.Report("rows", n)
	return env.WriteTable("table", &artifacts.Table{Columns: []artifacts.Column{*v}})
}

// sumStage sums its gathered inputs, labelling each row with its tags.
type sumStage struct{}

func (sumStage) Spec() stages.Spec {
	return stages.Spec{
		Name: "sum", Version: "v1",
		Inputs:  []stages.Port{{Name: "rows", Kind: artifacts.KindTable, Multi: true}},
		Outputs: []stages.Port{{Name: "table", Kind: artifacts.KindTable}},
	}
}

func (sumStage) Run(ctx context.Context, env *stages.Env) error {
	tables, tags, err := env.ReadTables("rows")
	if err != nil {
		return err
	}
	label := artifacts.Column{Name: "tags", Strings: []string{}}
	total := artifacts.Column{Name: "sum", Floats: []float64{}}
	for i, tb := range tables {
		var s float64
		for _, f := range tb.Columns[0].Floats {
			s += f
		}
		label.Strings = append(label.Strings, fmt.Sprint(tags[i]))
		total.Floats = append(total.Floats, s)
	}
	return env.WriteTable("table", &artifacts.Table{Columns: []artifacts.Column{label, total}})
}

// sleepStage waits ms milliseconds (or until cancelled) and writes a table.
type sleepStage struct{}

func (sleepStage) Spec() stages.Spec {
	return stages.Spec{
		Name: "sleep", Version: "v1",
		Outputs: []stages.Port{{Name: "table", Kind: artifacts.KindTable}},
		Params:  []stages.Param{{Name: "ms", Type: stages.TypeInt, Default: int64(10)}},
	}
}

func (sleepStage) Run(ctx context.Context, env *stages.Env) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(time.Duration(env.Params.Int("ms")) * time.Millisecond):
	}
	return env.WriteTable("table", &artifacts.Table{Columns: []artifacts.Column{{Name: "ms", Ints: []int64{env.Params.Int("ms")}}}})
}

func testRegistry() *stages.Registry {
	reg := stages.NewRegistry()
	for _, s := range []stages.Stage{genStage{}, sumStage{}, sleepStage{}} {
		reg.Register(s)
	}
	return reg
}

// The test cluster: a real server on loopback, in-process workers.

func startServer(t testing.TB) *server.Server {
	t.Helper()
	s, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server did not start")
	}
	t.Cleanup(s.Shutdown)
	return s
}

func connect(t testing.TB, url string) *nats.Conn {
	t.Helper()
	nc, err := Connect(ConnectOptions{URL: url, Name: t.Name()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

func openStore(t testing.TB, nc *nats.Conn) *natsstore.Store {
	t.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	mirror, err := artifacts.OpenDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s, err := natsstore.Open(context.Background(), js, mirror, natsstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// logLines collects a worker's log lines safely.
type logLines struct {
	mu    sync.Mutex
	lines []string
}

func (l *logLines) logf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf(format, args...))
}

func (l *logLines) contains(s string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, line := range l.lines {
		if strings.Contains(line, s) {
			return true
		}
	}
	return false
}

// startWorker runs an in-process worker on its own connection and mirror
// until the test ends.
func startWorker(t testing.TB, url string, cfg WorkerConfig) *logLines {
	t.Helper()
	nc := connect(t, url)
	logs := &logLines{}
	if cfg.Registry == nil {
		cfg.Registry = testRegistry()
	}
	cfg.Log = logs.logf
	w, err := NewWorker(context.Background(), nc, openStore(t, nc), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("worker %s: %v", cfg.Name, err)
		}
	})
	return logs
}

// events records a run's events.
type events struct {
	mu  sync.Mutex
	all []pipeline.Event
}

func (e *events) add(ev pipeline.Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.all = append(e.all, ev)
}

func (e *events) find(match func(pipeline.Event) bool) []pipeline.Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []pipeline.Event
	for _, ev := range e.all {
		if match(ev) {
			out = append(out, ev)
		}
	}
	return out
}

// resolver resolves the test stages and exec: plugins beside the pipeline.
func resolver(dir string) pipeline.Resolver {
	builtin := pipeline.RegistryResolver(testRegistry())
	return func(uses string) (stages.Stage, error) {
		if path, ok := strings.CutPrefix(uses, "exec:"); ok {
			return stageexec.Open(filepath.Join(dir, path))
		}
		return builtin(uses)
	}
}

func loadPipeline(t *testing.T, dir, text string) *pipeline.Pipeline {
	t.Helper()
	file := filepath.Join(dir, "pipeline.yaml")
	if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := pipeline.Load(file, nil, resolver(dir))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func newExecutor(t *testing.T, nc *nats.Conn, cfg ExecutorConfig) *Executor {
	t.Helper()
	e, err := NewExecutor(context.Background(), nc, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

const sweepYAML = `name: sweep
seed: 5
matrix:
  scale: [0.5, 1.5, 2.5, 3.5]
stages:
  gen:
    uses: gen
    with: {n: 50, scale: "${{ matrix.scale }}", extra: [2.0, 0.25]}
  sum:
    uses: sum
    inputs: {rows: gen.table[]}
`

func outputsByInstance(run *artifacts.Run) map[string]map[string]artifacts.Digest {
	out := map[string]map[string]artifacts.Digest{}
	for _, in := range run.Instances {
		out[in.ID] = in.Outputs
	}
	return out
}

func TestSweepOnWorkersMatchesLocal(t *testing.T) {
	srv := startServer(t)
	dir := t.TempDir()
	p := loadPipeline(t, dir, sweepYAML)
	localStore, err := artifacts.OpenDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	local, err := p.Run(context.Background(), pipeline.Options{Store: localStore})
	if err != nil {
		t.Fatal(err)
	}

	logs := []*logLines{
		startWorker(t, srv.ClientURL(), WorkerConfig{Name: "w1", Cores: 1}),
		startWorker(t, srv.ClientURL(), WorkerConfig{Name: "w2", Cores: 2}),
	}
	nc := connect(t, srv.ClientURL())
	store := openStore(t, nc)
	exec := newExecutor(t, nc, ExecutorConfig{})
	ev := &events{}
	remote, err := p.Run(context.Background(), pipeline.Options{Store: store, Executor: exec, Jobs: 64, Events: ev.add})
	if err != nil {
		t.Fatal(err)
	}
	want, got := outputsByInstance(local), outputsByInstance(remote)
	if !maps.EqualFunc(want, got, maps.Equal) {
		t.Errorf("outputs on workers %v\nlocal outputs %v", got, want)
	}
	if n := exec.Submitted(); n != 5 {
		t.Errorf("submitted %d tasks, want 5", n)
	}
	for _, in := range remote.Instances {
		if in.Status != pipeline.StatusRan {
			t.Errorf("%s: %s", in.ID, in.Status)
		}
		a, err := store.GetAction(in.Key)
		if err != nil {
			t.Fatalf("%s: action not in the shared cache: %v", in.ID, err)
		}
		if in.Uses == "gen" && fmt.Sprint(a.Summary["rows"]) != "50" {
			t.Errorf("%s: summary %v, want rows 50", in.ID, a.Summary)
		}
	}
	onWorker := ev.find(func(e pipeline.Event) bool {
		return e.Kind == pipeline.EventStatus && strings.HasPrefix(e.Message, "on worker w")
	})
	bars := ev.find(func(e pipeline.Event) bool {
		return e.Kind == pipeline.EventProgress && e.Total == 50 && e.Done == 50 && e.Unit == "rows"
	})
	if len(onWorker) == 0 || len(bars) != 4 {
		t.Errorf("saw %d 'on worker' statuses and %d completed progress bars, want some and 4", len(onWorker), len(bars))
	}
	if !logs[0].contains("done in") && !logs[1].contains("done in") {
		t.Error("no worker logged a finished task")
	}
	rep, err := store.Check(context.Background(), true)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || rep.Actions != 5 {
		t.Errorf("shared store check: %d actions, problems %v", rep.Actions, rep.Problems)
	}

	// A second coordinator, on another machine's mirror, finds it all cached
	// and submits nothing.
	nc2 := connect(t, srv.ClientURL())
	exec2 := newExecutor(t, nc2, ExecutorConfig{})
	again, err := p.Run(context.Background(), pipeline.Options{Store: openStore(t, nc2), Executor: exec2})
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range again.Instances {
		if in.Status != pipeline.StatusCached {
			t.Errorf("second run: %s %s (%s)", in.ID, in.Status, in.Reason)
		}
	}
	if n := exec2.Submitted(); n != 0 {
		t.Errorf("a cached sweep submitted %d tasks", n)
	}
}

func TestLabelledTasksGoToLabelledWorkers(t *testing.T) {
	srv := startServer(t)
	plain := startWorker(t, srv.ClientURL(), WorkerConfig{Name: "plain", Cores: 2})
	gpu := startWorker(t, srv.ClientURL(), WorkerConfig{Name: "gpu", Labels: []string{"gpu"}, Cores: 1})
	nc := connect(t, srv.ClientURL())
	exec := newExecutor(t, nc, ExecutorConfig{Labels: func(instance string) []string {
		if strings.HasPrefix(instance, "gen") {
			return []string{"gpu"}
		}
		return nil
	}})
	p := loadPipeline(t, t.TempDir(), sweepYAML)
	ev := &events{}
	if _, err := p.Run(context.Background(), pipeline.Options{Store: openStore(t, nc), Executor: exec, Jobs: 64, Events: ev.add}); err != nil {
		t.Fatal(err)
	}
	for _, e := range ev.find(func(e pipeline.Event) bool { return strings.HasPrefix(e.Message, "on worker") }) {
		if strings.HasPrefix(e.Instance, "gen") && e.Message != "on worker gpu" {
			t.Errorf("%s ran %s, want on worker gpu", e.Instance, e.Message)
		}
	}
	if plain.contains("gen[") {
		t.Error("the worker without the gpu label ran a gen instance")
	}
	if !gpu.contains("gen[scale=0.5]: done") {
		t.Error("the gpu worker did not run gen[scale=0.5]")
	}
}

// writePlugin writes a /bin/sh exec: plugin with no inputs and one output,
// a copy of a table artifact written beside it.
func writePlugin(t *testing.T, dir string) string {
	t.Helper()
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("no /bin/sh")
	}
	var table bytes.Buffer
	if err := artifacts.WriteTable(&table, &artifacts.Table{Columns: []artifacts.Column{{Name: "hello", Ints: []int64{1}}}}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "table.arrow"), table.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "plugin.sh")
	script := `#!/bin/sh
case "$1" in
describe)
  echo '{"name":"hello","version":"1","doc":"","inputs":[],"outputs":[{"name":"out","kind":"table","doc":""}],"params":[],"cores":1}'
  ;;
run)
  dir=$(sed -n 's/.*"out_dir": *"\([^"]*\)".*/\1/p' "$2")
  cp "$(dirname "$0")/table.arrow" "$dir/out"
  ;;
esac
`
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestExecStagesNeedAnAllowlist(t *testing.T) {
	srv := startServer(t)
	dir := t.TempDir()
	writePlugin(t, dir)
	elsewhere := t.TempDir()
	p := loadPipeline(t, dir, "name: plug\nstages:\n  hi:\n    uses: exec:./plugin.sh\n")
	tests := []struct {
		name    string
		allow   []string
		open    bool
		wantErr string
	}{
		{"no --allow-exec", nil, true, "refused to run exec:./plugin.sh: this worker runs external exec: stages only when started with --allow-exec"},
		{"allowlist without the plugin", []string{elsewhere}, true, "is not under an --allow-exec path of this worker (" + elsewhere},
		{"allowed directory", []string{dir}, true, ""},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := fmt.Sprintf("w%d", i)
			cfg := WorkerConfig{Name: name, Cores: 1, AllowExec: tt.allow}
			if tt.open {
				cfg.OpenExec = stageexec.Open
			}
			nc := connect(t, srv.ClientURL())
			w, err := NewWorker(context.Background(), nc, openStore(t, nc), cfg)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- w.Run(ctx) }()
			defer func() {
				cancel()
				<-done
			}()
			exec := newExecutor(t, nc, ExecutorConfig{ExecBase: dir})
			run, err := p.Run(context.Background(), pipeline.Options{Store: openStore(t, nc), Executor: exec})
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || run.Instances[0].Status != pipeline.StatusFailed {
				t.Fatalf("run succeeded, want a refusal")
			}
			msg := run.Instances[0].Error
			if !strings.Contains(msg, "on worker "+name+": ") || !strings.Contains(msg, tt.wantErr) {
				t.Fatalf("failure %q, want it to name worker %s and say %q", msg, name, tt.wantErr)
			}
		})
	}
}

func TestCancelWithdrawsRunningTask(t *testing.T) {
	srv := startServer(t)
	logs := startWorker(t, srv.ClientURL(), WorkerConfig{Name: "w", Cores: 1})
	nc := connect(t, srv.ClientURL())
	exec := newExecutor(t, nc, ExecutorConfig{})
	p := loadPipeline(t, t.TempDir(), "name: slow\nstages:\n  nap:\n    uses: sleep\n    with: {ms: 20000}\n")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events := make(chan pipeline.Event, 100)
	go func() {
		for e := range events {
			if e.Kind == pipeline.EventStatus && e.Message == "on worker w" {
				cancel()
			}
		}
	}()
	started := time.Now()
	run, err := p.Run(ctx, pipeline.Options{Store: openStore(t, nc), Executor: exec, Events: func(e pipeline.Event) { events <- e }})
	close(events)
	if !errors.Is(err, context.Canceled) || run.Status != pipeline.RunCancelled {
		t.Fatalf("run: %v (status %s), want cancelled", err, run.Status)
	}
	if took := time.Since(started); took > 10*time.Second {
		t.Errorf("cancelling took %s", took)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !logs.contains("nap: stopped: withdrawn by the coordinator") {
		if time.Now().After(deadline) {
			t.Fatalf("the worker did not stop the withdrawn task; its log: %v", logs.lines)
		}
		time.Sleep(20 * time.Millisecond)
	}
	js, _ := jetstream.New(nc)
	st, err := js.Stream(context.Background(), TaskStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 0 {
		t.Errorf("%d tasks left on the queue after the cancelled run", info.State.Msgs)
	}
}

func TestUndeliverableTaskFails(t *testing.T) {
	srv := startServer(t)
	nc := connect(t, srv.ClientURL())
	// A worker that takes tasks and dies without a word, every time: its
	// consumer allows two deliveries.
	w, err := NewWorker(context.Background(), nc, openStore(t, nc), WorkerConfig{
		Name: "doomed", Cores: 1, AckWait: 200 * time.Millisecond, MaxDeliver: 2, Registry: testRegistry(),
	})
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
				w.next(context.Background()) // taken, never acknowledged
			}
		}
	}()
	exec := newExecutor(t, nc, ExecutorConfig{})
	p := loadPipeline(t, t.TempDir(), "name: doomed\nstages:\n  nap:\n    uses: sleep\n")
	run, err := p.Run(context.Background(), pipeline.Options{Store: openStore(t, nc), Executor: exec})
	if err == nil {
		t.Fatal("run succeeded")
	}
	if msg := run.Instances[0].Error; !strings.Contains(msg, "delivered 2 times and never finished") {
		t.Errorf("failure %q", msg)
	}
}

func TestStoppedWorkerHandsTaskBack(t *testing.T) {
	srv := startServer(t)
	nc := connect(t, srv.ClientURL())
	first, err := NewWorker(context.Background(), nc, openStore(t, nc), WorkerConfig{
		Name: "first", Cores: 1, Registry: testRegistry(), AckWait: time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, stopFirst := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- first.Run(ctx) }()

	exec := newExecutor(t, nc, ExecutorConfig{})
	p := loadPipeline(t, t.TempDir(), "name: nap\nstages:\n  nap:\n    uses: sleep\n    with: {ms: 1500}\n")
	secondLogs := make(chan *logLines, 1)
	events := make(chan pipeline.Event, 100)
	go func() {
		handedOver := false
		for e := range events {
			if e.Message == "on worker first" && !handedOver {
				handedOver = true
				stopFirst() // like Ctrl-C on the worker, mid-stage
				if err := <-done; err != nil {
					t.Errorf("worker first: %v", err)
				}
				secondLogs <- startWorker(t, srv.ClientURL(), WorkerConfig{Name: "second", Cores: 1, AckWait: time.Minute})
			}
		}
	}()
	started := time.Now()
	run, err := p.Run(context.Background(), pipeline.Options{Store: openStore(t, nc), Executor: exec, Events: func(e pipeline.Event) { events <- e }})
	close(events)
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(started); took > 20*time.Second {
		t.Errorf("the handed-back task took %s: it waited for the ack deadline instead", took)
	}
	second := <-secondLogs
	if run.Instances[0].Status != pipeline.StatusRan || !second.contains("nap: start (delivery 2)") {
		t.Errorf("status %s; the second worker did not take the task over", run.Instances[0].Status)
	}
}

// TestWorkerRefetchesACorruptLocalCopy damages a worker's mirror copy of an
// input between two runs: the stage's checked read finds it, the worker drops
// the copy, fetches the object again from the shared store and the task
// succeeds with the digests of the first run.
func TestWorkerRefetchesACorruptLocalCopy(t *testing.T) {
	srv := startServer(t)
	p := loadPipeline(t, t.TempDir(), "name: two\nstages:\n  g:\n    uses: gen\n  s:\n    uses: sum\n    inputs: {rows: g.table[]}\n")

	nc := connect(t, srv.ClientURL())
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	mirror, err := artifacts.OpenDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	workerStore, err := natsstore.Open(context.Background(), js, mirror, natsstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	logs := &logLines{}
	w, err := NewWorker(context.Background(), nc, workerStore, WorkerConfig{Name: "w1", Cores: 1, Registry: testRegistry(), Log: logs.logf})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()

	coordNC := connect(t, srv.ClientURL())
	store := openStore(t, coordNC)
	exec := newExecutor(t, coordNC, ExecutorConfig{})
	first, err := p.Run(context.Background(), pipeline.Options{Store: store, Executor: exec})
	if err != nil {
		t.Fatal(err)
	}
	d := outputsByInstance(first)["g"]["table"]
	path, err := mirror.Path(d)
	if err != nil {
		t.Fatalf("the worker has no local copy of g.table: %v", err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("junk"), 0o644); err != nil {
		t.Fatal(err)
	}
	second, err := p.Run(context.Background(), pipeline.Options{Store: store, Executor: exec, From: []string{"s"}})
	if err != nil {
		t.Fatalf("rerun of s with a corrupt local copy of its input: %v", err)
	}
	if got, want := outputsByInstance(second), outputsByInstance(first); !maps.EqualFunc(got, want, maps.Equal) {
		t.Errorf("outputs %v, want %v", got, want)
	}
	if !logs.contains("was corrupt: fetching it again") {
		t.Errorf("the worker did not say it fetched the input again")
	}
	if err := mirror.Verify(d); err != nil {
		t.Errorf("local copy after the rerun: %v", err)
	}
}
