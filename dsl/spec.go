// Package dsl turns a pipeline YAML file into a typed Spec, validates it
// against the stages' schemas and expands the matrix into stage instances.
// Every problem is a Diagnostic that points at file:line:col and shows the
// offending line; all problems are reported at once.
//
// Of sglr-pipe the package imports only stages/param, the parameter typer it
// shares with the stages (so that a value is typed by one set of rules from
// the file to the stage), and learns about stages through the Catalog
// interface.
package dsl

import "github.com/sglr-pipe/sglr-pipe/stages/param"

// Pos is a position in a pipeline file (1-based line and column).
type Pos struct {
	File string
	Line int
	Col  int
}

// Spec is a parsed pipeline file, after vars and --set overrides are applied.
type Spec struct {
	File   string // path as given
	Source []byte // file contents, for diagnostics
	Name   string
	Seed   uint64
	Vars   map[string]any
	Matrix Matrix
	Stages []*StageDecl // in file order
}

// Matrix is the cartesian product of its axes, then include/exclude.
type Matrix struct {
	Axes    []Axis // in file order
	Include []map[string]any
	Exclude []map[string]any

	includeAt, excludeAt []matrixEntryAt // parallel to Include/Exclude when parsed from a file
}

// Axis is one matrix dimension.
type Axis struct {
	Name   string
	Values []AxisValue
	Pos    Pos
}

// AxisValue is one value of an axis: a scalar or a mapping. Label is the
// scalar's text or the mapping's "name" field, used in instance ids and reports.
type AxisValue struct {
	Label string
	Value any

	at *node // as written in the file; nil when it is not
}

// StageDecl is one entry under `stages:`.
type StageDecl struct {
	ID     string
	Uses   string
	With   map[string]any        // raw values; may still contain ${{ matrix.x }} expressions
	Inputs map[string][]InputRef // port -> references in the order written; one unless the value is a list
	Pos    Pos                   // of the stage's key

	at declPositions // where uses, params and ports are written, for diagnostics
}

// InputRef is `stage.output` or `stage.output[]`; a port whose schema is Multi
// may take a list of them.
type InputRef struct {
	Stage  string
	Output string
	Gather bool
	Pos    Pos
}

// Catalog tells the DSL what a `uses:` names. The pipeline package adapts the
// stage registry to it.
type Catalog interface {
	// Schema returns the stage's schema, or an error the DSL reports at the
	// `uses:` value (e.g. "unknown stage", "exec:./x: describe failed: ...").
	Schema(uses string) (*StageSchema, error)
}

// StageSchema is the part of a stage's spec the DSL validates against.
type StageSchema struct {
	Inputs  []PortSchema
	Outputs []PortSchema
	Params  []ParamSchema
}

// PortSchema declares a port.
type PortSchema struct {
	Name     string
	Kind     string
	Optional bool
	Multi    bool
}

// ParamSchema declares a parameter: the stages' own declaration, so that
// the DSL types values exactly as a stage's plugin runner and a NATS worker do.
type ParamSchema = param.Decl

// Expansion is the matrix-expanded pipeline: every stage instance, in an order
// where each instance comes after all instances it reads from.
type Expansion struct {
	Spec      *Spec
	Instances []*Instance
}

// Instance is one stage declaration at one point of the matrix.
type Instance struct {
	// ID is the declaration id, plus the axis bindings it varies over in
	// matrix order: "data", "train[method=sglr,noise=0.2]".
	ID     string
	Decl   *StageDecl
	Axes   []Binding         // only the axes this instance varies over
	Params map[string]any    // interpolated, type-checked, defaults filled (int64, float64, string, bool, []any, map[string]any)
	Inputs map[string][]Edge // port -> producing instances (several for x.out[])
}

// Binding is one axis fixed to one value.
type Binding struct {
	Axis  string
	Label string
	Value any
}

// Edge is one input of an instance.
type Edge struct {
	From   string            // producing instance id
	Output string            // its output port
	Tags   map[string]string // axis -> label of the producer (for gathered inputs)
}
