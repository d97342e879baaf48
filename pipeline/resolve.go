package pipeline

import (
	"fmt"
	"strings"
	"sync"

	"github.com/sglr-pipe/sglr-pipe/dsl"
	"github.com/sglr-pipe/sglr-pipe/stages"
)

// Resolver turns a `uses:` value into the stage it names. The CLI composes
// RegistryResolver with a resolver for `exec:./path` stages.
type Resolver func(uses string) (stages.Stage, error)

// RegistryResolver resolves names registered in reg; an unknown name is an
// *UnknownStageError, which lists every known name so that a typo is easy to
// fix (and the DSL suggests the closest).
func RegistryResolver(reg *stages.Registry) Resolver {
	return func(uses string) (stages.Stage, error) {
		if s, ok := reg.Lookup(uses); ok {
			return s, nil
		}
		return nil, &UnknownStageError{Name: uses, Known: reg.Names()}
	}
}

// UnknownStageError is a `uses:` name a registry does not know. Names makes
// it a dsl.Lister.
type UnknownStageError struct {
	Name  string
	Known []string // sorted
}

func (e *UnknownStageError) Error() string {
	if len(e.Known) == 0 {
		return fmt.Sprintf("unknown stage %q (no stages are registered)", e.Name)
	}
	return fmt.Sprintf("unknown stage %q (known: %s)", e.Name, strings.Join(e.Known, ", "))
}

// Names returns the known stage names.
func (e *UnknownStageError) Names() []string { return e.Known }

// NewCatalog adapts a Resolver to the dsl.Catalog the DSL validates against.
// Each `uses:` value is resolved once; later lookups reuse the answer (an
// exec stage's describe runs once per Load).
func NewCatalog(resolve Resolver) dsl.Catalog {
	return &catalog{resolve: resolve, stages: map[string]resolved{}}
}

// SchemaOf converts a stage spec to the schema the DSL checks pipelines against.
func SchemaOf(spec stages.Spec) *dsl.StageSchema {
	schema := &dsl.StageSchema{}
	for _, p := range spec.Inputs {
		schema.Inputs = append(schema.Inputs, dsl.PortSchema{Name: p.Name, Kind: p.Kind, Optional: p.Optional, Multi: p.Multi})
	}
	for _, p := range spec.Outputs {
		schema.Outputs = append(schema.Outputs, dsl.PortSchema{Name: p.Name, Kind: p.Kind})
	}
	schema.Params = append(schema.Params, spec.Params...) // dsl.ParamSchema is stages.Param
	return schema
}

type resolved struct {
	stage stages.Stage
	err   error
}

type catalog struct {
	resolve Resolver
	mu      sync.Mutex
	stages  map[string]resolved
}

// Schema implements dsl.Catalog.
func (c *catalog) Schema(uses string) (*dsl.StageSchema, error) {
	s, err := c.stage(uses)
	if err != nil {
		return nil, err
	}
	return SchemaOf(s.Spec()), nil
}

func (c *catalog) stage(uses string) (stages.Stage, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if r, ok := c.stages[uses]; ok {
		return r.stage, r.err
	}
	s, err := c.resolve(uses)
	if err == nil && s == nil {
		err = fmt.Errorf("stage %q resolved to nothing", uses)
	}
	c.stages[uses] = resolved{s, err}
	return s, err
}
