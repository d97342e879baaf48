package dsl

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/sglr-pipe/sglr-pipe/stages/param"
)

// buildAxes collects the matrix axes and resolves the include and exclude
// entries; an include value new to its axis is appended to the axis.
func (x *expander) buildAxes() {
	m := x.spec.Matrix
	x.axisIndex = map[string]int{}
	for _, a := range m.Axes {
		if _, dup := x.axisIndex[a.Name]; dup {
			x.diags.add(a.Pos, len([]rune(a.Name)), "", "matrix axis %q is declared twice", a.Name)
			continue
		}
		if len(a.Values) == 0 {
			x.diags.add(a.Pos, len([]rune(a.Name)), "", "matrix axis %q has no values", a.Name)
		}
		x.axisIndex[a.Name] = len(x.axes)
		x.axes = append(x.axes, a.Name)
		x.values = append(x.values, append([]AxisValue(nil), a.Values...))
		x.ownValues = append(x.ownValues, len(a.Values))
	}
	for i, ex := range m.Exclude {
		if labels, ok := x.matrixEntryLabels("exclude", ex, entryAt(m.excludeAt, i), false); ok {
			x.excludes = append(x.excludes, labels)
		}
	}
	for i, in := range m.Include {
		at := entryAt(m.includeAt, i)
		labels, ok := x.matrixEntryLabels("include", in, at, true)
		if !ok {
			continue
		}
		c := make([]int, len(x.axes))
		for a, name := range x.axes {
			var written *node
			if at != nil {
				written = at.values[name]
			}
			c[a] = x.valueIndex(a, AxisValue{Label: labels[name], Value: in[name], at: written})
		}
		x.includes = append(x.includes, c)
	}
}

// buildCombos computes the matrix combinations: the cartesian product of the
// axes' own values (first axis slowest), minus exclude entries, plus include
// entries.
func (x *expander) buildCombos() {
	m := x.spec.Matrix
	combos := [][]int{{}}
	for i := range x.axes {
		var next [][]int
		for _, c := range combos {
			for v := range x.ownValues[i] {
				next = append(next, append(append([]int(nil), c...), v))
			}
		}
		combos = next
	}
	for _, labels := range x.excludes {
		kept := combos[:0]
		for _, c := range combos {
			if !x.comboMatches(c, labels) {
				kept = append(kept, c)
			}
		}
		combos = kept
	}
	seen := map[string]bool{}
	for _, c := range combos {
		seen[comboKey(c)] = true
	}
	for _, c := range x.includes {
		if !seen[comboKey(c)] {
			seen[comboKey(c)] = true
			combos = append(combos, c)
		}
	}
	emptyAxis := false
	for _, v := range x.values {
		emptyAxis = emptyAxis || len(v) == 0
	}
	if len(combos) == 0 && len(x.axes) > 0 && !emptyAxis {
		at := m.Axes[0].Pos
		x.diags.add(at, len([]rune(m.Axes[0].Name)), "check the exclude entries", "the matrix has no combinations left")
	}
	x.combos = combos
}

func entryAt(list []matrixEntryAt, i int) *matrixEntryAt {
	if i < len(list) {
		return &list[i]
	}
	return nil
}

// matrixEntryLabels checks an include/exclude entry's axes and returns the
// label of each of its values. An include entry must name every axis.
func (x *expander) matrixEntryLabels(kind string, entry map[string]any, at *matrixEntryAt, complete bool) (map[string]string, bool) {
	pos := Pos{File: x.spec.File, Line: 1, Col: 1}
	if at != nil {
		pos = at.pos
	}
	ok := true
	labels := map[string]string{}
	for _, name := range slices.Sorted(maps.Keys(entry)) {
		keyPos, keyLen := pos, 1
		if at != nil {
			if k, found := at.keys[name]; found {
				keyPos, keyLen = k.key, k.keyLen
			}
		}
		if _, known := x.axisIndex[name]; !known {
			x.diags.add(keyPos, keyLen, didYouMean(name, x.axes), "matrix %s: unknown matrix axis %q", kind, name)
			ok = false
			continue
		}
		label := ""
		if at != nil {
			label = at.labels[name]
		}
		if label == "" {
			label = valueLabel(entry[name])
		}
		labels[name] = label
	}
	if len(entry) == 0 {
		x.diags.add(pos, 1, "", "matrix %s: an entry must name at least one axis", kind)
		ok = false
	}
	if complete && ok {
		var missing []string
		for _, a := range x.axes {
			if _, found := entry[a]; !found {
				missing = append(missing, a)
			}
		}
		if len(missing) > 0 {
			x.diags.add(pos, 1, "", "matrix include: an entry must name every axis; missing %s", strings.Join(missing, ", "))
			ok = false
		}
	}
	return labels, ok
}

// valueLabel labels a value given without source text: a scalar's text or a
// mapping's name field.
func valueLabel(v any) string {
	if m, ok := v.(map[string]any); ok {
		v = m["name"]
	}
	s, _ := param.Text(v)
	return s
}

func (x *expander) comboMatches(c []int, labels map[string]string) bool {
	for name, label := range labels {
		a := x.axisIndex[name]
		if x.values[a][c[a]].Label != label {
			return false
		}
	}
	return true
}

// valueIndex finds the axis value with value's label, adding value when it
// is new.
func (x *expander) valueIndex(axis int, value AxisValue) int {
	for i, v := range x.values[axis] {
		if v.Label == value.Label {
			return i
		}
	}
	x.values[axis] = append(x.values[axis], value)
	return len(x.values[axis]) - 1
}

func comboKey(c []int) string { return fmt.Sprint(c) }
