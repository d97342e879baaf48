package stages

import "fmt"

// Params are validated parameter values: int params hold int64, float params
// float64, string params string, bool params bool, list params []any, map
// params map[string]any. The accessors panic only on a programming error (a
// name the stage did not declare with that type), never on user input, which
// the DSL validates before anything runs.
type Params map[string]any

func (p Params) Int(name string) int64          { return get[int64](p, name) }
func (p Params) Float(name string) float64      { return get[float64](p, name) }
func (p Params) String(name string) string      { return get[string](p, name) }
func (p Params) Bool(name string) bool          { return get[bool](p, name) }
func (p Params) List(name string) []any         { return get[[]any](p, name) }
func (p Params) Map(name string) map[string]any { return get[map[string]any](p, name) }

// Has reports whether name has a value (params without default may be absent).
func (p Params) Has(name string) bool { _, ok := p[name]; return ok }

func get[T any](p Params, name string) T {
	v, ok := p[name]
	if !ok {
		var zero T
		return zero
	}
	t, ok := v.(T)
	if !ok {
		panic(fmt.Sprintf("stages: param %q is %T, stage asked for %T", name, v, t))
	}
	return t
}
