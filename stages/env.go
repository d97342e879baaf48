package stages

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/sglr-pipe/sglr-pipe/artifacts"
)

// Env is everything a running stage may touch.
type Env struct {
	Instance string             // instance id, e.g. "noisy[noise=0.2]"; errors need not name it (the run does)
	Params   Params             // validated, defaults filled
	Seed     uint64             // derived from the pipeline seed and the instance id
	Inputs   map[string][]Input // port -> artifacts (one unless the port is Multi)
	Progress Progress           // never nil
	OutDir   string             // scratch directory: outputs are files named after their port
	// Checkpoints is a directory where a stage may keep checkpoints of long
	// work, shared by the instances that differ only in the parameters the
	// stage declares resume-neutral (pipeline.ResumableStage); "" when the
	// work must not be resumed (replay, a shared store).
	Checkpoints string

	summary map[string]any
}

// Input is one artifact delivered to an input port.
type Input struct {
	Digest artifacts.Digest  `json:"digest"`
	Path   string            `json:"path"`           // read-only file
	Tags   map[string]string `json:"tags,omitempty"` // matrix axis -> value label, for gathered inputs
}

// Progress reports progress on long work. Implementations must be safe for
// concurrent use.
type Progress interface {
	// Start sets the total amount of work (0 if unknown) and its unit ("epochs", "images").
	Start(total int64, unit string)
	// Add advances by n units.
	Add(n int64)
	// Status sets a short status shown beside the bar ("loss 0.41 rob 32.1%").
	Status(msg string)
}

// NopProgress discards progress.
type NopProgress struct{}

func (NopProgress) Start(int64, string) {}
func (NopProgress) Add(int64)           {}
func (NopProgress) Status(string)       {}

// Input returns the single artifact on port, or an error naming the port.
func (e *Env) Input(port string) (Input, error) {
	in := e.Inputs[port]
	switch len(in) {
	case 1:
		return in[0], nil
	case 0:
		return Input{}, fmt.Errorf("input %q is not connected", port)
	default:
		return Input{}, fmt.Errorf("input %q has %d artifacts, want one", port, len(in))
	}
}

// HasInput reports whether an optional port is connected.
func (e *Env) HasInput(port string) bool { return len(e.Inputs[port]) > 0 }

// OutputPath is the file a stage writes output port to.
func (e *Env) OutputPath(port string) string { return filepath.Join(e.OutDir, port) }

// CreateOutput creates the file for output port.
func (e *Env) CreateOutput(port string) (*os.File, error) {
	f, err := os.Create(e.OutputPath(port))
	if err != nil {
		return nil, fmt.Errorf("create output %q: %w", port, err)
	}
	return f, nil
}

// Report records a figure in the action record (e.g. "realised_rate": 0.198).
// Values must be JSON-encodable.
func (e *Env) Report(key string, v any) {
	if e.summary == nil {
		e.summary = map[string]any{}
	}
	e.summary[key] = v
}

// SummaryWarnings is the Report key of a stage's warnings ([]string): the
// CLI prints them at the end of every run that ran or reused the instance.
const SummaryWarnings = "warnings"

// Summary returns what the stage reported.
func (e *Env) Summary() map[string]any { return e.summary }
