package pipeline

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sglr-pipe/sglr-pipe/artifacts"
	"github.com/sglr-pipe/sglr-pipe/stages"
)

// Small real stages for the scheduler tests. They read and write real table
// artifacts through the real store.

// countStage writes rows i = 0..n-1 with v = scale*i + (seed mod 1000)/1000.
// Its "note" parameter enters the cache key but not the output, which lets
// tests provoke an upstream re-run that yields identical bytes.
type countStage struct{ version string }

func (s countStage) Spec() stages.Spec {
	return stages.Spec{
		Name: "count", Version: s.version, Doc: "counts",
		Outputs: []stages.Port{{Name: "table", Kind: artifacts.KindTable}},
		Params: []stages.Param{
			{Name: "n", Type: stages.TypeInt, Default: int64(3)},
			{Name: "scale", Type: stages.TypeFloat, Default: 1.0},
			{Name: "note", Type: stages.TypeString, Default: ""},
		},
	}
}

func (s countStage) Run(ctx context.Context, env *stages.Env) error {
	n, scale := env.Params.Int("n"), env.Params.Float("scale")
	t := &artifacts.Table{Columns: []artifacts.Column{{Name: "i"}, {Name: "v"}}}
	t.Columns[0].Ints, t.Columns[1].Floats = []int64{}, []float64{}
	env.Progress.Start(n, "rows")
	for i := int64(0); i < n; i++ {
		t.Columns[0].Ints = append(t.Columns[0].Ints, i)
		t.Columns[1].Floats = append(t.Columns[1].Floats, scale*float64(i)+float64(env.Seed%1000)/1000)
		env.Progress.Add(1)
	}
	env.Report("rows", n)
	return writeTable(env, "table", t)
}

// sumStage sums column v of its input plus an offset.
type sumStage struct{}

func (sumStage) Spec() stages.Spec {
	return stages.Spec{
		Name: "sum", Version: "v1",
		Inputs:  []stages.Port{{Name: "in", Kind: artifacts.KindTable}},
		Outputs: []stages.Port{{Name: "total", Kind: artifacts.KindTable}},
		Params:  []stages.Param{{Name: "offset", Type: stages.TypeFloat, Default: 0.0}},
	}
}

func (sumStage) Run(ctx context.Context, env *stages.Env) error {
	in, err := env.Input("in")
	if err != nil {
		return err
	}
	total, err := sumOf(in)
	if err != nil {
		return err
	}
	t := &artifacts.Table{Columns: []artifacts.Column{{Name: "sum", Floats: []float64{total + env.Params.Float("offset")}}}}
	return writeTable(env, "total", t)
}

// gatherStage writes one row per gathered input: its tags and its sum.
type gatherStage struct{}

func (gatherStage) Spec() stages.Spec {
	return stages.Spec{
		Name: "gather", Version: "v1",
		Inputs:  []stages.Port{{Name: "rows", Kind: artifacts.KindTable, Multi: true}},
		Outputs: []stages.Port{{Name: "table", Kind: artifacts.KindTable}},
	}
}

func (gatherStage) Run(ctx context.Context, env *stages.Env) error {
	tags, sums := []string{}, []float64{}
	for _, in := range env.Inputs["rows"] {
		total, err := sumOf(in)
		if err != nil {
			return err
		}
		var parts []string
		for k, v := range in.Tags {
			parts = append(parts, k+"="+v)
		}
		sort.Strings(parts)
		tags, sums = append(tags, strings.Join(parts, ",")), append(sums, total)
	}
	t := &artifacts.Table{Columns: []artifacts.Column{{Name: "tags", Strings: tags}, {Name: "sum", Floats: sums}}}
	return writeTable(env, "table", t)
}

// failStage always fails.
type failStage struct{}

func (failStage) Spec() stages.Spec {
	return stages.Spec{Name: "fail", Version: "v1", Outputs: []stages.Port{{Name: "table", Kind: artifacts.KindTable}}}
}

func (failStage) Run(ctx context.Context, env *stages.Env) error { return errors.New("boom") }

// panicStage panics.
type panicStage struct{}

func (panicStage) Spec() stages.Spec {
	return stages.Spec{Name: "panic", Version: "v1", Outputs: []stages.Port{{Name: "table", Kind: artifacts.KindTable}}}
}

func (panicStage) Run(ctx context.Context, env *stages.Env) error {
	var m map[string]int
	m["x"] = 1 // a real runtime panic: assignment to a nil map
	return nil
}

// lazyStage returns nil without writing its output.
type lazyStage struct{}

func (lazyStage) Spec() stages.Spec {
	return stages.Spec{Name: "lazy", Version: "v1", Outputs: []stages.Port{{Name: "table", Kind: artifacts.KindTable}}}
}

func (lazyStage) Run(ctx context.Context, env *stages.Env) error { return nil }

// slowStage signals that it started, then waits for its context.
type slowStage struct {
	once    *sync.Once
	started chan struct{}
}

func (slowStage) Spec() stages.Spec {
	return stages.Spec{Name: "slow", Version: "v1", Outputs: []stages.Port{{Name: "table", Kind: artifacts.KindTable}}}
}

func (s slowStage) Run(ctx context.Context, env *stages.Env) error {
	// Write a partial output first: cancellation must not store it.
	t := &artifacts.Table{Columns: []artifacts.Column{{Name: "partial", Ints: []int64{1}}}}
	if err := writeTable(env, "table", t); err != nil {
		return err
	}
	s.once.Do(func() { close(s.started) })
	<-ctx.Done()
	return ctx.Err()
}

// busyStage holds its cores for a while and records how many cores all busy
// stages held at once.
type busyStage struct {
	name    string
	cores   int
	tracker *coreTracker
}

type coreTracker struct {
	mu                  sync.Mutex
	cores, maxCores     int // declared cores of the busy stages running now, and the peak
	running, maxRunning int // busy stages running now, and the peak
}

func (s busyStage) Spec() stages.Spec {
	return stages.Spec{
		Name: s.name, Version: "v1", Cores: s.cores,
		Outputs: []stages.Port{{Name: "table", Kind: artifacts.KindTable}},
		Params:  []stages.Param{{Name: "id", Type: stages.TypeInt, Default: int64(0)}},
	}
}

func (s busyStage) Run(ctx context.Context, env *stages.Env) error {
	tr := s.tracker
	tr.mu.Lock()
	tr.cores, tr.running = tr.cores+s.cores, tr.running+1
	tr.maxCores, tr.maxRunning = max(tr.maxCores, tr.cores), max(tr.maxRunning, tr.running)
	tr.mu.Unlock()
	defer func() {
		tr.mu.Lock()
		tr.cores, tr.running = tr.cores-s.cores, tr.running-1
		tr.mu.Unlock()
	}()
	select {
	case <-time.After(30 * time.Millisecond):
	case <-ctx.Done():
		return ctx.Err()
	}
	t := &artifacts.Table{Columns: []artifacts.Column{{Name: "id", Ints: []int64{env.Params.Int("id")}}}}
	return writeTable(env, "table", t)
}

// testStages is a registry of the stages above plus handles on their state.
type testStages struct {
	reg     *stages.Registry
	started chan struct{} // closed when slow starts
	tracker *coreTracker
}

func newTestStages(countVersion string) *testStages {
	ts := &testStages{reg: stages.NewRegistry(), started: make(chan struct{}), tracker: &coreTracker{}}
	for _, s := range []stages.Stage{
		countStage{version: countVersion}, sumStage{}, gatherStage{}, failStage{}, panicStage{}, lazyStage{}, clockStage{},
		slowStage{once: &sync.Once{}, started: ts.started},
		busyStage{name: "busy1", cores: 1, tracker: ts.tracker},
		busyStage{name: "busy2", cores: 2, tracker: ts.tracker},
	} {
		ts.reg.Register(s)
	}
	return ts
}

func (ts *testStages) resolver() Resolver { return RegistryResolver(ts.reg) }

func writeTable(env *stages.Env, port string, t *artifacts.Table) error {
	f, err := env.CreateOutput(port)
	if err != nil {
		return err
	}
	if err := artifacts.WriteTable(f, t); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", port, err)
	}
	return f.Close()
}

// sumOf adds up the numbers of the table on in, read as stages read their
// inputs: checked against the digest it was delivered under.
func sumOf(in stages.Input) (float64, error) {
	t, err := stages.ReadInput(in, artifacts.ReadTable)
	if err != nil {
		return 0, err
	}
	var total float64
	for _, c := range t.Columns {
		for _, v := range c.Floats {
			total += v
		}
		for _, v := range c.Ints {
			total += float64(v)
		}
	}
	return total, nil
}

// Helpers shared by the tests.

func writeFile(t testing.TB, dir, name, text string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func openStore(t testing.TB) *artifacts.DirStore {
	t.Helper()
	s, err := artifacts.OpenDir(filepath.Join(t.TempDir(), "store"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustLoad(t testing.TB, path string, ts *testStages, sets ...string) *Pipeline {
	t.Helper()
	p, err := Load(path, sets, ts.resolver())
	if err != nil {
		t.Fatalf("load %s: %v", path, err)
	}
	return p
}

func mustRun(t testing.TB, p *Pipeline, opts Options) *artifacts.Run {
	t.Helper()
	run, err := p.Run(context.Background(), opts)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	return run
}

// statuses maps instance id -> status in a run record.
func statuses(run *artifacts.Run) map[string]string {
	m := map[string]string{}
	for _, ri := range run.Instances {
		m[ri.ID] = ri.Status
	}
	return m
}

func instanceOf(t testing.TB, run *artifacts.Run, id string) artifacts.RunInstance {
	t.Helper()
	for _, ri := range run.Instances {
		if ri.ID == id {
			return ri
		}
	}
	t.Fatalf("run has no instance %s", id)
	return artifacts.RunInstance{}
}

// clockStage writes the time: it is not reproducible, which Replay must notice.
type clockStage struct{}

func (clockStage) Spec() stages.Spec {
	return stages.Spec{Name: "clock", Version: "v1", Outputs: []stages.Port{{Name: "table", Kind: artifacts.KindTable}}}
}

func (clockStage) Run(ctx context.Context, env *stages.Env) error {
	t := &artifacts.Table{Columns: []artifacts.Column{{Name: "ns", Ints: []int64{time.Now().UnixNano()}}}}
	return writeTable(env, "table", t)
}
