package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sglr-pipe/sglr-pipe/artifacts"
	"github.com/sglr-pipe/sglr-pipe/artifacts/natsstore"
	"github.com/sglr-pipe/sglr-pipe/pipeline"
	"github.com/sglr-pipe/sglr-pipe/pipeline/natsexec"
)

// These tests run a real NATS server on loopback (in the test process, so
// that it can be restarted) and real worker and coordinator processes: the
// sglr-pipe binary that TestMain built.

// natsServer is an embedded server whose data survives a restart.
type natsServer struct {
	t    *testing.T
	data string
	port int
	srv  *server.Server
}

// startNATS starts a server with JetStream on a free loopback port.
func startNATS(t *testing.T) *natsServer {
	t.Helper()
	ns := &natsServer{t: t, data: t.TempDir(), port: server.RANDOM_PORT}
	ns.start()
	t.Cleanup(func() { ns.srv.Shutdown() })
	return ns
}

func (ns *natsServer) start() {
	ns.t.Helper()
	s, err := startServer(&server.Options{
		Host: "127.0.0.1", Port: ns.port, JetStream: true, StoreDir: ns.data, NoLog: true, NoSigs: true,
	})
	if err != nil {
		ns.t.Fatal(err)
	}
	ns.srv, ns.port = s, s.Addr().(*net.TCPAddr).Port
}

// restart stops the server and brings it back on the same port and data
// after down.
func (ns *natsServer) restart(down time.Duration) {
	ns.t.Helper()
	ns.srv.Shutdown()
	ns.srv.WaitForShutdown()
	time.Sleep(down)
	ns.start()
}

func (ns *natsServer) url() string { return fmt.Sprintf("nats://127.0.0.1:%d", ns.port) }

// jetStream connects the test itself, to look at streams and the store.
func (ns *natsServer) jetStream() (*nats.Conn, jetstream.JetStream) {
	ns.t.Helper()
	nc, err := nats.Connect(ns.url())
	if err != nil {
		ns.t.Fatal(err)
	}
	ns.t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		ns.t.Fatal(err)
	}
	return nc, js
}

// lastTaskSeq is the sequence of the last task ever submitted (0 for none).
func (ns *natsServer) lastTaskSeq() uint64 {
	ns.t.Helper()
	_, js := ns.jetStream()
	st, err := js.Stream(context.Background(), natsexec.TaskStream)
	if err != nil {
		ns.t.Fatal(err)
	}
	info, err := st.Info(context.Background())
	if err != nil {
		ns.t.Fatal(err)
	}
	return info.State.LastSeq
}

// checkSharedStore re-hashes every object of the shared store and checks
// every action.
func (ns *natsServer) checkSharedStore() {
	ns.t.Helper()
	_, js := ns.jetStream()
	mirror, err := artifacts.OpenDir(ns.t.TempDir())
	if err != nil {
		ns.t.Fatal(err)
	}
	store, err := natsstore.Open(context.Background(), js, mirror, natsstore.Config{})
	if err != nil {
		ns.t.Fatal(err)
	}
	rep, err := store.Check(context.Background(), true)
	if err != nil {
		ns.t.Fatal(err)
	}
	if !rep.OK() || rep.Objects == 0 || rep.Actions == 0 {
		ns.t.Errorf("shared store: %d objects, %d actions, problems %v", rep.Objects, rep.Actions, rep.Problems)
	}
}

// proc is a running sglr-pipe process whose output is collected line by line.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	code int

	mu     sync.Mutex
	stdout []string
	stderr []string
}

// startProc starts the binary in dir; the test's end kills it if still running.
func startProc(t *testing.T, name, dir string, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, cmd: exec.Command(binary, args...), done: make(chan struct{})}
	p.cmd.Dir = dir
	p.cmd.Env = append(testEnv(), env...)
	outPipe, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	errPipe, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var readers sync.WaitGroup
	for _, pipe := range []struct {
		r    io.Reader
		sink *[]string
	}{{outPipe, &p.stdout}, {errPipe, &p.stderr}} {
		readers.Add(1)
		go func() {
			defer readers.Done()
			sc := bufio.NewScanner(pipe.r)
			sc.Buffer(make([]byte, 1<<20), 1<<20)
			for sc.Scan() {
				p.mu.Lock()
				*pipe.sink = append(*pipe.sink, sc.Text())
				p.mu.Unlock()
			}
		}()
	}
	go func() {
		readers.Wait()
		err := p.cmd.Wait()
		if ee, ok := err.(*exec.ExitError); ok {
			p.code = ee.ExitCode()
			if ee.ExitCode() == -1 {
				p.code = -int(ee.Sys().(syscall.WaitStatus).Signal())
			}
		}
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// lines returns what the process wrote so far.
func (p *proc) lines() (stdout, stderr []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.stdout), slices.Clone(p.stderr)
}

// logged reports whether stderr has a line containing s.
func (p *proc) logged(s string) bool {
	_, stderr := p.lines()
	for _, l := range stderr {
		if strings.Contains(l, s) {
			return true
		}
	}
	return false
}

// waitLogged waits until stderr has a line containing s.
func (p *proc) waitLogged(t *testing.T, s string, limit time.Duration) {
	t.Helper()
	waitUntil(t, limit, fmt.Sprintf("%s to log %q", p.name, s), func() bool { return p.logged(s) }, p)
}

// wait waits for the process to exit and returns its exit code.
func (p *proc) wait(t *testing.T, limit time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
		return p.code
	case <-time.After(limit):
		_ = p.cmd.Process.Kill()
		<-p.done
		stdout, stderr := p.lines()
		t.Fatalf("%s did not exit within %s\nstdout:\n%s\nstderr:\n%s", p.name, limit, strings.Join(stdout, "\n"), strings.Join(stderr, "\n"))
		return 0
	}
}

// running reports whether the process is still alive.
func (p *proc) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// stop ends a worker the way a user does (SIGTERM) and checks it exits 0.
func (p *proc) stop(t *testing.T) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	if code := p.wait(t, 20*time.Second); code != 0 {
		_, stderr := p.lines()
		t.Errorf("%s exited %d after SIGTERM\n%s", p.name, code, strings.Join(stderr, "\n"))
	}
}

// waitUntil polls cond until it holds, failing with the output of procs.
func waitUntil(t *testing.T, limit time.Duration, what string, cond func() bool, procs ...*proc) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			var b strings.Builder
			for _, p := range procs {
				stdout, stderr := p.lines()
				fmt.Fprintf(&b, "\n--- %s stdout:\n%s\n--- %s stderr:\n%s", p.name, strings.Join(stdout, "\n"), p.name, strings.Join(stderr, "\n"))
			}
			t.Fatalf("waited %s for %s%s", limit, what, b.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// startWorkers starts n worker processes named w1..wn with one core each.
func startWorkers(t *testing.T, ns *natsServer, n int, extra ...string) []*proc {
	t.Helper()
	var ws []*proc
	for i := 1; i <= n; i++ {
		name := fmt.Sprintf("w%d", i)
		args := append([]string{"worker", "--nats", ns.url(), "--name", name, "--cores", "1",
			"--cache", t.TempDir(), "--ack-wait", "2s"}, extra...)
		ws = append(ws, startProc(t, name, t.TempDir(), nil, args...))
	}
	for _, w := range ws {
		w.waitLogged(t, w.name+": ready on", 20*time.Second)
	}
	return ws
}

// runEvents decodes the --json events a coordinator printed so far.
func runEvents(p *proc) []pipeline.Event {
	stdout, _ := p.lines()
	var events []pipeline.Event
	for _, line := range stdout {
		var e pipeline.Event
		if strings.Contains(line, `"kind":"summary"`) || json.Unmarshal([]byte(line), &e) != nil {
			continue
		}
		events = append(events, e)
	}
	return events
}

// finishRun waits for a coordinator started with --json and decodes its output.
func finishRun(t *testing.T, p *proc, limit time.Duration) ([]pipeline.Event, runSummary, int) {
	t.Helper()
	code := p.wait(t, limit)
	stdout, stderr := p.lines()
	if strings.Contains(strings.Join(stderr, "\n"), "panic:") {
		t.Fatalf("%s panicked:\n%s", p.name, strings.Join(stderr, "\n"))
	}
	events, summary := decodeRunJSON(t, strings.Join(stdout, "\n"))
	return events, summary, code
}

// sweepPipeline trains eight small models on synthetic data: eight CPU-bound
// instances of a fraction of a second each, plus the data they share.
const sweepPipeline = `name: sweep
seed: 11
matrix:
  lr: [0.02, 0.04, 0.06, 0.08, 0.1, 0.12, 0.14, 0.16]
stages:
  data:
    uses: load
    with: {dataset: synthetic, train: 200, val: 50, test: 50, classes: 3, shape: [1, 6, 6]}
  train:
    uses: train
    inputs: {train: data.train, val: data.val}
    with: {model: mlp, hidden: [16], epochs: 3, batch: 50, steps: 2, val_steps: 1, workers: 1, lr: "${{ matrix.lr }}"}
`

func TestNATSSweepOnThreeWorkersMatchesLocal(t *testing.T) {
	ns := startNATS(t)
	localDir, localFile := writePipeline(t, sweepPipeline)
	_, local, r := runJSON(t, localDir, localFile)
	if r.code != 0 {
		t.Fatalf("local run: exit %d\n%s", r.code, r.stderr)
	}

	workers := startWorkers(t, ns, 3)
	dir, file := writePipeline(t, sweepPipeline)
	coord := startProc(t, "coordinator", dir, nil, "run", "--json", file, "--executor", "nats", "--nats", ns.url())
	events, remote, code := finishRun(t, coord, 120*time.Second)
	if code != 0 {
		_, stderr := coord.lines()
		t.Fatalf("run on workers: exit %d\n%s", code, strings.Join(stderr, "\n"))
	}
	if remote.Ran != 9 {
		t.Errorf("%d instances ran on workers, want 9", remote.Ran)
	}
	if want, got := outputsOf(local), outputsOf(remote); len(got) != 3+8*4 || !maps.Equal(want, got) {
		t.Errorf("outputs on workers differ from the local executor's\nworkers: %v\nlocal:   %v", got, want)
	}
	took := map[string]int{}
	for _, w := range workers {
		for i := range 8 {
			if w.logged(fmt.Sprintf("train[lr=%s]: done", []string{"0.02", "0.04", "0.06", "0.08", "0.1", "0.12", "0.14", "0.16"}[i])) {
				took[w.name]++
			}
		}
	}
	if len(took) < 2 {
		t.Errorf("the sweep did not spread over the workers: %v", took)
	}
	t.Logf("train instances per worker: %v", took)
	remoteProgress := 0
	for _, e := range events {
		if e.Kind == pipeline.EventProgress && strings.HasPrefix(e.Instance, "train[") && e.Done > 0 {
			remoteProgress++
		}
	}
	if remoteProgress == 0 {
		t.Error("no progress of the remote train instances reached the coordinator")
	}

	// A cached sweep submits nothing: it needs no worker at all.
	for _, w := range workers {
		w.stop(t)
	}
	before := ns.lastTaskSeq()
	again := startProc(t, "coordinator-again", dir, nil, "run", "--json", file, "--executor", "nats", "--nats", ns.url())
	_, cached, code := finishRun(t, again, 30*time.Second)
	if code != 0 || cached.Cached != 9 || cached.Ran != 0 {
		t.Errorf("second run: exit %d, %d cached, %d ran; want 0, 9, 0", code, cached.Cached, cached.Ran)
	}
	if after := ns.lastTaskSeq(); after != before {
		t.Errorf("the cached sweep submitted %d tasks", after-before)
	}
	if want, got := outputsOf(remote), outputsOf(cached); !maps.Equal(want, got) {
		t.Errorf("cached outputs %v, want %v", got, want)
	}
	// A fresh coordinator directory (another machine) sees the same cache.
	otherDir, otherFile := writePipeline(t, sweepPipeline)
	other := startProc(t, "coordinator-other", otherDir, nil, "run", "--json", otherFile, "--executor", "nats", "--nats", ns.url())
	if _, s, code := finishRun(t, other, 30*time.Second); code != 0 || s.Cached != 9 {
		t.Errorf("run from another directory: exit %d, %d cached, want 0 and 9", code, s.Cached)
	}
	mustSucceed(t, dir, "cache", "verify")
	ns.checkSharedStore()
}

// slowPipeline trains one model for a few seconds: long enough to kill its
// worker in the middle.
const slowPipeline = `name: slow
seed: 3
stages:
  data:
    uses: load
    with: {dataset: synthetic, train: 400, val: 100, test: 50, classes: 4, shape: [1, 8, 8]}
  train:
    uses: train
    inputs: {train: data.train, val: data.val}
    with: {model: mlp, hidden: [32], epochs: EPOCHS, batch: 50, steps: 3, val_steps: 1, workers: 1}
`

// firstTrainProgress waits until the coordinator shows progress of the
// train instance, i.e. a worker is in the middle of it.
func firstTrainProgress(t *testing.T, coord *proc) {
	t.Helper()
	waitUntil(t, 60*time.Second, "progress of train on a worker", func() bool {
		for _, e := range runEvents(coord) {
			if e.Instance == "train" && e.Kind == pipeline.EventProgress && e.Done > 0 {
				return true
			}
		}
		return false
	}, coord)
}

func TestNATSWorkerKilledMidStage(t *testing.T) {
	ns := startNATS(t)
	workers := startWorkers(t, ns, 2)
	dir, file := writePipeline(t, strings.Replace(slowPipeline, "EPOCHS", "150", 1))
	coord := startProc(t, "coordinator", dir, nil, "run", "--json", file, "--executor", "nats", "--nats", ns.url())
	firstTrainProgress(t, coord)
	var victim, survivor *proc
	for i, w := range workers {
		if w.logged("train: start") {
			victim, survivor = w, workers[1-i]
		}
	}
	if victim == nil {
		t.Fatal("no worker logged the start of train")
	}
	if err := victim.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	victim.wait(t, 10*time.Second)

	events, summary, code := finishRun(t, coord, 120*time.Second)
	if code != 0 || summary.Ran != 2 {
		_, stderr := coord.lines()
		t.Fatalf("run: exit %d, %d ran\n%s", code, summary.Ran, strings.Join(stderr, "\n"))
	}
	if !survivor.logged("train: start (delivery 2)") || !survivor.logged("train: done") {
		_, stderr := survivor.lines()
		t.Errorf("%s did not take over train:\n%s", survivor.name, strings.Join(stderr, "\n"))
	}
	var on []string
	for _, e := range events {
		if e.Instance == "train" && strings.HasPrefix(e.Message, "on worker ") {
			on = append(on, e.Message)
		}
	}
	want := []string{"on worker " + victim.name, "on worker " + survivor.name}
	if strings.Join(on, ",") != strings.Join(want, ",") {
		t.Errorf("train ran %v, want %v", on, want)
	}
	mustSucceed(t, dir, "cache", "verify")
	ns.checkSharedStore()
}

func TestNATSWorkerRidesOutAServerRestart(t *testing.T) {
	ns := startNATS(t)
	workers := startWorkers(t, ns, 1)
	text := strings.Replace(slowPipeline, "EPOCHS", "${{ matrix.epochs }}", 1)
	text = strings.Replace(text, "seed: 3\n", "seed: 3\nmatrix:\n  epochs: [40, 41, 42]\n", 1)
	dir, file := writePipeline(t, text)
	coord := startProc(t, "coordinator", dir, nil, "run", "--json", file, "--executor", "nats", "--nats", ns.url())
	workers[0].waitLogged(t, "train[epochs=", 60*time.Second)

	ns.restart(time.Second)
	workers[0].waitLogged(t, "reconnected to NATS", 30*time.Second)
	_, summary, code := finishRun(t, coord, 120*time.Second)
	if code != 0 || summary.Ran != 4 {
		_, stderr := coord.lines()
		t.Fatalf("run across the restart: exit %d, %d ran (want 4)\n%s", code, summary.Ran, strings.Join(stderr, "\n"))
	}
	if !workers[0].running() {
		t.Fatal("the worker exited")
	}
	// The worker keeps serving after the restart.
	_, stderr := workers[0].lines()
	reconnected := -1
	doneAfter := 0
	for i, l := range stderr {
		if strings.Contains(l, "reconnected to NATS") && reconnected < 0 {
			reconnected = i
		}
		if reconnected >= 0 && strings.Contains(l, ": done in") {
			doneAfter++
		}
	}
	if doneAfter == 0 {
		t.Errorf("the worker finished nothing after reconnecting:\n%s", strings.Join(stderr, "\n"))
	}
	mustSucceed(t, dir, "cache", "verify")
	ns.checkSharedStore()
}

func TestNATSInterruptWithdrawsTasks(t *testing.T) {
	ns := startNATS(t)
	workers := startWorkers(t, ns, 1)
	dir, file := writePipeline(t, strings.Replace(slowPipeline, "EPOCHS", "2000", 1))
	coord := startProc(t, "coordinator", dir, nil, "run", "--json", file, "--executor", "nats", "--nats", ns.url())
	firstTrainProgress(t, coord)
	if err := coord.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	_, summary, code := finishRun(t, coord, 20*time.Second)
	if code != exitInterrupted || summary.Cancelled != 1 || summary.Status != pipeline.RunCancelled {
		t.Errorf("interrupted run: exit %d, %d cancelled, status %s; want %d, 1, cancelled", code, summary.Cancelled, summary.Status, exitInterrupted)
	}
	workers[0].waitLogged(t, "train: stopped: withdrawn by the coordinator", 20*time.Second)
}

// pluginScript is an exec: plugin that copies its table input to its output;
// junkPluginScript writes junk to the same table port instead.
const (
	pluginScript = `#!/bin/sh
case "$1" in
describe)
  echo '{"name":"hello","version":"1","doc":"","inputs":[{"name":"in","kind":"table","doc":""}],"outputs":[{"name":"out","kind":"table","doc":""}],"params":[],"cores":1}'
  ;;
run)
  in=$(sed -n 's/.*"path": *"\([^"]*\)".*/\1/p' "$2")
  dir=$(sed -n 's/.*"out_dir": *"\([^"]*\)".*/\1/p' "$2")
  cp "$in" "$dir/out"
  ;;
esac
`
	junkPluginScript = `#!/bin/sh
case "$1" in
describe)
  echo '{"name":"junk","version":"1","doc":"","inputs":[{"name":"in","kind":"table","doc":""}],"outputs":[{"name":"out","kind":"table","doc":""}],"params":[],"cores":1}'
  ;;
run)
  dir=$(sed -n 's/.*"out_dir": *"\([^"]*\)".*/\1/p' "$2")
  echo hello > "$dir/out"
  ;;
esac
`
)

// pluginPipeline feeds a label-stats table to the exec: stage hi.
const pluginPipeline = `name: plug
stages:
  data:
    uses: load
    with: {dataset: synthetic, train: 20, val: 5, test: 5, classes: 2, shape: [1, 2, 2]}
  stats:
    uses: label-stats
    inputs: {datasets: data.train[]}
  hi:
    uses: exec:./%s
    inputs: {in: stats.table}
`

func TestNATSExecStageNeedsAllowExec(t *testing.T) {
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("no /bin/sh")
	}
	ns := startNATS(t)
	dir, file := writePipeline(t, fmt.Sprintf(pluginPipeline, "plugin.sh"))
	junkFile := filepath.Join(dir, "junk.yaml")
	for name, text := range map[string]string{"plugin.sh": pluginScript, "junk.sh": junkPluginScript, "junk.yaml": fmt.Sprintf(pluginPipeline, "junk.sh")} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name     string
		file     string
		allow    []string
		wantCode int
		want     string // in the coordinator's output
	}{
		{"without --allow-exec", file, nil, exitFailed,
			"FAILED hi: on worker w1: refused to run exec:./plugin.sh: this worker runs external exec: stages only when started with --allow-exec"},
		{"allowed elsewhere", file, []string{"--allow-exec", t.TempDir()}, exitFailed, "is not under an --allow-exec path of this worker"},
		{"allowed here", file, []string{"--allow-exec", dir}, exitOK, "1 ran, 2 cached, 0 failed"},
		// A bad output fails on the worker and reaches no shared cache.
		{"junk output", junkFile, []string{"--allow-exec", dir}, exitFailed, `output "out" is not a valid table artifact`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := startWorkers(t, ns, 1, tc.allow...)[0]
			r := sglr(t, dir, "run", tc.file, "--executor", "nats", "--nats", ns.url())
			w.stop(t)
			if r.code != tc.wantCode || !strings.Contains(r.stdout, tc.want) {
				t.Fatalf("exit %d, want %d and output with %q\nstdout:\n%s\nstderr:\n%s", r.code, tc.wantCode, tc.want, r.stdout, r.stderr)
			}
		})
	}
	_, js := ns.jetStream()
	mirror, err := artifacts.OpenDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	shared, err := natsstore.Open(context.Background(), js, mirror, natsstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := shared.Check(context.Background(), true)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || rep.Actions != 3 {
		t.Errorf("shared store: %d actions (want 3: data, stats and the good hi), problems %v", rep.Actions, rep.Problems)
	}
}

func TestNATSServeWithToken(t *testing.T) {
	serve := startProc(t, "serve", t.TempDir(), nil, "serve", "--listen", "127.0.0.1:0", "--data", t.TempDir(), "--token", "s3cret", "--quiet")
	var url string
	waitUntil(t, 20*time.Second, "serve to print its URL", func() bool {
		stdout, _ := serve.lines()
		if len(stdout) == 0 {
			return false
		}
		_, rest, ok := strings.Cut(stdout[0], "listening on ")
		url, _, _ = strings.Cut(rest, " ")
		return ok
	}, serve)

	cache := t.TempDir()
	noToken := sglr(t, t.TempDir(), "worker", "--nats", url, "--cache", cache)
	if noToken.code != exitFailed || !strings.Contains(noToken.stderr, "uthorization") {
		t.Errorf("worker without the token: exit %d, stderr %q; want 1 and an authorization error", noToken.code, noToken.stderr)
	}
	w := startProc(t, "w1", t.TempDir(), []string{natsTokenEnv + "=s3cret"}, "worker", "--nats", url, "--name", "w1", "--cache", cache)
	w.waitLogged(t, "w1: ready on", 20*time.Second)
	dir, file := writePipeline(t, smallPipeline)
	r := sglr(t, dir, "run", file, "--executor", "nats", "--nats", url, "--nats-token", "s3cret")
	if r.code != 0 || !strings.Contains(r.stdout, "4 ran, 0 cached") {
		t.Errorf("run through serve with the token: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	w.stop(t)
	_ = serve.cmd.Process.Signal(os.Interrupt)
	if code := serve.wait(t, 20*time.Second); code != 0 {
		t.Errorf("serve exited %d after Ctrl-C", code)
	}
}

func TestNATSUsageErrorsExit2(t *testing.T) {
	dir, file := writePipeline(t, smallPipeline)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown executor", []string{"run", file, "--executor", "slurm"}, `--executor "slurm"`},
		{"nats without URL", []string{"run", file, "--executor", "nats"}, "--nats URL is required"},
		{"URL without nats executor", []string{"run", file, "--nats", "nats://127.0.0.1:1"}, "--nats needs --executor nats"},
		{"label of unknown stage", []string{"run", file, "--executor", "nats", "--nats", "nats://127.0.0.1:1", "--require-label", "nosuch=gpu"}, `no stage "nosuch"`},
		{"malformed label", []string{"run", file, "--executor", "nats", "--nats", "nats://127.0.0.1:1", "--require-label", "noisy=GPU"}, "lowercase"},
		{"worker without URL", []string{"worker"}, "--nats URL is required"},
		{"worker with bad label", []string{"worker", "--nats", "nats://127.0.0.1:1", "--label", "a.b"}, "--label"},
		{"serve with bad address", []string{"serve", "--listen", "nowhere"}, "--listen"},
		{"user without password", []string{"serve", "--user", "me"}, "--password"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := sglr(t, dir, tc.args...)
			if r.code != exitUsage || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("exit %d, stderr %q; want %d and %q", r.code, r.stderr, exitUsage, tc.want)
			}
		})
	}
	if r := sglr(t, dir, "run", file, "--executor", "nats", "--nats", "nats://127.0.0.1:1"); r.code != exitFailed || !strings.Contains(r.stderr, "connect to NATS at nats://127.0.0.1:1") {
		t.Errorf("unreachable server: exit %d, stderr %q; want 1 and a connection error", r.code, r.stderr)
	}
}
