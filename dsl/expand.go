package dsl

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
)

// Lister may be implemented by a Catalog to name every known stage; Expand
// then suggests a close name for an unknown `uses:`.
type Lister interface {
	Names() []string
}

// Expand validates the spec against the catalog and expands the matrix into
// stage instances. Every problem found is returned at once; the Expansion is
// nil when there is any.
//
// A declaration varies over the matrix axes it names in `with` plus the axes
// of its single inputs (x.out); gathered inputs (x.out[]) do not propagate
// axes. A port given a list of references reads each as if it were given
// alone, and its edges are the concatenation in list order. Its instances are the distinct projections of the matrix
// combinations onto its axes, in combination order.
func Expand(spec *Spec, cat Catalog) (*Expansion, Diagnostics) {
	return ExpandWith(spec, cat, ExpandOptions{})
}

// DefaultMaxInstances is how many stage instances a pipeline may expand to
// unless ExpandOptions says otherwise.
const DefaultMaxInstances = 100_000

// ExpandOptions tune Expand.
type ExpandOptions struct {
	// MaxInstances bounds the stage instances, and the matrix combinations,
	// the expansion may make (0 or less: DefaultMaxInstances). Both are counted
	// before anything is expanded, so that a matrix of millions is refused
	// at once instead of filling memory.
	MaxInstances int
}

// ExpandWith is Expand with options.
func ExpandWith(spec *Spec, cat Catalog, opts ExpandOptions) (*Expansion, Diagnostics) {
	if spec == nil {
		return nil, Diagnostics{{Summary: "no pipeline to expand"}}
	}
	x := &expander{
		spec:    spec,
		cat:     cat,
		decls:   map[string]*StageDecl{},
		schemas: map[string]*StageSchema{},
		axesOf:  map[string][]int{},
	}
	for _, d := range spec.Stages {
		x.decls[d.ID] = d
	}
	limit := opts.MaxInstances
	if limit <= 0 {
		limit = DefaultMaxInstances
	}
	x.loadSchemas()
	x.buildAxes()
	x.checkInputs()
	order := x.sortDecls()
	x.computeAxes(order)
	x.checkParamNames()
	var instances []*Instance
	if x.checkSize(order, limit) {
		x.buildCombos()
		instances = x.instantiate(order)
	}
	diags := x.diags.finish(spec.File, spec.Source)
	if diags.HasErrors() {
		return nil, diags
	}
	return &Expansion{Spec: spec, Instances: instances}, nil
}

// expander holds the state of one Expand call.
type expander struct {
	spec    *Spec
	cat     Catalog
	diags   Diagnostics
	decls   map[string]*StageDecl
	schemas map[string]*StageSchema // by decl id; absent when `uses` is unknown

	axes      []string            // axis names in matrix order
	axisIndex map[string]int      // name -> index in axes
	values    [][]AxisValue       // per axis: its values plus new ones from include
	ownValues []int               // per axis: how many of values are its own (the rest come from include)
	excludes  []map[string]string // valid exclude entries: axis -> label
	includes  [][]int             // valid include entries: value index per axis
	combos    [][]int             // per combination: value index per axis

	axesOf    map[string][]int          // decl id -> indexes of the axes it varies over, sorted
	byDecl    map[string][]*Instance    // decl id -> instances in combo order
	instByKey map[string]map[string]int // decl id -> projection key -> index in byDecl
	instCombo map[*Instance][]int       // instance -> a combination it stands for
}

// located is a problem's place: position and underline length.
type located struct {
	pos    Pos
	length int
}

func (x *expander) usesAt(d *StageDecl) located {
	if d.at.uses.File != "" {
		return located{d.at.uses, d.at.usesLen}
	}
	return located{d.Pos, len([]rune(d.ID))}
}

func (x *expander) paramAt(d *StageDecl, name string) valueAt {
	if at, ok := d.at.params[name]; ok {
		return at
	}
	return valueAt{key: d.Pos, keyLen: 1, val: d.Pos, valLen: 1}
}

// inputAt is where port's key and whole value are written.
func (x *expander) inputAt(d *StageDecl, port string) valueAt {
	if at, ok := d.at.inputs[port]; ok {
		return at
	}
	pos := d.Pos
	if refs := d.Inputs[port]; len(refs) > 0 && refs[0].Pos.File != "" {
		pos = refs[0].Pos
	}
	return valueAt{key: pos, keyLen: 1, val: pos, valLen: 1}
}

// refAt is where port's key and its i-th reference are written.
func (x *expander) refAt(d *StageDecl, port string, i int) valueAt {
	if places := d.at.refs[port]; i < len(places) {
		return places[i]
	}
	at := x.inputAt(d, port)
	if ref := d.Inputs[port][i]; ref.Pos.File != "" {
		at.val, at.valLen = ref.Pos, 1
	}
	return at
}

func (x *expander) declKeyLen(d *StageDecl) int { return len([]rune(d.ID)) }

// stageName is how messages name a declaration: "train" (uses train).
func stageName(id string, d *StageDecl) string {
	return fmt.Sprintf("stage %q (%s)", id, d.Uses)
}

func (x *expander) loadSchemas() {
	for _, d := range x.spec.Stages {
		if d.Uses == "" {
			continue // Parse reported the missing uses
		}
		if x.cat == nil {
			at := x.usesAt(d)
			x.diags.add(at.pos, at.length, "", "stage %q: no stage catalog to resolve %q", d.ID, d.Uses)
			continue
		}
		schema, err := x.cat.Schema(d.Uses)
		if err != nil || schema == nil {
			at := x.usesAt(d)
			hint := ""
			if l, ok := x.cat.(Lister); ok {
				hint = didYouMean(d.Uses, l.Names())
			}
			msg := "no schema"
			if err != nil {
				msg = err.Error()
			}
			x.diags.add(at.pos, at.length, hint, "stage %q: uses %q: %s", d.ID, d.Uses, msg)
			continue
		}
		x.schemas[d.ID] = schema
	}
}

// buildAxes collects the matrix axes and resolves the include and exclude
// entries; an include value new to its axis is appended to the axis.
func (x *expander) buildAxes() {
	m := x.spec.Matrix
	x.axisIndex = map[string]int{}
	for _, a := range m.Axes {
		if _, dup := x.axisIndex[a.Name]; dup {
			x.diags.add(a.Pos, len([]rune(a.Name)), "", "matrix axis %q is declared twice", a.Name)
			continue
		}
		if len(a.Values) == 0 {
			x.diags.add(a.Pos, len([]rune(a.Name)), "", "matrix axis %q has no values", a.Name)
		}
		x.axisIndex[a.Name] = len(x.axes)
		x.axes = append(x.axes, a.Name)
		x.values = append(x.values, append([]AxisValue(nil), a.Values...))
		x.ownValues = append(x.ownValues, len(a.Values))
	}
	for i, ex := range m.Exclude {
		if labels, ok := x.matrixEntryLabels("exclude", ex, entryAt(m.excludeAt, i), false); ok {
			x.excludes = append(x.excludes, labels)
		}
	}
	for i, in := range m.Include {
		labels, ok := x.matrixEntryLabels("include", in, entryAt(m.includeAt, i), true)
		if !ok {
			continue
		}
		c := make([]int, len(x.axes))
		for a, name := range x.axes {
			c[a] = x.valueIndex(a, labels[name], in[name])
		}
		x.includes = append(x.includes, c)
	}
}

// buildCombos computes the matrix combinations: the cartesian product of the
// axes' own values (first axis slowest), minus exclude entries, plus include
// entries.
func (x *expander) buildCombos() {
	m := x.spec.Matrix
	combos := [][]int{{}}
	for i := range x.axes {
		var next [][]int
		for _, c := range combos {
			for v := range x.ownValues[i] {
				next = append(next, append(append([]int(nil), c...), v))
			}
		}
		combos = next
	}
	for _, labels := range x.excludes {
		kept := combos[:0]
		for _, c := range combos {
			if !x.comboMatches(c, labels) {
				kept = append(kept, c)
			}
		}
		combos = kept
	}
	seen := map[string]bool{}
	for _, c := range combos {
		seen[comboKey(c)] = true
	}
	for _, c := range x.includes {
		if !seen[comboKey(c)] {
			seen[comboKey(c)] = true
			combos = append(combos, c)
		}
	}
	emptyAxis := false
	for _, v := range x.values {
		emptyAxis = emptyAxis || len(v) == 0
	}
	if len(combos) == 0 && len(x.axes) > 0 && !emptyAxis {
		at := m.Axes[0].Pos
		x.diags.add(at, len([]rune(m.Axes[0].Name)), "check the exclude entries", "the matrix has no combinations left")
	}
	x.combos = combos
}

func entryAt(list []matrixEntryAt, i int) *matrixEntryAt {
	if i < len(list) {
		return &list[i]
	}
	return nil
}

// matrixEntryLabels checks an include/exclude entry's axes and returns the
// label of each of its values. An include entry must name every axis.
func (x *expander) matrixEntryLabels(kind string, entry map[string]any, at *matrixEntryAt, complete bool) (map[string]string, bool) {
	pos := Pos{File: x.spec.File, Line: 1, Col: 1}
	if at != nil {
		pos = at.pos
	}
	ok := true
	labels := map[string]string{}
	for _, name := range slices.Sorted(maps.Keys(entry)) {
		keyPos, keyLen := pos, 1
		if at != nil {
			if k, found := at.keys[name]; found {
				keyPos, keyLen = k.key, k.keyLen
			}
		}
		if _, known := x.axisIndex[name]; !known {
			x.diags.add(keyPos, keyLen, didYouMean(name, x.axes), "matrix %s: unknown matrix axis %q", kind, name)
			ok = false
			continue
		}
		label := ""
		if at != nil {
			label = at.labels[name]
		}
		if label == "" {
			label = valueLabel(entry[name])
		}
		labels[name] = label
	}
	if len(entry) == 0 {
		x.diags.add(pos, 1, "", "matrix %s: an entry must name at least one axis", kind)
		ok = false
	}
	if complete && ok {
		var missing []string
		for _, a := range x.axes {
			if _, found := entry[a]; !found {
				missing = append(missing, a)
			}
		}
		if len(missing) > 0 {
			x.diags.add(pos, 1, "", "matrix include: an entry must name every axis; missing %s", strings.Join(missing, ", "))
			ok = false
		}
	}
	return labels, ok
}

// valueLabel labels a value given without source text: a scalar's text or a
// mapping's name field.
func valueLabel(v any) string {
	if m, ok := v.(map[string]any); ok {
		v = m["name"]
	}
	s, _ := formatScalar(v)
	return s
}

func (x *expander) comboMatches(c []int, labels map[string]string) bool {
	for name, label := range labels {
		a := x.axisIndex[name]
		if x.values[a][c[a]].Label != label {
			return false
		}
	}
	return true
}

// valueIndex finds the axis value with label, adding it when it is new.
func (x *expander) valueIndex(axis int, label string, value any) int {
	for i, v := range x.values[axis] {
		if v.Label == label {
			return i
		}
	}
	x.values[axis] = append(x.values[axis], AxisValue{Label: label, Value: value})
	return len(x.values[axis]) - 1
}

func comboKey(c []int) string { return fmt.Sprint(c) }

// checkInputs checks every input against both ends' schemas, each
// reference of a list on its own.
func (x *expander) checkInputs() {
	for _, d := range x.spec.Stages {
		schema := x.schemas[d.ID]
		for _, port := range slices.Sorted(maps.Keys(d.Inputs)) {
			refs := d.Inputs[port]
			at := x.inputAt(d, port)
			var in *PortSchema
			if schema != nil {
				in = findPort(schema.Inputs, port)
				if in == nil {
					x.diags.add(at.key, at.keyLen, portHint(port, schema.Inputs, "input"), "unknown input port %q for %s", port, stageName(d.ID, d))
				}
			}
			listed := d.at.listed[port] || len(refs) > 1
			switch {
			case len(refs) == 0:
				x.diags.add(at.val, at.valLen, "list at least one STAGE.OUTPUT, or remove the input", "input %q of %s: the list of references is empty", port, stageName(d.ID, d))
			case listed && in != nil && !in.Multi:
				x.diags.add(at.val, at.valLen, fmt.Sprintf("give one STAGE.OUTPUT of kind %s", in.Kind), "input %q takes one artifact; a list needs a port that accepts many (multi)", port)
			}
			for i, ref := range refs {
				x.checkRef(d, port, ref, x.refAt(d, port, i), in, listed)
			}
		}
		if schema == nil {
			continue
		}
		for _, p := range schema.Inputs {
			if _, given := d.Inputs[p.Name]; !given && !p.Optional {
				x.diags.add(d.Pos, x.declKeyLen(d), fmt.Sprintf("add inputs: {%s: STAGE.OUTPUT} with an output of kind %s", p.Name, p.Kind), "missing required input %q for %s", p.Name, stageName(d.ID, d))
			}
		}
	}
}

// checkRef checks one reference of d's input port, written at at, against
// the producer's outputs and, when in is known, the input port's schema.
func (x *expander) checkRef(d *StageDecl, port string, ref InputRef, at valueAt, in *PortSchema, listed bool) {
	producer, ok := x.decls[ref.Stage]
	if !ok {
		x.diags.add(at.val, at.valLen, didYouMean(ref.Stage, slices.Sorted(maps.Keys(x.decls))), "input %q of %s reads from unknown stage %q", port, stageName(d.ID, d), ref.Stage)
		return
	}
	pschema := x.schemas[producer.ID]
	if pschema == nil {
		return
	}
	out := findPort(pschema.Outputs, ref.Output)
	if out == nil {
		x.diags.add(at.val, at.valLen, portHint(ref.Output, pschema.Outputs, "output"), "%s has no output %q", stageName(producer.ID, producer), ref.Output)
		return
	}
	if in == nil {
		return
	}
	if in.Kind != "" && out.Kind != "" && in.Kind != out.Kind {
		x.diags.add(at.val, at.valLen, "", "kind mismatch: %s.%s is a %s, but input %q of %s wants a %s", ref.Stage, ref.Output, out.Kind, port, stageName(d.ID, d), in.Kind)
	}
	if ref.Gather && !in.Multi && !listed { // a list into a single port is reported once, at the list
		x.diags.add(at.val, at.valLen, fmt.Sprintf("write %s.%s to read the one instance that matches each %s instance", ref.Stage, ref.Output, d.ID), "input %q of %s takes a single %s; %s.%s[] gathers several", port, stageName(d.ID, d), in.Kind, ref.Stage, ref.Output)
	}
}

func findPort(ports []PortSchema, name string) *PortSchema {
	for i := range ports {
		if ports[i].Name == name {
			return &ports[i]
		}
	}
	return nil
}

// portHint suggests a close port name, or lists the ports there are.
func portHint(name string, ports []PortSchema, what string) string {
	names := make([]string, len(ports))
	for i, p := range ports {
		names[i] = p.Name
	}
	if hint := didYouMean(name, names); hint != "" {
		return hint
	}
	if len(names) == 0 {
		return fmt.Sprintf("the stage has no %s ports", what)
	}
	return fmt.Sprintf("%s ports: %s", what, strings.Join(names, ", "))
}

// producers returns the ids of the declarations d reads from, sorted.
func (x *expander) producers(d *StageDecl) []string {
	set := map[string]bool{}
	for _, refs := range d.Inputs {
		for _, ref := range refs {
			if _, ok := x.decls[ref.Stage]; ok {
				set[ref.Stage] = true
			}
		}
	}
	return slices.Sorted(maps.Keys(set))
}

// sortDecls orders the declarations so that producers come before their
// consumers, keeping file order where the graph allows. Declarations on or
// behind a cycle come last, and each cycle is reported.
func (x *expander) sortDecls() []*StageDecl {
	index := map[string]int{}
	for i, d := range x.spec.Stages {
		index[d.ID] = i
	}
	done := make([]bool, len(x.spec.Stages))
	var order []*StageDecl
	for progress := true; progress; {
		progress = false
		for i, d := range x.spec.Stages {
			if done[i] {
				continue
			}
			ready := true
			for _, p := range x.producers(d) {
				if !done[index[p]] {
					ready = false
					break
				}
			}
			if ready {
				done[i], progress = true, true
				order = append(order, d)
				break // restart from the top: earliest ready declaration first
			}
		}
	}
	if len(order) == len(x.spec.Stages) {
		return order
	}
	x.reportCycles(done, index)
	for i, d := range x.spec.Stages {
		if !done[i] {
			order = append(order, d)
		}
	}
	return order
}

// reportCycles finds the cycles among the unsorted declarations by depth-first
// search and reports each at the input that closes it.
func (x *expander) reportCycles(done []bool, index map[string]int) {
	const (
		unvisited = iota
		onStack
		finished
	)
	state := make([]int, len(x.spec.Stages))
	var stack []string
	var visit func(d *StageDecl)
	visit = func(d *StageDecl) {
		state[index[d.ID]] = onStack
		stack = append(stack, d.ID)
		for _, port := range slices.Sorted(maps.Keys(d.Inputs)) {
			for i, ref := range d.Inputs[port] {
				p, ok := x.decls[ref.Stage]
				if !ok || done[index[p.ID]] {
					continue
				}
				switch state[index[p.ID]] {
				case unvisited:
					visit(p)
				case onStack:
					start := len(stack) - 1
					for stack[start] != p.ID {
						start--
					}
					var path []string
					for i := len(stack) - 1; i >= start; i-- {
						path = append(path, stack[i])
					}
					path = append(path, d.ID)
					at := x.refAt(d, port, i)
					x.diags.add(at.val, at.valLen, "a stage cannot read its own output, directly or through other stages", "cycle: %s", strings.Join(path, " -> "))
				}
			}
		}
		stack = stack[:len(stack)-1]
		state[index[d.ID]] = finished
	}
	for i, d := range x.spec.Stages {
		if !done[i] && state[i] == unvisited {
			visit(d)
		}
	}
}

// computeAxes finds the axes each declaration varies over: those its `with`
// names, plus those of its single inputs' producers.
func (x *expander) computeAxes(order []*StageDecl) {
	for _, d := range order {
		set := map[int]bool{}
		for _, name := range slices.Sorted(maps.Keys(d.With)) {
			for _, le := range x.exprsIn(d, name, d.With[name]) {
				e := le.expr
				if e.err != "" {
					x.diags.add(le.pos, le.length, "", "%s", e.err)
					continue
				}
				if e.root != "matrix" {
					continue
				}
				a, ok := x.axisIndex[e.path[0]]
				if !ok {
					hint := didYouMean(e.path[0], x.axes)
					if hint == "" && len(x.axes) == 0 {
						hint = "the pipeline declares no matrix"
					}
					x.diags.add(le.pos, le.length, hint, "unknown matrix axis %q in %s", e.path[0], e.raw)
					continue
				}
				set[a] = true
			}
		}
		for _, refs := range d.Inputs {
			for _, ref := range refs {
				if ref.Gather {
					continue
				}
				for _, a := range x.axesOf[ref.Stage] {
					set[a] = true
				}
			}
		}
		axes := make([]int, 0, len(set))
		for a := range set {
			axes = append(axes, a)
		}
		sort.Ints(axes)
		x.axesOf[d.ID] = axes
	}
}

// locatedExpr is an expression found in a parameter value, with its place.
type locatedExpr struct {
	expr   expr
	pos    Pos
	length int
}

// exprsIn lists the expressions in parameter name's value v, placed exactly
// for a top-level string and at the parameter's value otherwise.
func (x *expander) exprsIn(d *StageDecl, name string, v any) []locatedExpr {
	at := x.paramAt(d, name)
	var out []locatedExpr
	var walk func(v any, top bool)
	walk = func(v any, top bool) {
		switch t := v.(type) {
		case string:
			for _, e := range findExprs(t) {
				pos, length := at.val, at.valLen
				if top {
					pos, length = exprPos(at.val, at.quoted, t, e)
				}
				out = append(out, locatedExpr{e, pos, length})
			}
		case []any:
			for _, el := range t {
				walk(el, false)
			}
		case map[string]any:
			for _, k := range slices.Sorted(maps.Keys(t)) {
				walk(t[k], false)
			}
		}
	}
	walk(v, true)
	return out
}

// checkParamNames reports unknown parameters and missing required ones.
func (x *expander) checkParamNames() {
	for _, d := range x.spec.Stages {
		schema := x.schemas[d.ID]
		if schema == nil {
			continue
		}
		names := make([]string, len(schema.Params))
		for i, p := range schema.Params {
			names[i] = p.Name
		}
		for _, name := range slices.Sorted(maps.Keys(d.With)) {
			if findParam(schema, name) == nil {
				at := x.paramAt(d, name)
				hint := didYouMean(name, names)
				if hint == "" {
					hint = "parameters: " + strings.Join(names, ", ")
					if len(names) == 0 {
						hint = "the stage takes no parameters"
					}
				}
				x.diags.add(at.key, at.keyLen, hint, "unknown parameter %q for %s", name, stageName(d.ID, d))
			}
		}
		for _, p := range schema.Params {
			if _, given := d.With[p.Name]; !given && p.Required {
				x.diags.add(d.Pos, x.declKeyLen(d), fmt.Sprintf("add with: {%s: ...} (a %s)", p.Name, p.Type), "missing required parameter %q for %s", p.Name, stageName(d.ID, d))
			}
		}
	}
}

func findParam(schema *StageSchema, name string) *ParamSchema {
	for i := range schema.Params {
		if schema.Params[i].Name == name {
			return &schema.Params[i]
		}
	}
	return nil
}

// instantiate builds every declaration's instances, in order.
func (x *expander) instantiate(order []*StageDecl) []*Instance {
	x.byDecl = map[string][]*Instance{}
	x.instByKey = map[string]map[string]int{}
	x.instCombo = map[*Instance][]int{}
	var all []*Instance
	for _, d := range order {
		axes := x.axesOf[d.ID]
		keys := map[string]int{}
		for _, c := range x.combos {
			key := projectionKey(c, axes)
			if _, seen := keys[key]; seen {
				continue
			}
			inst := x.newInstance(d, axes, c)
			keys[key] = len(x.byDecl[d.ID])
			x.byDecl[d.ID] = append(x.byDecl[d.ID], inst)
			x.instCombo[inst] = c
			all = append(all, inst)
		}
		x.instByKey[d.ID] = keys
	}
	for _, inst := range all {
		x.connect(inst)
	}
	return all
}

// projectionKey identifies a combination's projection onto some axes.
func projectionKey(c []int, axes []int) string {
	var b strings.Builder
	for _, a := range axes {
		if a < len(c) {
			fmt.Fprintf(&b, "%d:%d,", a, c[a])
		}
	}
	return b.String()
}

func (x *expander) newInstance(d *StageDecl, axes []int, c []int) *Instance {
	inst := &Instance{ID: d.ID, Decl: d, Params: map[string]any{}, Inputs: map[string][]Edge{}}
	var parts []string
	for _, a := range axes {
		v := x.values[a][c[a]]
		inst.Axes = append(inst.Axes, Binding{Axis: x.axes[a], Label: v.Label, Value: v.Value})
		parts = append(parts, x.axes[a]+"="+v.Label)
	}
	if len(parts) > 0 {
		inst.ID += "[" + strings.Join(parts, ",") + "]"
	}
	schema := x.schemas[d.ID]
	for _, name := range slices.Sorted(maps.Keys(d.With)) {
		value, dependsOnMatrix, ok := x.resolve(d, name, c)
		if !ok {
			continue
		}
		if schema == nil {
			inst.Params[name] = value
			continue
		}
		p := findParam(schema, name)
		if p == nil {
			continue
		}
		typed, problem := checkParam(*p, value)
		if problem != "" {
			at := x.paramAt(d, name)
			who := d.ID
			if dependsOnMatrix {
				who = inst.ID
			}
			x.diags.add(at.val, at.valLen, "", "%s: %s: %s", stageName(who, d), name, problem)
			continue
		}
		inst.Params[name] = typed
	}
	if schema != nil {
		for _, p := range schema.Params {
			if _, given := d.With[p.Name]; given || p.Default == nil {
				continue
			}
			def, problem := normalizeDefault(p)
			if problem != "" {
				at := x.usesAt(d)
				x.diags.add(at.pos, at.length, "this is a bug in the stage, not in the pipeline", "stage %q declares a bad default for parameter %q: %s", d.Uses, p.Name, problem)
				continue
			}
			inst.Params[p.Name] = def
		}
	}
	return inst
}

// resolve returns parameter name's value for the combination c, with every
// expression replaced. dependsOnMatrix says whether a matrix value was used.
func (x *expander) resolve(d *StageDecl, name string, c []int) (any, bool, bool) {
	exprs := x.exprsIn(d, name, d.With[name])
	if len(exprs) == 0 {
		return d.With[name], false, true
	}
	dependsOnMatrix, ok := false, true
	places := map[string]locatedExpr{}
	for _, le := range exprs {
		if _, seen := places[le.expr.raw]; !seen {
			places[le.expr.raw] = le
		}
	}
	lookup := func(e expr) (any, string, bool) {
		le := places[e.raw]
		if e.err != "" {
			return nil, "", false // reported in computeAxes
		}
		switch e.root {
		case "matrix":
			a, known := x.axisIndex[e.path[0]]
			if !known {
				return nil, "", false // reported in computeAxes
			}
			dependsOnMatrix = true
			v := x.values[a][c[a]]
			if len(e.path) == 1 {
				return v.Value, v.Label, true
			}
			field, missing, found := lookupField(v.Value, e.path[1:])
			if !found {
				hint := ""
				if m, isMap := v.Value.(map[string]any); isMap {
					hint = didYouMean(missing, slices.Sorted(maps.Keys(m)))
				}
				x.diags.add(le.pos, le.length, hint, "%s: value %q of matrix axis %q has no field %q", e.raw, v.Label, e.path[0], missing)
				return nil, "", false
			}
			text, _ := formatScalar(field)
			return field, text, true
		default:
			val, known := x.spec.Vars[e.path[0]]
			if !known {
				x.diags.add(le.pos, le.length, didYouMean(e.path[0], slices.Sorted(maps.Keys(x.spec.Vars))), "unknown var %q in %s", e.path[0], e.raw)
				return nil, "", false
			}
			field, missing, found := lookupField(val, e.path[1:])
			if !found {
				x.diags.add(le.pos, le.length, "", "%s: var %q has no field %q", e.raw, e.path[0], missing)
				return nil, "", false
			}
			text, _ := formatScalar(field)
			return field, text, true
		}
	}
	var sub func(v any) any
	sub = func(v any) any {
		switch t := v.(type) {
		case string:
			found := findExprs(t)
			if len(found) == 0 {
				return t
			}
			if len(found) == 1 && found[0].isWhole(t) {
				val, _, good := lookup(found[0])
				if !good {
					ok = false
				}
				return copyValue(val)
			}
			var b strings.Builder
			last := 0
			for _, e := range found {
				b.WriteString(t[last:e.start])
				last = e.end
				val, text, good := lookup(e)
				if !good {
					ok = false
					continue
				}
				if _, scalar := formatScalar(val); !scalar {
					le := places[e.raw]
					x.diags.add(le.pos, le.length, "a whole value may be a list or mapping; inside a string it must be a scalar", "%s is a %s and cannot be spliced into a string", e.raw, typeName(val))
					ok = false
					continue
				}
				b.WriteString(text)
			}
			b.WriteString(t[last:])
			return b.String()
		case []any:
			out := make([]any, len(t))
			for i, el := range t {
				out[i] = sub(el)
			}
			return out
		case map[string]any:
			out := make(map[string]any, len(t))
			for k, el := range t {
				out[k] = sub(el)
			}
			return out
		}
		return v
	}
	value := sub(d.With[name])
	return value, dependsOnMatrix, ok
}

// copyValue deep-copies lists and maps so instances never share them.
func copyValue(v any) any {
	switch t := v.(type) {
	case []any:
		out := make([]any, len(t))
		for i, el := range t {
			out[i] = copyValue(el)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, el := range t {
			out[k] = copyValue(el)
		}
		return out
	}
	return v
}

// connect fills inst's input edges: a single input reads the producer
// instance that agrees with inst on the producer's axes; a gathered input
// reads every producer instance that agrees on the axes both share. A list
// of references concatenates their edges in list order.
func (x *expander) connect(inst *Instance) {
	d := inst.Decl
	c := x.instCombo[inst]
	own := map[int]bool{}
	for _, a := range x.axesOf[d.ID] {
		own[a] = true
	}
	for _, port := range slices.Sorted(maps.Keys(d.Inputs)) {
		for _, ref := range d.Inputs[port] {
			if edges, ok := x.edgesOf(ref, c, own); ok {
				inst.Inputs[port] = append(inst.Inputs[port], edges...)
			}
		}
	}
}

// edgesOf resolves one reference for the instance at combination c that
// varies over the axes in own. ok is false when the producer has no
// instances or no single instance matches (both reported elsewhere).
func (x *expander) edgesOf(ref InputRef, c []int, own map[int]bool) (edges []Edge, ok bool) {
	producers := x.byDecl[ref.Stage]
	if len(producers) == 0 {
		return nil, false
	}
	if !ref.Gather {
		i, found := x.instByKey[ref.Stage][projectionKey(c, x.axesOf[ref.Stage])]
		if !found {
			return nil, false
		}
		return []Edge{{From: producers[i].ID, Output: ref.Output}}, true
	}
	var shared []int
	for _, a := range x.axesOf[ref.Stage] {
		if own[a] {
			shared = append(shared, a)
		}
	}
	want := projectionKey(c, shared)
	edges = []Edge{}
	for _, p := range producers {
		if projectionKey(x.instCombo[p], shared) != want {
			continue
		}
		tags := map[string]string{}
		for _, b := range p.Axes {
			tags[b.Axis] = b.Label
		}
		edges = append(edges, Edge{From: p.ID, Output: ref.Output, Tags: tags})
	}
	return edges, true
}
