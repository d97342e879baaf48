package dsl

import (
	"maps"
	"slices"
	"sort"
	"strings"
)

// producers returns the ids of the declarations d reads from, sorted.
func (x *expander) producers(d *StageDecl) []string {
	set := map[string]bool{}
	for _, refs := range d.Inputs {
		for _, ref := range refs {
			if _, ok := x.decls[ref.Stage]; ok {
				set[ref.Stage] = true
			}
		}
	}
	return slices.Sorted(maps.Keys(set))
}

// sortDecls orders the declarations so that producers come before their
// consumers, keeping file order where the graph allows. Declarations on or
// behind a cycle come last, and each cycle is reported.
func (x *expander) sortDecls() []*StageDecl {
	index := map[string]int{}
	for i, d := range x.spec.Stages {
		index[d.ID] = i
	}
	done := make([]bool, len(x.spec.Stages))
	var order []*StageDecl
	for progress := true; progress; {
		progress = false
		for i, d := range x.spec.Stages {
			if done[i] {
				continue
			}
			ready := true
			for _, p := range x.producers(d) {
				if !done[index[p]] {
					ready = false
					break
				}
			}
			if ready {
				done[i], progress = true, true
				order = append(order, d)
				break // restart from the top: earliest ready declaration first
			}
		}
	}
	if len(order) == len(x.spec.Stages) {
		return order
	}
	x.reportCycles(done, index)
	for i, d := range x.spec.Stages {
		if !done[i] {
			order = append(order, d)
		}
	}
	return order
}

// reportCycles finds the cycles among the unsorted declarations by depth-first
// search and reports each at the input that closes it.
func (x *expander) reportCycles(done []bool, index map[string]int) {
	const (
		unvisited = iota
		onStack
		finished
	)
	state := make([]int, len(x.spec.Stages))
	var stack []string
	var visit func(d *StageDecl)
	visit = func(d *StageDecl) {
		state[index[d.ID]] = onStack
		stack = append(stack, d.ID)
		for _, port := range slices.Sorted(maps.Keys(d.Inputs)) {
			for i, ref := range d.Inputs[port] {
				p, ok := x.decls[ref.Stage]
				if !ok || done[index[p.ID]] {
					continue
				}
				switch state[index[p.ID]] {
				case unvisited:
					visit(p)
				case onStack:
					start := len(stack) - 1
					for stack[start] != p.ID {
						start--
					}
					var path []string
					for i := len(stack) - 1; i >= start; i-- {
						path = append(path, stack[i])
					}
					path = append(path, d.ID)
					at := x.refAt(d, port, i)
					x.diags.add(at.val, at.valLen, "a stage cannot read its own output, directly or through other stages", "cycle: %s", strings.Join(path, " -> "))
				}
			}
		}
		stack = stack[:len(stack)-1]
		state[index[d.ID]] = finished
	}
	for i, d := range x.spec.Stages {
		if !done[i] && state[i] == unvisited {
			visit(d)
		}
	}
}

// computeAxes finds the axes each declaration varies over: those its `with`
// names, plus those of its single inputs' producers.
func (x *expander) computeAxes(order []*StageDecl) {
	for _, d := range order {
		set := map[int]bool{}
		for _, name := range slices.Sorted(maps.Keys(d.With)) {
			for _, le := range x.exprsIn(d, name, d.With[name]) {
				e := le.expr
				if e.err != "" {
					x.diags.add(le.pos, le.length, "", "%s", e.err)
					continue
				}
				if e.root != "matrix" {
					continue
				}
				a, ok := x.axisIndex[e.path[0]]
				if !ok {
					hint := didYouMean(e.path[0], x.axes)
					if hint == "" && len(x.axes) == 0 {
						hint = "the pipeline declares no matrix"
					}
					x.diags.add(le.pos, le.length, hint, "unknown matrix axis %q in %s", e.path[0], e.raw)
					continue
				}
				set[a] = true
			}
		}
		for _, refs := range d.Inputs {
			for _, ref := range refs {
				if ref.Gather {
					continue
				}
				for _, a := range x.axesOf[ref.Stage] {
					set[a] = true
				}
			}
		}
		axes := make([]int, 0, len(set))
		for a := range set {
			axes = append(axes, a)
		}
		sort.Ints(axes)
		x.axesOf[d.ID] = axes
	}
}
