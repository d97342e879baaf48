package dsl

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// instantiate builds every declaration's instances, in order.
func (x *expander) instantiate(order []*StageDecl) []*Instance {
	x.byDecl = map[string][]*Instance{}
	x.instByKey = map[string]map[string]int{}
	x.instCombo = map[*Instance][]int{}
	var all []*Instance
	for _, d := range order {
		axes := x.axesOf[d.ID]
		keys := map[string]int{}
		for _, c := range x.combos {
			key := projectionKey(c, axes)
			if _, seen := keys[key]; seen {
				continue
			}
			inst := x.newInstance(d, axes, c)
			keys[key] = len(x.byDecl[d.ID])
			x.byDecl[d.ID] = append(x.byDecl[d.ID], inst)
			x.instCombo[inst] = c
			all = append(all, inst)
		}
		x.instByKey[d.ID] = keys
	}
	for _, inst := range all {
		x.connect(inst)
	}
	return all
}

// projectionKey identifies a combination's projection onto some axes.
func projectionKey(c []int, axes []int) string {
	var b strings.Builder
	for _, a := range axes {
		if a < len(c) {
			fmt.Fprintf(&b, "%d:%d,", a, c[a])
		}
	}
	return b.String()
}

// newInstance makes d's instance at combination c, which varies over axes,
// with its parameters typed (see typeParams).
func (x *expander) newInstance(d *StageDecl, axes []int, c []int) *Instance {
	inst := &Instance{ID: d.ID, Decl: d, Params: map[string]any{}, Inputs: map[string][]Edge{}}
	var parts []string
	for _, a := range axes {
		v := x.values[a][c[a]]
		inst.Axes = append(inst.Axes, Binding{Axis: x.axes[a], Label: v.Label, Value: v.Value})
		parts = append(parts, x.axes[a]+"="+v.Label)
	}
	if len(parts) > 0 {
		inst.ID += "[" + strings.Join(parts, ",") + "]"
	}
	x.sound[inst] = x.typeParams(inst, c)
	return inst
}

// connect fills inst's input edges: a single input reads the producer
// instance that agrees with inst on the producer's axes; a gathered input
// reads every producer instance that agrees on the axes both share. A list
// of references concatenates their edges in list order.
func (x *expander) connect(inst *Instance) {
	d := inst.Decl
	c := x.instCombo[inst]
	own := map[int]bool{}
	for _, a := range x.axesOf[d.ID] {
		own[a] = true
	}
	for _, port := range slices.Sorted(maps.Keys(d.Inputs)) {
		for _, ref := range d.Inputs[port] {
			edges, ok := x.edgesOf(ref, c, own)
			if !ok {
				x.sound[inst] = false
				continue
			}
			inst.Inputs[port] = append(inst.Inputs[port], edges...)
		}
	}
}

// edgesOf resolves one reference for the instance at combination c that
// varies over the axes in own. ok is false when the producer has no
// instances or no single instance matches (both reported elsewhere).
func (x *expander) edgesOf(ref InputRef, c []int, own map[int]bool) (edges []Edge, ok bool) {
	producers := x.byDecl[ref.Stage]
	if len(producers) == 0 {
		return nil, false
	}
	if !ref.Gather {
		i, found := x.instByKey[ref.Stage][projectionKey(c, x.axesOf[ref.Stage])]
		if !found {
			return nil, false
		}
		return []Edge{{From: producers[i].ID, Output: ref.Output}}, true
	}
	var shared []int
	for _, a := range x.axesOf[ref.Stage] {
		if own[a] {
			shared = append(shared, a)
		}
	}
	want := projectionKey(c, shared)
	edges = []Edge{}
	for _, p := range producers {
		if projectionKey(x.instCombo[p], shared) != want {
			continue
		}
		tags := map[string]string{}
		for _, b := range p.Axes {
			tags[b.Axis] = b.Label
		}
		edges = append(edges, Edge{From: p.ID, Output: ref.Output, Tags: tags})
	}
	return edges, true
}
