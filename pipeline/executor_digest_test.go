package pipeline

import (
	"context"
	"fmt"
	"maps"
	"sync"
	"testing"

	"github.com/sglr-pipe/sglr-pipe/artifacts"
	"github.com/sglr-pipe/sglr-pipe/stages"
)

// byDigestExecutor stands in for a remote executor: it records what the
// scheduler hands it, resolves input digests to files itself (as a worker
// fetching them would) and runs the stage locally.
type byDigestExecutor struct {
	byDigest bool

	mu    sync.Mutex
	tasks map[string]Task
}

func (e *byDigestExecutor) InputsByDigest() bool { return e.byDigest }

func (e *byDigestExecutor) Execute(ctx context.Context, t *Task) (*Result, error) {
	e.mu.Lock()
	e.tasks[t.Instance] = *t
	e.mu.Unlock()
	resolved := *t
	resolved.Inputs = map[string][]stages.Input{}
	for port, ins := range t.Inputs {
		for _, in := range ins {
			path, err := t.Store.Path(in.Digest)
			if err != nil {
				return nil, fmt.Errorf("fetch %s: %w", in.Digest, err)
			}
			in.Path = path
			resolved.Inputs[port] = append(resolved.Inputs[port], in)
		}
	}
	return LocalExecutor{}.Execute(ctx, &resolved)
}

func TestExecutorInputsByDigest(t *testing.T) {
	ts := newTestStages("v1")
	path := writeFile(t, t.TempDir(), "sweep.yaml", matrixYAML)
	local := mustRun(t, mustLoad(t, path, ts), Options{Store: openStore(t)})

	tests := []struct {
		name      string
		byDigest  bool
		wantPaths bool
	}{
		{"executor moves inputs by digest", true, false},
		{"executor declines", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			exec := &byDigestExecutor{byDigest: tt.byDigest, tasks: map[string]Task{}}
			run := mustRun(t, mustLoad(t, path, ts), Options{Store: openStore(t), Executor: exec})
			for i, ri := range run.Instances {
				if !maps.Equal(ri.Outputs, local.Instances[i].Outputs) {
					t.Errorf("%s: outputs %v, local executor gave %v", ri.ID, ri.Outputs, local.Instances[i].Outputs)
				}
			}
			g := exec.tasks["g"]
			if g.Uses != "gather" {
				t.Errorf("task g: Uses %q, want gather", g.Uses)
			}
			rows := g.Inputs["rows"]
			if len(rows) != 2 {
				t.Fatalf("task g got %d rows inputs, want 2", len(rows))
			}
			for i, in := range rows {
				want := instanceOf(t, run, fmt.Sprintf("c[scale=%s]", in.Tags["scale"])).Outputs["table"]
				if in.Digest != want {
					t.Errorf("rows[%d] (tags %v): digest %s, want %s", i, in.Tags, in.Digest, want)
				}
				if (in.Path != "") != tt.wantPaths {
					t.Errorf("rows[%d]: path %q, want a path: %v", i, in.Path, tt.wantPaths)
				}
			}
		})
	}
}

var _ artifacts.Store = (*artifacts.DirStore)(nil)
