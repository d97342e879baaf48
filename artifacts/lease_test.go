package artifacts

import (
	"bufio"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// requireLeases skips tests of what leases lock on a platform without flock.
func requireLeases(t *testing.T) {
	t.Helper()
	if !leasesEnforced {
		t.Skip("leases lock nothing on this platform (no flock)")
	}
}

// age sets path's mtime three hours back, older than any grace the tests use.
func age(t *testing.T, path string) {
	t.Helper()
	past := time.Now().Add(-3 * time.Hour)
	if err := os.Chtimes(path, past, past); err != nil {
		t.Fatal(err)
	}
}

// exists reports whether path exists, failing the test on other errors.
func exists(t *testing.T, path string) bool {
	t.Helper()
	_, err := os.Lstat(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return err == nil
}

func TestGCSparesLeasedScratch(t *testing.T) {
	requireLeases(t)
	s := openTestStore(t)
	sc, err := s.Scratch("stage-*")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(sc.Path, filepath.Join(s.Root(), "tmp", "stage-")) {
		t.Fatalf("scratch dir %s is not in the store's tmp/", sc.Path)
	}
	writeRaw(t, filepath.Join(sc.Path, "best"), "half a model")
	age(t, sc.Path)
	// A directory a killed run of an older version left behind: no lease.
	abandoned, err := os.MkdirTemp(filepath.Join(s.Root(), "tmp"), "stage-*") // unleased, as a killed run leaves it
	if err != nil {
		t.Fatal(err)
	}
	age(t, abandoned)

	for _, dry := range []bool{true, false} {
		rep, err := s.GC(context.Background(), GCOptions{DryRun: dry})
		if err != nil {
			t.Fatal(err)
		}
		if rep.TmpInUse != 1 || !slices.Equal(rep.InUse, []string{sc.Path}) || rep.TmpRemoved != 1 ||
			!slices.Contains(rep.Removed, abandoned) || len(rep.Problems) != 0 {
			t.Errorf("GC (dry run %v) beside a leased scratch dir: %+v", dry, rep)
		}
		if !exists(t, filepath.Join(sc.Path, "best")) {
			t.Fatalf("GC (dry run %v) removed a leased scratch dir", dry)
		}
	}
	if exists(t, abandoned) {
		t.Error("GC spared an old scratch dir nobody leases")
	}

	crep, err := s.Check(context.Background(), CheckOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(crep.Problems) != 1 || crep.Problems[0].Kind != ProblemStrayTmp || !strings.Contains(crep.Problems[0].Detail, "in use") {
		t.Errorf("Check beside a leased scratch dir: %+v", crep.Problems)
	}

	if err := sc.Remove(); err != nil {
		t.Fatal(err)
	}
	if err := sc.Remove(); err != nil {
		t.Errorf("second Remove: %v", err)
	}
	if exists(t, sc.Path) {
		t.Error("Remove left the scratch dir")
	}
	assertTmpEmpty(t, s)
}

func TestGCRemovesReleasedScratch(t *testing.T) {
	s := openTestStore(t)
	sc, err := s.Scratch("stage-*")
	if err != nil {
		t.Fatal(err)
	}
	// Released without removing: as a crashed holder leaves it.
	sc.lease.release()
	age(t, sc.Path)
	rep, err := s.GC(context.Background(), GCOptions{TmpOlderThan: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if rep.TmpRemoved != 1 || rep.TmpInUse != 0 || exists(t, sc.Path) {
		t.Errorf("GC of a released scratch dir: %+v", rep)
	}
}

// leaseHelperEnv names the store root in which TestLeaseHelperProcess, run
// as a child process, leases a scratch dir.
const leaseHelperEnv = "SGLR_TEST_LEASE_HELPER_STORE"

// TestLeaseHelperProcess is not a test: run by TestGCRemovesScratchOfKilledProcess
// as a child, it leases a scratch dir, prints its path and holds it until its
// stdin closes (or it is killed).
func TestLeaseHelperProcess(t *testing.T) {
	root := os.Getenv(leaseHelperEnv)
	if root == "" {
		t.Skip("helper process for TestGCRemovesScratchOfKilledProcess")
	}
	s, err := OpenDir(root)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := s.Scratch("stage-*")
	if err != nil {
		t.Fatal(err)
	}
	os.Stdout.WriteString("scratch " + sc.Path + "\n")
	_, _ = io.Copy(io.Discard, os.Stdin)
	os.Exit(0)
}

func TestGCRemovesScratchOfKilledProcess(t *testing.T) {
	requireLeases(t)
	s := openTestStore(t)
	child := exec.Command(os.Args[0], "-test.run=^TestLeaseHelperProcess$")
	child.Env = append(os.Environ(), leaseHelperEnv+"="+s.Root())
	stdin, err := child.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	stdout, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	child.Stderr = os.Stderr
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		_ = child.Process.Kill()
		_ = child.Wait()
		t.Fatalf("helper process printed no scratch dir: %v", err)
	}
	dir, ok := strings.CutPrefix(strings.TrimSpace(line), "scratch ")
	if !ok {
		_ = child.Process.Kill()
		_ = child.Wait()
		t.Fatalf("helper process printed %q", line)
	}
	age(t, dir)

	rep, err := s.GC(context.Background(), GCOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.TmpInUse != 1 || rep.TmpRemoved != 0 || !exists(t, dir) {
		t.Errorf("GC while another process leases %s: %+v", dir, rep)
	}

	if err := child.Process.Kill(); err != nil { // SIGKILL: no chance to clean up
		t.Fatal(err)
	}
	_ = child.Wait()
	if !exists(t, dir) {
		t.Fatal("the killed helper removed its scratch dir; nothing left to collect")
	}
	rep, err = s.GC(context.Background(), GCOptions{TmpOlderThan: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if rep.TmpRemoved != 1 || rep.TmpInUse != 0 || exists(t, dir) {
		t.Errorf("GC after the lease holder was killed: %+v", rep)
	}
}

func TestGCSparesPutInProgress(t *testing.T) {
	requireLeases(t)
	s := openTestStore(t)
	pr, pw := io.Pipe()
	type putResult struct {
		d   Digest
		err error
	}
	done := make(chan putResult, 1)
	go func() {
		d, err := s.Put(pr)
		done <- putResult{d, err}
	}()
	if _, err := pw.Write([]byte("the first half, ")); err != nil {
		t.Fatal(err)
	}
	var tmp []string
	for deadline := time.Now().Add(10 * time.Second); len(tmp) == 0; {
		if time.Now().After(deadline) {
			t.Fatal("no put-* file appeared in tmp/")
		}
		tmp, _ = filepath.Glob(filepath.Join(s.Root(), "tmp", "put-*"))
		time.Sleep(time.Millisecond)
	}
	age(t, tmp[0]) // a writer stalled for longer than any grace

	rep, err := s.GC(context.Background(), GCOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.TmpInUse != 1 || rep.TmpRemoved != 0 || !exists(t, tmp[0]) {
		t.Errorf("GC with grace 0 during a Put: %+v", rep)
	}

	if _, err := pw.Write([]byte("and the second")); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	res := <-done
	if res.err != nil {
		t.Fatalf("Put after GC: %v", res.err)
	}
	if want := digestOf([]byte("the first half, and the second")); res.d != want {
		t.Errorf("Put stored %s, want %s", res.d, want)
	}
	if err := s.Verify(res.d); err != nil {
		t.Error(err)
	}
	assertTmpEmpty(t, s)
}

// TestLeaseLostToGC plays the race between creating an entry and leasing it:
// gc locks the new entry first and removes it, and the creator, which waited
// for the lock, must notice that what it locked is gone.
func TestLeaseLostToGC(t *testing.T) {
	requireLeases(t)
	s := openTestStore(t)
	dir := filepath.Join(s.Root(), "tmp", "stage-race")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	gc, err := lockEntry(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	go func() {
		l, err := acquireLease(dir)
		l.release()
		got <- err
	}()
	select {
	case err := <-got:
		t.Fatalf("acquireLease did not wait for the lock gc holds: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	if err := os.Remove(dir); err != nil {
		t.Fatal(err)
	}
	gc.release()
	if err := <-got; !errors.Is(err, errLeaseLost) {
		t.Errorf("acquireLease of an entry gc removed: %v, want errLeaseLost", err)
	}
	if _, err := lockEntry(dir, false); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("lockEntry of a missing entry: %v", err)
	}
}
