package dsl

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"

	"github.com/sglr-pipe/sglr-pipe/stages/param"
)

// The DSL works on its own small YAML tree: go-yaml's AST is converted once
// into nodes that keep positions, so that --set overrides can be grafted in and
// every later check can point at the right place.

type nodeKind int

const (
	nullNode nodeKind = iota
	scalarNode
	mapNode
	seqNode
)

func (k nodeKind) String() string {
	switch k {
	case scalarNode:
		return "scalar"
	case mapNode:
		return "mapping"
	case seqNode:
		return "list"
	}
	return "null"
}

// node is one YAML value with its position.
type node struct {
	kind    nodeKind
	pos     Pos
	length  int    // characters to underline at pos
	value   any    // scalars: bool, int64, float64 or string
	text    string // scalars: the text as written (quotes removed)
	quoted  bool   // scalars: written in quotes
	entries []*entry
	items   []*node
}

// entry is one key: value pair of a mapping.
type entry struct {
	key    string
	keyPos Pos
	keyLen int
	val    *node
	merged bool // copied in by a merge key (<<); an explicit key replaces it
}

// get returns the entry for key, or nil.
func (n *node) get(key string) *entry {
	if n == nil || n.kind != mapNode {
		return nil
	}
	for _, e := range n.entries {
		if e.key == key {
			return e
		}
	}
	return nil
}

// describe names the node's type and value for "want X, got Y" messages.
func (n *node) describe() string {
	if n == nil || n.kind == nullNode {
		return "null"
	}
	switch n.kind {
	case scalarNode:
		return fmt.Sprintf("%s %s", param.TypeName(n.value), quoteIfString(n.value, n.text))
	case mapNode:
		return "mapping"
	}
	return "list"
}

// copyAt deep-copies n; when at is non-nil every copied node is moved there
// (a value substituted from a var is reported where it is used).
func (n *node) copyAt(at *node) *node {
	if n == nil {
		return nil
	}
	c := *n
	if at != nil {
		c.pos, c.length = at.pos, at.length
	}
	c.entries = nil
	for _, e := range n.entries {
		ce := *e
		if at != nil {
			ce.keyPos, ce.keyLen = at.pos, at.length
		}
		ce.val = e.val.copyAt(at)
		c.entries = append(c.entries, &ce)
	}
	c.items = nil
	for _, it := range n.items {
		c.items = append(c.items, it.copyAt(at))
	}
	return &c
}

// toValue turns the node into plain Go values: nil, bool, int64, float64,
// string, []any, map[string]any.
func (n *node) toValue() any {
	if n == nil {
		return nil
	}
	switch n.kind {
	case scalarNode:
		return n.value
	case mapNode:
		m := make(map[string]any, len(n.entries))
		for _, e := range n.entries {
			m[e.key] = e.val.toValue()
		}
		return m
	case seqNode:
		l := make([]any, 0, len(n.items))
		for _, it := range n.items {
			l = append(l, it.toValue())
		}
		return l
	}
	return nil
}

// Expressions `${{ ... }}` are not valid plain scalars inside YAML flow
// collections, so before parsing they are masked with a same-length form
// that is, and unmasked in every scalar afterwards. Columns stay exact.
// Gathered inputs `x.out[]` are masked the same way as `x.out<>`.
var (
	exprInSource   = regexp.MustCompile(`\$\{\{([^\n]*?)\}\}`)
	maskedExpr     = regexp.MustCompile(`\$<<([^\n]*?)>>`)
	gatherInSource = regexp.MustCompile(`([A-Za-z0-9_-]\.[A-Za-z_][A-Za-z0-9_-]*)\[\]`)
	maskedGather   = regexp.MustCompile(`^([A-Za-z_][A-Za-z0-9_-]*\.[A-Za-z_][A-Za-z0-9_-]*)<>$`)
)

func maskExpressions(src []byte) []byte {
	src = exprInSource.ReplaceAll(src, []byte("$$<<${1}>>"))
	return gatherInSource.ReplaceAll(src, []byte("${1}<>"))
}

func unmaskExpressions(s string) string {
	if strings.HasSuffix(s, "<>") {
		s = maskedGather.ReplaceAllString(s, "${1}[]")
	}
	if !strings.Contains(s, "$<<") {
		return s
	}
	return maskedExpr.ReplaceAllString(s, "$${{${1}}}")
}

// maxDepth and maxNodes bound nesting and alias expansion, so that hostile
// input gives a diagnostic instead of exhausting the stack or memory.
const (
	maxDepth = 100
	maxNodes = 200000
)

// converter turns a go-yaml AST into nodes.
type converter struct {
	file    string
	fixed   *Pos // when set, every node is placed here (values of --set overrides)
	anchors map[string]*node
	nodes   int
	diags   *Diagnostics
}

// parseYAML parses src as one YAML document. It returns nil (and a
// diagnostic) on a syntax error; an empty document is a null node.
func parseYAML(file string, src []byte, fixed *Pos, diags *Diagnostics) *node {
	c := &converter{file: file, fixed: fixed, anchors: map[string]*node{}, diags: diags}
	masked := maskExpressions(src)
	if hit := scanLimits(masked); hit != nil {
		pos := hit.pos(file)
		if fixed != nil {
			pos = *fixed
		}
		diags.add(pos, 1, "checked before parsing: other problems in the file are reported once this one is fixed", "%s", hit.msg)
		return nil
	}
	f, err := parser.ParseBytes(masked, 0, parser.AllowDuplicateMapKey())
	if err != nil {
		c.syntaxError(err)
		return nil
	}
	if f == nil || len(f.Docs) == 0 {
		return &node{kind: nullNode, pos: c.place(nil)}
	}
	if len(f.Docs) > 1 && f.Docs[1].Body != nil {
		pos := c.place(f.Docs[1].Body.GetToken())
		diags.add(pos, 1, "", "a pipeline file holds one YAML document; found more after line %d", pos.Line-1)
	}
	body := f.Docs[0].Body
	if body == nil {
		return &node{kind: nullNode, pos: c.place(nil)}
	}
	return c.convert(body, 0)
}

func (c *converter) syntaxError(err error) {
	var located interface {
		GetToken() *token.Token
		GetMessage() string
	}
	pos, msg := c.place(nil), err.Error()
	if errors.As(err, &located) {
		pos, msg = c.place(located.GetToken()), located.GetMessage()
	}
	c.diags.add(pos, 1, "", "YAML syntax error: %s", unmaskExpressions(msg))
}

// place returns the position of tk (1:1 when unknown).
func (c *converter) place(tk *token.Token) Pos {
	if c.fixed != nil {
		return *c.fixed
	}
	if tk == nil || tk.Position == nil {
		return Pos{File: c.file, Line: 1, Col: 1}
	}
	return Pos{File: c.file, Line: tk.Position.Line, Col: tk.Position.Column}
}

// tokenLength is the number of characters the token takes on its first line.
func tokenLength(tk *token.Token) int {
	if tk == nil {
		return 1
	}
	s := strings.TrimSpace(tk.Origin)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = strings.TrimSpace(s[:i])
	}
	if n := utf8.RuneCountInString(s); n > 0 {
		return n
	}
	return 1
}

func (c *converter) convert(n ast.Node, depth int) *node {
	if n == nil {
		return &node{kind: nullNode, pos: c.place(nil), length: 1}
	}
	tk := n.GetToken()
	pos := c.place(tk)
	c.nodes++
	if depth > maxDepth {
		c.diags.add(pos, 1, "", "YAML nesting is deeper than %d levels", maxDepth)
		return &node{kind: nullNode, pos: pos, length: 1}
	}
	if c.nodes > maxNodes {
		if c.nodes == maxNodes+1 {
			c.diags.add(pos, 1, "", "YAML document has more than %d values (after alias expansion)", maxNodes)
		}
		return &node{kind: nullNode, pos: pos, length: 1}
	}
	if s, isScalar := c.convertScalar(n, tk, pos); isScalar {
		return s
	}
	return c.convertCollection(n, tk, pos, depth)
}

// convertScalar converts a scalar node (numbers typed by the core schema,
// see plainNumber); isScalar is false for any other node.
func (c *converter) convertScalar(n ast.Node, tk *token.Token, pos Pos) (s *node, isScalar bool) {
	scalar := func(v any, text string) (*node, bool) {
		quoted := tk != nil && (tk.Type == token.SingleQuoteType || tk.Type == token.DoubleQuoteType)
		return &node{kind: scalarNode, pos: pos, length: tokenLength(tk), value: v, text: text, quoted: quoted}, true
	}
	if num, isNumber := c.plainNumber(n, tk, pos); isNumber {
		return scalar(num, tk.Value)
	}
	switch v := n.(type) {
	case *ast.NullNode:
		return &node{kind: nullNode, pos: pos, length: tokenLength(tk)}, true
	case *ast.BoolNode:
		return scalar(v.Value, tk.Value)
	case *ast.IntegerNode:
		switch i := v.Value.(type) {
		case int64:
			return scalar(i, tk.Value)
		case uint64:
			if i <= math.MaxInt64 {
				return scalar(int64(i), tk.Value)
			}
		}
		c.diags.add(pos, tokenLength(tk), "", "integer %s does not fit in 64 bits", tk.Value)
		return scalar(tk.Value, tk.Value)
	case *ast.FloatNode:
		return scalar(v.Value, tk.Value)
	case *ast.InfinityNode:
		return scalar(v.Value, tk.Value)
	case *ast.NanNode:
		return scalar(math.NaN(), tk.Value)
	case *ast.StringNode:
		s := unmaskExpressions(v.Value)
		return scalar(s, s)
	case *ast.LiteralNode:
		s := ""
		if v.Value != nil {
			s = unmaskExpressions(v.Value.Value)
		}
		return scalar(s, s)
	}
	return nil, false
}

// convertCollection converts mappings, sequences, anchors, aliases and
// tags; anything else is reported as unsupported.
func (c *converter) convertCollection(n ast.Node, tk *token.Token, pos Pos, depth int) *node {
	switch v := n.(type) {
	case *ast.MappingNode:
		m := &node{kind: mapNode, pos: pos, length: 1}
		if !v.IsFlowStyle && len(v.Values) > 0 && v.Values[0].Key != nil {
			m.pos = c.place(v.Values[0].Key.GetToken())
		}
		for _, mv := range v.Values {
			c.addEntry(m, mv, depth)
		}
		return m
	case *ast.MappingValueNode:
		m := &node{kind: mapNode, pos: pos, length: 1}
		if v.Key != nil {
			m.pos = c.place(v.Key.GetToken())
		}
		c.addEntry(m, v, depth)
		return m
	case *ast.SequenceNode:
		s := &node{kind: seqNode, pos: pos, length: 1}
		for _, it := range v.Values {
			s.items = append(s.items, c.convert(it, depth+1))
		}
		return s
	case *ast.AnchorNode:
		val := c.convert(v.Value, depth+1)
		if v.Name != nil {
			c.anchors[v.Name.GetToken().Value] = val
		}
		return val
	case *ast.AliasNode:
		return c.alias(v, tk, pos)
	case *ast.TagNode:
		val := c.convert(v.Value, depth+1)
		if val.kind == scalarNode {
			switch tk.Value {
			case "!!str":
				val.value = val.text
			case "!!float":
				if i, ok := val.value.(int64); ok {
					val.value = float64(i)
				}
			}
		}
		return val
	}
	c.diags.add(pos, tokenLength(tk), "", "unsupported YAML %s", n.Type())
	return &node{kind: nullNode, pos: pos, length: 1}
}

// alias copies the node an alias names, counting its nodes against maxNodes.
func (c *converter) alias(v *ast.AliasNode, tk *token.Token, pos Pos) *node {
	name := ""
	if v.Value != nil {
		name = v.Value.GetToken().Value
	}
	target, ok := c.anchors[name]
	if !ok {
		c.diags.add(pos, tokenLength(tk), "", "unknown YAML alias *%s", name)
		return &node{kind: nullNode, pos: pos, length: 1}
	}
	c.nodes += countNodes(target, maxNodes)
	if c.nodes > maxNodes {
		c.diags.add(pos, tokenLength(tk), "", "YAML document has more than %d values (after alias expansion)", maxNodes)
		return &node{kind: nullNode, pos: pos, length: 1}
	}
	return target.copyAt(nil)
}

// Plain scalars are typed by the YAML 1.2 core schema's rules for numbers,
// not by go-yaml's, which follow YAML 1.1 (`1e-3` is a string there, `1_000`
// and `0b101` are ints, `017` is octal):
//
//   - int: decimal `[-+]?[0-9]+` (leading zeros are decimal: `017` is 17),
//     octal `0o[0-7]+`, hexadecimal `0x[0-9a-fA-F]+`;
//   - float: `[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?`, so `1e-3`,
//     `5e-4`, `1E3`, `-2.5e+2`, `1.` and `.5`; and `.inf`, `-.inf`, `.nan` in
//     the core schema's spellings;
//   - anything else is a string: `1_000`, `0b101`, `0X10`, `-0x10`, `1:30`.
var (
	coreDecimal = regexp.MustCompile(`^[-+]?[0-9]+$`)
	coreOctal   = regexp.MustCompile(`^0o[0-7]+$`)
	coreHex     = regexp.MustCompile(`^0x[0-9a-fA-F]+$`)
	coreFloat   = regexp.MustCompile(`^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`)
	coreInf     = regexp.MustCompile(`^[-+]?\.(inf|Inf|INF)$`)
	coreNaN     = regexp.MustCompile(`^\.(nan|NaN|NAN)$`)
)

// plainNumber types a plain scalar that go-yaml read as a number or a string
// by the core schema (see above). It returns the value (int64, float64 or
// string) and true when it decided, false for any other node (quoted
// strings, block scalars, bools, nulls, collections). A number too large for
// 64 bits is reported and kept as its text.
func (c *converter) plainNumber(n ast.Node, tk *token.Token, pos Pos) (any, bool) {
	if tk == nil {
		return nil, false
	}
	switch n.(type) {
	case *ast.IntegerNode, *ast.FloatNode, *ast.InfinityNode, *ast.NanNode:
	case *ast.StringNode:
		if tk.Type == token.SingleQuoteType || tk.Type == token.DoubleQuoteType {
			return nil, false
		}
	default:
		return nil, false
	}
	text := tk.Value
	tooLarge := func(what string) (any, bool) {
		c.diags.add(pos, tokenLength(tk), "", "%s %s does not fit in 64 bits", what, text)
		return text, true
	}
	switch {
	case coreDecimal.MatchString(text):
		i, err := strconv.ParseInt(text, 10, 64)
		if err != nil {
			return tooLarge("integer")
		}
		return i, true
	case coreOctal.MatchString(text), coreHex.MatchString(text):
		base := 8
		if text[1] == 'x' {
			base = 16
		}
		i, err := strconv.ParseInt(text[2:], base, 64)
		if err != nil {
			return tooLarge("integer")
		}
		return i, true
	case coreFloat.MatchString(text):
		f, err := strconv.ParseFloat(text, 64)
		if err != nil && math.IsInf(f, 0) {
			return tooLarge("float")
		}
		return f, true
	case coreInf.MatchString(text):
		if text[0] == '-' {
			return math.Inf(-1), true
		}
		return math.Inf(1), true
	case coreNaN.MatchString(text):
		return math.NaN(), true
	}
	if _, isString := n.(*ast.StringNode); isString {
		return nil, false
	}
	return unmaskExpressions(text), true // go-yaml's number that the core schema calls a string
}

// addEntry adds one key: value pair to m: merge keys (<<) copy the entries
// of the merged mappings that m does not define; duplicate keys are errors.
func (c *converter) addEntry(m *node, mv *ast.MappingValueNode, depth int) {
	if mv == nil {
		return
	}
	val := c.convert(mv.Value, depth+1)
	if mv.Key == nil {
		return
	}
	ktk := mv.Key.GetToken()
	kpos := c.place(ktk)
	if mv.Key.IsMergeKey() {
		sources := []*node{val}
		if val.kind == seqNode {
			sources = val.items
		}
		for _, src := range sources {
			if src.kind != mapNode {
				c.diags.add(src.pos, src.length, "", "merge key << wants a mapping, got %s", src.describe())
				continue
			}
			for _, e := range src.entries {
				if m.get(e.key) == nil {
					merged := *e
					merged.merged = true
					m.entries = append(m.entries, &merged)
				}
			}
		}
		return
	}
	key := mv.Key
	if mk, ok := key.(*ast.MappingKeyNode); ok {
		if s, ok := mk.Value.(ast.MapKeyNode); ok {
			key = s
		}
	}
	if _, ok := key.(ast.ScalarNode); !ok {
		c.diags.add(kpos, 1, "", "mapping keys must be scalars, got %s", key.Type().YAMLName())
		return
	}
	name := unmaskExpressions(key.GetToken().Value)
	if first := m.get(name); first != nil && first.merged {
		*first = entry{key: name, keyPos: kpos, keyLen: tokenLength(ktk), val: val}
		return
	} else if first != nil {
		if c.fixed == nil {
			c.diags.add(kpos, tokenLength(ktk), fmt.Sprintf("first defined at line %d", first.keyPos.Line), "duplicate key %q", name)
		} else {
			c.diags.add(kpos, 1, "", "duplicate key %q", name)
		}
		return
	}
	m.entries = append(m.entries, &entry{key: name, keyPos: kpos, keyLen: tokenLength(ktk), val: val})
}

// countNodes counts n's nodes, stopping at limit.
func countNodes(n *node, limit int) int {
	if n == nil {
		return 0
	}
	total := 1
	for _, e := range n.entries {
		if total > limit {
			break
		}
		total += countNodes(e.val, limit)
	}
	for _, it := range n.items {
		if total > limit {
			break
		}
		total += countNodes(it, limit)
	}
	return total
}

// quoteIfString renders a scalar for a message: strings quoted, others as written.
func quoteIfString(v any, text string) string {
	if _, ok := v.(string); ok {
		return fmt.Sprintf("%q", text)
	}
	return text
}
