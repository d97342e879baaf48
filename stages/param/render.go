package param

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Text renders a scalar as the DSL compares it with an enum and splices it
// into a string: strings as they are, numbers in shortest form, null as
// "null". ok is false for lists, maps and non-plain values.
func Text(v any) (string, bool) {
	switch x := v.(type) {
	case nil:
		return "null", true
	case string:
		return x, true
	case bool:
		return strconv.FormatBool(x), true
	case int64:
		return strconv.FormatInt(x, 10), true
	case int:
		return strconv.Itoa(x), true
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64), true
	}
	return "", false
}

// TypeName names a value's parameter type: "int", "float", "string", "bool",
// "list", "map" or "null" (the Go type for anything else).
func TypeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "bool"
	case int64, int, int32, uint64:
		return "int"
	case float64, float32:
		return "float"
	case string:
		return "string"
	case []any:
		return "list"
	case map[string]any:
		return "map"
	}
	return fmt.Sprintf("%T", v)
}

// Describe renders a value with its type for "got ..." messages: `int 3`,
// `string "ten"`, `float .nan`, `list`, `null`.
func Describe(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case []any:
		return "list"
	case map[string]any:
		return "map"
	}
	return TypeName(v) + " " + Render(v)
}

// Render renders a scalar as a user would write it: strings quoted, floats
// as FormatFloat writes them.
func Render(v any) string {
	switch x := v.(type) {
	case string:
		return strconv.Quote(x)
	case float64:
		return FormatFloat(x)
	}
	if s, ok := Text(v); ok {
		return s
	}
	return TypeName(v)
}

// FormatFloat renders f in shortest form, keeping a ".0" on integral values
// so that it still reads as a float, and spelling NaN and the infinities as
// YAML does (.nan, .inf, -.inf).
func FormatFloat(f float64) string {
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

// Suggest returns a `did you mean "x"?` hint naming the candidate closest to
// name, or "" when none is close enough to be a plausible typo (an edit
// distance of at most 1 + len(name)/4).
func Suggest(name string, candidates []string) string {
	best, bestDist := "", -1
	limit := 1 + utf8.RuneCountInString(name)/4
	sorted := append([]string(nil), candidates...)
	sort.Strings(sorted)
	for _, c := range sorted {
		if c == name {
			continue
		}
		dist := editDistance(name, c)
		if dist <= limit && (bestDist < 0 || dist < bestDist) {
			best, bestDist = c, dist
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf("did you mean %q?", best)
}

// editDistance is the optimal-string-alignment distance between a and b:
// insertions, deletions, substitutions and adjacent transpositions cost 1.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev2 := make([]int, len(rb)+1)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(rb)]
}
