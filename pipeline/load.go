package pipeline

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"

	"github.com/sglr-pipe/sglr-pipe/artifacts"
	"github.com/sglr-pipe/sglr-pipe/dsl"
	"github.com/sglr-pipe/sglr-pipe/stages"
)

// Pipeline is a loaded, validated, matrix-expanded pipeline: the DAG of stage
// instances with their resolved stages, parameters and derived seeds.
type Pipeline struct {
	File      string         // absolute path of the pipeline file (refs are named after it)
	Expansion *dsl.Expansion // what the DSL produced
	Nodes     []*Node        // one per instance, producers before consumers

	byID   map[string]*Node
	byDecl map[string][]*Node
}

// Node is one stage instance in the DAG.
type Node struct {
	Instance  *dsl.Instance
	Stage     stages.Stage
	Spec      stages.Spec
	Params    stages.Params // validated, defaults filled, ints int64, floats float64
	Seed      uint64        // DeriveSeed(pipeline seed, instance id)
	Producers []*Node       // distinct instances this one reads from, in first-use order
	Consumers []*Node       // distinct instances that read from this one

	index int
}

// ID returns the instance id, e.g. "train[method=sglr,noise=0.2]".
func (n *Node) ID() string { return n.Instance.ID }

// Decl returns the declaration id the instance was expanded from.
func (n *Node) Decl() string { return n.Instance.Decl.ID }

// Uses returns the stage type as written in `uses:`.
func (n *Node) Uses() string { return n.Instance.Decl.Uses }

// Load reads, parses, validates and expands the pipeline file, with --set
// overrides in sets, resolving every `uses:` through resolve. Problems in the
// file come back as dsl.Diagnostics (all of them at once), and so does a
// file that is not a regular file or is over dsl.MaxFileSize; an unreadable
// file is an error naming it.
func Load(file string, sets []string, resolve Resolver) (*Pipeline, error) {
	return LoadWith(file, sets, resolve, LoadOptions{})
}

// LoadOptions tune LoadWith.
type LoadOptions struct {
	// MaxInstances bounds the stage instances (and matrix combinations) the
	// pipeline may expand to; 0 means dsl.DefaultMaxInstances.
	MaxInstances int
}

// LoadWith is Load with options.
func LoadWith(file string, sets []string, resolve Resolver, opts LoadOptions) (*Pipeline, error) {
	src, err := dsl.ReadFile(file)
	if diags := dsl.Diagnostics(nil); errors.As(err, &diags) {
		return nil, diags
	}
	if err != nil {
		return nil, fmt.Errorf("read pipeline %s: %w", file, err)
	}
	abs, err := filepath.Abs(file)
	if err != nil {
		return nil, fmt.Errorf("pipeline %s: %w", file, err)
	}
	// Expand runs even when Parse found problems (it works on the partial
	// Spec), so every problem in the file is reported at once.
	spec, parseDiags := dsl.Parse(file, src, sets)
	cat := NewCatalog(resolve).(*catalog)
	exp, diags := dsl.ExpandWith(spec, cat, dsl.ExpandOptions{MaxInstances: opts.MaxInstances})
	if all := append(parseDiags, diags...); all.HasErrors() {
		return nil, all
	}
	return build(abs, exp, cat)
}

// Node returns the instance with the given id.
func (p *Pipeline) Node(id string) (*Node, bool) {
	n, ok := p.byID[id]
	return n, ok
}

// DeclIDs returns the declaration ids in file order.
func (p *Pipeline) DeclIDs() []string {
	ids := make([]string, 0, len(p.Expansion.Spec.Stages))
	for _, d := range p.Expansion.Spec.Stages {
		ids = append(ids, d.ID)
	}
	return ids
}

// Instances returns the nodes expanded from declaration decl.
func (p *Pipeline) Instances(decl string) []*Node { return p.byDecl[decl] }

// build turns the DSL's expansion into nodes. The DSL has validated the
// pipeline; the checks here guard against an expansion that breaks its own
// contract, so that it is an error and never a panic.
func build(abs string, exp *dsl.Expansion, cat *catalog) (*Pipeline, error) {
	if exp == nil || exp.Spec == nil {
		return nil, fmt.Errorf("pipeline %s: expansion is empty", abs)
	}
	p := &Pipeline{File: abs, Expansion: exp, byID: map[string]*Node{}, byDecl: map[string][]*Node{}}
	for i, inst := range exp.Instances {
		if inst == nil || inst.Decl == nil {
			return nil, fmt.Errorf("pipeline %s: instance %d has no declaration", abs, i)
		}
		if _, dup := p.byID[inst.ID]; dup {
			return nil, fmt.Errorf("pipeline %s: instance id %q appears twice", abs, inst.ID)
		}
		st, err := cat.stage(inst.Decl.Uses)
		if err != nil {
			return nil, fmt.Errorf("pipeline %s: stage %s: %w", abs, inst.ID, err)
		}
		spec := st.Spec()
		params, err := typedParams(spec, inst.Params)
		if err != nil {
			return nil, fmt.Errorf("pipeline %s: stage %s: %w", abs, inst.ID, err)
		}
		n := &Node{Instance: inst, Stage: st, Spec: spec, Params: params, Seed: DeriveSeed(exp.Spec.Seed, inst.ID), index: i}
		if err := p.link(n); err != nil {
			return nil, fmt.Errorf("pipeline %s: stage %s: %w", abs, inst.ID, err)
		}
		p.Nodes = append(p.Nodes, n)
		p.byID[inst.ID] = n
		p.byDecl[inst.Decl.ID] = append(p.byDecl[inst.Decl.ID], n)
	}
	return p, nil
}

// link records n's producers, checking every edge names an earlier instance
// and an output that instance declares.
func (p *Pipeline) link(n *Node) error {
	seen := map[*Node]bool{}
	for _, port := range slices.Sorted(maps.Keys(n.Instance.Inputs)) {
		for _, e := range n.Instance.Inputs[port] {
			from, ok := p.byID[e.From]
			if !ok {
				return fmt.Errorf("input %s reads %s, which is not an earlier instance", port, e.From)
			}
			if !hasOutput(from.Spec, e.Output) {
				return fmt.Errorf("input %s reads %s.%s, but stage %s has no output %q", port, e.From, e.Output, from.Uses(), e.Output)
			}
			if !seen[from] {
				seen[from] = true
				n.Producers = append(n.Producers, from)
				from.Consumers = append(from.Consumers, n)
			}
		}
	}
	return nil
}

// typedParams fills defaults the expansion left out and normalises numbers to
// the declared type (int64 for int, float64 for float), so the same values
// always give the same cache key.
func typedParams(spec stages.Spec, raw map[string]any) (stages.Params, error) {
	params := stages.Params{}
	declared := map[string]stages.Param{}
	for _, d := range spec.Params {
		declared[d.Name] = d
	}
	for name, v := range raw {
		d, ok := declared[name]
		if !ok {
			return nil, fmt.Errorf("parameter %q is not declared by stage %s (declared: %s)", name, spec.Name, strings.Join(paramNames(spec), ", "))
		}
		tv, err := asParamType(d.Type, v)
		if err != nil {
			return nil, fmt.Errorf("parameter %s: %w", name, err)
		}
		params[name] = tv
	}
	for _, d := range spec.Params {
		if _, ok := params[d.Name]; ok || d.Default == nil {
			continue
		}
		tv, err := asParamType(d.Type, d.Default)
		if err != nil {
			return nil, fmt.Errorf("default of parameter %s: %w", d.Name, err)
		}
		params[d.Name] = tv
	}
	return params, nil
}

// asParamType converts v to the Go type stages.Params promises for t. It
// accepts the other numeric forms a value may arrive in (Go ints, float64 from
// a JSON round trip) when the conversion is exact.
func asParamType(t stages.ParamType, v any) (any, error) {
	switch t {
	case stages.TypeInt:
		if i, ok := toInt64(v); ok {
			return i, nil
		}
	case stages.TypeFloat:
		if f, ok := toFloat64(v); ok {
			return f, nil
		}
	case stages.TypeString:
		if s, ok := v.(string); ok {
			return s, nil
		}
	case stages.TypeBool:
		if b, ok := v.(bool); ok {
			return b, nil
		}
	case stages.TypeList:
		if l, ok := v.([]any); ok {
			out := make([]any, len(l))
			for i, e := range l {
				out[i] = normaliseScalar(e)
			}
			return out, nil
		}
	case stages.TypeMap:
		if m, ok := v.(map[string]any); ok {
			out := make(map[string]any, len(m))
			for k, e := range m {
				out[k] = normaliseScalar(e)
			}
			return out, nil
		}
	default:
		return nil, fmt.Errorf("unknown parameter type %q", t)
	}
	return nil, fmt.Errorf("value %v (%T) is not of type %s", v, v, t)
}

func toInt64(v any) (int64, bool) {
	switch x := v.(type) {
	case json.Number:
		i, err := x.Int64()
		return i, err == nil
	case int64:
		return x, true
	case int:
		return int64(x), true
	case int32:
		return int64(x), true
	case uint64:
		if x <= 1<<63-1 {
			return int64(x), true
		}
	case float64:
		if x == float64(int64(x)) {
			return int64(x), true
		}
	}
	return 0, false
}

func toFloat64(v any) (float64, bool) {
	switch x := v.(type) {
	case json.Number:
		f, err := x.Float64()
		return f, err == nil
	case float64:
		return x, true
	case float32:
		return float64(x), true
	case int64:
		return float64(x), true
	case int:
		return float64(x), true
	case uint64:
		return float64(x), true
	}
	return 0, false
}

// normaliseScalar widens Go ints inside lists and maps to int64 so that
// stages see one integer type, and decodes json.Number (a record read back
// with UseNumber) to int64 when it is written as an integer, else float64.
func normaliseScalar(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		if f, err := x.Float64(); err == nil {
			return f
		}
		return x.String()
	case int:
		return int64(x)
	case int32:
		return int64(x)
	}
	return v
}

func hasOutput(spec stages.Spec, port string) bool {
	for _, o := range spec.Outputs {
		if o.Name == port {
			return true
		}
	}
	return false
}

func paramNames(spec stages.Spec) []string {
	names := make([]string, 0, len(spec.Params))
	for _, p := range spec.Params {
		names = append(names, p.Name)
	}
	return names
}

// keySpec builds the instance's cache key fields from its producers' output
// digests, and the stage inputs (digest and tags). With withPaths the inputs
// also get their file paths, which the store must resolve (so the objects
// must exist locally).
func (n *Node) keySpec(store artifacts.Store, outputsOf func(*Node) map[string]artifacts.Digest, withPaths bool) (KeySpec, map[string][]stages.Input, error) {
	ks := KeySpec{
		Stage:   n.Uses(),
		Version: n.Spec.Version,
		Params:  n.Params,
		Seed:    n.Seed,
		Inputs:  map[string][]artifacts.Digest{},
		Tags:    map[string][]map[string]string{},
	}
	inputs := map[string][]stages.Input{}
	for port, edges := range n.Instance.Inputs {
		for _, e := range edges {
			from := n.pipelineNode(e.From)
			d, ok := outputsOf(from)[e.Output]
			if !ok {
				return KeySpec{}, nil, fmt.Errorf("%s: input %s: %s produced no output %q", n.ID(), port, e.From, e.Output)
			}
			ks.Inputs[port] = append(ks.Inputs[port], d)
			ks.Tags[port] = append(ks.Tags[port], e.Tags)
			in := stages.Input{Digest: d, Tags: e.Tags}
			if withPaths {
				path, err := store.Path(d)
				if err != nil {
					return KeySpec{}, nil, fmt.Errorf("%s: input %s (%s): %w", n.ID(), port, d, err)
				}
				in.Path = path
			}
			inputs[port] = append(inputs[port], in)
		}
	}
	return ks, inputs, nil
}

// pipelineNode finds a producer of n by instance id.
func (n *Node) pipelineNode(id string) *Node {
	for _, p := range n.Producers {
		if p.ID() == id {
			return p
		}
	}
	return nil
}
