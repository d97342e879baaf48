// Package stages is the plugin contract of sglr-pipe: what a stage declares
// (its Spec) and what it gets when it runs (its Env). Built-in stages live in
// sub-packages and register themselves; external stages are executables that
// speak the same contract as JSON (see Serve and the exec sub-package).
package stages

import (
	"context"
	"fmt"
	"sort"
	"sync"
)

// Stage is a reusable pipeline step.
type Stage interface {
	// Spec describes the stage; it must not depend on parameters.
	Spec() Spec
	// Run reads inputs and writes every declared output through env. It must
	// depend only on env (no global state, no paths outside the store) and stop
	// promptly when ctx is cancelled.
	Run(ctx context.Context, env *Env) error
}

// Spec is a stage's declaration: name, version, ports, parameters and cores.
type Spec struct {
	Name    string  `json:"name"`
	Version string  `json:"version"` // change whenever behaviour changes: it enters every cache key
	Doc     string  `json:"doc"`
	Inputs  []Port  `json:"inputs"`
	Outputs []Port  `json:"outputs"`
	Params  []Param `json:"params"`
	Cores   int     `json:"cores"` // cores one instance uses; 0 means 1
}

// Port is a named, typed input or output.
type Port struct {
	Name     string `json:"name"`
	Kind     string `json:"kind"` // artifact kind: "dataset", "labels", "table", ...
	Doc      string `json:"doc"`
	Optional bool   `json:"optional,omitempty"` // inputs only
	Multi    bool   `json:"multi,omitempty"`    // inputs only: accepts a gathered list (x.out[])
}

// Float returns a pointer to v, for Param.Min and Param.Max literals.
func Float(v float64) *float64 { return &v }

// Cores returns the cores an instance wants (at least 1).
func (s Spec) CoresWanted() int {
	if s.Cores < 1 {
		return 1
	}
	return s.Cores
}

// Registry maps stage names to stages.
type Registry struct {
	mu     sync.RWMutex
	stages map[string]Stage
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{stages: map[string]Stage{}} }

// Builtin is the registry that built-in stages add themselves to in init.
var Builtin = NewRegistry()

// Register adds s under its Spec().Name; a duplicate name is a programming error.
func (r *Registry) Register(s Stage) {
	r.mu.Lock()
	defer r.mu.Unlock()
	name := s.Spec().Name
	if _, dup := r.stages[name]; dup {
		panic(fmt.Sprintf("stages: %q registered twice", name))
	}
	r.stages[name] = s
}

// Lookup returns the stage registered as name.
func (r *Registry) Lookup(name string) (Stage, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	s, ok := r.stages[name]
	return s, ok
}

// Names returns the registered names, sorted.
func (r *Registry) Names() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	names := make([]string, 0, len(r.stages))
	for n := range r.stages {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
