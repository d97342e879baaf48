package pipeline

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"

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
// returned nil and every declared output file exists and is non-empty; a
// stage panic becomes an error naming the stage.
func (LocalExecutor) Execute(ctx context.Context, t *Task) (*Result, error) {
	spec := t.Stage.Spec()
	dir, err := t.Store.TempDir("stage-*")
	if err != nil {
		return nil, fmt.Errorf("%s: scratch directory: %w", t.Instance, err)
	}
	defer os.RemoveAll(dir)

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
	}
	if err := runStage(ctx, t.Stage, env); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("stage %s: %w", spec.Name, err)
	}
	// Check every output before ingesting any, so a stage that forgot one
	// stores nothing.
	for _, port := range spec.Outputs {
		path := env.OutputPath(port.Name)
		info, err := os.Stat(path)
		switch {
		case err != nil:
			return nil, fmt.Errorf("stage %s did not write output %q: %w", spec.Name, port.Name, err)
		case !info.Mode().IsRegular():
			return nil, fmt.Errorf("stage %s: output %q is not a regular file", spec.Name, port.Name)
		case info.Size() == 0:
			return nil, fmt.Errorf("stage %s: output %q is empty", spec.Name, port.Name)
		}
	}
	res := &Result{Outputs: map[string]artifacts.Digest{}, Summary: env.Summary()}
	for _, port := range spec.Outputs {
		d, err := t.Store.Ingest(filepath.Join(dir, port.Name))
		if err != nil {
			return nil, fmt.Errorf("stage %s: store output %q: %w", spec.Name, port.Name, err)
		}
		res.Outputs[port.Name] = d
	}
	return res, nil
}

// runStage calls s.Run and turns a panic into an error with the stage's name
// and the stack, so one broken stage cannot take the whole run down.
func runStage(ctx context.Context, s stages.Stage, env *stages.Env) (err error) {
	name := s.Spec().Name
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("stage %s panicked: %v\n%s", name, r, debug.Stack())
		}
	}()
	if err := s.Run(ctx, env); err != nil {
		return fmt.Errorf("stage %s: %w", name, err)
	}
	return nil
}
