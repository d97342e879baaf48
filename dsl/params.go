package dsl

import (
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
)

// checkParam type-checks v against the schema and normalises it (int ->
// int64, float -> float64, lists -> []any, maps -> map[string]any). The
// problem string, when not empty, says what is wrong: `want int, got string "ten"`.
func checkParam(p ParamSchema, v any) (any, string) {
	got := func() string { return describeValue(v) }
	var out any
	switch p.Type {
	case "int":
		i, ok := asInt(v)
		if !ok {
			return nil, "want int, got " + got() + numberHint(v)
		}
		out = i
	case "float":
		switch f := v.(type) {
		case int64:
			out = float64(f)
		case float64:
			out = f
		default:
			return nil, "want float, got " + got() + numberHint(v)
		}
	case "string":
		s, ok := v.(string)
		if !ok {
			hint := ""
			if text, scalar := formatScalar(v); scalar && v != nil {
				hint = fmt.Sprintf(" (quote it: %q)", text)
			}
			return nil, "want string, got " + got() + hint
		}
		out = s
	case "bool":
		b, ok := v.(bool)
		if !ok {
			return nil, "want bool, got " + got()
		}
		out = b
	case "list":
		l, ok := v.([]any)
		if !ok {
			return nil, "want list, got " + got()
		}
		norm := make([]any, len(l))
		for i, el := range l {
			n, ok := normalizeValue(el)
			if !ok || isCollection(n) {
				return nil, fmt.Sprintf("list elements must be scalars, element %d is %s", i, describeValue(el))
			}
			norm[i] = n
		}
		out = norm
	case "map":
		m, ok := v.(map[string]any)
		if !ok {
			return nil, "want map, got " + got()
		}
		n, ok := normalizeValue(m)
		if !ok {
			return nil, "want map of plain values, got " + got()
		}
		out = n
	default:
		return nil, fmt.Sprintf("the stage declares an unknown parameter type %q", p.Type)
	}
	return out, checkConstraints(p, out)
}

// checkConstraints checks min/max for numbers and the enum for any scalar.
func checkConstraints(p ParamSchema, v any) string {
	var f float64
	numeric := true
	switch x := v.(type) {
	case int64:
		f = float64(x)
	case float64:
		f = x
	default:
		numeric = false
	}
	if numeric && (p.Min != nil || p.Max != nil) {
		switch {
		case math.IsNaN(f):
			return fmt.Sprintf("%s is not a number; want %s", renderValue(v), rangeText(p))
		case math.IsInf(f, 0):
			return fmt.Sprintf("%s is not finite; want %s", renderValue(v), rangeText(p))
		}
		if p.Min != nil && f < *p.Min {
			return fmt.Sprintf("%s is below the minimum %s", renderValue(v), strconv.FormatFloat(*p.Min, 'g', -1, 64))
		}
		if p.Max != nil && f > *p.Max {
			return fmt.Sprintf("%s is above the maximum %s", renderValue(v), strconv.FormatFloat(*p.Max, 'g', -1, 64))
		}
	}
	if len(p.Enum) > 0 {
		text, scalar := formatScalar(v)
		if !scalar || !contains(p.Enum, text) {
			quoted := make([]string, len(p.Enum))
			for i, e := range p.Enum {
				quoted[i] = strconv.Quote(e)
			}
			return fmt.Sprintf("%s is not one of %s", renderValue(v), strings.Join(quoted, ", "))
		}
	}
	return ""
}

// asInt returns v as an int parameter's value: an int64, or a float64 that
// is integral and within int64's range (`1e3` is 1000, `2.0` is 2; `2.5`,
// `1e-3`, `1e19` and `.nan` are not ints).
func asInt(v any) (int64, bool) {
	switch x := v.(type) {
	case int64:
		return x, true
	case float64:
		if x == math.Trunc(x) && x >= math.MinInt64 && x < math.MaxInt64 {
			return int64(x), true
		}
	}
	return 0, false
}

// numberHint explains why a string that looks like a number is not one in
// YAML 1.2 (the rule is in yamltree.go), or is "".
func numberHint(v any) string {
	s, ok := v.(string)
	if !ok {
		return ""
	}
	if plain := strings.ReplaceAll(s, "_", ""); plain != s && (coreDecimal.MatchString(plain) || coreFloat.MatchString(plain)) {
		return fmt.Sprintf(" (YAML 1.2 numbers have no '_' separators: write %s)", plain)
	}
	if len(s) > 2 && (s[:2] == "0b" || s[:2] == "0B") {
		if i, err := strconv.ParseInt(s[2:], 2, 64); err == nil {
			return fmt.Sprintf(" (YAML 1.2 has no binary numbers: write %d or %#x)", i, i)
		}
	}
	return ""
}

// rangeText describes a numeric parameter's range for a message: "a finite
// number from 0 to 1", "a finite number of at least 0".
func rangeText(p ParamSchema) string {
	bound := func(b float64) string {
		if math.IsInf(b, 0) {
			return formatFloat(b)
		}
		return strconv.FormatFloat(b, 'g', -1, 64)
	}
	switch {
	case p.Min != nil && p.Max != nil:
		return fmt.Sprintf("a finite number from %s to %s", bound(*p.Min), bound(*p.Max))
	case p.Min != nil:
		return "a finite number of at least " + bound(*p.Min)
	case p.Max != nil:
		return "a finite number of at most " + bound(*p.Max)
	}
	return "a finite number"
}

// normalizeValue turns any Go value built from plain types into the DSL's
// value types: ints -> int64, floats -> float64, slices -> []any, string-keyed
// maps -> map[string]any. ok is false for anything else (a func, a struct).
func normalizeValue(v any) (any, bool) {
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
			n, ok := normalizeValue(rv.Index(i).Interface())
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
			n, ok := normalizeValue(iter.Value().Interface())
			if !ok {
				return nil, false
			}
			out[iter.Key().String()] = n
		}
		return out, true
	}
	return nil, false
}

// normalizeDefault normalises a schema default and checks it has the
// parameter's type; a bad default is the stage author's mistake.
func normalizeDefault(p ParamSchema) (any, string) {
	n, ok := normalizeValue(p.Default)
	if !ok {
		return nil, fmt.Sprintf("default of type %T is not a plain value", p.Default)
	}
	if p.Type == "int" {
		if f, isFloat := n.(float64); isFloat && f == math.Trunc(f) && math.Abs(f) < 1<<62 {
			n = int64(f)
		}
	}
	return checkParam(p, n)
}

func isCollection(v any) bool {
	switch v.(type) {
	case []any, map[string]any:
		return true
	}
	return false
}

// describeValue renders a value with its type for "got ..." messages.
func describeValue(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case []any:
		return "list"
	case map[string]any:
		return "map"
	}
	return typeName(v) + " " + renderValue(v)
}

// renderValue renders a scalar as the user would write it, strings quoted.
func renderValue(v any) string {
	switch x := v.(type) {
	case string:
		return strconv.Quote(x)
	case float64:
		return formatFloat(x)
	}
	if s, ok := formatScalar(v); ok {
		return s
	}
	return typeName(v)
}

// formatFloat renders f in shortest form, keeping a ".0" on integral values
// so that it still reads as a float, and spelling NaN and the infinities as
// YAML does (.nan, .inf, -.inf).
func formatFloat(f float64) string {
	switch {
	case math.IsNaN(f):
		return ".nan"
	case math.IsInf(f, 1):
		return ".inf"
	case math.IsInf(f, -1):
		return "-.inf"
	}
	s := strconv.FormatFloat(f, 'g', -1, 64)
	if !strings.ContainsAny(s, ".eEn") {
		s += ".0"
	}
	return s
}
