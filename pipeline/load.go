package pipeline

import (
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"

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
	Params    stages.Params // as the DSL typed them: checked, defaults filled, ints int64, floats float64
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
	cat := &planChecker{catalog: NewCatalog(resolve).(*catalog), columns: map[string][]stages.Column{}}
	exp, diags := dsl.ExpandWith(spec, cat, dsl.ExpandOptions{MaxInstances: opts.MaxInstances})
	if all := append(parseDiags, diags...); all.HasErrors() {
		return nil, all
	}
	return build(abs, exp, cat.catalog)
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
// pipeline, typed every parameter (with the stages' own typer) and filled
// the defaults, so nothing here is checked again.
func build(abs string, exp *dsl.Expansion, cat *catalog) (*Pipeline, error) {
	p := &Pipeline{File: abs, Expansion: exp, byID: map[string]*Node{}, byDecl: map[string][]*Node{}}
	for i, inst := range exp.Instances {
		st, err := cat.stage(inst.Decl.Uses)
		if err != nil {
			return nil, fmt.Errorf("pipeline %s: stage %s: %w", abs, inst.ID, err)
		}
		n := &Node{Instance: inst, Stage: st, Spec: st.Spec(), Params: stages.Params(inst.Params), Seed: DeriveSeed(exp.Spec.Seed, inst.ID), index: i}
		p.link(n)
		p.Nodes = append(p.Nodes, n)
		p.byID[inst.ID] = n
		p.byDecl[inst.Decl.ID] = append(p.byDecl[inst.Decl.ID], n)
	}
	return p, nil
}

// link records n's producers: the distinct earlier instances its edges name.
func (p *Pipeline) link(n *Node) {
	seen := map[*Node]bool{}
	for _, port := range slices.Sorted(maps.Keys(n.Instance.Inputs)) {
		for _, e := range n.Instance.Inputs[port] {
			if from := p.byID[e.From]; !seen[from] {
				seen[from] = true
				n.Producers = append(n.Producers, from)
				from.Consumers = append(from.Consumers, n)
			}
		}
	}
}

// typedParams types recorded parameters (a run record's JSON, for replay)
// by spec with the typer the DSL uses.
func typedParams(spec stages.Spec, raw map[string]any) (stages.Params, error) {
	return stages.DecodeParams(spec, raw)
}

// planChecker is the catalog of one Load, adapting the stages' Check hooks
// (stages.Checker) to dsl.Checker, so that the DSL reports what they find at
// the offending value before anything runs.
type planChecker struct {
	*catalog
	columns map[string][]stages.Column // "instance\x00port" -> what the instance declares the port holds
}

// Check implements dsl.Checker: it runs inst's stage's Check, if it has one,
// on inst's parameters and what each of its inputs will read.
func (c *planChecker) Check(inst *dsl.Instance, instances map[string]*dsl.Instance) []stages.Problem {
	st, err := c.stage(inst.Decl.Uses)
	if err != nil {
		return nil // reported at the uses: value
	}
	checker, ok := st.(stages.Checker)
	if !ok {
		return nil
	}
	return checker.Check(stages.Params(inst.Params), c.upstreams(inst, instances))
}

// upstreams describes, per input port of inst, what each edge will deliver.
func (c *planChecker) upstreams(inst *dsl.Instance, instances map[string]*dsl.Instance) map[string][]stages.Upstream {
	out := map[string][]stages.Upstream{}
	for port, edges := range inst.Inputs {
		for _, e := range edges {
			from := instances[e.From]
			if from == nil {
				continue
			}
			out[port] = append(out[port], stages.Upstream{
				Stage: from.Decl.Uses, Output: e.Output, Params: stages.Params(from.Params), Tags: e.Tags,
				Columns: c.declaredColumns(from, e.Output, instances),
			})
		}
	}
	return out
}

// declaredColumns is what from's stage declares its output port holds
// (stages.ColumnDeclarer), or nil; each instance's answer is computed once.
func (c *planChecker) declaredColumns(from *dsl.Instance, port string, instances map[string]*dsl.Instance) []stages.Column {
	key := from.ID + "\x00" + port
	if cols, done := c.columns[key]; done {
		return cols
	}
	var cols []stages.Column
	if st, err := c.stage(from.Decl.Uses); err == nil {
		if d, ok := st.(stages.ColumnDeclarer); ok {
			cols = d.Columns(port, stages.Params(from.Params), c.upstreams(from, instances))
		}
	}
	c.columns[key] = cols
	return cols
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
