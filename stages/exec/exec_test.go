package exec

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	osexec "os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sglr-pipe/sglr-pipe/artifacts"
	"github.com/sglr-pipe/sglr-pipe/stages"
)

// scriptSpec is the describe answer of the shell-script plugins below.
const scriptSpec = `{"name":"script","version":"v3","doc":"a test plugin",
 "inputs":[{"name":"in","kind":"table","doc":""}],
 "outputs":[{"name":"out","kind":"table","doc":""}],
 "params":[{"name":"k","type":"int","default":2,"doc":""}],"cores":2}`

// writeScript writes an executable /bin/sh plugin whose `run` branch is body
// ($2 is the request file) and whose describe prints describe.
func writeScript(t *testing.T, describe, body string) string {
	t.Helper()
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("no /bin/sh")
	}
	path := filepath.Join(t.TempDir(), "plugin.sh")
	script := fmt.Sprintf("#!/bin/sh\ncase \"$1\" in\ndescribe)\ncat <<'SPEC'\n%s\nSPEC\n;;\nrun)\n%s\n;;\nesac\n", describe, body)
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// recordingProgress keeps every progress call, for checking forwarding.
type recordingProgress struct {
	mu    sync.Mutex
	calls []string
}

func (r *recordingProgress) Start(n int64, unit string) { r.add(fmt.Sprintf("start %d %s", n, unit)) }
func (r *recordingProgress) Add(n int64)                { r.add(fmt.Sprintf("add %d", n)) }
func (r *recordingProgress) Status(s string)            { r.add("status " + s) }
func (r *recordingProgress) add(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, s)
}
func (r *recordingProgress) log() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.calls)
}

func newEnv(t *testing.T) (*stages.Env, *recordingProgress) {
	t.Helper()
	in := filepath.Join(t.TempDir(), "in")
	if err := os.WriteFile(in, []byte("INPUT"), 0o644); err != nil {
		t.Fatal(err)
	}
	prog := &recordingProgress{}
	return &stages.Env{
		Instance: "script[k=3]",
		Params:   stages.Params{"k": int64(3)},
		Seed:     99,
		Inputs:   map[string][]stages.Input{"in": {{Digest: digestOf([]byte("INPUT")), Path: in}}},
		Progress: prog,
		OutDir:   t.TempDir(),
	}, prog
}

// digestOf is the store name of data.
func digestOf(data []byte) artifacts.Digest {
	sum := sha256.Sum256(data)
	return artifacts.Digest(hex.EncodeToString(sum[:]))
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	plain := filepath.Join(dir, "plain")
	if err := os.WriteFile(plain, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		path   func(t *testing.T) string
		wantIn []string
	}{
		{"not found", func(*testing.T) string { return filepath.Join(dir, "missing") },
			[]string{"exec:" + filepath.Join(dir, "missing") + ": not found"}},
		{"not executable", func(*testing.T) string { return plain }, []string{"exec:" + plain + ": not executable"}},
		{"directory", func(*testing.T) string { return dir }, []string{": not executable: is a directory"}},
		{"garbage describe", func(t *testing.T) string { return writeScript(t, "this is not json", "") },
			[]string{"describe printed an invalid spec", `stdout began: "this is not json`}},
		{"invalid spec", func(t *testing.T) string {
			return writeScript(t, `{"name":"x","outputs":[{"name":"o"}]}`, "")
		}, []string{"spec has no version", `output port "o" has no kind`}},
		{"describe fails", func(t *testing.T) string {
			path := filepath.Join(t.TempDir(), "fails")
			script := "#!/bin/sh\necho 'loading model' >&2\necho 'python: module torch not found' >&2\nexit 4\n"
			if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
				t.Fatal(err)
			}
			return path
		}, []string{"describe failed (exit status 4)", "loading model", "python: module torch not found"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := tt.path(t)
			_, err := Open(path)
			if err == nil {
				t.Fatal("Open succeeded")
			}
			if !strings.Contains(err.Error(), "exec:"+path) {
				t.Errorf("error %q does not name exec:%s", err, path)
			}
			for _, want := range tt.wantIn {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
		})
	}
}

func TestOpenSpecVersionCarriesDigest(t *testing.T) {
	path := writeScript(t, scriptSpec, "exit 0")
	stage, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	bytes, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(bytes)
	spec := stage.Spec()
	if want := "v3+exe." + hex.EncodeToString(sum[:])[:12]; spec.Version != want {
		t.Errorf("version %q, want %q", spec.Version, want)
	}
	if spec.Name != "script" || spec.Cores != 2 || len(spec.Outputs) != 1 || spec.Outputs[0].Kind != "table" {
		t.Errorf("spec %+v", spec)
	}
	if d, ok := spec.Params[0].Default.(int64); !ok || d != 2 {
		t.Errorf("default %#v, want int64(2)", spec.Params[0].Default)
	}

	// Rebuilding the plugin changes its version, and the stale stage refuses to run.
	if err := os.WriteFile(path, append(bytes, []byte("# rebuilt\n")...), 0o755); err != nil {
		t.Fatal(err)
	}
	reopened, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if reopened.Spec().Version == spec.Version {
		t.Errorf("version unchanged after rebuild: %s", spec.Version)
	}
	env, _ := newEnv(t)
	if err := stage.Run(context.Background(), env); err == nil || !strings.Contains(err.Error(), "changed since it was opened") {
		t.Errorf("stale Run error = %v", err)
	}
}

func TestRunScriptPlugin(t *testing.T) {
	tests := []struct {
		name     string
		body     string // OUTDIR is the out dir
		wantErr  []string
		wantOut  string
		wantProg []string
		wantSumm map[string]any
		checkReq bool
	}{
		{
			name: "success",
			body: `echo '{"progress":{"start":3,"unit":"rows"}}' >&2
echo 'a human log line' >&2
echo '{"progress":{"add":2}}' >&2
echo '{"status":"nearly"}' >&2
echo 'stdout chatter'
cp "$2" 'OUTDIR/out'
printf '{"rows":3,"rate":0.5}' > 'OUTDIR/.summary.json'`,
			wantOut:  "request",
			wantProg: []string{"start 3 rows", "add 2", "status nearly"},
			wantSumm: map[string]any{"rows": 3.0, "rate": 0.5},
			checkReq: true,
		},
		{
			name: "exit 3",
			body: `echo 'step 1' >&2
echo '{"progress":{"add":1}}' >&2
echo 'error: weights file is truncated' >&2
echo '{"status":"dying"}' >&2
exit 3`,
			wantErr:  []string{"failed (exit 3): error: weights file is truncated\n", "log tail:\n    step 1"},
			wantProg: []string{"add 1", "status dying"},
		},
		{
			name:    "exit 1 silently",
			body:    `exit 1`,
			wantErr: []string{"failed (exit 1) with no output"},
		},
		{
			name:    "missing output",
			body:    `echo done >&2`,
			wantErr: []string{`exited 0 without writing output "out"`},
		},
		{
			name:    "output is a directory",
			body:    `mkdir 'OUTDIR/out'`,
			wantErr: []string{`without writing output "out"`},
		},
		{
			name:    "bad summary",
			body:    `echo x > 'OUTDIR/out'; echo '[1' > 'OUTDIR/.summary.json'`,
			wantErr: []string{"decode summary"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, prog := newEnv(t)
			path := writeScript(t, scriptSpec, strings.ReplaceAll(tt.body, "OUTDIR", env.OutDir))
			stage, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			err = stage.Run(context.Background(), env)
			if tt.wantErr == nil && err != nil {
				t.Fatalf("Run: %v", err)
			}
			for _, want := range tt.wantErr {
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("Run error %v does not contain %q", err, want)
				}
			}
			if err != nil && strings.Contains(err.Error(), path) {
				t.Errorf("error %q names the plugin, which the executor does", err)
			}
			if got := prog.log(); !slices.Equal(got, tt.wantProg) {
				t.Errorf("progress %q, want %q", got, tt.wantProg)
			}
			if tt.wantSumm != nil {
				for k, v := range tt.wantSumm {
					if env.Summary()[k] != v {
						t.Errorf("summary[%s] = %v, want %v (all: %v)", k, env.Summary()[k], v, env.Summary())
					}
				}
			}
			// The bookkeeping files never stay in OutDir.
			for _, f := range []string{stages.PluginRequestFile, stages.PluginSummaryFile} {
				if _, err := os.Stat(filepath.Join(env.OutDir, f)); err == nil {
					t.Errorf("%s left in OutDir", f)
				}
			}
			if tt.checkReq {
				req, err := os.ReadFile(env.OutputPath("out"))
				if err != nil {
					t.Fatal(err)
				}
				// The request names the plugin's private copy, not the store object.
				for _, want := range []string{`"protocol": "sglr-plugin/1"`, `"instance": "script[k=3]"`,
					`"k": 3`, `"seed": 99`, `"digest": "` + string(env.Inputs["in"][0].Digest) + `"`,
					`"out_dir": "` + env.OutDir + `"`, `"path": "` + filepath.Join(env.OutDir, ".inputs", "in", "0") + `"`} {
					if !strings.Contains(string(req), want) {
						t.Errorf("request lacks %s:\n%s", want, req)
					}
				}
			}
		})
	}
}

// TestRunCancelKillsProcessGroup runs plugins that sleep in a child process;
// cancelling must return promptly and leave no child behind, also when the
// plugin ignores SIGTERM.
func TestRunCancelKillsProcessGroup(t *testing.T) {
	tests := []struct {
		name   string
		trap   string
		within time.Duration
	}{
		{"obeys SIGTERM", "", time.Second},
		{"ignores SIGTERM", "trap '' TERM", KillGrace + 2*time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, prog := newEnv(t)
			pidFile := filepath.Join(t.TempDir(), "child.pid")
			body := fmt.Sprintf(`%s
sleep 30 &
echo $! > '%s'
echo '{"status":"sleeping"}' >&2
wait`, tt.trap, pidFile)
			stage, err := Open(writeScript(t, scriptSpec, body))
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- stage.Run(ctx, env) }()
			waitFor(t, 10*time.Second, func() bool { return slices.Contains(prog.log(), "status sleeping") })
			childPID := readPID(t, pidFile)
			start := time.Now()
			cancel()
			select {
			case err := <-done:
				if !errors.Is(err, context.Canceled) {
					t.Errorf("Run error = %v, want context.Canceled", err)
				}
				if took := time.Since(start); took > tt.within {
					t.Errorf("Run took %s after cancel, want under %s", took, tt.within)
				}
			case <-time.After(tt.within + 5*time.Second):
				t.Fatal("Run did not return after cancel")
			}
			waitFor(t, 3*time.Second, func() bool { return !alive(childPID) })
		})
	}
}

// TestClassSubsetPlugin builds the example plugin with the go tool and runs
// it on a real dataset through a real Env.
func TestClassSubsetPlugin(t *testing.T) {
	goTool, err := osexec.LookPath("go")
	if err != nil {
		t.Skip("go tool not found")
	}
	bin := filepath.Join(t.TempDir(), "class-subset")
	build := osexec.Command(goTool, "build", "-o", bin, "github.com/sglr-pipe/sglr-pipe/examples/plugins/class-subset")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	stage, err := Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	spec := stage.Spec()
	if spec.Name != "class-subset" || !strings.HasPrefix(spec.Version, "v1+exe.") || len(spec.Version) != len("v1+exe.")+12 {
		t.Errorf("spec name %q version %q", spec.Name, spec.Version)
	}
	if len(spec.Params) != 2 || spec.Params[1].Name != "per_class" || spec.Params[1].Default != int64(0) {
		t.Errorf("params %+v", spec.Params)
	}

	// 8 samples of 4 classes, one pixel each; samples 2 and 5 have noisy labels.
	input := &artifacts.Dataset{
		Shape:       []int{1, 1, 1},
		Images:      []float32{0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7},
		Labels:      []int32{0, 1, 3, 3, 2, 1, 0, 2},
		CleanLabels: []int32{0, 1, 2, 3, 2, 0, 0, 2},
		Flipped:     []bool{false, false, true, false, false, true, false, false},
		IDs:         []int64{10, 11, 12, 13, 14, 15, 16, 17},
		ClassNames:  []string{"cat", "dog", "fox", "owl"},
		Meta:        map[string]string{"source": "test"},
	}
	inPath := filepath.Join(t.TempDir(), "dataset")
	f, err := os.Create(inPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := artifacts.WriteDataset(f, input); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	inBytes, err := os.ReadFile(inPath)
	if err != nil {
		t.Fatal(err)
	}
	inDigest := digestOf(inBytes)

	run := func(t *testing.T, params stages.Params) (*artifacts.Dataset, *stages.Env, error) {
		t.Helper()
		prog := &recordingProgress{}
		env := &stages.Env{
			Instance: "subset",
			Params:   params,
			Seed:     5,
			Inputs:   map[string][]stages.Input{"dataset": {{Digest: inDigest, Path: inPath}}},
			Progress: prog,
			OutDir:   t.TempDir(),
		}
		if err := stage.Run(context.Background(), env); err != nil {
			return nil, env, err
		}
		if got := prog.log(); len(got) != 2 || got[0] != "start 8 samples" {
			t.Errorf("progress %q", got)
		}
		entries, _ := os.ReadDir(env.OutDir)
		if len(entries) != 1 || entries[0].Name() != "dataset" {
			t.Errorf("OutDir holds %v, want only dataset", entries)
		}
		out, err := artifacts.ReadDatasetFile(env.OutputPath("dataset"))
		if err != nil {
			t.Fatal(err)
		}
		return out, env, nil
	}

	t.Run("names and indices", func(t *testing.T) {
		// owl by name, then fox by index: owl -> 0, fox -> 1.
		out, env, err := run(t, stages.Params{"classes": []any{"owl", int64(2)}, "per_class": int64(0)})
		if err != nil {
			t.Fatal(err)
		}
		// Kept: 2 (label owl, clean fox: both inside, so kept and still flipped), 3, 4 and 7.
		want := &artifacts.Dataset{
			Shape:       []int{1, 1, 1},
			Images:      []float32{0.2, 0.3, 0.4, 0.7},
			Labels:      []int32{0, 0, 1, 1},
			CleanLabels: []int32{1, 0, 1, 1},
			Flipped:     []bool{true, false, false, false},
			IDs:         []int64{12, 13, 14, 17},
			ClassNames:  []string{"owl", "fox"},
			Meta:        map[string]string{"source": "test", "class_subset.from": "3,2"},
		}
		checkDataset(t, out, want)
		if env.Summary()["kept"] != 4.0 || env.Summary()["dropped_cross_subset"] != 0.0 {
			t.Errorf("summary %v", env.Summary())
		}
	})
	t.Run("crossing samples dropped", func(t *testing.T) {
		// Sample 5 has label dog but clean label cat: it crosses the subset boundary.
		out, env, err := run(t, stages.Params{"classes": []any{"dog"}, "per_class": int64(0)})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(out.IDs, []int64{11}) || !slices.Equal(out.Labels, []int32{0}) {
			t.Errorf("ids %v labels %v", out.IDs, out.Labels)
		}
		if env.Summary()["dropped_cross_subset"] != 1.0 {
			t.Errorf("summary %v", env.Summary())
		}
	})
	t.Run("per_class draw is seeded and bounded", func(t *testing.T) {
		params := stages.Params{"classes": []any{"cat", "fox"}, "per_class": int64(1)}
		a, _, err := run(t, params)
		if err != nil {
			t.Fatal(err)
		}
		b, _, err := run(t, params)
		if err != nil {
			t.Fatal(err)
		}
		checkDataset(t, b, a)
		counts := map[int32]int{}
		for _, l := range a.Labels {
			counts[l]++
		}
		if a.Len() != 2 || counts[0] != 1 || counts[1] != 1 {
			t.Errorf("labels %v, want one per class", a.Labels)
		}
	})
	errCases := []struct {
		name    string
		classes []any
		want    string
	}{
		{"unknown name", []any{"cow"}, `no class "cow" (classes: cat, dog, fox, owl)`},
		{"index out of range", []any{int64(4)}, "class index 4 outside [0,4)"},
		{"duplicate", []any{"cat", int64(0)}, `class "cat" listed twice`},
		{"empty", []any{}, "empty list"},
		{"float", []any{1.5}, "element 0: 1.5 is neither"},
	}
	for _, tt := range errCases {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := run(t, stages.Params{"classes": tt.classes, "per_class": int64(0)})
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "failed (exit 1)") {
				t.Errorf("error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func checkDataset(t *testing.T, got, want *artifacts.Dataset) {
	t.Helper()
	if !slices.Equal(got.Shape, want.Shape) || !slices.Equal(got.Images, want.Images) ||
		!slices.Equal(got.Labels, want.Labels) || !slices.Equal(got.CleanLabels, want.CleanLabels) ||
		!slices.Equal(got.Flipped, want.Flipped) || !slices.Equal(got.IDs, want.IDs) ||
		!slices.Equal(got.ClassNames, want.ClassNames) || fmt.Sprint(got.Meta) != fmt.Sprint(want.Meta) {
		t.Errorf("dataset\n got %+v\nwant %+v", got, want)
	}
}

func waitFor(t *testing.T, limit time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %s", limit)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func readPID(t *testing.T, path string) int {
	t.Helper()
	var pid int
	waitFor(t, 5*time.Second, func() bool {
		b, err := os.ReadFile(path)
		if err != nil {
			return false
		}
		pid, err = strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil
	})
	return pid
}

// alive reports whether pid is a running (not zombie) process.
func alive(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name.
	i := strings.LastIndexByte(string(stat), ')')
	return i < 0 || i+2 >= len(stat) || stat[i+2] != 'Z'
}
