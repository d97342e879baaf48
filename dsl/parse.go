package dsl

import (
	"fmt"
	"maps"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

// Parse reads a pipeline file. sets are command-line overrides PATH=VALUE
// (`vars.epochs=30`, `stages.train.with.epochs=30`, `seed=3`,
// `matrix.noise=[0.0,0.4]`): VALUE is parsed as YAML and replaces or adds the
// node at PATH as if it were written in the file. Then `${{ vars.NAME }}` is
// interpolated in every `with` and matrix value.
//
// Parse always returns a Spec, filled as far as the file allowed, together
// with every problem it found; the Spec must not be run when
// Diagnostics.HasErrors. A src over MaxFileSize, or nested, long or wide
// beyond the limits (see scanLimits), is refused before it is parsed.
func Parse(file string, src []byte, sets []string) (*Spec, Diagnostics) {
	var diags Diagnostics
	spec := &Spec{File: file, Source: src, Name: baseName(file), Vars: map[string]any{}}
	if len(src) > MaxFileSize {
		return spec, tooLarge(file, int64(len(src)), true)
	}
	root := parseYAML(file, src, nil, &diags)
	decodable := root != nil
	if root == nil || root.kind == nullNode {
		pos := Pos{File: file, Line: 1, Col: 1}
		if root != nil {
			pos = root.pos
		}
		root = &node{kind: mapNode, pos: pos, length: 1}
	}
	for _, set := range sets {
		applySet(root, set, &diags)
	}
	if decodable {
		d := &decoder{spec: spec, diags: &diags, vars: map[string]*node{}}
		d.decode(root)
	}
	return spec, diags.finish(file, src)
}

// declPositions records where a stage declaration's parts are written.
type declPositions struct {
	uses    Pos
	usesLen int
	params  map[string]valueAt   // by parameter name
	inputs  map[string]valueAt   // by port name: the key and the whole value
	refs    map[string][]valueAt // by port name: the key and each reference, parallel to StageDecl.Inputs
	listed  map[string]bool      // ports whose value is written as a list
	values  map[string]*node     // by parameter name: the value as written (vars interpolated), for placing problems inside it
}

// valueAt is where a key and its value are written.
type valueAt struct {
	key    Pos
	keyLen int
	val    Pos
	valLen int
	quoted bool
}

// matrixEntryAt records where an include/exclude entry is written and the
// labels of its values as written.
type matrixEntryAt struct {
	pos    Pos
	keys   map[string]valueAt
	labels map[string]string
	values map[string]*node // the values as written
}

var (
	topLevelKeys = []string{"name", "seed", "vars", "matrix", "stages"}
	stageKeys    = []string{"uses", "with", "inputs"}
	inputRef     = regexp.MustCompile(`^([A-Za-z_][A-Za-z0-9_-]*)\.([A-Za-z_][A-Za-z0-9_-]*)(\[\])?$`)
)

// baseName is the file's base name without extension: the default pipeline name.
func baseName(file string) string {
	base := filepath.Base(file)
	return strings.TrimSuffix(base, filepath.Ext(base))
}

// applySet grafts one --set PATH=VALUE override into root (a mapping).
func applySet(root *node, set string, diags *Diagnostics) {
	pos := Pos{File: "--set " + set}
	path, value, ok := strings.Cut(set, "=")
	if !ok {
		diags.add(pos, 1, "write it as PATH=VALUE, e.g. vars.epochs=30", "invalid override: no '=' in %q", set)
		return
	}
	segs := strings.Split(strings.TrimSpace(path), ".")
	for _, s := range segs {
		if s == "" {
			diags.add(pos, 1, "", "invalid override: empty name in path %q", path)
			return
		}
	}
	if !contains(topLevelKeys, segs[0]) {
		diags.add(pos, 1, didYouMean(segs[0], topLevelKeys), "invalid override: unknown top-level key %q", segs[0])
		return
	}
	if (segs[0] == "name" || segs[0] == "seed") && len(segs) > 1 {
		diags.add(pos, 1, "", "invalid override: %s is a scalar and has no %q", segs[0], segs[1])
		return
	}
	val := parseYAML(pos.File, []byte(value), &pos, diags)
	if val == nil || !setsDeclaredVar(root, segs, pos, diags) {
		return
	}
	cur := root
	for i, seg := range segs[:len(segs)-1] {
		e := cur.get(seg)
		switch {
		case e == nil && i == 1 && segs[0] == "stages":
			diags.add(pos, 1, didYouMean(seg, keysOf(cur)), "invalid override: no stage %q in the pipeline", seg)
			return
		case e == nil:
			e = &entry{key: seg, keyPos: pos, keyLen: 1, val: &node{kind: mapNode, pos: pos, length: 1}}
			cur.entries = append(cur.entries, e)
		case e.val.kind == nullNode:
			e.val = &node{kind: mapNode, pos: pos, length: 1}
		case e.val.kind != mapNode:
			diags.add(pos, 1, "", "invalid override: %s is a %s, not a mapping", strings.Join(segs[:i+1], "."), e.val.kind)
			return
		}
		cur = e.val
	}
	last := segs[len(segs)-1]
	if e := cur.get(last); e != nil {
		e.val = val
		return
	}
	cur.entries = append(cur.entries, &entry{key: last, keyPos: pos, keyLen: 1, val: val})
}

// setsDeclaredVar reports an override of a var the file does not declare
// (`--set vars.epoch=5` for a file with `epochs`): it would change nothing,
// silently. Anything but a var override passes.
func setsDeclaredVar(root *node, segs []string, pos Pos, diags *Diagnostics) bool {
	if segs[0] != "vars" || len(segs) < 2 {
		return true
	}
	var declared []string
	if e := root.get("vars"); e != nil {
		declared = keysOf(e.val)
	}
	if contains(declared, segs[1]) {
		return true
	}
	hint := didYouMean(segs[1], declared)
	switch {
	case hint != "":
	case len(declared) == 0:
		hint = "the pipeline declares no vars; declare it under vars: in the file"
	default:
		hint = "declared vars: " + strings.Join(declared, ", ")
	}
	diags.add(pos, 1, hint, "invalid override: the pipeline declares no var %q", segs[1])
	return false
}

// decoder fills a Spec from the node tree.
type decoder struct {
	spec  *Spec
	diags *Diagnostics
	vars  map[string]*node
}

func (d *decoder) decode(root *node) {
	if root.kind != mapNode {
		d.diags.add(root.pos, root.length, "", "a pipeline must be a mapping with keys %s; got %s", strings.Join(topLevelKeys, ", "), root.describe())
		return
	}
	d.checkKeys(root, topLevelKeys, "top-level key %q", "")
	if e := root.get("name"); e != nil {
		if e.val.kind == scalarNode && e.val.text != "" {
			d.spec.Name = e.val.text
		} else {
			d.diags.add(e.val.pos, e.val.length, "", "name: want a string, got %s", e.val.describe())
		}
	}
	if e := root.get("seed"); e != nil {
		if i, ok := e.val.value.(int64); ok && e.val.kind == scalarNode && i >= 0 {
			d.spec.Seed = uint64(i)
		} else {
			d.diags.add(e.val.pos, e.val.length, "", "seed: want a non-negative integer, got %s", e.val.describe())
		}
	}
	if e := root.get("vars"); e != nil {
		d.decodeVars(e.val)
	}
	if e := root.get("matrix"); e != nil {
		d.decodeMatrix(e.val)
	}
	e := root.get("stages")
	if e == nil {
		d.diags.add(root.pos, 1, "", "missing required top-level key \"stages\"")
		return
	}
	d.decodeStages(e.val)
}

// checkKeys reports every key of m not in allowed, suggesting a close one.
func (d *decoder) checkKeys(m *node, allowed []string, what, where string) {
	for _, e := range m.entries {
		if !contains(allowed, e.key) {
			hint := didYouMean(e.key, allowed)
			if hint == "" {
				hint = "allowed keys: " + strings.Join(allowed, ", ")
			}
			d.diags.add(e.keyPos, e.keyLen, hint, "unknown "+what+"%s", e.key, where)
		}
	}
}

func (d *decoder) decodeVars(n *node) {
	if n.kind == nullNode {
		return
	}
	if n.kind != mapNode {
		d.diags.add(n.pos, n.length, "", "vars: want a mapping of NAME: value, got %s", n.describe())
		return
	}
	for _, e := range n.entries {
		if !identifier.MatchString(e.key) {
			d.diags.add(e.keyPos, e.keyLen, "names are letters, digits, '_' and '-', starting with a letter or '_'", "invalid var name %q", e.key)
			continue
		}
		d.vars[e.key] = e.val
		d.spec.Vars[e.key] = e.val.toValue()
	}
}

func (d *decoder) decodeMatrix(n *node) {
	if n.kind == nullNode {
		return
	}
	if n.kind != mapNode {
		d.diags.add(n.pos, n.length, "", "matrix: want a mapping of AXIS: [values], got %s", n.describe())
		return
	}
	m := &d.spec.Matrix
	for _, e := range n.entries {
		switch e.key {
		case "include", "exclude":
			entries, at := d.decodeMatrixEntries(e)
			if e.key == "include" {
				m.Include, m.includeAt = entries, at
			} else {
				m.Exclude, m.excludeAt = entries, at
			}
			continue
		}
		if !identifier.MatchString(e.key) {
			d.diags.add(e.keyPos, e.keyLen, "names are letters, digits, '_' and '-', starting with a letter or '_'", "invalid matrix axis name %q", e.key)
			continue
		}
		val := d.interpolate(e.val, false)
		if s, isString := val.value.(string); isString && len(findExprs(s)) > 0 {
			continue // the expression could not be resolved: reported
		}
		if val.kind != seqNode || len(val.items) == 0 {
			d.diags.add(val.pos, val.length, "", "matrix axis %q: want a non-empty list of values, got %s", e.key, val.describe())
			continue
		}
		axis := Axis{Name: e.key, Pos: e.keyPos}
		seen := map[string]bool{}
		for _, it := range val.items {
			av, ok := d.axisValue(e.key, it)
			if !ok {
				continue
			}
			if seen[av.Label] {
				d.diags.add(it.pos, it.length, "", "matrix axis %q has the value %q twice", e.key, av.Label)
				continue
			}
			seen[av.Label] = true
			axis.Values = append(axis.Values, av)
		}
		m.Axes = append(m.Axes, axis)
	}
}

// axisValue makes one value of an axis: a scalar labelled by its text, or a
// mapping labelled by its scalar `name` field.
func (d *decoder) axisValue(axis string, n *node) (AxisValue, bool) {
	switch n.kind {
	case scalarNode:
		return AxisValue{Label: n.text, Value: n.value, at: n}, true
	case mapNode:
		name := n.get("name")
		if name == nil || name.val.kind != scalarNode || name.val.text == "" {
			d.diags.add(n.pos, n.length, "the name labels the value in instance ids and reports, e.g. {name: AT, labels: hard}", "matrix axis %q: a mapping value needs a scalar \"name\" field", axis)
			return AxisValue{}, false
		}
		return AxisValue{Label: name.val.text, Value: n.toValue(), at: n}, true
	}
	d.diags.add(n.pos, n.length, "", "matrix axis %q: a value must be a scalar or a mapping with a name, got %s", axis, n.describe())
	return AxisValue{}, false
}

// decodeMatrixEntries decodes an include or exclude list of mappings.
func (d *decoder) decodeMatrixEntries(e *entry) ([]map[string]any, []matrixEntryAt) {
	val := d.interpolate(e.val, false)
	if val.kind == nullNode {
		return nil, nil
	}
	if val.kind != seqNode {
		d.diags.add(val.pos, val.length, "", "matrix %s: want a list of mappings AXIS: value, got %s", e.key, val.describe())
		return nil, nil
	}
	var out []map[string]any
	var at []matrixEntryAt
	for _, it := range val.items {
		if it.kind != mapNode {
			d.diags.add(it.pos, it.length, "", "matrix %s: want a mapping AXIS: value, got %s", e.key, it.describe())
			continue
		}
		m := map[string]any{}
		where := matrixEntryAt{pos: it.pos, keys: map[string]valueAt{}, labels: map[string]string{}, values: map[string]*node{}}
		ok := true
		for _, kv := range it.entries {
			av, valid := d.axisValue(kv.key, kv.val)
			if !valid {
				ok = false
				continue
			}
			m[kv.key] = av.Value
			where.labels[kv.key] = av.Label
			where.values[kv.key] = kv.val
			where.keys[kv.key] = valueAt{key: kv.keyPos, keyLen: kv.keyLen, val: kv.val.pos, valLen: kv.val.length}
		}
		if ok {
			out = append(out, m)
			at = append(at, where)
		}
	}
	return out, at
}

func (d *decoder) decodeStages(n *node) {
	if n.kind != mapNode || len(n.entries) == 0 {
		d.diags.add(n.pos, n.length, "", "stages: want a mapping of ID: {uses: ..., with: ..., inputs: ...}, got %s", n.describe())
		return
	}
	for _, e := range n.entries {
		if !identifier.MatchString(e.key) {
			d.diags.add(e.keyPos, e.keyLen, "ids are letters, digits, '_' and '-', starting with a letter or '_'", "invalid stage id %q", e.key)
			continue
		}
		decl := &StageDecl{ID: e.key, Pos: e.keyPos, With: map[string]any{}, Inputs: map[string][]InputRef{}}
		decl.at = declPositions{uses: e.keyPos, usesLen: e.keyLen, params: map[string]valueAt{}, inputs: map[string]valueAt{},
			refs: map[string][]valueAt{}, listed: map[string]bool{}, values: map[string]*node{}}
		d.spec.Stages = append(d.spec.Stages, decl)
		if e.val.kind != mapNode {
			d.diags.add(e.val.pos, e.val.length, "", "stage %q: want a mapping with keys uses, with, inputs; got %s", e.key, e.val.describe())
			continue
		}
		d.checkKeys(e.val, stageKeys, "key %q", fmt.Sprintf(" in stage %q", e.key))
		d.decodeStage(decl, e)
	}
}

func (d *decoder) decodeStage(decl *StageDecl, e *entry) {
	body := e.val
	if u := body.get("uses"); u == nil {
		d.diags.add(e.keyPos, e.keyLen, "", "stage %q: missing required key \"uses\"", decl.ID)
	} else if s, ok := u.val.value.(string); !ok || u.val.kind != scalarNode || s == "" {
		d.diags.add(u.val.pos, u.val.length, "", "stage %q: uses: want a stage name, got %s", decl.ID, u.val.describe())
	} else {
		decl.Uses = s
		decl.at.uses, decl.at.usesLen = u.val.pos, u.val.length
	}
	if w := body.get("with"); w != nil {
		with := d.interpolate(w.val, true)
		switch with.kind {
		case nullNode:
		case mapNode:
			for _, p := range with.entries {
				decl.With[p.key] = p.val.toValue()
				decl.at.params[p.key] = valueAt{key: p.keyPos, keyLen: p.keyLen, val: p.val.pos, valLen: p.val.length, quoted: p.val.quoted}
				decl.at.values[p.key] = p.val
			}
		default:
			d.diags.add(with.pos, with.length, "", "stage %q: with: want a mapping of PARAM: value, got %s", decl.ID, with.describe())
		}
	}
	if in := body.get("inputs"); in != nil {
		switch in.val.kind {
		case nullNode:
		case mapNode:
			for _, p := range in.val.entries {
				d.decodeInput(decl, p)
			}
		default:
			d.diags.add(in.val.pos, in.val.length, "", "stage %q: inputs: want a mapping of PORT: stage.output, got %s", decl.ID, in.val.describe())
		}
	}
}

// decodeInput records one `PORT: REF` or `PORT: [REF, ...]` entry of a
// stage's inputs. An empty list is kept (with no references) so that Expand
// reports it with the port's schema at hand.
func (d *decoder) decodeInput(decl *StageDecl, p *entry) {
	decl.at.inputs[p.key] = valueAt{key: p.keyPos, keyLen: p.keyLen, val: p.val.pos, valLen: p.val.length}
	items := []*node{p.val}
	if p.val.kind == seqNode {
		decl.at.listed[p.key] = true
		decl.at.inputs[p.key] = valueAt{key: p.keyPos, keyLen: p.keyLen, val: p.val.pos, valLen: d.flowListLength(p.val)}
		items = p.val.items
	}
	refs := []InputRef{}
	var places []valueAt
	for _, it := range items {
		s, _ := it.value.(string)
		m := inputRef.FindStringSubmatch(s)
		if it.kind != scalarNode || m == nil {
			want := `"stage.output" or "stage.output[]"`
			if p.val.kind != seqNode {
				want = `"stage.output", "stage.output[]" or a list of them`
			}
			d.diags.add(it.pos, it.length, "", "stage %q: input %q: want %s, got %s", decl.ID, p.key, want, it.describe())
			continue
		}
		refs = append(refs, InputRef{Stage: m[1], Output: m[2], Gather: m[3] != "", Pos: it.pos})
		places = append(places, valueAt{key: p.keyPos, keyLen: p.keyLen, val: it.pos, valLen: it.length})
	}
	if len(refs) == 0 && len(items) > 0 {
		return // every reference was malformed and reported
	}
	decl.Inputs[p.key] = refs
	decl.at.refs[p.key] = places
}

// flowListLength is how many characters to underline for a list value: the
// whole `[...]` when it is written on one line of the file, else its first
// character.
func (d *decoder) flowListLength(n *node) int {
	lines := strings.Split(string(d.spec.Source), "\n")
	if n.pos.File != d.spec.File || n.pos.Line < 1 || n.pos.Line > len(lines) {
		return 1
	}
	line := []rune(lines[n.pos.Line-1])
	start := n.pos.Col - 1
	if start < 0 || start >= len(line) || line[start] != '[' {
		return 1
	}
	depth := 0
	for i := start; i < len(line); i++ {
		switch line[i] {
		case '[':
			depth++
		case ']':
			depth--
			if depth == 0 {
				return i - start + 1
			}
		}
	}
	return 1
}

// interpolate returns n with every `${{ vars.NAME }}` replaced. Matrix
// expressions are kept (for Expand) when keepMatrix, and reported otherwise.
func (d *decoder) interpolate(n *node, keepMatrix bool) *node {
	switch n.kind {
	case mapNode:
		c := *n
		c.entries = make([]*entry, len(n.entries))
		for i, e := range n.entries {
			ce := *e
			ce.val = d.interpolate(e.val, keepMatrix)
			c.entries[i] = &ce
		}
		return &c
	case seqNode:
		c := *n
		c.items = make([]*node, len(n.items))
		for i, it := range n.items {
			c.items[i] = d.interpolate(it, keepMatrix)
		}
		return &c
	case scalarNode:
		s, ok := n.value.(string)
		if !ok {
			return n
		}
		exprs := findExprs(s)
		if len(exprs) == 0 {
			return n
		}
		return d.interpolateString(n, s, exprs, keepMatrix)
	}
	return n
}

func (d *decoder) interpolateString(n *node, s string, exprs []expr, keepMatrix bool) *node {
	var b strings.Builder
	last, failed := 0, false
	for _, e := range exprs {
		b.WriteString(s[last:e.start])
		last = e.end
		pos, length := exprPos(n.pos, n.quoted, s, e)
		switch {
		case e.err != "":
			d.diags.add(pos, length, "", "%s", e.err)
			failed = true
			continue
		case e.root == "matrix":
			if !keepMatrix {
				d.diags.add(pos, length, "", "%s: matrix values cannot refer to the matrix", e.raw)
				failed = true
			}
			b.WriteString(e.raw)
			continue
		}
		val := d.lookupVar(e, pos, length)
		if val == nil {
			failed = true
			continue
		}
		if e.isWhole(s) {
			return val.copyAt(n)
		}
		if val.kind != scalarNode && val.kind != nullNode {
			d.diags.add(pos, length, "a whole value `${{ vars.x }}` may be a list or mapping; inside a string it must be a scalar", "%s is a %s and cannot be spliced into a string", e.raw, val.kind)
			failed = true
			continue
		}
		if val.kind == nullNode {
			b.WriteString("null")
		} else {
			b.WriteString(val.text)
		}
	}
	if failed {
		return n
	}
	b.WriteString(s[last:])
	c := *n
	c.value, c.text = b.String(), b.String()
	return &c
}

// lookupVar resolves a vars expression to its node, or reports why not.
func (d *decoder) lookupVar(e expr, pos Pos, length int) *node {
	val, ok := d.vars[e.path[0]]
	if !ok {
		d.diags.add(pos, length, didYouMean(e.path[0], slices.Sorted(maps.Keys(d.vars))), "unknown var %q in %s", e.path[0], e.raw)
		return nil
	}
	for _, f := range e.path[1:] {
		fe := val.get(f)
		if fe == nil {
			d.diags.add(pos, length, didYouMean(f, keysOf(val)), "%s: var %q has no field %q", e.raw, e.path[0], f)
			return nil
		}
		val = fe.val
	}
	return val
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// keysOf lists a mapping node's keys.
func keysOf(n *node) []string {
	if n == nil {
		return nil
	}
	out := make([]string, 0, len(n.entries))
	for _, e := range n.entries {
		out = append(out, e.key)
	}
	return out
}
