package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// slowPlugin is an exec stage that copies its dataset input to its output,
// but only once the test allows it: it creates the file "started" beside
// itself, then waits (up to a minute) for the file "go". A stage held this way
// runs for longer than gc's grace without writing anything to its scratch
// directory, so the directory's mtime gets old, as a long training's does.
const slowPlugin = `#!/bin/sh
set -e
here=$(dirname "$0")
case "$1" in
describe)
	cat <<'JSON'
{"name": "slow-copy", "version": "1", "doc": "copies its input when told to",
 "inputs": [{"name": "dataset", "kind": "dataset", "doc": "in"}],
 "outputs": [{"name": "dataset", "kind": "dataset", "doc": "out"}],
 "params": [], "cores": 1}
JSON
	;;
run)
	req=$(cat "$2")
	in=$(printf '%s' "$req" | sed -n 's/.*"path": *"\([^"]*\)".*/\1/p')
	out=$(printf '%s' "$req" | sed -n 's/.*"out_dir": *"\([^"]*\)".*/\1/p')
	: > "$here/started"
	n=0
	while [ ! -e "$here/go" ]; do
		n=$((n + 1))
		if [ "$n" -gt 600 ]; then echo "never told to go" >&2; exit 3; fi
		sleep 0.1
	done
	cp "$in" "$out/dataset"
	;;
*)
	echo "usage: $0 describe | run REQUEST.json" >&2
	exit 2
	;;
esac
`

// TestGCSparesARunningStage runs `cache gc --grace 1s` while a stage has been
// running for longer than that: gc must leave the stage's scratch directory
// alone (it is leased), report it as in use, and the run must finish with its
// output stored. Before scratch directories were leased, gc removed it and
// the stage failed with "No such file or directory".
func TestGCSparesARunningStage(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("scratch leases are flock(2) locks, which this platform lacks")
	}
	dir := t.TempDir()
	plugins := filepath.Join(dir, "plugins")
	if err := os.MkdirAll(plugins, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(plugins, "slow.sh"), []byte(slowPlugin), 0o755); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "pipeline.yaml")
	err := os.WriteFile(file, []byte(`name: long
stages:
  data:
    uses: load
    with: {dataset: synthetic, train: 50, val: 10, test: 10, classes: 3, shape: [1, 4, 4]}
  train:
    uses: exec:./plugins/slow.sh
    inputs:
      dataset: data.train
`), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	store := filepath.Join(dir, ".sglr")

	cmd := exec.Command(binary, "run", "--json", file)
	cmd.Dir = dir
	cmd.Env = testEnv()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	defer func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-done
		}
	}()

	deadline := time.After(60 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(plugins, "started")); err == nil {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("run ended before the slow stage started (%v)\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
		case <-deadline:
			t.Fatal("the slow stage did not start within 60 s")
		case <-time.After(50 * time.Millisecond):
		}
	}
	// The stage's scratch directory is now older than the grace below.
	time.Sleep(1500 * time.Millisecond)
	scratch, _ := filepath.Glob(filepath.Join(store, "tmp", "stage-*"))
	if len(scratch) != 1 {
		t.Fatalf("want one stage scratch directory in %s/tmp while the stage runs, found %v", store, scratch)
	}

	gc := mustSucceed(t, dir, "cache", "gc", "--grace", "1s", "--store", store)
	if !strings.Contains(gc.stdout, "spared 1 tmp entries in use") {
		t.Errorf("gc did not report the running stage's scratch directory as in use:\n%s", gc.stdout)
	}
	if _, err := os.Stat(scratch[0]); err != nil {
		t.Errorf("gc --grace 1s removed the running stage's scratch directory: %v", err)
	}

	if err := os.WriteFile(filepath.Join(plugins, "go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run after gc: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatal("run did not finish within 60 s of being let go")
	}
	_, s := decodeRunJSON(t, stdout.String())
	outs := outputsOf(s)
	if s.Failed != 0 || outs["train.dataset"] == "" || outs["train.dataset"] != outs["data.train"] {
		t.Errorf("run after gc: summary %+v, outputs %v", s, outs)
	}
	r := mustSucceed(t, dir, "cache", "verify", "--store", store)
	if !strings.Contains(r.stdout, "store OK") {
		t.Errorf("cache verify after the run:\n%s", r.stdout)
	}
	// The finished stage removed its scratch directory and released its lease.
	if left, _ := filepath.Glob(filepath.Join(store, "tmp", "stage-*")); len(left) != 0 {
		t.Errorf("the finished run left scratch directories behind: %v", left)
	}
}
