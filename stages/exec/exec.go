// Package exec runs external plugin executables as stages. A plugin is any
// executable that speaks the protocol documented in the stages package
// ("sglr-plugin/1"); a pipeline declares one with `uses: exec:./path`, the CLI
// resolves the path against the pipeline file and calls Open.
package exec

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/sglr-pipe/sglr-pipe/stages"
)

// DescribeTimeout bounds `PLUGIN describe`: a plugin that hangs there would
// otherwise hang pipeline validation.
const DescribeTimeout = 30 * time.Second

// KillGrace is how long a cancelled plugin gets between SIGTERM and SIGKILL
// of its process group.
const KillGrace = 2 * time.Second

// tailLines is how many human log lines a failure message quotes.
const tailLines = 20

// Open checks that path is an executable plugin, asks it to describe itself
// and returns it as a Stage. The stage keeps the plugin's own name; its
// version is the plugin's version plus "+exe." and the first 12 hex digits of
// the sha256 of the executable's bytes, so rebuilding the plugin changes every
// cache key it enters. Errors name the plugin as "exec:"+path.
func Open(path string) (stages.Stage, error) {
	name := "exec:" + path
	info, err := os.Stat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil, fmt.Errorf("%s: not found", name)
	case err != nil:
		return nil, fmt.Errorf("%s: %w", name, err)
	case info.IsDir():
		return nil, fmt.Errorf("%s: not executable: is a directory", name)
	case info.Mode().Perm()&0o111 == 0:
		return nil, fmt.Errorf("%s: not executable (mode %s); chmod +x it", name, info.Mode().Perm())
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	digest, err := fileDigest(abs)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	spec, err := describe(name, abs)
	if err != nil {
		return nil, err
	}
	spec.Version = spec.Version + "+exe." + digest[:12]
	return &plugin{name: name, path: abs, digest: digest, spec: spec}, nil
}

// plugin is an opened external stage.
type plugin struct {
	name   string // "exec:" + the path Open was given, for messages
	path   string // absolute path of the executable
	digest string // hex sha256 of the executable when opened
	spec   stages.Spec
}

// Spec returns the plugin's spec with the executable digest in its version.
func (p *plugin) Spec() stages.Spec { return p.spec }

// Run writes the request into env.OutDir, runs `PLUGIN run REQUEST` in its
// own process group (killed when ctx is cancelled), forwards its progress to
// env.Progress, records its summary with env.Report and checks that every
// declared output was written.
func (p *plugin) Run(ctx context.Context, env *stages.Env) error {
	digest, err := fileDigest(p.path)
	if err != nil {
		return fmt.Errorf("%s: %w", p.name, err)
	}
	if digest != p.digest {
		return fmt.Errorf("%s: the executable changed since it was opened (sha256 %s..., now %s...); re-run to pick up the new build",
			p.name, p.digest[:12], digest[:12])
	}
	requestPath := filepath.Join(env.OutDir, stages.PluginRequestFile)
	summaryPath := filepath.Join(env.OutDir, stages.PluginSummaryFile)
	defer os.Remove(requestPath)
	defer os.Remove(summaryPath)
	if err := writeRequest(requestPath, env); err != nil {
		return fmt.Errorf("%s: %w", p.name, err)
	}

	tail := &logTail{max: tailLines}
	stderr := &lineWriter{line: func(line string) {
		if ev, ok := stages.ParsePluginEvent(line); ok {
			ev.Apply(env.Progress)
			return
		}
		tail.add(line)
	}}
	stdout := &lineWriter{line: tail.add}

	cmd := osexec.CommandContext(ctx, p.path, "run", requestPath)
	cmd.Stdout = stdout
	cmd.Stderr = stderr
	group := newProcessGroup(cmd, KillGrace)
	cmd.WaitDelay = KillGrace + time.Second
	err = cmd.Run()
	group.cleanup()
	stdout.flush()
	stderr.flush()

	if ctx.Err() != nil {
		return fmt.Errorf("%s: stopped: %w", p.name, ctx.Err())
	}
	if err != nil {
		return p.failure(err, tail.lines())
	}
	if err := reportSummary(summaryPath, env); err != nil {
		return fmt.Errorf("%s: %w", p.name, err)
	}
	var missing []string
	for _, port := range p.spec.Outputs {
		info, err := os.Stat(env.OutputPath(port.Name))
		if err != nil || !info.Mode().IsRegular() {
			missing = append(missing, fmt.Sprintf("%q", port.Name))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%s: exited 0 without writing output %s to %s", p.name, strings.Join(missing, ", "), env.OutDir)
	}
	return nil
}

// failure builds the error for a plugin that exited badly: the exit status,
// its last log line, and the lines before it.
func (p *plugin) failure(err error, lines []string) error {
	status := err.Error()
	var exitErr *osexec.ExitError
	if errors.As(err, &exitErr) {
		if code := exitErr.ExitCode(); code >= 0 {
			status = fmt.Sprintf("exit %d", code)
		} else {
			status = exitErr.String() // "signal: killed"
		}
	}
	if len(lines) == 0 {
		return fmt.Errorf("%s failed (%s) with no output", p.name, status)
	}
	msg := fmt.Sprintf("%s failed (%s): %s", p.name, status, lines[len(lines)-1])
	if len(lines) > 1 {
		msg += "\n  log tail:\n    " + strings.Join(lines[:len(lines)-1], "\n    ")
	}
	return errors.New(msg)
}

// describe runs `PLUGIN describe` and decodes its spec.
func describe(name, abs string) (stages.Spec, error) {
	ctx, cancel := context.WithTimeout(context.Background(), DescribeTimeout)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := osexec.CommandContext(ctx, abs, "describe")
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	group := newProcessGroup(cmd, KillGrace)
	cmd.WaitDelay = KillGrace + time.Second
	err := cmd.Run()
	group.cleanup()
	if ctx.Err() != nil {
		return stages.Spec{}, fmt.Errorf("%s: describe did not finish within %s%s", name, DescribeTimeout, quoteTail(stderr.Bytes()))
	}
	if err != nil {
		return stages.Spec{}, fmt.Errorf("%s: describe failed (%v)%s", name, err, quoteTail(stderr.Bytes()))
	}
	spec, err := stages.DecodeSpec(stdout.Bytes())
	if err != nil {
		return stages.Spec{}, fmt.Errorf("%s: describe printed an invalid spec: %w\n  stdout began: %s%s",
			name, err, headOf(stdout.Bytes(), 200), quoteTail(stderr.Bytes()))
	}
	return spec, nil
}

// writeRequest encodes env as the protocol's request, with absolute paths.
func writeRequest(path string, env *stages.Env) error {
	outDir, err := filepath.Abs(env.OutDir)
	if err != nil {
		return fmt.Errorf("out dir %s: %w", env.OutDir, err)
	}
	inputs := make(map[string][]stages.Input, len(env.Inputs))
	for port, ins := range env.Inputs {
		abs := make([]stages.Input, len(ins))
		for i, in := range ins {
			abs[i] = in
			if abs[i].Path, err = filepath.Abs(in.Path); err != nil {
				return fmt.Errorf("input %q: %w", port, err)
			}
		}
		inputs[port] = abs
	}
	params := map[string]any(env.Params)
	if params == nil {
		params = map[string]any{}
	}
	data, err := json.MarshalIndent(stages.PluginRequest{
		Protocol: stages.PluginProtocol,
		Instance: env.Instance,
		Params:   params,
		Seed:     env.Seed,
		Inputs:   inputs,
		OutDir:   outDir,
	}, "", "  ")
	if err != nil {
		return fmt.Errorf("encode request: %w", err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return fmt.Errorf("write request: %w", err)
	}
	return nil
}

// reportSummary passes the plugin's .summary.json, if any, to env.Report.
func reportSummary(path string, env *stages.Env) error {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read summary: %w", err)
	}
	var summary map[string]any
	if err := json.Unmarshal(data, &summary); err != nil {
		return fmt.Errorf("decode summary %s: %w", path, err)
	}
	for k, v := range summary {
		env.Report(k, v)
	}
	return nil
}

// fileDigest is the hex sha256 of a file's bytes.
func fileDigest(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("hash %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// quoteTail formats the last lines of a plugin's stderr for an error message.
func quoteTail(stderr []byte) string {
	tail := &logTail{max: tailLines}
	sc := bufio.NewScanner(bytes.NewReader(stderr))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		tail.add(sc.Text())
	}
	lines := tail.lines()
	if len(lines) == 0 {
		return ""
	}
	return "\n  stderr:\n    " + strings.Join(lines, "\n    ")
}

// headOf returns at most n bytes of b as a quoted string.
func headOf(b []byte, n int) string {
	if len(b) > n {
		return fmt.Sprintf("%q...", b[:n])
	}
	return fmt.Sprintf("%q", b)
}

// logTail keeps the last max non-empty lines, each cut to a sane length.
type logTail struct {
	mu  sync.Mutex
	max int
	buf []string
}

func (t *logTail) add(line string) {
	line = strings.TrimRight(line, "\r\n\t ")
	if strings.TrimSpace(line) == "" {
		return
	}
	if len(line) > 1000 {
		line = line[:1000] + "..."
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, line)
	if len(t.buf) > t.max {
		t.buf = t.buf[len(t.buf)-t.max:]
	}
}

func (t *logTail) lines() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]string(nil), t.buf...)
}

// lineWriter splits a byte stream into lines and hands each to line. os/exec
// calls Write from one goroutine per stream.
type lineWriter struct {
	line    func(string)
	pending []byte
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.pending = append(w.pending, p...)
	for {
		i := bytes.IndexByte(w.pending, '\n')
		if i < 0 {
			break
		}
		w.line(string(w.pending[:i]))
		w.pending = w.pending[i+1:]
	}
	if len(w.pending) > 64*1024 { // a runaway line without newline: emit what we have
		w.line(string(w.pending))
		w.pending = nil
	}
	return len(p), nil
}

// flush hands over a last line that had no newline.
func (w *lineWriter) flush() {
	if len(w.pending) > 0 {
		w.line(string(w.pending))
		w.pending = nil
	}
}
