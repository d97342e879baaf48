// Package exec runs external plugin executables as stages. A plugin is any
// executable that speaks the protocol documented in the stages package
// ("sglr-plugin/1"); a pipeline declares one with `uses: exec:./path`, the CLI
// resolves the path against the pipeline file and calls Open.
package exec

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	osexec "os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sglr-pipe/sglr-pipe/artifacts"
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

// MaxDescribeBytes caps what `PLUGIN describe` may print. A spec is a few
// kilobytes; a plugin that prints more is refused rather than buffered whole.
const MaxDescribeBytes = 4 << 20

// maxLineBytes bounds one line of plugin output held in memory: a longer
// line is cut there and the rest of it, up to its newline, dropped.
const maxLineBytes = 64 << 10

// inputsDir is the subdirectory of a stage's scratch directory that holds the
// plugin's private copies of its inputs. Port names cannot start with a dot
// (stages.DecodeSpec checks), so it never collides with an output file.
const inputsDir = ".inputs"

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
	case !info.Mode().IsRegular():
		// Hashing a FIFO would block in open() until someone writes to it.
		return nil, fmt.Errorf("%s: not executable: is %s, not a regular file", name, artifacts.FileKind(info.Mode()))
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
	return &plugin{path: abs, digest: digest, spec: spec}, nil
}

// plugin is an opened external stage.
type plugin struct {
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
//
// The plugin never sees the store: each input is copied, and hashed as it is
// copied, into a read-only file under env.OutDir/.inputs, which the request
// names and which is removed before Run returns. An input whose bytes do not
// hash to its digest fails the stage with an *artifacts.DigestError. Errors
// do not name the plugin: the executor that runs the stage does.
func (p *plugin) Run(ctx context.Context, env *stages.Env) (err error) {
	digest, err := fileDigest(p.path)
	if err != nil {
		return err
	}
	if digest != p.digest {
		return fmt.Errorf("the executable changed since it was opened (sha256 %s..., now %s...); re-run to pick up the new build",
			p.digest[:12], digest[:12])
	}
	requestPath := filepath.Join(env.OutDir, stages.PluginRequestFile)
	summaryPath := filepath.Join(env.OutDir, stages.PluginSummaryFile)
	defer os.Remove(requestPath)
	defer os.Remove(summaryPath)
	privateDir := filepath.Join(env.OutDir, inputsDir)
	defer func() {
		if rmErr := removePrivate(privateDir); rmErr != nil && err == nil {
			err = rmErr
		}
	}()
	inputs, err := privateInputs(ctx, privateDir, env.Inputs)
	if err != nil {
		return err
	}
	if err := writeRequest(requestPath, env, inputs); err != nil {
		return err
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
		return fmt.Errorf("stopped: %w", ctx.Err())
	}
	if err != nil {
		return p.failure(err, tail.lines())
	}
	if err := reportSummary(summaryPath, env); err != nil {
		return err
	}
	var missing []string
	for _, port := range p.spec.Outputs {
		info, err := os.Stat(env.OutputPath(port.Name))
		if err != nil || !info.Mode().IsRegular() {
			missing = append(missing, fmt.Sprintf("%q", port.Name))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("exited 0 without writing output %s to %s", strings.Join(missing, ", "), env.OutDir)
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
		return fmt.Errorf("plugin failed (%s) with no output", status)
	}
	msg := fmt.Sprintf("plugin failed (%s): %s", status, lines[len(lines)-1])
	if len(lines) > 1 {
		msg += "\n  log tail:\n    " + strings.Join(lines[:len(lines)-1], "\n    ")
	}
	return errors.New(msg)
}

// describe runs `PLUGIN describe` and decodes its spec. Its stdout may hold
// at most MaxDescribeBytes: past that the plugin is stopped and refused.
func describe(name, abs string) (stages.Spec, error) {
	ctx, cancel := context.WithTimeout(context.Background(), DescribeTimeout)
	defer cancel()
	stdout := &cappedBuffer{max: MaxDescribeBytes, full: cancel}
	tail := &logTail{max: tailLines}
	stderr := &lineWriter{line: tail.add}
	cmd := osexec.CommandContext(ctx, abs, "describe")
	cmd.Stdout = stdout
	cmd.Stderr = stderr
	group := newProcessGroup(cmd, KillGrace)
	cmd.WaitDelay = KillGrace + time.Second
	err := cmd.Run()
	group.cleanup()
	stderr.flush()
	switch {
	case stdout.overflow:
		return stages.Spec{}, fmt.Errorf("%s: describe printed more than %d bytes (%d MiB), the limit for a spec: stopped it%s",
			name, MaxDescribeBytes, MaxDescribeBytes>>20, quoteLines(tail.lines()))
	case ctx.Err() != nil:
		return stages.Spec{}, fmt.Errorf("%s: describe did not finish within %s%s", name, DescribeTimeout, quoteLines(tail.lines()))
	case err != nil:
		return stages.Spec{}, fmt.Errorf("%s: describe failed (%v)%s", name, err, quoteLines(tail.lines()))
	}
	spec, err := stages.DecodeSpec(stdout.buf.Bytes())
	if err != nil {
		return stages.Spec{}, fmt.Errorf("%s: describe printed an invalid spec: %w\n  stdout began: %s%s",
			name, err, headOf(stdout.buf.Bytes(), 200), quoteLines(tail.lines()))
	}
	return spec, nil
}

// cappedBuffer keeps what is written to it up to max bytes. The write that
// would pass max fails instead (os/exec then closes the pipe), sets overflow
// and calls full, which stops the command.
type cappedBuffer struct {
	buf      bytes.Buffer
	max      int
	full     func()
	overflow bool
}

var errOutputCap = errors.New("output over its size limit")

func (c *cappedBuffer) Write(p []byte) (int, error) {
	if c.overflow || c.buf.Len()+len(p) > c.max {
		if !c.overflow {
			c.overflow = true
			c.full()
		}
		return 0, errOutputCap
	}
	return c.buf.Write(p)
}

// privateInputs copies every input into its own read-only file under dir
// (dir/PORT/INDEX), hashing the bytes as they are copied, and returns the
// inputs with their paths replaced by the copies'. A copy whose bytes do not
// hash to the input's digest is an *artifacts.DigestError naming the store
// object: the plugin then never runs on bytes other than those its cache
// key names, and whatever it does to its copies cannot reach the store.
func privateInputs(ctx context.Context, dir string, ins map[string][]stages.Input) (map[string][]stages.Input, error) {
	out := make(map[string][]stages.Input, len(ins))
	if len(ins) == 0 {
		return out, nil
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, fmt.Errorf("private inputs: %w", err)
	}
	buf := make([]byte, 1<<20)
	for _, port := range slices.Sorted(maps.Keys(ins)) {
		portDir := filepath.Join(dir, port)
		if err := os.Mkdir(portDir, 0o755); err != nil {
			return nil, fmt.Errorf("private inputs: %w", err)
		}
		copies := make([]stages.Input, len(ins[port]))
		for i, in := range ins[port] {
			dst, err := filepath.Abs(filepath.Join(portDir, strconv.Itoa(i)))
			if err != nil {
				return nil, fmt.Errorf("input %q: %w", port, err)
			}
			if err := copyVerified(ctx, in.Path, in.Digest, dst, buf); err != nil {
				return nil, fmt.Errorf("input %q: %w", port, err)
			}
			copies[i] = in
			copies[i].Path = dst
		}
		out[port] = copies
	}
	return out, nil
}

// copyVerified copies the store object src, named want, to a new read-only
// file dst in one pass that also hashes it. Only a regular file is opened
// (checked with Lstat first, so a FIFO cannot block the open and a link is
// not followed out of the store).
func copyVerified(ctx context.Context, src string, want artifacts.Digest, dst string, buf []byte) error {
	info, err := os.Lstat(src)
	if err != nil {
		return fmt.Errorf("object %s: %w", want, err)
	}
	if !info.Mode().IsRegular() {
		// A replaced object: the scheduler rebuilds its producer.
		return &artifacts.DigestError{Digest: want, Path: src, Problem: "is " + artifacts.FileKind(info.Mode()) + ", not a regular file"}
	}
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("object %s: %w", want, err)
	}
	defer in.Close()
	if opened, err := in.Stat(); err != nil || !os.SameFile(info, opened) {
		return fmt.Errorf("object %s: %s was replaced while it was opened: %w", want, src, artifacts.ErrCorrupt)
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("copy object %s: %w", want, err)
	}
	h := sha256.New()
	// The plain reader hides (*os.File).WriteTo, so every byte goes through
	// buf, the hash and the copy alike.
	_, err = io.CopyBuffer(io.MultiWriter(out, h), struct{ io.Reader }{ctxReader{ctx, in}}, buf)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("copy object %s from %s: %w", want, src, err)
	}
	if got := artifacts.Digest(hex.EncodeToString(h.Sum(nil))); got != want {
		return &artifacts.DigestError{Digest: want, Path: src, Got: got}
	}
	if err := os.Chmod(dst, 0o444); err != nil {
		return fmt.Errorf("copy object %s: %w", want, err)
	}
	return nil
}

// ctxReader stops a long copy when ctx is cancelled.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// removePrivate removes the private input copies. The plugin may have taken
// the permissions away from directories in there; they are given back first.
func removePrivate(dir string) error {
	if err := os.RemoveAll(dir); err == nil {
		return nil
	}
	_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			_ = os.Chmod(path, 0o700)
		}
		return nil
	})
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove private input copies: %w", err)
	}
	return nil
}

// writeRequest encodes env as the protocol's request, with absolute paths;
// inputs are the plugin's private copies of env.Inputs.
func writeRequest(path string, env *stages.Env, inputs map[string][]stages.Input) error {
	outDir, err := filepath.Abs(env.OutDir)
	if err != nil {
		return fmt.Errorf("out dir %s: %w", env.OutDir, err)
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

// fileDigest is the hex sha256 of a file's bytes. Only a regular file is
// opened, so a FIFO put in the executable's place cannot block.
func fileDigest(path string) (string, error) {
	d, err := artifacts.FileDigest(path)
	return string(d), err
}

// quoteLines formats the last lines of a plugin's stderr for an error message.
func quoteLines(lines []string) string {
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

// lineWriter splits a byte stream into lines and hands each to line. A line
// longer than maxLineBytes is handed over cut to that length and the rest of
// it dropped, so no output, however long its lines, is buffered beyond that.
// os/exec calls Write from one goroutine per stream.
type lineWriter struct {
	line     func(string)
	pending  []byte
	dropping bool // the current line was cut: skip to its newline
}

func (w *lineWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		part := p
		if i >= 0 {
			part = p[:i]
		}
		if !w.dropping {
			if room := maxLineBytes - len(w.pending); len(part) > room {
				w.pending = append(w.pending, part[:room]...)
				w.line(string(w.pending))
				w.pending = w.pending[:0]
				w.dropping = true
			} else {
				w.pending = append(w.pending, part...)
			}
		}
		if i < 0 {
			break
		}
		if !w.dropping {
			w.line(string(w.pending))
		}
		w.pending = w.pending[:0]
		w.dropping = false
		p = p[i+1:]
	}
	return n, nil
}

// flush hands over a last line that had no newline.
func (w *lineWriter) flush() {
	if len(w.pending) > 0 && !w.dropping {
		w.line(string(w.pending))
	}
	w.pending = w.pending[:0]
	w.dropping = false
}
