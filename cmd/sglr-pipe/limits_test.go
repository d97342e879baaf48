package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// sglrBounded runs the binary like sglr but kills it after limit, and
// returns how long it ran and its peak resident memory in bytes (0 where the
// system does not say).
func sglrBounded(t *testing.T, dir string, limit time.Duration, args ...string) (result, time.Duration, int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Dir = dir
	cmd.Env = testEnv()
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	start := time.Now()
	err := cmd.Run()
	elapsed := time.Since(start)
	if ctx.Err() != nil {
		t.Fatalf("sglr-pipe %s: still running after %v (killed)", strings.Join(args, " "), limit)
	}
	r := result{stdout: out.String(), stderr: errOut.String()}
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("sglr-pipe %s: %v", strings.Join(args, " "), err)
		}
		r.code = ee.ExitCode()
	}
	var rss int64
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok && runtime.GOOS == "linux" {
		rss = int64(ru.Maxrss) << 10 // kilobytes on Linux
	}
	return r, elapsed, rss
}

// millionMatrix is a pipeline whose noise stage varies over six axes of ten
// values: 10^6 instances, which took 159 s and 4.2 GB to expand.
func millionMatrix() string {
	var axes, expr strings.Builder
	for _, a := range []string{"a", "b", "c", "d", "e", "f"} {
		fmt.Fprintf(&axes, "  %s: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]\n", a)
		fmt.Fprintf(&expr, "${{ matrix.%s }}", a)
	}
	return "matrix:\n" + axes.String() + `stages:
  data: {uses: load, with: {dataset: synthetic, train: 10, val: 10, test: 10}}
  noisy:
    uses: noise
    inputs: {dataset: data.train}
    with: {kind: symmetric, rate: "` + expr.String() + `"}
`
}

// TestHostilePipelineFilesExit2 runs plan on files that took minutes and
// gigabytes, or never ended, and checks each is refused at once with exit 2,
// a message that says why and bounded memory.
func TestHostilePipelineFilesExit2(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return name
	}
	var manyKeys strings.Builder
	manyKeys.WriteString("stages:\n")
	for i := range 100000 {
		fmt.Fprintf(&manyKeys, "  s%d: {uses: load}\n", i)
	}
	tests := []struct {
		name string
		file string   // relative to dir
		want []string // in stderr
	}{
		{"5 MB file", write("big.yaml", "# "+strings.Repeat("x", 5<<20)+"\n"),
			[]string{"pipeline file big.yaml is 5242883 bytes; the limit is 4194304 (4 MiB)"}},
		{"device", "/dev/zero", []string{"pipeline file /dev/zero is a device, not a regular file"}},
		{"200 KB of nested brackets", write("deep.yaml", "stages: "+strings.Repeat("[", 200000)),
			[]string{"Error: YAML nesting is deeper than 100 levels", "--> deep.yaml:1:109", "1 | …[[["}},
		{"a mapping of 100000 keys", write("keys.yaml", manyKeys.String()),
			[]string{"Error: a mapping has more than 500 keys", "--> keys.yaml:502:3", "502 |   s500: {uses: load}"}},
		{"a matrix of 10^6 instances", write("matrix.yaml", millionMatrix()),
			[]string{"Error: the matrix would make 1000001 stage instances, more than the limit of 100000",
				"--> matrix.yaml:2:3", "instances per stage: noisy 1000000, data 1", "--max-instances"}},
	}
	if runtime.GOOS == "linux" {
		fifo := "fifo.yaml"
		if err := syscall.Mkfifo(filepath.Join(dir, fifo), 0o644); err != nil {
			t.Fatal(err)
		}
		tests = append(tests, struct {
			name string
			file string
			want []string
		}{"named pipe nobody writes", fifo, []string{"fifo.yaml is a named pipe (FIFO), not a regular file"}})
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := os.Stat(filepath.Join(dir, tc.file)); err != nil && !filepath.IsAbs(tc.file) {
				t.Fatal(err)
			} else if _, err := os.Stat(tc.file); err != nil && filepath.IsAbs(tc.file) {
				t.Skip(err)
			}
			r, elapsed, rss := sglrBounded(t, dir, 60*time.Second, "plan", tc.file)
			if r.code != exitUsage {
				t.Fatalf("exit %d, want 2\nstderr: %.2000s", r.code, r.stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr lacks %q:\n%.2000s", w, r.stderr)
				}
			}
			if len(r.stderr) > 4000 {
				t.Errorf("stderr is %d bytes", len(r.stderr))
			}
			if elapsed > 10*time.Second {
				t.Errorf("took %v", elapsed)
			}
			if rss > 300<<20 {
				t.Errorf("peak memory %d MB", rss>>20)
			}
		})
	}
}

// TestMaxInstancesFlag checks --max-instances on run, plan and graph: the
// small pipeline makes 4 instances (data, noisy at two rates, stats).
func TestMaxInstancesFlag(t *testing.T) {
	dir, file := writePipeline(t, smallPipeline)
	for _, cmd := range []string{"run", "plan", "graph"} {
		t.Run(cmd, func(t *testing.T) {
			r := sglr(t, dir, cmd, file, "--max-instances", "3")
			if r.code != exitUsage || !strings.Contains(r.stderr, "the matrix would make 4 stage instances, more than the limit of 3") {
				t.Fatalf("exit %d, want 2 and the count\nstderr: %s", r.code, r.stderr)
			}
			if r := sglr(t, dir, cmd, file, "--max-instances", "0"); r.code != exitUsage || !strings.Contains(r.stderr, "--max-instances must be at least 1") {
				t.Errorf("--max-instances 0: exit %d\nstderr: %s", r.code, r.stderr)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, ".sglr", "runs")); err == nil {
		t.Errorf("a refused run created a store")
	}
	mustSucceed(t, dir, "plan", file, "--max-instances", "4")
	mustSucceed(t, dir, "graph", file, "--max-instances", "4")
}

// TestNumbersAsUsersWriteThem checks YAML 1.2 numbers reach the stages as
// floats, and that a NaN for a ranged parameter is called not a number.
func TestNumbersAsUsersWriteThem(t *testing.T) {
	dir, file := writePipeline(t, strings.Replace(smallPipeline, "noise: [0.1, 0.3]", "noise: [1e-1, 3E-1]", 1))
	r := mustSucceed(t, dir, "plan", file, "--json")
	for _, id := range []string{"noisy[noise=1e-1]", "noisy[noise=3E-1]"} {
		if !strings.Contains(r.stdout, id) {
			t.Errorf("plan lacks %s:\n%s", id, r.stdout)
		}
	}
	tests := []struct {
		set  string
		code int
		want string // in stderr
	}{
		{"stages.noisy.with.rate=5e-2", 0, ""},
		{"stages.noisy.with.rate=.nan", exitUsage, `rate: .nan is not a number; want a finite number from 0 to 1`},
		{"stages.noisy.with.rate=.inf", exitUsage, `rate: .inf is not finite`},
		{"stages.noisy.with.rate=1_000", exitUsage, `rate: want float, got string "1_000"`},
		{"stages.data.with.train=3e2", 0, ""},
		{"stages.data.with.train=2.505e2", exitUsage, `train: want int, got float 250.5`},
	}
	for _, tc := range tests {
		t.Run(tc.set, func(t *testing.T) {
			r := sglr(t, dir, "plan", file, "--set", tc.set)
			if r.code != tc.code || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("exit %d, want %d and %q\nstderr: %s", r.code, tc.code, tc.want, r.stderr)
			}
			if strings.Contains(r.stderr, "NaN.0") {
				t.Errorf("stderr prints NaN.0:\n%s", r.stderr)
			}
		})
	}
}
