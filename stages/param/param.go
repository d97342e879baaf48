// Package param declares stage parameters and types their values. It is the
// one place where a value becomes what a stage reads: a value written in a
// pipeline file or a --set override (package dsl), a plugin request
// (stages.Serve) and a task arriving on a NATS worker are all typed and
// checked here, by the same rules and with the same messages.
//
// Typed values have one Go type per parameter type: int holds int64, float
// float64, string string, bool bool, list []any of scalars (int64, float64,
// string, bool), map map[string]any of such values (lists and maps nested in a
// map are kept, typed the same way). Equal values therefore have equal Go
// types, which the cache key relies on.
//
// The package imports only the standard library, so that the DSL can use it
// without depending on the stages, their models or their artifacts.
package param

import (
	"errors"
	"fmt"
)

// Type is the type of a parameter value.
type Type string

// The parameter types.
const (
	Int    Type = "int"
	Float  Type = "float" // an int is accepted and widened
	String Type = "string"
	Bool   Type = "bool"
	List   Type = "list" // a sequence of scalars; Enum, when set, constrains each element
	Map    Type = "map"  // a mapping of string keys to plain values
)

// Types lists the parameter types, for messages.
var Types = []Type{Int, Float, String, Bool, List, Map}

// Decl declares one parameter.
type Decl struct {
	Name     string   `json:"name"`
	Type     Type     `json:"type"`
	Default  any      `json:"default,omitempty"` // nil: no default
	Required bool     `json:"required,omitempty"`
	Min      *float64 `json:"min,omitempty"`
	Max      *float64 `json:"max,omitempty"`
	// Enum lists the allowed values: of the value itself for a scalar
	// parameter, of each element for a list parameter.
	Enum []string `json:"enum,omitempty"`
	Doc  string   `json:"doc"`
}

// Values are typed parameter values (see the package comment). The accessors
// panic only on a programming error (a name the stage did not declare with
// that type), never on user input, which is typed before anything runs.
type Values map[string]any

func (p Values) Int(name string) int64          { return get[int64](p, name) }
func (p Values) Float(name string) float64      { return get[float64](p, name) }
func (p Values) String(name string) string      { return get[string](p, name) }
func (p Values) Bool(name string) bool          { return get[bool](p, name) }
func (p Values) List(name string) []any         { return get[[]any](p, name) }
func (p Values) Map(name string) map[string]any { return get[map[string]any](p, name) }

// Has reports whether name has a value (params without default may be absent).
func (p Values) Has(name string) bool { _, ok := p[name]; return ok }

func get[T any](p Values, name string) T {
	v, ok := p[name]
	if !ok {
		var zero T
		return zero
	}
	t, ok := v.(T)
	if !ok {
		panic(fmt.Sprintf("param %q is %T, stage asked for %T", name, v, t))
	}
	return t
}

// Problem is one thing wrong with a parameter: a value its declaration
// refuses, or a rule over several parameters (a stage's Check) that it
// breaks. The DSL reports it at the parameter's value in the file, or at the
// list element Elem names.
type Problem struct {
	Param string // the parameter at fault
	// Elem is the list element at fault, counted from 1 so that the zero
	// value means the value as a whole (messages count elements from 0, as
	// Go does: Elem 1 is "element 0").
	Elem int
	Msg  string // what is wrong, with what: `want int, got string "ten"`
	Hint string // how to fix it, or "": `did you mean "pgd"?`
	// Mismatch says that the value has the wrong type, so that a caller may
	// add advice on how to write it in its own syntax (the DSL's YAML hints).
	Mismatch bool
}

// Error renders the problem on one line: `param "attacks": element 1:
// "pgd20" is not one of "clean", "pgd" (did you mean "pgd"?)`.
func (p Problem) Error() string {
	s := fmt.Sprintf("param %q: ", p.Param)
	if p.Elem > 0 {
		s += fmt.Sprintf("element %d: ", p.Elem-1)
	}
	s += p.Msg
	if p.Hint != "" {
		s += " (" + p.Hint + ")"
	}
	return s
}

// Join is one error naming every problem, or nil when there is none.
func Join(problems []Problem) error {
	errs := make([]error, len(problems))
	for i, p := range problems {
		errs[i] = p
	}
	return errors.Join(errs...)
}
