package stages

import "github.com/sglr-pipe/sglr-pipe/stages/param"

// Parameters are declared and typed by package param, which the DSL shares;
// these names keep the plugin contract in one package.
type (
	// Params are typed parameter values: int params hold int64, float params
	// float64, string params string, bool params bool, list params []any,
	// map params map[string]any (see param.Values).
	Params = param.Values
	// Param declares one parameter (see param.Decl).
	Param = param.Decl
	// ParamType is the type of a parameter value.
	ParamType = param.Type
	// Problem is one thing wrong with a parameter (see Checker).
	Problem = param.Problem
)

// The parameter types.
const (
	TypeInt    = param.Int
	TypeFloat  = param.Float // ints are accepted and widened
	TypeString = param.String
	TypeBool   = param.Bool
	TypeList   = param.List // a sequence of scalars; an Enum constrains each element
	TypeMap    = param.Map  // a mapping of string keys to plain values
)
