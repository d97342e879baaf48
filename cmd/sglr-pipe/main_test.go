package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sglr-pipe/sglr-pipe/artifacts"
	"github.com/sglr-pipe/sglr-pipe/pipeline"
)

// binary is the sglr-pipe executable TestMain builds once for every test.
var binary string

// TestMain builds the real binary: the tests run it as users do, which also
// proves it starts with gorgonia linked under the current Go.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "sglr-pipe-cli-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "sglr-pipe")
	if runtime.GOOS == "windows" {
		binary += ".exe"
	}
	build := exec.Command("go", "build", "-o", binary, ".")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build sglr-pipe:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// result is what one invocation of the binary did.
type result struct {
	stdout, stderr string
	code           int
}

// sglr runs the binary in dir with args and returns its output and exit code.
func sglr(t *testing.T, dir string, args ...string) result {
	t.Helper()
	return sglrEnv(t, dir, nil, args...)
}

// sglrEnv is sglr with extra environment variables.
func sglrEnv(t *testing.T, dir string, env []string, args ...string) result {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Dir = dir
	cmd.Env = append(testEnv(), env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errOut.String()}
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("sglr-pipe %s: %v", strings.Join(args, " "), err)
		}
		r.code = ee.ExitCode()
	}
	if strings.Contains(r.stderr, "goroutine ") || strings.Contains(r.stderr, "panic:") {
		t.Fatalf("sglr-pipe %s panicked:\n%s", strings.Join(args, " "), r.stderr)
	}
	return r
}

// mustSucceed runs the binary and fails the test unless it exits 0.
func mustSucceed(t *testing.T, dir string, args ...string) result {
	t.Helper()
	r := sglr(t, dir, args...)
	if r.code != 0 {
		t.Fatalf("sglr-pipe %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

// testEnv is the environment without $SGLR_STORE, so defaults are tested.
func testEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, storeEnv+"=") {
			env = append(env, kv)
		}
	}
	return env
}

// smallPipeline is a pipeline that runs in well under a second: synthetic
// data, label noise at two rates and a label-stats table.
const smallPipeline = `name: small
seed: 7
matrix:
  noise: [0.1, 0.3]
stages:
  data:
    uses: load
    with:
      dataset: synthetic
      train: 300
      val: 50
      test: 50
      classes: 4
      shape: [1, 8, 8]
  noisy:
    uses: noise
    inputs:
      dataset: data.train
    with:
      kind: symmetric
      rate: ${{ matrix.noise }}
  stats:
    uses: label-stats
    inputs:
      datasets: noisy.dataset[]
`

// writePipeline writes a pipeline file into a new temp dir and returns both.
func writePipeline(t *testing.T, text string) (dir, file string) {
	t.Helper()
	dir = t.TempDir()
	file = filepath.Join(dir, "pipeline.yaml")
	if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, file
}

// runJSON runs `run --json` and decodes its events and final summary.
func runJSON(t *testing.T, dir string, args ...string) ([]pipeline.Event, runSummary, result) {
	t.Helper()
	r := sglr(t, dir, append([]string{"run", "--json"}, args...)...)
	events, summary := decodeRunJSON(t, r.stdout)
	return events, summary, r
}

// decodeRunJSON splits --json output into events and the summary line.
func decodeRunJSON(t *testing.T, stdout string) ([]pipeline.Event, runSummary) {
	t.Helper()
	var events []pipeline.Event
	var summary runSummary
	for _, line := range strings.Split(strings.TrimSpace(stdout), "\n") {
		if strings.Contains(line, `"kind":"summary"`) {
			if err := json.Unmarshal([]byte(line), &summary); err != nil {
				t.Fatalf("summary line %q: %v", line, err)
			}
			continue
		}
		var e pipeline.Event
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("event line %q: %v\nall output:\n%s", line, err, stdout)
		}
		events = append(events, e)
	}
	if summary.Kind != "summary" {
		t.Fatalf("no summary line in --json output:\n%s", stdout)
	}
	return events, summary
}

// outputsOf maps "instance.port" to digest for every output in a summary.
func outputsOf(s runSummary) map[string]artifacts.Digest {
	out := map[string]artifacts.Digest{}
	for _, in := range s.Instances {
		for port, d := range in.Outputs {
			out[in.ID+"."+port] = d
		}
	}
	return out
}

func TestVersionAndStages(t *testing.T) {
	dir := t.TempDir()
	r := mustSucceed(t, dir, "version")
	if !strings.HasPrefix(r.stdout, "sglr-pipe ") {
		t.Errorf("version printed %q", r.stdout)
	}
	r = mustSucceed(t, dir, "stages")
	for _, name := range []string{"load", "noise", "label-stats"} {
		if !strings.Contains(r.stdout, name+" ") {
			t.Errorf("stages does not list %s:\n%s", name, r.stdout)
		}
	}
	r = mustSucceed(t, dir, "stages", "--json", "noise")
	var specs []struct {
		Name    string `json:"name"`
		Version string `json:"version"`
		Params  []struct {
			Name string `json:"name"`
		} `json:"params"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &specs); err != nil {
		t.Fatalf("stages --json: %v\n%s", err, r.stdout)
	}
	if len(specs) != 1 || specs[0].Name != "noise" || specs[0].Version == "" || len(specs[0].Params) == 0 {
		t.Errorf("stages --json noise = %+v", specs)
	}
}

func TestUsageErrorsExit2(t *testing.T) {
	dir, file := writePipeline(t, smallPipeline)
	tests := []struct {
		name string
		args []string
		want string // in stderr
	}{
		{"unknown command", []string{"bogus"}, "unknown command"},
		{"run without file", []string{"run"}, "arg"},
		{"unknown flag", []string{"run", file, "--no-such-flag"}, "unknown flag"},
		{"bad flag value", []string{"run", file, "--jobs", "many"}, "--jobs"},
		{"missing pipeline file", []string{"run", filepath.Join(dir, "nope.yaml")}, "does not exist"},
		{"unknown target", []string{"run", file, "nosuchstage"}, "no such stage"},
		{"unknown --only", []string{"plan", file, "--only", "nosuchstage"}, "no such stage"},
		{"bad graph format", []string{"graph", file, "--format", "png"}, "--format"},
		{"export without format", []string{"export", "latest"}, "--format"},
		{"stages unknown name", []string{"stages", "nosuchstage"}, "unknown stage"},
		{"cache without subcommand", []string{"cache"}, "subcommand"},
		{"pipeline is a directory", []string{"run", dir}, "directory"},
		{"show in missing store", []string{"show", "latest", "--store", filepath.Join(dir, "missing")}, "no store"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := sglr(t, dir, tc.args...)
			if r.code != exitUsage {
				t.Fatalf("exit %d, want %d\nstderr: %s", r.code, exitUsage, r.stderr)
			}
			if !strings.Contains(r.stderr, tc.want) {
				t.Errorf("stderr %q does not mention %q", r.stderr, tc.want)
			}
		})
	}
}

func TestBadPipelineExits2WithPositions(t *testing.T) {
	dir, file := writePipeline(t, `name: bad
stages:
  data:
    uses: load
    with:
      dataset: synthetic
      trian: 5
  noisy:
    uses: noize
    inputs:
      dataset: data.train
`)
	for _, cmd := range []string{"run", "plan", "graph"} {
		r := sglr(t, dir, cmd, file)
		if r.code != exitUsage {
			t.Fatalf("%s: exit %d, want 2\nstderr: %s", cmd, r.code, r.stderr)
		}
		for _, want := range []string{"pipeline.yaml:7:7", "trian: 5", "pipeline.yaml:9:11", "noize"} {
			if !strings.Contains(r.stderr, want) {
				t.Errorf("%s: stderr lacks %q:\n%s", cmd, want, r.stderr)
			}
		}
		if _, err := os.Stat(filepath.Join(dir, ".sglr", "runs")); err == nil && cmd == "run" {
			t.Errorf("a bad pipeline created a store")
		}
	}
}

func TestRunThenCachedAndInspect(t *testing.T) {
	dir, file := writePipeline(t, smallPipeline)
	events, first, r := runJSON(t, dir, file)
	if r.code != 0 {
		t.Fatalf("first run: exit %d\n%s", r.code, r.stderr)
	}
	if first.Ran != 4 || first.Cached != 0 || first.Failed != 0 {
		t.Fatalf("first run summary %+v, want 4 ran", first)
	}
	done := 0
	for _, e := range events {
		if e.Kind == pipeline.EventDone {
			done++
		}
	}
	if done != 4 {
		t.Errorf("first run: %d done events, want 4", done)
	}
	if _, err := os.Stat(filepath.Join(dir, ".sglr", "objects")); err != nil {
		t.Fatalf("store is not beside the pipeline file: %v", err)
	}

	events, second, r := runJSON(t, dir, file)
	if r.code != 0 {
		t.Fatalf("second run: exit %d\n%s", r.code, r.stderr)
	}
	if second.Ran != 0 || second.Cached != 4 {
		t.Fatalf("second run summary %+v, want all 4 cached", second)
	}
	for _, e := range events {
		if e.Kind == pipeline.EventStart || e.Kind == pipeline.EventDone {
			t.Errorf("second run started %s", e.Instance)
		}
	}
	if fmt.Sprint(outputsOf(first)) != fmt.Sprint(outputsOf(second)) {
		t.Errorf("cached outputs differ:\n%v\n%v", outputsOf(first), outputsOf(second))
	}

	// The human output of a cached run shows the leaf table.
	r = mustSucceed(t, dir, "run", file)
	if !strings.Contains(r.stdout, "0 ran, 4 cached, 0 failed") || !strings.Contains(r.stdout, "| noise") {
		t.Errorf("run output lacks the summary or the stats table:\n%s", r.stdout)
	}

	store := filepath.Join(dir, ".sglr")
	t.Run("plan", func(t *testing.T) {
		r := mustSucceed(t, dir, "plan", file, "--json")
		var entries []pipeline.PlanEntry
		if err := json.Unmarshal([]byte(r.stdout), &entries); err != nil {
			t.Fatal(err)
		}
		if len(entries) != 4 {
			t.Fatalf("plan has %d entries", len(entries))
		}
		for _, e := range entries {
			if e.Action != pipeline.ActionCached {
				t.Errorf("plan: %s is %s (%s), want cached", e.Instance, e.Action, e.Reason)
			}
		}
		r = mustSucceed(t, dir, "plan", file, "--from", "noisy")
		if !strings.Contains(r.stdout, "--from noisy") {
			t.Errorf("plan --from does not give the reason:\n%s", r.stdout)
		}
	})
	t.Run("graph", func(t *testing.T) {
		r := mustSucceed(t, dir, "graph", file)
		if !strings.Contains(r.stdout, `"data" -> "noisy[noise=0.1]" [label="train→dataset"]`) {
			t.Errorf("dot graph lacks a labelled edge:\n%s", r.stdout)
		}
		r = mustSucceed(t, dir, "graph", file, "--format", "mermaid")
		if !strings.HasPrefix(r.stdout, "flowchart LR") || strings.Count(r.stdout, "-->") != 4 {
			t.Errorf("mermaid graph:\n%s", r.stdout)
		}
	})
	t.Run("show", func(t *testing.T) {
		r := mustSucceed(t, dir, "show", "latest", "--store", store, "--json")
		var run artifacts.Run
		if err := json.Unmarshal([]byte(r.stdout), &run); err != nil {
			t.Fatal(err)
		}
		if run.ID == "" || len(run.Instances) != 4 {
			t.Errorf("show latest: %+v", run)
		}
		ref := "noisy[noise=0.3].dataset"
		r = mustSucceed(t, dir, "show", ref, "--store", store, "--json", "--head", "2")
		var shown struct {
			Digest string     `json:"digest"`
			Kind   string     `json:"kind"`
			Rows   int64      `json:"rows"`
			Head   [][]string `json:"head"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &shown); err != nil {
			t.Fatal(err)
		}
		if shown.Kind != artifacts.KindDataset || shown.Rows != 300 || len(shown.Head) != 2 {
			t.Errorf("show %s: kind %q rows %d head %d", ref, shown.Kind, shown.Rows, len(shown.Head))
		}
		if want := outputsOf(second)[ref]; string(want) != shown.Digest {
			t.Errorf("show %s gave digest %s, run recorded %s", ref, shown.Digest, want)
		}
		// By digest prefix, from the default store in the current directory.
		r = mustSucceed(t, dir, "show", shown.Digest[:8])
		if !strings.Contains(r.stdout, "kind     dataset") || !strings.Contains(r.stdout, "sglr.shape") {
			t.Errorf("show by prefix:\n%s", r.stdout)
		}
		if r := sglr(t, dir, "show", "noisy.dataset"); r.code != exitUsage || !strings.Contains(r.stderr, "noisy[noise=0.1]") {
			t.Errorf("ambiguous stage ref: exit %d, stderr %s", r.code, r.stderr)
		}
	})
	t.Run("export", func(t *testing.T) {
		npyDir := filepath.Join(t.TempDir(), "npy")
		r := mustSucceed(t, dir, "export", "noisy[noise=0.1].dataset", "--format", "npy", "-o", npyDir)
		for _, name := range []string{"image.npy", "label.npy", "id.npy"} {
			b, err := os.ReadFile(filepath.Join(npyDir, name))
			if err != nil {
				t.Fatalf("export npy: %v (printed %s)", err, r.stdout)
			}
			if !bytes.HasPrefix(b, []byte("\x93NUMPY")) {
				t.Errorf("%s is not an .npy file", name)
			}
		}
		r = mustSucceed(t, dir, "export", "stats.table", "--format", "csv")
		lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
		if len(lines) != 3 || !strings.HasPrefix(lines[0], "noise,") {
			t.Errorf("export csv to stdout:\n%s", r.stdout)
		}
		csvFile := filepath.Join(t.TempDir(), "stats.csv")
		mustSucceed(t, dir, "export", "stats.table", "--format", "csv", "-o", csvFile)
		if b, err := os.ReadFile(csvFile); err != nil || string(b) != r.stdout {
			t.Errorf("export csv -o wrote %q (%v), stdout gave %q", b, err, r.stdout)
		}
	})
	t.Run("cache", func(t *testing.T) {
		r := mustSucceed(t, dir, "cache", "verify", "--store", store)
		if !strings.Contains(r.stdout, "store OK") {
			t.Errorf("cache verify:\n%s", r.stdout)
		}
		r = mustSucceed(t, dir, "cache", "ls", "--store", store, "--json")
		var listing cacheListing
		if err := json.Unmarshal([]byte(r.stdout), &listing); err != nil {
			t.Fatal(err)
		}
		if len(listing.Areas) == 0 || listing.Areas[0].Name != "objects" || listing.Areas[0].Files == 0 || len(listing.Recent) != 4 {
			t.Errorf("cache ls: %+v", listing)
		}
		r = mustSucceed(t, dir, "cache", "gc", "--dry-run", "--grace", "0", "--store", store)
		if !strings.Contains(r.stdout, "would remove 0 objects") {
			t.Errorf("gc --dry-run on a fully referenced store:\n%s", r.stdout)
		}
	})
	t.Run("replay", func(t *testing.T) {
		r := mustSucceed(t, dir, "replay", "latest", "noisy[noise=0.3]")
		if !strings.Contains(r.stdout, "IDENTICAL") || strings.Contains(r.stdout, "DIFFERENT") {
			t.Errorf("replay:\n%s", r.stdout)
		}
		for _, bad := range []struct{ run, instance, want string }{
			{"latest", "nosuchinstance", "no instance"},
			{"latest", "noisy", "has 2 instances"},
			{"20200101T000000Z-000000", "data", "no run"},
		} {
			r := sglr(t, dir, "replay", bad.run, bad.instance)
			if r.code != exitUsage || !strings.Contains(r.stderr, bad.want) {
				t.Errorf("replay %s %s: exit %d, stderr %q", bad.run, bad.instance, r.code, r.stderr)
			}
		}
	})
}

func TestCorruptObjectFailsVerify(t *testing.T) {
	dir, file := writePipeline(t, smallPipeline)
	_, s, r := runJSON(t, dir, file)
	if r.code != 0 {
		t.Fatalf("run: %s", r.stderr)
	}
	d := outputsOf(s)["stats.table"]
	path := filepath.Join(dir, ".sglr", "objects", "sha256", string(d)[:2], string(d)[2:])
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("not the artifact"), 0o644); err != nil {
		t.Fatal(err)
	}
	r = sglr(t, dir, "cache", "verify")
	if r.code != exitFailed || !strings.Contains(r.stdout, "corrupt-object") {
		t.Errorf("verify of a corrupt store: exit %d\n%s", r.code, r.stdout)
	}
}

func TestFailingStageExits1(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "no-such-dataset-dir")
	dir, file := writePipeline(t, `name: failing
stages:
  data:
    uses: load
    with:
      dataset: fashion-mnist
      path: `+missing+`
  noisy:
    uses: noise
    inputs:
      dataset: data.train
    with:
      kind: symmetric
      rate: 0.1
`)
	r := sglr(t, dir, "run", file)
	if r.code != exitFailed {
		t.Fatalf("exit %d, want 1\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{"FAILED data", missing, "1 failed", "noisy skipped"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, r.stdout)
		}
	}
	if !strings.Contains(r.stderr, "data:") {
		t.Errorf("stderr does not name the failed stage:\n%s", r.stderr)
	}
	_, s, r := runJSON(t, dir, file)
	if r.code != exitFailed || s.Failed != 1 || s.Skipped != 1 || len(s.Failures) != 1 || s.Failures[0].Instance != "data" {
		t.Errorf("--json failing run: exit %d, summary %+v", r.code, s)
	}
}

// bigPipeline takes a few seconds: enough to kill a run part-way.
const bigPipeline = `name: big
seed: 3
matrix:
  sigma: [0.1, 0.2, 0.3, 0.4]
stages:
  data:
    uses: load
    with:
      dataset: synthetic
      train: 3000
      val: 100
      test: 100
      shape: [3, 32, 32]
  noisy:
    uses: noise
    inputs:
      dataset: data.train
    with:
      kind: gaussian
      fraction: 1.0
      sigma: ${{ matrix.sigma }}
  stats:
    uses: label-stats
    inputs:
      datasets: noisy.dataset[]
`

func TestKilledRunRecovers(t *testing.T) {
	dir, file := writePipeline(t, bigPipeline)
	// Kill -9 as soon as the first instance has finished (or after 5 s).
	e, _ := killRunWhen(t, dir, []string{"--jobs", "1", file}, 5*time.Second, func(e pipeline.Event) bool {
		return e.Kind == pipeline.EventDone
	})
	first := e.Instance
	if first == "" {
		t.Log("no instance finished within 5 s before the kill")
	}

	events, s, r := runJSON(t, dir, "--jobs", "2", file)
	if r.code != 0 || s.Failed != 0 {
		t.Fatalf("rerun after kill: exit %d, summary %+v\n%s", r.code, s, r.stderr)
	}
	if first != "" {
		hit := false
		for _, e := range events {
			if e.Instance == first && e.Kind == pipeline.EventCached {
				hit = true
			}
		}
		if !hit {
			t.Errorf("%s finished before the kill but was not a cache hit on rerun", first)
		}
	}
	r = mustSucceed(t, dir, "cache", "verify")
	if !strings.Contains(r.stdout, "store OK") {
		t.Errorf("verify after kill and rerun:\n%s", r.stdout)
	}
}

func TestConcurrentRunsShareOneStore(t *testing.T) {
	dir, file := writePipeline(t, smallPipeline)
	var wg sync.WaitGroup
	results := make([]result, 2)
	summaries := make([]runSummary, 2)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := exec.Command(binary, "run", "--json", file)
			cmd.Dir = dir
			cmd.Env = testEnv()
			var out, errOut bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &errOut
			err := cmd.Run()
			results[i] = result{stdout: out.String(), stderr: errOut.String()}
			if ee, ok := err.(*exec.ExitError); ok {
				results[i].code = ee.ExitCode()
			} else if err != nil {
				results[i].code = -1
			}
		}()
	}
	wg.Wait()
	for i, r := range results {
		if r.code != 0 {
			t.Fatalf("run %d: exit %d\n%s", i, r.code, r.stderr)
		}
		_, summaries[i] = decodeRunJSON(t, r.stdout)
	}
	if summaries[0].RunID == summaries[1].RunID {
		t.Errorf("both runs got id %s", summaries[0].RunID)
	}
	if fmt.Sprint(outputsOf(summaries[0])) != fmt.Sprint(outputsOf(summaries[1])) {
		t.Errorf("concurrent runs produced different outputs")
	}
	mustSucceed(t, dir, "cache", "verify")
}

func TestSameSeedSameDigestsAcrossStores(t *testing.T) {
	dir, file := writePipeline(t, smallPipeline)
	_, a, r := runJSON(t, dir, "--store", filepath.Join(dir, "store-a"), file)
	if r.code != 0 {
		t.Fatal(r.stderr)
	}
	_, b, r := runJSON(t, dir, "--store", filepath.Join(dir, "store-b"), file)
	if r.code != 0 {
		t.Fatal(r.stderr)
	}
	if b.Ran != 4 {
		t.Fatalf("second store was not empty: %+v", b)
	}
	if fmt.Sprint(outputsOf(a)) != fmt.Sprint(outputsOf(b)) {
		t.Errorf("same seed, different digests:\n%v\n%v", outputsOf(a), outputsOf(b))
	}
	// A different seed changes the noisy datasets.
	_, c, r := runJSON(t, dir, "--store", filepath.Join(dir, "store-c"), "--set", "seed=8", file)
	if r.code != 0 {
		t.Fatal(r.stderr)
	}
	if outputsOf(c)["noisy[noise=0.3].dataset"] == outputsOf(a)["noisy[noise=0.3].dataset"] {
		t.Errorf("seed 8 gave the same noisy dataset as seed 7")
	}
}

func TestQuickstartSecondRunIsCached(t *testing.T) {
	src, err := os.ReadFile(filepath.Join("..", "..", "examples", "quickstart.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	dir, file := writePipeline(t, string(src))
	// The full quickstart trains for a minute; two epochs exercise the same
	// stages and the caching of every one of them.
	shrink := []string{"--set", "vars.epochs=2", "--set", "vars.train_size=300", "--set", "vars.test_size=100"}
	first := mustSucceed(t, dir, append([]string{"run", file}, shrink...)...)
	if !strings.Contains(first.stdout, "0 cached, 0 failed") {
		t.Errorf("first quickstart run:\n%s", first.stdout)
	}
	started := time.Now()
	second := mustSucceed(t, dir, append([]string{"run", file}, shrink...)...)
	elapsed := time.Since(started)
	if !strings.Contains(second.stdout, "0 ran, 8 cached, 0 failed in ") {
		t.Errorf("second quickstart run is not all cache hits:\n%s", second.stdout)
	}
	if !strings.Contains(first.stdout, "| labels") {
		t.Errorf("first quickstart run does not print its table:\n%s", first.stdout)
	}
	// The table is the one the first run printed: named, not printed again.
	if !strings.Contains(second.stdout, "report.report (") || !strings.Contains(second.stdout, "unchanged since a run printed it") ||
		strings.Contains(second.stdout, "| labels") {
		t.Errorf("second quickstart run does not name its unchanged table (or prints it again):\n%s", second.stdout)
	}
	if elapsed > 5*time.Second {
		t.Errorf("an all-cached quickstart run took %s", elapsed)
	}
}

func TestInterruptStopsRunAndKeepsStoreClean(t *testing.T) {
	dir, file := writePipeline(t, bigPipeline)
	cmd := exec.Command(binary, "run", "--json", "--jobs", "1", file)
	cmd.Dir = dir
	cmd.Env = testEnv()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 256)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	// Interrupt once the first stage has started.
	var out []string
	deadline := time.After(5 * time.Second)
wait:
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				break wait
			}
			out = append(out, line)
			if strings.Contains(line, `"kind":"start"`) {
				break wait
			}
		case <-deadline:
			break wait
		}
	}
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	for line := range lines {
		out = append(out, line)
	}
	err = cmd.Wait()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != exitInterrupted {
		t.Fatalf("interrupted run: %v, want exit %d\nstderr: %s", err, exitInterrupted, stderr.String())
	}
	_, s := decodeRunJSON(t, strings.Join(out, "\n"))
	if s.Status != pipeline.RunCancelled || s.Cancelled == 0 {
		t.Errorf("interrupted run summary %+v", s)
	}
	r := mustSucceed(t, dir, "cache", "verify")
	if !strings.Contains(r.stdout, "store OK") {
		t.Errorf("verify after interrupt:\n%s", r.stdout)
	}
	_, s, r = runJSON(t, dir, file)
	if r.code != 0 || s.Failed != 0 || s.Cancelled != 0 {
		t.Errorf("rerun after interrupt: exit %d %+v", r.code, s)
	}
}

// passPlugin is an external stage written as a shell script: it copies its
// dataset input to its output, reporting progress on the way.
const passPlugin = `#!/bin/sh
set -e
case "$1" in
describe)
	cat <<'JSON'
{"name": "passthrough", "version": "1", "doc": "copies its input",
 "inputs": [{"name": "dataset", "kind": "dataset", "doc": "in"}],
 "outputs": [{"name": "dataset", "kind": "dataset", "doc": "out"}],
 "params": [], "cores": 1}
JSON
	;;
run)
	req=$(cat "$2")
	in=$(printf '%s' "$req" | sed -n 's/.*"path": *"\([^"]*\)".*/\1/p')
	out=$(printf '%s' "$req" | sed -n 's/.*"out_dir": *"\([^"]*\)".*/\1/p')
	echo '{"progress": {"start": 1, "unit": "files"}}' >&2
	cp "$in" "$out/dataset"
	echo '{"progress": {"add": 1}}' >&2
	;;
*)
	echo "usage: $0 describe | run REQUEST.json" >&2
	exit 2
	;;
esac
`

func TestExecStageResolvedBesideThePipeline(t *testing.T) {
	dir := t.TempDir()
	sub := filepath.Join(dir, "experiment")
	if err := os.MkdirAll(filepath.Join(sub, "plugins"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(sub, "plugins", "pass.sh"), []byte(passPlugin), 0o755); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(sub, "pipeline.yaml")
	err := os.WriteFile(file, []byte(`name: plugin
stages:
  data:
    uses: load
    with: {dataset: synthetic, train: 50, val: 10, test: 10, classes: 3, shape: [1, 4, 4]}
  copy:
    uses: exec:./plugins/pass.sh
    inputs:
      dataset: data.train
`), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	// Run from another directory: the plugin path is relative to the file.
	elsewhere := t.TempDir()
	_, s, r := runJSON(t, elsewhere, file)
	if r.code != 0 {
		t.Fatalf("run with exec stage: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	outs := outputsOf(s)
	if outs["copy.dataset"] == "" || outs["copy.dataset"] != outs["data.train"] {
		t.Errorf("the plugin's copy differs from its input: %v", outs)
	}
	r = mustSucceed(t, elsewhere, "replay", "latest", "copy", "--store", filepath.Join(sub, ".sglr"))
	if !strings.Contains(r.stdout, "IDENTICAL") {
		t.Errorf("replay of the exec stage:\n%s", r.stdout)
	}
}

func TestStoreFromEnvironment(t *testing.T) {
	dir, file := writePipeline(t, smallPipeline)
	store := filepath.Join(t.TempDir(), "env-store")
	env := []string{storeEnv + "=" + store}
	r := sglrEnv(t, dir, env, "run", file)
	if r.code != 0 {
		t.Fatalf("run: exit %d\n%s", r.code, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, ".sglr")); err == nil {
		t.Errorf("run created a store beside the pipeline although $%s is set", storeEnv)
	}
	r = sglrEnv(t, t.TempDir(), env, "show", "latest")
	if r.code != 0 || !strings.Contains(r.stdout, "stats") {
		t.Errorf("show latest from $%s: exit %d\n%s%s", storeEnv, r.code, r.stdout, r.stderr)
	}
}
