package stages

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"

	"github.com/sglr-pipe/sglr-pipe/stages/param"
)

// PluginProtocol names the version of the external plugin protocol, which
// follows. A request carrying another value is refused, so that a future
// incompatible change fails loudly instead of running with misread fields.
//
// An external stage is any executable PLUGIN that speaks this protocol; the
// exec sub-package runs one as a Stage, and Serve turns a Go Stage into one.
//
//	PLUGIN describe
//	    Prints the stage's Spec as JSON (the json tags of Spec, Port and Param)
//	    on stdout and exits 0. Parameter defaults are JSON values of the
//	    parameter's type. The pipeline checks every value against this
//	    schema before anything runs (min and max, an enum, which for a list
//	    parameter constrains each element); there is no call to check rules
//	    over several parameters (stages.Checker): a plugin reports those when
//	    it runs.
//
//	PLUGIN run REQUEST.json
//	    REQUEST.json is a PluginRequest:
//	      {"protocol": "sglr-plugin/1",
//	       "instance": "subset[k=3]",
//	       "params":   {"classes": ["cat", 3], "per_class": 0},
//	       "seed":     1234,
//	       "inputs":   {"dataset": [{"digest": "ab12…", "path": "/abs/file", "tags": {"noise": "0.2"}}]},
//	       "out_dir":  "/abs/scratch"}
//	    Paths are absolute; input files are read-only. Params are validated and
//	    have their defaults filled; because JSON has one number type, a float
//	    param may arrive written as 3, and the plugin types values by its spec.
//	    The plugin writes each declared output port to OUT_DIR/<port> (what
//	    Env.OutputPath gives) and, if it reported figures (Env.Report), a JSON
//	    object of them to OUT_DIR/.summary.json. It must write nothing else
//	    that it expects to be kept.
//	    Progress goes to stderr as one JSON object per line (PluginEvent):
//	      {"progress": {"start": 60, "unit": "epochs"}}
//	      {"progress": {"add": 1}}
//	      {"status": "loss 0.41"}
//	    Any other stderr (or stdout) line is a human log line.
//	    Exit 0 on success. On failure exit non-zero with the error message as
//	    the last stderr line: the runner quotes it. On SIGTERM or SIGINT the
//	    plugin should stop promptly; the runner kills its process group if it
//	    does not.
//
// A stage served this way behaves as it does in-process: Serve decodes the
// request's params by the spec's types (int -> int64, float -> float64, list
// -> []any, map -> map[string]any), so Params accessors work unchanged.
const PluginProtocol = "sglr-plugin/1"

// PluginRequestFile and PluginSummaryFile are the protocol's bookkeeping files
// inside a run's out_dir: the request the runner wrote, and the figures the
// plugin reported. The runner removes both after the plugin exits.
const (
	PluginRequestFile = ".request.json"
	PluginSummaryFile = ".summary.json"
)

// PluginRequest is the JSON document passed to `PLUGIN run`. It carries
// exactly what an in-process stage gets in its Env.
type PluginRequest struct {
	Protocol string             `json:"protocol"`
	Instance string             `json:"instance"`
	Params   map[string]any     `json:"params"`
	Seed     uint64             `json:"seed"`
	Inputs   map[string][]Input `json:"inputs"`
	OutDir   string             `json:"out_dir"`
}

// PluginEvent is one JSON line a plugin writes to stderr to report progress:
// exactly one of Progress or Status is set.
type PluginEvent struct {
	Progress *PluginProgress `json:"progress,omitempty"`
	Status   *string         `json:"status,omitempty"`
}

// PluginProgress is the payload of a progress event: Unit set (even to "")
// means Start(Start, Unit); otherwise it means Add(Add).
type PluginProgress struct {
	Start int64   `json:"start,omitempty"`
	Unit  *string `json:"unit,omitempty"`
	Add   int64   `json:"add,omitempty"`
}

// ParsePluginEvent decodes a stderr line as a progress event; ok is false for
// a human log line (anything that is not a JSON object with exactly one of
// "progress" or "status").
func ParsePluginEvent(line string) (ev PluginEvent, ok bool) {
	line = strings.TrimSpace(line)
	if !strings.HasPrefix(line, "{") {
		return PluginEvent{}, false
	}
	dec := json.NewDecoder(strings.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ev); err != nil || dec.More() {
		return PluginEvent{}, false
	}
	if (ev.Progress == nil) == (ev.Status == nil) {
		return PluginEvent{}, false
	}
	return ev, true
}

// Apply forwards the event to p.
func (ev PluginEvent) Apply(p Progress) {
	switch {
	case ev.Status != nil:
		p.Status(*ev.Status)
	case ev.Progress != nil && ev.Progress.Unit != nil:
		p.Start(ev.Progress.Start, *ev.Progress.Unit)
	case ev.Progress != nil:
		p.Add(ev.Progress.Add)
	}
}

// Serve runs s as an external plugin executable: it answers the protocol
// above for os.Args and exits with the protocol's status. A plugin's main is
// just `func main() { stages.Serve(myStage{}) }`.
func Serve(s Stage) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := ServeArgs(ctx, s, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// ServeArgs is Serve without the process: it answers args (without the
// program name), writes to stdout and stderr, stops s when ctx is cancelled,
// and returns the exit code (0 ok, 1 the stage failed, 2 bad usage).
func ServeArgs(ctx context.Context, s Stage, args []string, stdout, stderr io.Writer) int {
	spec := s.Spec()
	usage := fmt.Sprintf("usage: PLUGIN describe | PLUGIN run REQUEST.json  (%s %s, protocol %s)",
		spec.Name, spec.Version, PluginProtocol)
	if len(args) == 0 {
		fmt.Fprintln(stderr, usage)
		return 2
	}
	switch {
	case args[0] == "describe" && len(args) == 1:
		if err := checkSpec(spec); err != nil {
			fmt.Fprintf(stderr, "%s: invalid spec: %v\n", spec.Name, err)
			return 1
		}
		out, err := json.MarshalIndent(spec, "", "  ")
		if err != nil {
			fmt.Fprintf(stderr, "%s: encode spec: %v\n", spec.Name, err)
			return 1
		}
		if _, err := stdout.Write(append(out, '\n')); err != nil {
			fmt.Fprintf(stderr, "%s: write spec: %v\n", spec.Name, err)
			return 1
		}
		return 0
	case args[0] == "run" && len(args) == 2:
		if err := serveRun(ctx, s, args[1], stderr); err != nil {
			// The last stderr line is the error: keep it on one line.
			fmt.Fprintln(stderr, strings.ReplaceAll(err.Error(), "\n", "; "))
			return 1
		}
		return 0
	case args[0] == "-h" || args[0] == "--help" || args[0] == "help":
		fmt.Fprintln(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "unknown command %q\n%s\n", strings.Join(args, " "), usage)
		return 2
	}
}

// DecodeSpec decodes the JSON a plugin printed for `describe`, types each
// parameter default by the parameter's type (as DecodeParams does) and checks
// the spec: a name and a version, ports with names usable as file names and
// kinds, unique names, known parameter types and sane ranges.
func DecodeSpec(data []byte) (Spec, error) {
	var spec Spec
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&spec); err != nil {
		return Spec{}, fmt.Errorf("decode spec: %w", err)
	}
	if dec.More() {
		return Spec{}, errors.New("decode spec: extra data after the JSON object")
	}
	for i, p := range spec.Params {
		v, problems := p.DefaultValue()
		if len(problems) > 0 {
			return Spec{}, param.Join(problems)
		}
		spec.Params[i].Default = v
	}
	if err := checkSpec(spec); err != nil {
		return Spec{}, err
	}
	return spec, nil
}

// DecodeParams types raw JSON-decoded parameter values by spec with
// param.Decode, the typer the DSL uses: int -> int64, float -> float64 (also
// when written as 3), string, bool, list -> []any and map -> map[string]any,
// whose numbers become int64 when written without a fraction or exponent and
// float64 otherwise; ranges and enums are checked. A missing param gets its
// default (the runner sends them filled in; a request written by hand may
// not). A missing required param, an unknown name or a bad value is an
// error; all of them are returned at once.
func DecodeParams(spec Spec, raw map[string]any) (Params, error) {
	params, problems := param.Decode(spec.Params, raw)
	if len(problems) > 0 {
		return nil, param.Join(problems)
	}
	return params, nil
}

// serveRun handles `PLUGIN run REQUEST.json`.
func serveRun(ctx context.Context, s Stage, requestPath string, stderr io.Writer) error {
	spec := s.Spec()
	data, err := os.ReadFile(requestPath)
	if err != nil {
		return fmt.Errorf("%s: read request: %w", spec.Name, err)
	}
	var req struct {
		PluginRequest
		Params map[string]json.RawMessage `json:"params"`
	}
	if err := json.Unmarshal(data, &req); err != nil {
		return fmt.Errorf("%s: decode request %s: %w", spec.Name, requestPath, err)
	}
	if req.Protocol != PluginProtocol {
		return fmt.Errorf("%s: request %s speaks protocol %q, this plugin speaks %q",
			spec.Name, requestPath, req.Protocol, PluginProtocol)
	}
	if req.OutDir == "" {
		return fmt.Errorf("%s: request %s has no out_dir", spec.Name, requestPath)
	}
	raw := map[string]any{}
	for name, msg := range req.Params {
		v, err := decodeNumbers(msg)
		if err != nil {
			return fmt.Errorf("%s: decode param %q: %w", spec.Name, name, err)
		}
		raw[name] = v
	}
	params, err := DecodeParams(spec, raw)
	if err != nil {
		return fmt.Errorf("params: %w", err)
	}
	env := &Env{
		Instance: req.Instance,
		Params:   params,
		Seed:     req.Seed,
		Inputs:   req.Inputs,
		Progress: &jsonLineProgress{w: stderr},
		OutDir:   req.OutDir,
	}
	if env.Inputs == nil {
		env.Inputs = map[string][]Input{}
	}
	if err := s.Run(ctx, env); err != nil {
		return err
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	for _, port := range spec.Outputs {
		if _, err := os.Stat(env.OutputPath(port.Name)); err != nil {
			return fmt.Errorf("stage returned without writing output %q: %w", port.Name, err)
		}
	}
	if summary := env.Summary(); len(summary) > 0 {
		out, err := json.Marshal(summary)
		if err != nil {
			return fmt.Errorf("encode summary: %w", err)
		}
		if err := os.WriteFile(filepath.Join(req.OutDir, PluginSummaryFile), out, 0o644); err != nil {
			return fmt.Errorf("write summary: %w", err)
		}
	}
	return nil
}

// jsonLineProgress writes progress as protocol events, one JSON line each.
type jsonLineProgress struct {
	mu sync.Mutex
	w  io.Writer
}

func (p *jsonLineProgress) Start(total int64, unit string) {
	p.emit(PluginEvent{Progress: &PluginProgress{Start: total, Unit: &unit}})
}

func (p *jsonLineProgress) Add(n int64) {
	p.emit(PluginEvent{Progress: &PluginProgress{Add: n}})
}

func (p *jsonLineProgress) Status(msg string) {
	p.emit(PluginEvent{Status: &msg})
}

func (p *jsonLineProgress) emit(ev PluginEvent) {
	line, err := json.Marshal(ev)
	if err != nil {
		return // cannot happen: the event holds only strings and ints
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.w.Write(append(line, '\n'))
}

// portName is what a port name may look like: it becomes a file name in out_dir.
var portName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]*$`)

// checkSpec reports what is wrong with a spec, all problems at once.
func checkSpec(s Spec) error {
	var errs []error
	if strings.TrimSpace(s.Name) == "" {
		errs = append(errs, errors.New("spec has no name"))
	}
	if strings.TrimSpace(s.Version) == "" {
		errs = append(errs, errors.New("spec has no version"))
	}
	if s.Cores < 0 {
		errs = append(errs, fmt.Errorf("cores %d is negative", s.Cores))
	}
	for _, group := range []struct {
		what  string
		ports []Port
	}{{"input", s.Inputs}, {"output", s.Outputs}} {
		seen := map[string]bool{}
		for i, p := range group.ports {
			switch {
			case !portName.MatchString(p.Name):
				errs = append(errs, fmt.Errorf("%s port %d: name %q must match %s", group.what, i, p.Name, portName))
			case seen[p.Name]:
				errs = append(errs, fmt.Errorf("%s port %q declared twice", group.what, p.Name))
			}
			seen[p.Name] = true
			if strings.TrimSpace(p.Kind) == "" {
				errs = append(errs, fmt.Errorf("%s port %q has no kind", group.what, p.Name))
			}
			if group.what == "output" && (p.Optional || p.Multi) {
				errs = append(errs, fmt.Errorf("output port %q cannot be optional or multi", p.Name))
			}
		}
	}
	seen := map[string]bool{}
	for i, p := range s.Params {
		switch {
		case strings.TrimSpace(p.Name) == "":
			errs = append(errs, fmt.Errorf("param %d has no name", i))
		case seen[p.Name]:
			errs = append(errs, fmt.Errorf("param %q declared twice", p.Name))
		}
		seen[p.Name] = true
		switch p.Type {
		case TypeInt, TypeFloat, TypeString, TypeBool, TypeList, TypeMap:
		default:
			errs = append(errs, fmt.Errorf("param %q has unknown type %q (want int, float, string, bool, list or map)", p.Name, p.Type))
			continue
		}
		if _, problems := p.DefaultValue(); len(problems) > 0 {
			errs = append(errs, param.Join(problems))
		}
		if p.Min != nil && p.Max != nil && *p.Min > *p.Max {
			errs = append(errs, fmt.Errorf("param %q: min %g exceeds max %g", p.Name, *p.Min, *p.Max))
		}
	}
	return errors.Join(errs...)
}

// decodeNumbers decodes one JSON value keeping numbers as json.Number, so that
// the typer can tell 3 from 3.5 without float rounding.
func decodeNumbers(msg json.RawMessage) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(msg))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}
