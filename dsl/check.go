package dsl

import (
	"fmt"

	"github.com/sglr-pipe/sglr-pipe/stages/param"
)

// Checker may be implemented by a Catalog to check each instance beyond its
// schema: rules over several parameters, and parameters that must agree with
// what the instance reads (the pipeline adapts stages.Checker to it). Expand
// calls Check once per instance, producers before consumers, with every
// instance by id, and reports each problem at the parameter's value in the
// file (or the list element the problem names), once per place. An instance
// is checked only when its parameters were typed and its inputs connected
// without a problem, and so were its producers'.
type Checker interface {
	Check(inst *Instance, instances map[string]*Instance) []param.Problem
}

// checkInstances runs the catalog's Checker, if it has one.
func (x *expander) checkInstances(instances []*Instance) {
	checker, ok := x.cat.(Checker)
	if !ok {
		return
	}
	byID := make(map[string]*Instance, len(instances))
	for _, inst := range instances {
		byID[inst.ID] = inst
	}
	for _, inst := range instances {
		for _, edges := range inst.Inputs {
			for _, e := range edges {
				if from := byID[e.From]; from == nil || !x.sound[from] {
					x.sound[inst] = false
				}
			}
		}
		if !x.sound[inst] {
			continue
		}
		for _, p := range checker.Check(inst, byID) {
			x.reportProblem(inst.Decl, x.instCombo[inst], p)
		}
	}
}

// reportProblem reports a problem with one of d's parameters at the
// combination c: `stage "train" (train): warmup: ...`, placed by problemAt.
// The summary names the declaration, not the instance, so that a problem
// found for many instances is reported once at its place.
func (x *expander) reportProblem(d *StageDecl, c []int, p param.Problem) {
	at, through := x.problemAt(d, p.Param, p.Elem, c)
	what := stageName(d.ID, d) + ": "
	if p.Param != "" {
		what += p.Param + ": "
	}
	detail := p.Hint
	if through != "" {
		if detail != "" {
			detail += "\n"
		}
		detail += through
	}
	x.diags.add(at.pos, at.length, detail, "%s%s", what, p.Msg)
}

// problemAt places a problem with parameter name of d at combination c: at
// the value as written, or at its elem-th list element (from 1; 0 means the
// whole value). A value that is a whole matrix expression is placed at the
// axis value it takes in c, and through says where the expression is. A
// parameter that is not written (its default is at fault, or the problem is
// the instance's as a whole) is placed at the declaration.
func (x *expander) problemAt(d *StageDecl, name string, elem int, c []int) (at located, through string) {
	if _, given := d.With[name]; !given || name == "" {
		return located{d.Pos, x.declKeyLen(d)}, ""
	}
	written := x.paramAt(d, name)
	at = located{written.val, written.valLen}
	n := d.at.values[name]
	if n == nil {
		return at, ""
	}
	if v, raw := x.matrixValue(n, c); v != nil {
		n = v
		at = located{v.pos, v.length}
		through = fmt.Sprintf("given to %s by %s at %s", name, raw, written.val)
	}
	if elem > 0 && n.kind == seqNode && elem <= len(n.items) {
		item := n.items[elem-1]
		at = located{item.pos, item.length}
	}
	return at, through
}

// matrixValue returns the node of the axis value (or its field) that n, a
// scalar that is exactly one `${{ matrix.AXIS[.FIELD...] }}`, takes at
// combination c, with the expression; nil when n is anything else or the
// value is not written in the file.
func (x *expander) matrixValue(n *node, c []int) (*node, string) {
	s, isString := n.value.(string)
	if n.kind != scalarNode || !isString || c == nil {
		return nil, ""
	}
	exprs := findExprs(s)
	if len(exprs) != 1 || !exprs[0].isWhole(s) || exprs[0].err != "" || exprs[0].root != "matrix" {
		return nil, ""
	}
	e := exprs[0]
	a, known := x.axisIndex[e.path[0]]
	if !known || a >= len(c) {
		return nil, ""
	}
	v := x.values[a][c[a]].at
	for _, field := range e.path[1:] {
		entry := v.get(field)
		if entry == nil {
			return nil, ""
		}
		v = entry.val
	}
	return v, e.raw
}
