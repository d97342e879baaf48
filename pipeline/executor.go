package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"

	"github.com/sglr-pipe/sglr-pipe/artifacts"
	"github.com/sglr-pipe/sglr-pipe/stages"
)

// Executor runs one stage instance and stores its outputs. The scheduler
// decides what runs; an Executor decides where (in this process today, on a
// work queue of remote machines later).
type Executor interface {
	// Execute runs t and returns the digests of its stored outputs. It must
	// store nothing when the stage fails or ctx is cancelled.
	Execute(ctx context.Context, t *Task) (*Result, error)
}

// Task is one stage instance ready to run: its inputs are in t.Store.
type Task struct {
	Instance string
	Uses     string // the stage type as written in `uses:` ("noise", "exec:./x"), so a remote executor can name it
	Stage    stages.Stage
	Params   stages.Params
	Seed     uint64
	Inputs   map[string][]stages.Input
	Progress stages.Progress
	Store    artifacts.Store
	// Checkpoints is the instance's checkpoint directory (see
	// ResumableStage), or "" when its work is not to be resumed: other
	// stages, a shared store, and replay, which must compute from scratch.
	Checkpoints string
}

// Result is what a finished task produced.
type Result struct {
	Outputs map[string]artifacts.Digest // output port -> stored object
	Summary map[string]any              // figures the stage reported
}

// InputsByDigest is implemented by executors that move inputs themselves,
// by digest (a remote executor whose workers fetch them from a shared
// store). When InputsByDigest returns true the scheduler does not resolve
// inputs to local files first: Task.Inputs carry digests and tags, with empty
// paths, so a coordinator never downloads what only a worker reads.
type InputsByDigest interface {
	InputsByDigest() bool
}

// LocalExecutor runs stages in this process, each in a scratch directory of
// the store that is removed afterwards.
type LocalExecutor struct{}

// Execute implements Executor. Outputs are ingested only after the stage
// returned nil and every declared output is a regular file that decodes as
// its port's kind (checkOutput), so a bad output fails this stage and stores
// nothing; a stage panic becomes an error naming the stage.
//
// Every error starts with the stage (stageName) and nothing else: the run
// names the instance, and the stage's own errors (and Env's) name the port.
func (LocalExecutor) Execute(ctx context.Context, t *Task) (*Result, error) {
	spec := t.Stage.Spec()
	name := stageName(t)
	scratch, err := t.Store.Scratch("stage-*") // leased: gc leaves it alone while the stage runs
	if err != nil {
		return nil, fmt.Errorf("%s: scratch directory: %w", name, err)
	}
	defer scratch.Remove()
	dir := scratch.Path

	progress := t.Progress
	if progress == nil {
		progress = stages.NopProgress{}
	}
	env := &stages.Env{
		Instance: t.Instance,
		Params:   t.Params,
		Seed:     t.Seed,
		Inputs:   t.Inputs,
		Progress: progress,
		OutDir:   dir,

		Checkpoints: t.Checkpoints,
	}
	if err := runStage(ctx, name, t.Stage, env); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	// Check every output before ingesting any, so a stage that forgot one
	// or wrote a bad one stores nothing.
	checked := make(map[string]artifacts.Digest, len(spec.Outputs))
	for _, port := range spec.Outputs {
		d, err := checkOutput(env.OutputPath(port.Name), port)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		checked[port.Name] = d
	}
	res := &Result{Outputs: map[string]artifacts.Digest{}, Summary: env.Summary()}
	for _, port := range spec.Outputs {
		d, err := t.Store.Ingest(filepath.Join(dir, port.Name))
		if err != nil {
			return nil, fmt.Errorf("%s: store output %q: %w", name, port.Name, err)
		}
		if d != checked[port.Name] {
			return nil, fmt.Errorf("%s: output %q changed after it was checked (sha256 %s, stored %s)",
				name, port.Name, checked[port.Name], d)
		}
		res.Outputs[port.Name] = d
	}
	return res, nil
}

// checkOutput checks the file a stage wrote for port: a regular file (not a
// link), not empty, and decodable as the port's kind in this format version.
// It returns the digest of the bytes it checked.
func checkOutput(path string, port stages.Port) (artifacts.Digest, error) {
	info, err := os.Lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("did not write output %q", port.Name)
	case err != nil:
		return "", fmt.Errorf("output %q: %w", port.Name, err)
	case info.Mode()&fs.ModeSymlink != 0:
		target, _ := os.Readlink(path)
		return "", fmt.Errorf("output %q is a symbolic link (to %s): write the artifact's bytes to the file itself", port.Name, target)
	case !info.Mode().IsRegular():
		return "", fmt.Errorf("output %q is not a regular file (%s)", port.Name, info.Mode().Type())
	case info.Size() == 0:
		return "", fmt.Errorf("output %q is empty", port.Name)
	}
	d, err := artifacts.CheckFile(path, port.Kind)
	if err != nil {
		return "", fmt.Errorf("output %q is not a valid %s artifact: %w", port.Name, port.Kind, err)
	}
	return d, nil
}

// stageName names the stage of t in messages: "stage noise", or the plugin
// as the pipeline wrote it ("stage exec:./plugins/x").
func stageName(t *Task) string {
	if strings.HasPrefix(t.Uses, "exec:") {
		return "stage " + t.Uses
	}
	return "stage " + t.Stage.Spec().Name
}

// runStage calls s.Run, prefixing its error with name (stageName), and turns
// a panic into an error with the name and the stack, so one broken stage
// cannot take the whole run down.
func runStage(ctx context.Context, name string, s stages.Stage, env *stages.Env) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%s panicked: %v\n%s", name, r, debug.Stack())
		}
	}()
	if err := s.Run(ctx, env); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}
