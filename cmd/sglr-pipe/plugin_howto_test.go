package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// pluginHowToScript follows the README's plugin how-to literally (see its
// header comment), relative to this package.
var pluginHowToScript = filepath.Join("..", "..", "examples", "plugins", "howto.sh")

// TestPluginHowTo runs examples/plugins/howto.sh: the README's "Adding a
// stage (plugins)" blocks, extracted from README.md and run in a fresh
// directory outside the repository, offline (GOPROXY=off), must install
// sglr-pipe, build the plugin module against this clone through a replace
// directive, and run a pipeline that uses it, with the outputs the README
// states. It builds two binaries, so it is skipped in -short mode. Outside CI
// ($CI unset), a module cache that lacks a dependency skips it with a message
// (run `go mod download`); in CI, where .ci/run downloads the modules first,
// that fails it.
func TestPluginHowTo(t *testing.T) {
	if testing.Short() {
		t.Skip("plugin how-to skipped in -short mode: it builds sglr-pipe and a plugin module (tens of seconds cold)")
	}
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("plugin how-to skipped: no bash on PATH")
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("plugin how-to skipped: no go command on PATH")
	}
	ctx := context.Background()
	if deadline, ok := t.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, deadline.Add(-10*time.Second))
		defer cancel()
	}
	cmd := exec.CommandContext(ctx, bash, pluginHowToScript)
	// The script makes its directory under TMPDIR; the test's own keeps it
	// outside the repository and removes whatever a killed script leaves.
	cmd.Env = append(withoutEnv(os.Environ(), "TMPDIR", "HOWTO_KEEP", "HOWTO_GOPROXY"), "TMPDIR="+t.TempDir())
	out, err := cmd.CombinedOutput()
	if err == nil {
		if !strings.Contains(string(out), "the README's plugin how-to works") {
			t.Errorf("howto.sh exited 0 without its success line:\n%s", out)
		}
		return
	}
	if strings.Contains(string(out), "disabled by GOPROXY=off") && os.Getenv("CI") == "" {
		t.Skipf("plugin how-to skipped: the module cache lacks a dependency (run `go mod download` in the repository):\n%s", out)
	}
	t.Fatalf("examples/plugins/howto.sh failed (%v): the README's plugin how-to does not work as written:\n%s", err, out)
}

// withoutEnv returns env without the variables named in names.
func withoutEnv(env []string, names ...string) []string {
	out := env[:0:0]
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		drop := false
		for _, n := range names {
			drop = drop || name == n
		}
		if !drop {
			out = append(out, kv)
		}
	}
	return out
}
