package dsl

import (
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"
)

// An expression is `${{ vars.NAME }}`, `${{ matrix.AXIS }}` or
// `${{ matrix.AXIS.FIELD }}` (fields may nest). A scalar that is exactly one
// expression takes the referenced value with its type; an expression inside a
// longer string is replaced by the value's text.

var (
	exprPattern = regexp.MustCompile(`\$\{\{(.*?)\}\}`)
	identifier  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]*$`)
)

// expr is one expression found in a string.
type expr struct {
	raw        string   // `${{ matrix.noise }}`
	root       string   // "vars" or "matrix"
	path       []string // ["noise"], ["method", "labels"]
	start, end int      // byte offsets of raw in the string
	err        string   // set when the expression is malformed
}

// findExprs returns the expressions in s, in order.
func findExprs(s string) []expr {
	var out []expr
	for _, m := range exprPattern.FindAllStringSubmatchIndex(s, -1) {
		e := expr{raw: s[m[0]:m[1]], start: m[0], end: m[1]}
		parts := strings.Split(strings.TrimSpace(s[m[2]:m[3]]), ".")
		for _, p := range parts {
			if !identifier.MatchString(p) {
				e.err = fmt.Sprintf("malformed expression %s: want vars.NAME, matrix.AXIS or matrix.AXIS.FIELD", e.raw)
			}
		}
		if e.err == "" {
			e.root, e.path = parts[0], parts[1:]
			switch {
			case e.root != "vars" && e.root != "matrix":
				e.err = fmt.Sprintf("unknown expression %s: it must start with vars. or matrix.", e.raw)
			case len(e.path) == 0:
				e.err = fmt.Sprintf("incomplete expression %s: name a %s", e.raw, map[string]string{"vars": "var (vars.NAME)", "matrix": "matrix axis (matrix.AXIS)"}[e.root])
			}
		}
		out = append(out, e)
	}
	return out
}

// isWhole reports whether s is exactly the expression e (spaces around allowed).
func (e expr) isWhole(s string) bool {
	return strings.TrimSpace(s) == e.raw
}

// exprPos places expression e of the scalar written at pos: exact for scalars
// on one line, the scalar's own position otherwise.
func exprPos(pos Pos, quoted bool, value string, e expr) (Pos, int) {
	length := utf8.RuneCountInString(e.raw)
	if pos.Line <= 0 || strings.Contains(value[:e.start], "\n") {
		return pos, length
	}
	col := pos.Col + utf8.RuneCountInString(value[:e.start])
	if quoted {
		col++
	}
	return Pos{File: pos.File, Line: pos.Line, Col: col}, length
}

// lookupField follows fields into nested mappings; ok is false (with the
// failing field) when a step is missing or not a mapping.
func lookupField(v any, fields []string) (any, string, bool) {
	for _, f := range fields {
		m, isMap := v.(map[string]any)
		if !isMap {
			return nil, f, false
		}
		next, found := m[f]
		if !found {
			return nil, f, false
		}
		v = next
	}
	return v, "", true
}
