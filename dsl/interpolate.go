package dsl

import (
	"maps"
	"slices"
	"strings"

	"github.com/sglr-pipe/sglr-pipe/stages/param"
)

// Matrix expressions in `with` values are replaced per instance here; vars
// were replaced by Parse already (a Spec built in code may still hold some).

// locatedExpr is an expression found in a parameter value, with its place.
type locatedExpr struct {
	expr   expr
	pos    Pos
	length int
}

// exprsIn lists the expressions in parameter name's value v, placed exactly
// for a top-level string and at the parameter's value otherwise.
func (x *expander) exprsIn(d *StageDecl, name string, v any) []locatedExpr {
	at := x.paramAt(d, name)
	var out []locatedExpr
	var walk func(v any, top bool)
	walk = func(v any, top bool) {
		switch t := v.(type) {
		case string:
			for _, e := range findExprs(t) {
				pos, length := at.val, at.valLen
				if top {
					pos, length = exprPos(at.val, at.quoted, t, e)
				}
				out = append(out, locatedExpr{e, pos, length})
			}
		case []any:
			for _, el := range t {
				walk(el, false)
			}
		case map[string]any:
			for _, k := range slices.Sorted(maps.Keys(t)) {
				walk(t[k], false)
			}
		}
	}
	walk(v, true)
	return out
}

// substitution replaces the expressions of one parameter value for one
// matrix combination. ok turns false at the first expression that cannot be
// replaced (each is reported where it is written).
type substitution struct {
	x      *expander
	combo  []int
	places map[string]locatedExpr // expression text -> its first place
	ok     bool
}

// resolve returns parameter name's value for the combination c, with every
// expression replaced; ok is false when one could not be (reported).
func (x *expander) resolve(d *StageDecl, name string, c []int) (value any, ok bool) {
	exprs := x.exprsIn(d, name, d.With[name])
	if len(exprs) == 0 {
		return d.With[name], true
	}
	s := &substitution{x: x, combo: c, places: map[string]locatedExpr{}, ok: true}
	for _, le := range exprs {
		if _, seen := s.places[le.expr.raw]; !seen {
			s.places[le.expr.raw] = le
		}
	}
	value = s.value(d.With[name])
	return value, s.ok
}

// value replaces the expressions in v, in lists and maps too.
func (s *substitution) value(v any) any {
	switch t := v.(type) {
	case string:
		return s.text(t)
	case []any:
		out := make([]any, len(t))
		for i, el := range t {
			out[i] = s.value(el)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, el := range t {
			out[k] = s.value(el)
		}
		return out
	}
	return v
}

// text replaces the expressions in a string: one that is the whole string
// gives its value with its type, others are spliced in as text.
func (s *substitution) text(t string) any {
	found := findExprs(t)
	if len(found) == 0 {
		return t
	}
	if len(found) == 1 && found[0].isWhole(t) {
		val, _, good := s.lookup(found[0])
		s.ok = s.ok && good
		return copyValue(val)
	}
	var b strings.Builder
	last := 0
	for _, e := range found {
		b.WriteString(t[last:e.start])
		last = e.end
		val, text, good := s.lookup(e)
		if !good {
			s.ok = false
			continue
		}
		if _, scalar := param.Text(val); !scalar {
			le := s.places[e.raw]
			s.x.diags.add(le.pos, le.length, "a whole value may be a list or mapping; inside a string it must be a scalar", "%s is a %s and cannot be spliced into a string", e.raw, param.TypeName(val))
			s.ok = false
			continue
		}
		b.WriteString(text)
	}
	b.WriteString(t[last:])
	return b.String()
}

// lookup returns an expression's value and its text; ok is false when it
// has none (reported here, or in computeAxes for a malformed expression or
// an unknown axis).
func (s *substitution) lookup(e expr) (any, string, bool) {
	if e.err != "" {
		return nil, "", false
	}
	if e.root == "matrix" {
		return s.lookupMatrix(e)
	}
	le := s.places[e.raw]
	vars := s.x.spec.Vars
	val, known := vars[e.path[0]]
	if !known {
		s.x.diags.add(le.pos, le.length, didYouMean(e.path[0], slices.Sorted(maps.Keys(vars))), "unknown var %q in %s", e.path[0], e.raw)
		return nil, "", false
	}
	field, missing, found := lookupField(val, e.path[1:])
	if !found {
		s.x.diags.add(le.pos, le.length, "", "%s: var %q has no field %q", e.raw, e.path[0], missing)
		return nil, "", false
	}
	text, _ := param.Text(field)
	return field, text, true
}

// lookupMatrix returns the value of `matrix.AXIS[.FIELD...]` in the
// substitution's combination, labelled by the axis value's label.
func (s *substitution) lookupMatrix(e expr) (any, string, bool) {
	a, known := s.x.axisIndex[e.path[0]]
	if !known {
		return nil, "", false
	}
	v := s.x.values[a][s.combo[a]]
	if len(e.path) == 1 {
		return v.Value, v.Label, true
	}
	field, missing, found := lookupField(v.Value, e.path[1:])
	if !found {
		hint := ""
		if m, isMap := v.Value.(map[string]any); isMap {
			hint = didYouMean(missing, slices.Sorted(maps.Keys(m)))
		}
		le := s.places[e.raw]
		s.x.diags.add(le.pos, le.length, hint, "%s: value %q of matrix axis %q has no field %q", e.raw, v.Label, e.path[0], missing)
		return nil, "", false
	}
	text, _ := param.Text(field)
	return field, text, true
}

// copyValue deep-copies lists and maps so instances never share them.
func copyValue(v any) any {
	switch t := v.(type) {
	case []any:
		out := make([]any, len(t))
		for i, el := range t {
			out[i] = copyValue(el)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, el := range t {
			out[k] = copyValue(el)
		}
		return out
	}
	return v
}
