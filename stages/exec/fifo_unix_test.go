//go:build unix

package exec

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sglr-pipe/sglr-pipe/artifacts"
)

// withinOrFail runs f and fails the test if it blocks for more than limit:
// opening a FIFO nobody writes to blocks forever.
func withinOrFail(t *testing.T, limit time.Duration, f func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		return err
	case <-time.After(limit):
		t.Fatalf("blocked for more than %s (opened a FIFO?)", limit)
		return nil
	}
}

func TestFIFOsAreRefusedWithoutBlocking(t *testing.T) {
	t.Run("executable", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "plugin")
		if err := syscall.Mkfifo(path, 0o755); err != nil {
			t.Skipf("mkfifo: %v", err)
		}
		err := withinOrFail(t, 5*time.Second, func() error { _, err := Open(path); return err })
		if err == nil || !strings.Contains(err.Error(), "exec:"+path+": not executable: is a named pipe (FIFO)") {
			t.Errorf("Open error = %v, want it to say the plugin is a FIFO", err)
		}
	})
	t.Run("input object", func(t *testing.T) {
		env, _ := newEnv(t)
		in := env.Inputs["in"][0]
		if err := os.Remove(in.Path); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Mkfifo(in.Path, 0o644); err != nil {
			t.Skipf("mkfifo: %v", err)
		}
		stage, err := Open(writeScript(t, scriptSpec, "echo x > '"+env.OutputPath("out")+"'"))
		if err != nil {
			t.Fatal(err)
		}
		err = withinOrFail(t, 5*time.Second, func() error { return stage.Run(context.Background(), env) })
		if !errors.Is(err, artifacts.ErrCorrupt) || !strings.Contains(err.Error(), in.Path+" is a named pipe (FIFO), not a regular file") {
			t.Errorf("Run error = %v, want one wrapping ErrCorrupt that says the object is a FIFO", err)
		}
	})
}
