package dsl

import (
	"errors"
	"fmt"
)

// Lister may be implemented by a Catalog, or by the error its Schema returns
// for a name it does not know, to name every known stage; Expand then
// suggests a close name for an unknown `uses:`.
type Lister interface {
	Names() []string
}

// Expand validates the spec against the catalog and expands the matrix into
// stage instances. Every problem found is returned at once; the Expansion is
// nil when there is any.
//
// A declaration varies over the matrix axes it names in `with` plus the axes
// of its single inputs (x.out); gathered inputs (x.out[]) do not propagate
// axes. A port given a list of references reads each as if it were given
// alone, and its edges are the concatenation in list order. Its instances
// are the distinct projections of the matrix combinations onto its axes, in
// combination order. Each instance's parameters are typed by the stages'
// typer (package param) and its defaults filled; a Catalog that is also a
// Checker then checks every instance (see Checker).
func Expand(spec *Spec, cat Catalog) (*Expansion, Diagnostics) {
	return ExpandWith(spec, cat, ExpandOptions{})
}

// DefaultMaxInstances is how many stage instances a pipeline may expand to
// unless ExpandOptions says otherwise.
const DefaultMaxInstances = 100_000

// ExpandOptions tune Expand.
type ExpandOptions struct {
	// MaxInstances bounds the stage instances, and the matrix combinations,
	// the expansion may make (0 or less: DefaultMaxInstances). Both are counted
	// before anything is expanded, so that a matrix of millions is refused
	// at once instead of filling memory.
	MaxInstances int
}

// ExpandWith is Expand with options.
func ExpandWith(spec *Spec, cat Catalog, opts ExpandOptions) (*Expansion, Diagnostics) {
	if spec == nil {
		return nil, Diagnostics{{Summary: "no pipeline to expand"}}
	}
	x := &expander{
		spec:    spec,
		cat:     cat,
		decls:   map[string]*StageDecl{},
		schemas: map[string]*StageSchema{},
		axesOf:  map[string][]int{},
		sound:   map[*Instance]bool{},
	}
	for _, d := range spec.Stages {
		x.decls[d.ID] = d
	}
	limit := opts.MaxInstances
	if limit <= 0 {
		limit = DefaultMaxInstances
	}
	x.loadSchemas()
	x.buildAxes()
	x.checkInputs()
	order := x.sortDecls()
	x.computeAxes(order)
	x.checkParamNames()
	var instances []*Instance
	if x.checkSize(order, limit) {
		x.buildCombos()
		instances = x.instantiate(order)
		x.checkInstances(instances)
	}
	diags := x.diags.finish(spec.File, spec.Source)
	if diags.HasErrors() {
		return nil, diags
	}
	return &Expansion{Spec: spec, Instances: instances}, nil
}

// expander holds the state of one Expand call.
type expander struct {
	spec    *Spec
	cat     Catalog
	diags   Diagnostics
	decls   map[string]*StageDecl
	schemas map[string]*StageSchema // by decl id; absent when `uses` is unknown

	axes      []string            // axis names in matrix order
	axisIndex map[string]int      // name -> index in axes
	values    [][]AxisValue       // per axis: its values plus new ones from include
	ownValues []int               // per axis: how many of values are its own (the rest come from include)
	excludes  []map[string]string // valid exclude entries: axis -> label
	includes  [][]int             // valid include entries: value index per axis
	combos    [][]int             // per combination: value index per axis

	axesOf    map[string][]int          // decl id -> indexes of the axes it varies over, sorted
	byDecl    map[string][]*Instance    // decl id -> instances in combo order
	instByKey map[string]map[string]int // decl id -> projection key -> index in byDecl
	instCombo map[*Instance][]int       // instance -> a combination it stands for
	sound     map[*Instance]bool        // instance -> its parameters typed and its inputs connected without a problem, so that it may be checked
}

// located is a problem's place: position and underline length.
type located struct {
	pos    Pos
	length int
}

func (x *expander) usesAt(d *StageDecl) located {
	if d.at.uses.File != "" {
		return located{d.at.uses, d.at.usesLen}
	}
	return located{d.Pos, len([]rune(d.ID))}
}

func (x *expander) paramAt(d *StageDecl, name string) valueAt {
	if at, ok := d.at.params[name]; ok {
		return at
	}
	return valueAt{key: d.Pos, keyLen: 1, val: d.Pos, valLen: 1}
}

// inputAt is where port's key and whole value are written.
func (x *expander) inputAt(d *StageDecl, port string) valueAt {
	if at, ok := d.at.inputs[port]; ok {
		return at
	}
	pos := d.Pos
	if refs := d.Inputs[port]; len(refs) > 0 && refs[0].Pos.File != "" {
		pos = refs[0].Pos
	}
	return valueAt{key: pos, keyLen: 1, val: pos, valLen: 1}
}

// refAt is where port's key and its i-th reference are written.
func (x *expander) refAt(d *StageDecl, port string, i int) valueAt {
	if places := d.at.refs[port]; i < len(places) {
		return places[i]
	}
	at := x.inputAt(d, port)
	if ref := d.Inputs[port][i]; ref.Pos.File != "" {
		at.val, at.valLen = ref.Pos, 1
	}
	return at
}

func (x *expander) declKeyLen(d *StageDecl) int { return len([]rune(d.ID)) }

// stageName is how messages name a declaration: "train" (uses train).
func stageName(id string, d *StageDecl) string {
	return fmt.Sprintf("stage %q (%s)", id, d.Uses)
}

func (x *expander) loadSchemas() {
	for _, d := range x.spec.Stages {
		if d.Uses == "" {
			continue // Parse reported the missing uses
		}
		if x.cat == nil {
			at := x.usesAt(d)
			x.diags.add(at.pos, at.length, "", "stage %q: no stage catalog to resolve %q", d.ID, d.Uses)
			continue
		}
		schema, err := x.cat.Schema(d.Uses)
		if err != nil || schema == nil {
			at := x.usesAt(d)
			hint := didYouMean(d.Uses, knownStages(x.cat, err))
			msg := "no schema"
			if err != nil {
				msg = err.Error()
			}
			x.diags.add(at.pos, at.length, hint, "stage %q: uses %q: %s", d.ID, d.Uses, msg)
			continue
		}
		x.schemas[d.ID] = schema
	}
}

// knownStages names the stages that err, or else the catalog, lists (see
// Lister), or nil.
func knownStages(cat Catalog, err error) []string {
	var l Lister
	if errors.As(err, &l) {
		return l.Names()
	}
	if l, ok := cat.(Lister); ok {
		return l.Names()
	}
	return nil
}
