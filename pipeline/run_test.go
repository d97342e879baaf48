package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sglr-pipe/sglr-pipe/artifacts"
	"github.com/sglr-pipe/sglr-pipe/dsl"
)

const basicYAML = `name: basic
seed: 1
stages:
  a:
    uses: count
    with: {n: 4}
  b:
    uses: sum
    inputs: {in: a.table}
  c:
    uses: count
    with: {n: 2}
`

const matrixYAML = `name: sweep
seed: 3
matrix:
  scale: [1.5, 2.5]
stages:
  c:
    uses: count
    with:
      scale: ${{ matrix.scale }}
  s:
    uses: sum
    inputs: {in: c.table}
  g:
    uses: gather
    inputs: {rows: c.table[]}
`

func TestLoadErrors(t *testing.T) {
	ts := newTestStages("v1")
	dir := t.TempDir()
	if _, err := Load(dir+"/missing.yaml", nil, ts.resolver()); err == nil || !strings.Contains(err.Error(), "missing.yaml") {
		t.Errorf("missing file: err = %v, want one naming the file", err)
	}
	bad := writeFile(t, dir, "bad.yaml", "stages:\n  a:\n    uses: nosuch\n  b:\n    uses: count\n    with: {n: oops}\n")
	_, err := Load(bad, nil, ts.resolver())
	var diags dsl.Diagnostics
	if !errors.As(err, &diags) {
		t.Fatalf("bad pipeline: err = %v (%T), want dsl.Diagnostics", err, err)
	}
	if len(diags) < 2 || !strings.Contains(err.Error(), "nosuch") {
		t.Errorf("want every problem reported, got %d:\n%v", len(diags), err)
	}
}

func TestRegistryResolverListsKnownStages(t *testing.T) {
	ts := newTestStages("v1")
	_, err := ts.resolver()("cuont")
	if err == nil || !strings.Contains(err.Error(), "count, fail, gather") {
		t.Fatalf("err = %v, want the known names listed", err)
	}
}

func TestLoadDerivesSeedsAndEdges(t *testing.T) {
	ts := newTestStages("v1")
	p := mustLoad(t, writeFile(t, t.TempDir(), "m.yaml", matrixYAML), ts)
	ids := []string{}
	for _, n := range p.Nodes {
		ids = append(ids, n.ID())
		if n.Seed != DeriveSeed(3, n.ID()) {
			t.Errorf("%s: seed %d, want DeriveSeed(3, id)", n.ID(), n.Seed)
		}
	}
	if len(p.Nodes) != 5 {
		t.Fatalf("instances %v, want 2 count, 2 sum, 1 gather", ids)
	}
	g := p.Instances("g")
	if len(g) != 1 || len(g[0].Producers) != 2 {
		t.Fatalf("gather should read both count instances: %+v", g)
	}
	if got := g[0].Params; len(got) != 0 {
		t.Errorf("gather params = %v, want none", got)
	}
	c := p.Instances("c")[0]
	if c.Params.Int("n") != 3 || c.Params.Float("scale") != 1.5 {
		t.Errorf("count params = %v, want defaults filled and scale 1.5", c.Params)
	}
}

func TestSecondRunIsAllHits(t *testing.T) {
	ts := newTestStages("v1")
	store := openStore(t)
	p := mustLoad(t, writeFile(t, t.TempDir(), "basic.yaml", basicYAML), ts)
	first := mustRun(t, p, Options{Store: store, Jobs: 2})
	for id, st := range statuses(first) {
		if st != StatusRan {
			t.Errorf("first run: %s %s, want ran", id, st)
		}
	}
	if first.Status != RunOK {
		t.Errorf("first run status %s", first.Status)
	}
	second := mustRun(t, p, Options{Store: store, Jobs: 2})
	for id, st := range statuses(second) {
		if st != StatusCached {
			t.Errorf("second run: %s %s, want cached", id, st)
		}
	}
	for _, ri := range first.Instances {
		if got := instanceOf(t, second, ri.ID); !maps.Equal(got.Outputs, ri.Outputs) || got.Key != ri.Key {
			t.Errorf("%s: second run outputs %v key %s, want %v %s", ri.ID, got.Outputs, got.Key, ri.Outputs, ri.Key)
		}
	}
	// The run records are in the store.
	latest, err := store.GetRun("latest")
	if err != nil || latest.ID != second.ID {
		t.Fatalf("latest run = %v, %v; want %s", latest, err, second.ID)
	}
	// The action records what the stage reported.
	a, err := store.GetAction(instanceOf(t, first, "a").Key)
	if err != nil {
		t.Fatal(err)
	}
	if a.Summary["rows"] != 4.0 || a.Instance != "a" || a.Stage != "count" || a.Version != "v1" {
		t.Errorf("action = %+v", a)
	}
}

func TestChangedParamRerunsInstanceAndDependants(t *testing.T) {
	ts := newTestStages("v1")
	store := openStore(t)
	path := writeFile(t, t.TempDir(), "basic.yaml", basicYAML)
	mustRun(t, mustLoad(t, path, ts), Options{Store: store})
	run := mustRun(t, mustLoad(t, path, ts, "stages.a.with.n=5"), Options{Store: store})
	want := map[string]string{"a": StatusRan, "b": StatusRan, "c": StatusCached}
	if got := statuses(run); !maps.Equal(got, want) {
		t.Errorf("statuses %v, want %v", got, want)
	}
	if r := instanceOf(t, run, "a").Reason; r != "params.n 4 → 5" {
		t.Errorf("reason of a = %q", r)
	}
	if r := instanceOf(t, run, "b").Reason; r != "input in changed" {
		t.Errorf("reason of b = %q", r)
	}
}

func TestEarlyCutoff(t *testing.T) {
	ts := newTestStages("v1")
	store := openStore(t)
	path := writeFile(t, t.TempDir(), "basic.yaml", basicYAML)
	mustRun(t, mustLoad(t, path, ts), Options{Store: store})
	// note changes a's key but not its bytes: b keeps its key and stays cached.
	p := mustLoad(t, path, ts, "stages.a.with.note=hello")
	plan, err := p.Plan(context.Background(), Options{Store: store})
	if err != nil {
		t.Fatal(err)
	}
	if plan[1].Instance != "b" || plan[1].Action != ActionRun || plan[1].Reason != "upstream a will run" {
		t.Errorf("plan of b = %+v, want run because upstream a will run", plan[1])
	}
	run := mustRun(t, p, Options{Store: store})
	want := map[string]string{"a": StatusRan, "b": StatusCached, "c": StatusCached}
	if got := statuses(run); !maps.Equal(got, want) {
		t.Errorf("statuses %v, want %v", got, want)
	}
}

func TestMissingOrCorruptObjectIsRebuilt(t *testing.T) {
	tests := []struct {
		name   string
		damage func(t *testing.T, store *artifacts.DirStore, d artifacts.Digest)
		verify bool
		reason string
	}{
		{"deleted", func(t *testing.T, store *artifacts.DirStore, d artifacts.Digest) {
			if err := store.RemoveObject(d); err != nil {
				t.Fatal(err)
			}
		}, false, "output object missing"},
		{"corrupted", func(t *testing.T, store *artifacts.DirStore, d artifacts.Digest) {
			path, err := store.Path(d)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte("garbage"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, true, "output object corrupt"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ts := newTestStages("v1")
			store := openStore(t)
			p := mustLoad(t, writeFile(t, t.TempDir(), "basic.yaml", basicYAML), ts)
			first := mustRun(t, p, Options{Store: store})
			d := instanceOf(t, first, "c").Outputs["table"]
			tc.damage(t, store, d)
			plan, err := p.Plan(context.Background(), Options{Store: store, Verify: tc.verify})
			if err != nil {
				t.Fatal(err)
			}
			if plan[2].Instance != "c" || plan[2].Action != ActionRun || plan[2].Reason != tc.reason {
				t.Errorf("plan of c = %+v, want run: %s", plan[2], tc.reason)
			}
			run := mustRun(t, p, Options{Store: store, Verify: tc.verify})
			want := map[string]string{"a": StatusCached, "b": StatusCached, "c": StatusRan}
			if got := statuses(run); !maps.Equal(got, want) {
				t.Errorf("statuses %v, want %v", got, want)
			}
			if err := store.Verify(d); err != nil {
				t.Errorf("object not rebuilt: %v", err)
			}
		})
	}
}

// TestCorruptInputRebuildsItsProducer damages an object that a stage is
// about to read, without --verify: the read's own digest check finds it, the
// producer is rebuilt in the same run, the reader runs on the rebuilt bytes,
// and every digest equals a clean run's. Nothing is recorded from bad bytes.
func TestCorruptInputRebuildsItsProducer(t *testing.T) {
	damages := map[string]func(good []byte) []byte{
		"flipped byte": func(good []byte) []byte {
			b := append([]byte(nil), good...)
			b[len(b)/2] ^= 0x40
			return b
		},
		"truncated": func(good []byte) []byte { return good[:len(good)-9] },
		"replaced":  func([]byte) []byte { return []byte("junk") },
	}
	for name, damage := range damages {
		t.Run(name, func(t *testing.T) {
			ts := newTestStages("v1")
			dir := t.TempDir()
			file := writeFile(t, dir, "basic.yaml", basicYAML)
			clean := mustRun(t, mustLoad(t, file, ts, "stages.b.with.offset=1"), Options{Store: openStore(t)})

			store := openStore(t)
			first := mustRun(t, mustLoad(t, file, ts), Options{Store: store})
			d := instanceOf(t, first, "a").Outputs["table"]
			path, err := store.Path(d)
			if err != nil {
				t.Fatal(err)
			}
			good, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, damage(good), 0o644); err != nil {
				t.Fatal(err)
			}

			// b's new offset makes it run, and so read a's damaged output.
			run := mustRun(t, mustLoad(t, file, ts, "stages.b.with.offset=1"), Options{Store: store})
			want := map[string]string{"a": StatusRan, "b": StatusRan, "c": StatusCached}
			if got := statuses(run); !maps.Equal(got, want) {
				t.Errorf("statuses %v, want %v", got, want)
			}
			if r := instanceOf(t, run, "a").Reason; !strings.Contains(r, "corrupt") || !strings.Contains(r, "read by b") {
				t.Errorf("a's reason = %q, want it to say its output was corrupt when b read it", r)
			}
			for _, id := range []string{"a", "b", "c"} {
				if got, want := instanceOf(t, run, id).Outputs, instanceOf(t, clean, id).Outputs; !maps.Equal(got, want) {
					t.Errorf("%s: outputs %v, want a clean run's %v", id, got, want)
				}
			}
			if err := store.Verify(d); err != nil {
				t.Errorf("object not rebuilt: %v", err)
			}
			if rep, err := store.Check(context.Background(), artifacts.CheckOptions{ReadData: true}); err != nil || !rep.OK() {
				t.Errorf("store check after the repair: %+v %v", rep, err)
			}
		})
	}
}

func TestConcurrentRunsOnOneStore(t *testing.T) {
	ts := newTestStages("v1")
	store := openStore(t)
	p := mustLoad(t, writeFile(t, t.TempDir(), "m.yaml", matrixYAML), ts)
	var wg sync.WaitGroup
	runs := make([]*artifacts.Run, 2)
	errs := make([]error, 2)
	for i := range runs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runs[i], errs[i] = p.Run(context.Background(), Options{Store: store, Jobs: 2})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("run %d: %v", i, err)
		}
	}
	for _, ri := range runs[0].Instances {
		if other := instanceOf(t, runs[1], ri.ID); !maps.Equal(other.Outputs, ri.Outputs) {
			t.Errorf("%s: runs disagree: %v vs %v", ri.ID, ri.Outputs, other.Outputs)
		}
	}
	if again := mustRun(t, p, Options{Store: store}); again.Status != RunOK {
		t.Errorf("third run status %s", again.Status)
	} else {
		for id, st := range statuses(again) {
			if st != StatusCached {
				t.Errorf("after concurrent runs %s is %s, want cached", id, st)
			}
		}
	}
}

func TestSameSeedSameDigestsInTwoStores(t *testing.T) {
	ts := newTestStages("v1")
	path := writeFile(t, t.TempDir(), "m.yaml", matrixYAML)
	a := mustRun(t, mustLoad(t, path, ts), Options{Store: openStore(t)})
	b := mustRun(t, mustLoad(t, path, ts), Options{Store: openStore(t), Jobs: 1})
	for _, ri := range a.Instances {
		if other := instanceOf(t, b, ri.ID); !maps.Equal(other.Outputs, ri.Outputs) || other.Key != ri.Key {
			t.Errorf("%s: stores disagree: %v vs %v", ri.ID, ri.Outputs, other.Outputs)
		}
	}
	c := mustRun(t, mustLoad(t, path, ts, "seed=4"), Options{Store: openStore(t)})
	if instanceOf(t, c, "c[scale=1.5]").Outputs["table"] == instanceOf(t, a, "c[scale=1.5]").Outputs["table"] {
		t.Error("a different root seed gave the same output")
	}
}

func TestFailureSkipsDependantsOnly(t *testing.T) {
	const yaml = `stages:
  good:
    uses: count
  bad:
    uses: fail
  crash:
    uses: panic
  lazy:
    uses: lazy
  after_bad:
    uses: sum
    inputs: {in: bad.table}
  after_after:
    uses: sum
    inputs: {in: after_bad.total}
  after_good:
    uses: sum
    inputs: {in: good.table}
`
	ts := newTestStages("v1")
	store := openStore(t)
	p := mustLoad(t, writeFile(t, t.TempDir(), "f.yaml", yaml), ts)
	var mu sync.Mutex
	var events []Event
	run, err := p.Run(context.Background(), Options{Store: store, Jobs: 2, Events: func(e Event) {
		mu.Lock()
		events = append(events, e)
		mu.Unlock()
	}})
	var runErr *RunError
	if !errors.As(err, &runErr) {
		t.Fatalf("err = %v, want *RunError", err)
	}
	want := map[string]string{
		"good": StatusRan, "bad": StatusFailed, "crash": StatusFailed, "lazy": StatusFailed,
		"after_bad": StatusSkipped, "after_after": StatusSkipped, "after_good": StatusRan,
	}
	if got := statuses(run); !maps.Equal(got, want) {
		t.Errorf("statuses %v, want %v", got, want)
	}
	if run.Status != RunFailed {
		t.Errorf("run status %s, want failed", run.Status)
	}
	if len(runErr.Failures) != 3 {
		t.Errorf("failures %v, want bad, crash and lazy", runErr.Failures)
	}
	msg := err.Error()
	for _, want := range []string{"bad: stage fail: boom", "crash: stage panic panicked", "lazy: stage lazy: did not write output \"table\""} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
	if r := instanceOf(t, run, "after_after").Reason; r != "upstream after_bad skipped" {
		t.Errorf("reason = %q", r)
	}
	for _, id := range []string{"bad", "crash", "lazy"} {
		if instanceOf(t, run, id).Key == "" {
			t.Errorf("%s: failed instance has no key in the record", id)
		}
		if _, err := store.GetAction(instanceOf(t, run, id).Key); !errors.Is(err, artifacts.ErrNotFound) {
			t.Errorf("%s: failed instance has an action: %v", id, err)
		}
	}
	kinds := map[string]bool{}
	for _, e := range events {
		kinds[e.Instance+" "+e.Kind] = true
		if _, err := json.Marshal(e); err != nil {
			t.Errorf("event %+v does not encode: %v", e, err)
		}
	}
	for _, want := range []string{"good start", "good done", "bad failed", "after_bad skipped", "good progress"} {
		if !kinds[want] {
			t.Errorf("no %q event", want)
		}
	}
}

func TestFailFastCancelsTheRest(t *testing.T) {
	const yaml = `stages:
  bad:
    uses: fail
  slow:
    uses: slow
`
	ts := newTestStages("v1")
	store := openStore(t)
	p := mustLoad(t, writeFile(t, t.TempDir(), "ff.yaml", yaml), ts)
	done := make(chan struct{})
	var run *artifacts.Run
	var err error
	go func() {
		defer close(done)
		run, err = p.Run(context.Background(), Options{Store: store, Jobs: 2, FailFast: true})
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("fail-fast did not stop the slow stage")
	}
	var runErr *RunError
	if !errors.As(err, &runErr) || !runErr.Cancelled {
		t.Fatalf("err = %v, want a cancelled *RunError", err)
	}
	want := map[string]string{"bad": StatusFailed, "slow": StatusCancelled}
	if got := statuses(run); !maps.Equal(got, want) {
		t.Errorf("statuses %v, want %v", got, want)
	}
	if run.Status != RunFailed {
		t.Errorf("run status %s, want failed", run.Status)
	}
}

func TestCancellationStoresNothingPartial(t *testing.T) {
	const yaml = `stages:
  quick:
    uses: count
  slow:
    uses: slow
  after:
    uses: sum
    inputs: {in: slow.table}
`
	ts := newTestStages("v1")
	store := openStore(t)
	path := writeFile(t, t.TempDir(), "c.yaml", yaml)
	p := mustLoad(t, path, ts)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-ts.started
		cancel()
	}()
	run, err := p.Run(ctx, Options{Store: store, Jobs: 2})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if run.Status != RunCancelled {
		t.Errorf("run status %s, want cancelled", run.Status)
	}
	slow := instanceOf(t, run, "slow")
	if slow.Status != StatusCancelled || instanceOf(t, run, "after").Status != StatusCancelled {
		t.Errorf("statuses %v", statuses(run))
	}
	if _, err := store.GetAction(slow.Key); !errors.Is(err, artifacts.ErrNotFound) {
		t.Errorf("cancelled stage left an action: %v", err)
	}
	objects, err := store.ListObjects()
	if err != nil {
		t.Fatal(err)
	}
	if quick := instanceOf(t, run, "quick"); quick.Status == StatusRan && len(objects) != 1 {
		t.Errorf("store holds %d objects, want only quick's", len(objects))
	}
	if stored, err := store.GetRun(run.ID); err != nil || stored.Status != RunCancelled {
		t.Errorf("stored run = %v, %v", stored, err)
	}

	// A later run (with the slow stage swapped for a quick one) completes and
	// reuses what finished.
	fixed := strings.Replace(yaml, "uses: slow", "uses: count\n    with: {n: 7}", 1)
	p2 := mustLoad(t, writeFile(t, t.TempDir(), "c.yaml", fixed), ts)
	run2 := mustRun(t, p2, Options{Store: store})
	if run2.Status != RunOK {
		t.Errorf("later run status %s", run2.Status)
	}
}

func TestCoreBudgetIsRespected(t *testing.T) {
	var b strings.Builder
	b.WriteString("stages:\n")
	for i := 0; i < 4; i++ {
		fmt.Fprintf(&b, "  two%d:\n    uses: busy2\n    with: {id: %d}\n", i, i)
		fmt.Fprintf(&b, "  one%d:\n    uses: busy1\n    with: {id: %d}\n", i, i)
	}
	tests := []struct {
		jobs       int
		maxRunning int // stages at once, at most
		minCores   int // the peak of declared cores shows stages did overlap
		maxCores   int // and never exceeded the budget
	}{
		{jobs: 1, maxRunning: 1, minCores: 2, maxCores: 2}, // busy2 is capped to the budget and runs alone
		{jobs: 3, maxRunning: 2, minCores: 3, maxCores: 3},
		{jobs: 4, maxRunning: 3, minCores: 3, maxCores: 4},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprint("jobs=", tc.jobs), func(t *testing.T) {
			ts := newTestStages("v1")
			p := mustLoad(t, writeFile(t, t.TempDir(), "busy.yaml", b.String()), ts)
			mustRun(t, p, Options{Store: openStore(t), Jobs: tc.jobs})
			tr := ts.tracker
			if tr.maxCores < tc.minCores || tr.maxCores > tc.maxCores || tr.maxRunning > tc.maxRunning {
				t.Errorf("peak cores %d (want %d..%d), peak running %d (want at most %d)",
					tr.maxCores, tc.minCores, tc.maxCores, tr.maxRunning, tc.maxRunning)
			}
		})
	}
}

func TestSelection(t *testing.T) {
	const yaml = `stages:
  a:
    uses: count
  b:
    uses: sum
    inputs: {in: a.table}
  c:
    uses: sum
    inputs: {in: b.total}
  d:
    uses: count
    with: {n: 9}
`
	ts := newTestStages("v1")
	path := writeFile(t, t.TempDir(), "s.yaml", yaml)
	tests := []struct {
		name    string
		prepare bool // run everything first
		opts    Options
		want    map[string]string
		wantErr string
	}{
		{"targets", false, Options{Targets: []string{"b"}},
			map[string]string{"a": StatusRan, "b": StatusRan, "c": StatusSkipped, "d": StatusSkipped}, ""},
		{"only with cached inputs", true, Options{Only: []string{"c"}, Force: true},
			map[string]string{"a": StatusCached, "b": StatusCached, "c": StatusRan, "d": StatusSkipped}, ""},
		{"only with missing inputs", false, Options{Only: []string{"c"}}, nil, "--only: a is needed but not cached"},
		{"from", true, Options{From: []string{"b"}},
			map[string]string{"a": StatusCached, "b": StatusRan, "c": StatusRan, "d": StatusCached}, ""},
		{"unknown target", false, Options{Targets: []string{"zz"}}, nil, `target "zz": no such stage (stages: a, b, c, d)`},
		{"only and targets", false, Options{Only: []string{"a"}, Targets: []string{"b"}}, nil, "cannot be combined"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			store := openStore(t)
			p := mustLoad(t, path, ts)
			if tc.prepare {
				mustRun(t, p, Options{Store: store})
			}
			tc.opts.Store = store
			run, err := p.Run(context.Background(), tc.opts)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := statuses(run); !maps.Equal(got, tc.want) {
				t.Errorf("statuses %v, want %v", got, tc.want)
			}
		})
	}
}

func TestPlanReasons(t *testing.T) {
	ts := newTestStages("v1")
	store := openStore(t)
	dir := t.TempDir()
	path := writeFile(t, dir, "basic.yaml", basicYAML)
	planOf := func(ts *testStages, opts Options, sets ...string) map[string]string {
		t.Helper()
		opts.Store = store
		entries, err := mustLoad(t, path, ts, sets...).Plan(context.Background(), opts)
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]string{}
		for _, e := range entries {
			m[e.Instance] = e.Action + ": " + e.Reason
		}
		return m
	}
	fresh := planOf(ts, Options{})
	want := map[string]string{"a": "run: not run before", "b": "run: upstream a will run", "c": "run: not run before"}
	if !maps.Equal(fresh, want) {
		t.Errorf("fresh plan %v, want %v", fresh, want)
	}
	mustRun(t, mustLoad(t, path, ts), Options{Store: store})
	tests := []struct {
		name   string
		stages *testStages
		opts   Options
		sets   []string
		want   map[string]string
	}{
		{"all cached", ts, Options{}, nil, map[string]string{"a": "cached: ", "b": "cached: ", "c": "cached: "}},
		{"param", ts, Options{}, []string{"stages.c.with.n=3"}, map[string]string{"a": "cached: ", "b": "cached: ", "c": "run: params.n 2 → 3"}},
		{"default param made explicit", ts, Options{}, []string{"stages.c.with.scale=1"}, map[string]string{"a": "cached: ", "b": "cached: ", "c": "cached: "}},
		{"seed", ts, Options{}, []string{"seed=2"}, map[string]string{"a": "run: seed " + u64(DeriveSeed(1, "a")) + " → " + u64(DeriveSeed(2, "a")), "b": "run: upstream a will run", "c": "run: seed " + u64(DeriveSeed(1, "c")) + " → " + u64(DeriveSeed(2, "c"))}},
		{"stage version", newTestStages("v2"), Options{}, nil, map[string]string{"a": "run: stage count v1 → v2", "b": "run: upstream a will run", "c": "run: stage count v1 → v2"}},
		{"force", ts, Options{Force: true}, nil, map[string]string{"a": "run: --force", "b": "run: --force", "c": "run: --force"}},
		{"from", ts, Options{From: []string{"a"}}, nil, map[string]string{"a": "run: --from a", "b": "run: --from a", "c": "cached: "}},
		{"targets", ts, Options{Targets: []string{"c"}}, nil, map[string]string{"a": "skip: not selected", "b": "skip: not selected", "c": "cached: "}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := planOf(tc.stages, tc.opts, tc.sets...); !maps.Equal(got, tc.want) {
				t.Errorf("plan %v\nwant %v", got, tc.want)
			}
		})
	}
}

func u64(v uint64) string {
	b, _ := json.Marshal(v)
	return string(b)
}
