package param

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
)

// Value types v as a value of d and checks it against d's range and enum. v
// may hold any plain Go value: ints and floats of any width, json.Number (as
// a JSON decoder with UseNumber gives), strings, bools, slices and
// string-keyed maps of them. An int parameter takes an integral float within
// int64's range (`1e3` is 1000; `2.5`, `1e-3`, `1e19` and NaN are not ints);
// a float parameter takes an int. A value of the wrong type is one problem;
// a list may have one per element that is not in the enum.
func (d Decl) Value(v any) (any, []Problem) {
	n, ok := normalize(v)
	if !ok {
		return nil, []Problem{{Param: d.Name, Msg: fmt.Sprintf("want %s, got %T", d.Type, v), Mismatch: true}}
	}
	return d.typed(n, false)
}

// DefaultValue returns d's default typed as d's type, or nil when d has none.
// A default of the wrong type is the stage author's mistake.
func (d Decl) DefaultValue() (any, []Problem) {
	if d.Default == nil {
		return nil, nil
	}
	v, problems := d.Value(d.Default)
	for i := range problems {
		problems[i].Msg = "default: " + problems[i].Msg
	}
	return v, problems
}

// Decode types raw parameter values by decls, as a plugin receives them:
// every value through Value, a missing value gets its default, and a missing
// required value or a name decls does not declare is a problem. It returns
// every problem at once.
func Decode(decls []Decl, raw map[string]any) (Values, []Problem) {
	out := Values{}
	var problems []Problem
	for _, d := range decls {
		v, given := raw[d.Name]
		var (
			typed any
			ps    []Problem
		)
		switch {
		case given && v != nil:
			typed, ps = d.Value(v)
		case d.Default != nil:
			typed, ps = d.DefaultValue()
		case d.Required:
			ps = []Problem{{Param: d.Name, Msg: "required, but not given"}}
		default:
			continue
		}
		if len(ps) > 0 {
			problems = append(problems, ps...)
			continue
		}
		out[d.Name] = typed
	}
	return out, append(problems, undeclared(decls, raw)...)
}

// Check checks values that claim to be typed already (a task a NATS worker
// received, whose key proves only that nothing changed on the way): every
// value of exactly the Go type its declaration promises and within its range
// and enum, every declared parameter that has a default or is required
// present (defaults are filled before anything is sent), nothing undeclared.
func Check(decls []Decl, values Values) []Problem {
	var problems []Problem
	for _, d := range decls {
		v, ok := values[d.Name]
		if !ok {
			if d.Required || d.Default != nil {
				problems = append(problems, Problem{Param: d.Name, Msg: "missing (defaults are filled in before a task is sent)"})
			}
			continue
		}
		_, ps := d.typed(v, true)
		problems = append(problems, ps...)
	}
	return append(problems, undeclared(decls, values)...)
}

// undeclared reports the names of given that decls does not declare, sorted.
func undeclared(decls []Decl, given map[string]any) []Problem {
	names := make([]string, len(decls))
	for i, d := range decls {
		names[i] = d.Name
	}
	var problems []Problem
	for _, name := range slices.Sorted(maps.Keys(given)) {
		if slices.Contains(names, name) {
			continue
		}
		hint := Suggest(name, names)
		if hint == "" {
			hint = "declared: " + strings.Join(names, ", ")
			if len(names) == 0 {
				hint = "the stage takes no parameters"
			}
		}
		problems = append(problems, Problem{Param: name, Msg: "not declared by the stage", Hint: hint})
	}
	return problems
}

// typed types an already normalised value (see normalize), or, when strict,
// accepts only a value that is already of its canonical Go type.
func (d Decl) typed(v any, strict bool) (any, []Problem) {
	mismatch := func() (any, []Problem) {
		got := Describe(v)
		if strict && !canonical(v) {
			got = fmt.Sprintf("Go %T %v", v, v) // an int where int64 is due reads "int" either way
		}
		return nil, []Problem{{Param: d.Name, Msg: fmt.Sprintf("want %s, got %s", d.Type, got), Mismatch: true}}
	}
	var out any
	switch d.Type {
	case Int:
		i, ok := v.(int64)
		if f, isFloat := v.(float64); isFloat && !strict {
			i, ok = asInt(f)
		}
		if !ok {
			return mismatch()
		}
		out = i
	case Float:
		f, ok := v.(float64)
		if i, isInt := v.(int64); isInt && !strict {
			f, ok = float64(i), true
		}
		if !ok {
			return mismatch()
		}
		out = f
	case String:
		if _, ok := v.(string); !ok {
			return mismatch()
		}
		out = v
	case Bool:
		if _, ok := v.(bool); !ok {
			return mismatch()
		}
		out = v
	case List:
		l, ok := v.([]any)
		if !ok {
			return mismatch()
		}
		for i, el := range l {
			if !isScalar(el) {
				return nil, []Problem{{Param: d.Name, Msg: fmt.Sprintf("list elements must be scalars, element %d is %s", i, Describe(el))}}
			}
		}
		out = l
	case Map:
		m, ok := v.(map[string]any)
		if !ok {
			return mismatch()
		}
		if strict && !canonical(m) {
			return nil, []Problem{{Param: d.Name, Msg: "want map of plain values, got " + Describe(v)}}
		}
		out = m
	default:
		return nil, []Problem{{Param: d.Name, Msg: fmt.Sprintf("the stage declares an unknown parameter type %q", d.Type)}}
	}
	if problems := d.constrain(out); len(problems) > 0 {
		return nil, problems
	}
	return out, nil
}

// constrain checks a typed value against d's range (numbers) and enum
// (scalars; each element of a list, all of them).
func (d Decl) constrain(v any) []Problem {
	problem := func(format string, args ...any) []Problem {
		return []Problem{{Param: d.Name, Msg: fmt.Sprintf(format, args...)}}
	}
	if f, numeric := asFloat(v); numeric && (d.Min != nil || d.Max != nil) {
		switch {
		case math.IsNaN(f):
			return problem("%s is not a number; want %s", Render(v), d.rangeText())
		case math.IsInf(f, 0):
			return problem("%s is not finite; want %s", Render(v), d.rangeText())
		case d.Min != nil && f < *d.Min:
			return problem("%s is below the minimum %s", Render(v), strconv.FormatFloat(*d.Min, 'g', -1, 64))
		case d.Max != nil && f > *d.Max:
			return problem("%s is above the maximum %s", Render(v), strconv.FormatFloat(*d.Max, 'g', -1, 64))
		}
	}
	if len(d.Enum) == 0 {
		return nil
	}
	l, isList := v.([]any)
	if !isList || d.Type != List {
		if p := d.inEnum(v); p != nil {
			return []Problem{*p}
		}
		return nil
	}
	var problems []Problem
	for i, el := range l {
		if p := d.inEnum(el); p != nil {
			p.Elem = i + 1
			problems = append(problems, *p)
		}
	}
	return problems
}

// inEnum checks one scalar against d's enum, suggesting a close value.
func (d Decl) inEnum(v any) *Problem {
	text, scalar := Text(v)
	if scalar && slices.Contains(d.Enum, text) {
		return nil
	}
	quoted := make([]string, len(d.Enum))
	for i, e := range d.Enum {
		quoted[i] = strconv.Quote(e)
	}
	return &Problem{Param: d.Name, Msg: fmt.Sprintf("%s is not one of %s", Render(v), strings.Join(quoted, ", ")), Hint: Suggest(text, d.Enum)}
}

// rangeText describes a numeric parameter's range for a message: "a finite
// number from 0 to 1", "a finite number of at least 0".
func (d Decl) rangeText() string {
	bound := func(b float64) string {
		if math.IsInf(b, 0) {
			return FormatFloat(b)
		}
		return strconv.FormatFloat(b, 'g', -1, 64)
	}
	switch {
	case d.Min != nil && d.Max != nil:
		return fmt.Sprintf("a finite number from %s to %s", bound(*d.Min), bound(*d.Max))
	case d.Min != nil:
		return "a finite number of at least " + bound(*d.Min)
	case d.Max != nil:
		return "a finite number of at most " + bound(*d.Max)
	}
	return "a finite number"
}

// asInt returns an integral float within int64's range as an int.
func asInt(f float64) (int64, bool) {
	if f == math.Trunc(f) && f >= math.MinInt64 && f < math.MaxInt64 {
		return int64(f), true
	}
	return 0, false
}

func asFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case int64:
		return float64(x), true
	case float64:
		return x, true
	}
	return 0, false
}

// isScalar reports whether v is a typed scalar: int64, float64, string or bool.
func isScalar(v any) bool {
	switch v.(type) {
	case int64, float64, string, bool:
		return true
	}
	return false
}

// canonical reports whether v holds only typed values: scalars, nil, []any
// and map[string]any of them.
func canonical(v any) bool {
	switch x := v.(type) {
	case nil, int64, float64, string, bool:
		return true
	case []any:
		for _, e := range x {
			if !canonical(e) {
				return false
			}
		}
		return true
	case map[string]any:
		for _, e := range x {
			if !canonical(e) {
				return false
			}
		}
		return true
	}
	return false
}

// normalize turns a plain Go value into typed values: json.Number and ints
// of any width -> int64 (a json.Number written with a fraction or exponent
// -> float64), floats -> float64, slices -> []any, string-keyed maps ->
// map[string]any. ok is false for anything else (a func, a struct, a uint
// beyond int64, a json.Number that is no number).
func normalize(v any) (any, bool) {
	if n, isNumber := v.(json.Number); isNumber {
		if i, err := n.Int64(); err == nil {
			return i, true
		}
		f, err := n.Float64()
		return f, err == nil
	}
	if v == nil {
		return nil, true
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Bool:
		return rv.Bool(), true
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return rv.Int(), true
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		if u := rv.Uint(); u <= math.MaxInt64 {
			return int64(u), true
		}
		return nil, false
	case reflect.Float32, reflect.Float64:
		return rv.Float(), true
	case reflect.String:
		return rv.String(), true
	case reflect.Slice, reflect.Array:
		out := make([]any, rv.Len())
		for i := range out {
			n, ok := normalize(rv.Index(i).Interface())
			if !ok {
				return nil, false
			}
			out[i] = n
		}
		return out, true
	case reflect.Map:
		if rv.Type().Key().Kind() != reflect.String {
			return nil, false
		}
		out := make(map[string]any, rv.Len())
		iter := rv.MapRange()
		for iter.Next() {
			n, ok := normalize(iter.Value().Interface())
			if !ok {
				return nil, false
			}
			out[iter.Key().String()] = n
		}
		return out, true
	}
	return nil, false
}
