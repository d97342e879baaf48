package dsl

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"unicode/utf8"
)

// Limits on what a pipeline file may hold, checked before the YAML parser
// sees it. goccy/go-yaml builds its whole tree before the converter's own caps
// (maxDepth, maxNodes) can look at it, and its cost grows faster than its
// input: nesting is quadratic in depth and a block mapping quadratic in its
// keys (20 000 keys take a second, 100 000 take over a minute and tens of
// gigabytes). So the file's size is capped when it is read, and scanLimits
// checks nesting, values and keys in one pass over the bytes.
const (
	// MaxFileSize is the largest pipeline file accepted, in bytes (4 MiB).
	MaxFileSize = 4 << 20

	// maxKeys bounds the keys of one mapping: with maxNodes values in
	// mappings of maxKeys keys, parsing takes about two seconds.
	maxKeys = 500
)

// ReadFile reads a pipeline file. It refuses, with a Diagnostics naming the
// file, anything that is not a regular file (a FIFO would block, a device
// such as /dev/zero never ends) and a file larger than MaxFileSize, of which
// it reads at most MaxFileSize+1 bytes. Other failures (a missing or
// unreadable file) are the *fs.PathError of the os package.
func ReadFile(path string) ([]byte, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if d := checkFileInfo(path, info); d != nil {
		return nil, d
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	// The path may have been replaced between Stat and Open.
	if info, err = f.Stat(); err != nil {
		return nil, err
	}
	if d := checkFileInfo(path, info); d != nil {
		return nil, d
	}
	src, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, &fs.PathError{Op: "read", Path: path, Err: err}
	}
	if len(src) > MaxFileSize {
		return nil, tooLarge(path, int64(len(src)), false)
	}
	return src, nil
}

// checkFileInfo refuses a file that is not regular or is over the size cap.
func checkFileInfo(path string, info fs.FileInfo) Diagnostics {
	mode := info.Mode()
	if !mode.IsRegular() {
		what := "not a regular file"
		switch {
		case mode.IsDir():
			what = "a directory"
		case mode&fs.ModeNamedPipe != 0:
			what = "a named pipe (FIFO)"
		case mode&fs.ModeSocket != 0:
			what = "a socket"
		case mode&fs.ModeDevice != 0:
			what = "a device"
		}
		return Diagnostics{{
			Pos:     Pos{File: path},
			Summary: fmt.Sprintf("pipeline file %s is %s, not a regular file", path, what),
			Detail:  "a pipeline is read from a regular file of at most 4 MiB; save it to one and pass its path",
		}}
	}
	if info.Size() > MaxFileSize {
		return tooLarge(path, info.Size(), true)
	}
	return nil
}

// tooLarge reports a file over MaxFileSize; exact says whether size is the
// file's size or only how much of it was read.
func tooLarge(path string, size int64, exact bool) Diagnostics {
	how := "is"
	if !exact {
		how = "has more than"
		size = MaxFileSize
	}
	return Diagnostics{{
		Pos:     Pos{File: path},
		Summary: fmt.Sprintf("pipeline file %s %s %d bytes; the limit is %d (4 MiB)", path, how, size, MaxFileSize),
		Detail:  "a pipeline this large is not written by hand: generate the instances with a matrix instead",
	}}
}

// limitHit is the first limit scanLimits found exceeded: where (1-based line,
// byte offset in that line) and what.
type limitHit struct {
	line   int
	offset int
	text   []byte // the line, to turn offset into a column
	msg    string
}

// pos converts the hit to a position in file, columns counted in characters.
func (h *limitHit) pos(file string) Pos {
	return Pos{File: file, Line: h.line, Col: utf8.RuneCount(h.text[:h.offset]) + 1}
}

// scanLimits checks, in one pass over src and before any parsing, that no
// value is nested deeper than maxDepth+1 collections (flow `[`/`{` plus
// block indentation levels), that there are at most maxNodes values and that
// no mapping has more than maxKeys keys. It understands enough YAML for that
// — quoted scalars, comments, block scalars (`|`, `>`), multi-line plain
// scalars, flow collections spanning lines, `---` — and errs towards
// counting less than the parser would, so that it never refuses a file the
// converter accepts; the converter's own checks catch what it undercounts,
// on a tree that is then small. It returns nil when every limit holds.
func scanLimits(src []byte) *limitHit {
	s := &limitScan{}
	for n := 1; len(src) > 0; n++ {
		line := src
		if i := bytes.IndexByte(src, '\n'); i >= 0 {
			line, src = src[:i], src[i+1:]
		} else {
			src = nil
		}
		line = bytes.TrimSuffix(line, []byte("\r"))
		s.line, s.text = n, line
		s.scanLine()
		if s.hit != nil {
			return s.hit
		}
	}
	return nil
}

// limitScan is scanLimits' state between lines.
type limitScan struct {
	levels []blockLevel // open block collections, innermost last
	flow   []flowLevel  // open flow collections, innermost last
	values int

	quote  byte       // '"' or '\'' while inside a quoted scalar spanning lines
	expect flowExpect // in flow: what the next token starts

	literal       bool // inside a block scalar (| or >)
	literalParent int  // its content is indented more than this column
	literalIndent int  // the content's indentation, once its first line is seen (0 before)

	open  bool // the last block line left its value for the lines below (`key:`, `-`, `&a`)
	plain bool // the last block line ended in a plain scalar, which may continue below

	line int    // current line number
	text []byte // current line
	hit  *limitHit
}

// flowExpect is what the next token inside a flow collection starts.
type flowExpect int

const (
	expectNothing flowExpect = iota // the rest of a node
	expectItem                      // an item (after `[`, `{` or `,`)
	expectValue                     // a mapping's value (after `:`)
)

// blockLevel is a block mapping or sequence whose entries start at col.
type blockLevel struct {
	col  int
	keys int
}

// flowLevel is an open `[` or `{`; items counts the items (keys of a mapping).
type flowLevel struct {
	mapping bool
	items   int
}

func (s *limitScan) fail(offset int, format string, args ...any) {
	if s.hit == nil {
		s.hit = &limitHit{line: s.line, offset: offset, text: s.text, msg: fmt.Sprintf(format, args...)}
	}
}

func (s *limitScan) depth() int { return len(s.levels) + len(s.flow) }

// countValue counts one value starting at offset.
func (s *limitScan) countValue(offset int) {
	s.values++
	if s.values > maxNodes {
		s.fail(offset, "YAML document has more than %d values", maxNodes)
	}
}

func isBlank(c byte) bool { return c == ' ' || c == '\t' }

// skipBlanks returns the offset of the first non-blank byte at or after i.
func skipBlanks(line []byte, i int) int {
	for i < len(line) && isBlank(line[i]) {
		i++
	}
	return i
}

// endOfContent reports whether nothing but blanks and a comment follows i.
func endOfContent(line []byte, i int) bool {
	i = skipBlanks(line, i)
	return i == len(line) || line[i] == '#'
}

// scanLine scans s.text as the next line of the file.
func (s *limitScan) scanLine() {
	line := s.text
	if s.quote != 0 {
		end := s.skipQuoted(line, 0)
		if end < 0 {
			return
		}
		if len(s.flow) == 0 {
			s.open, s.plain = false, false
			return // the rest of a block line after a quoted value holds no collection
		}
		s.expect = expectNothing
		s.scanFlow(line, end)
		return
	}
	indent := skipBlanks(line, 0)
	empty := indent == len(line)
	if s.literal {
		switch {
		case isDocMarker(line):
		case empty:
			return
		case s.literalIndent > 0 && indent >= s.literalIndent:
			return
		case s.literalIndent == 0 && indent > s.literalParent:
			s.literalIndent = indent
			return
		}
		s.literal = false
	}
	if len(s.flow) > 0 {
		s.scanFlow(line, 0)
		return
	}
	if empty || line[indent] == '#' {
		return
	}
	if isDocMarker(line) {
		// A document marker: what follows starts a new root.
		s.levels, s.open, s.plain = s.levels[:0], false, false
		if s.countValue(0); s.hit != nil {
			return // a file of nothing but markers is as costly as one of values
		}
		if p := skipBlanks(line, 3); !endOfContent(line, p) {
			s.scanValue(line, p)
		}
		return
	}
	if indent == 0 && line[0] == '%' {
		return // a directive
	}
	if top := len(s.levels) - 1; top >= 0 && !s.open && indent > s.levels[top].col {
		// Deeper than the entry above without a `key:` or `-` opening it: the
		// continuation of a plain scalar, or an error the parser reports
		// (after a quoted or flow value, or a `key:`, which a plain scalar
		// cannot hold). Such a line opens no level, but a value in it may
		// open collections.
		switch end := keyEnd(line, indent); {
		case end >= 0:
			s.scanValue(line, skipBlanks(line, end))
		case !s.plain:
			s.scanValue(line, indent)
		}
		return
	}
	for len(s.levels) > 0 && s.levels[len(s.levels)-1].col > indent {
		s.levels = s.levels[:len(s.levels)-1]
	}
	s.open, s.plain = false, false
	s.scanNode(line, indent)
}

// isDocMarker reports whether line starts with `---` or `...`, which start
// or end a document.
func isDocMarker(line []byte) bool {
	return (bytes.HasPrefix(line, []byte("---")) || bytes.HasPrefix(line, []byte("..."))) &&
		(len(line) == 3 || isBlank(line[3]))
}

// scanNode scans the block node starting at offset p: a sequence entry
// `- ...`, a mapping entry `key: ...` or a value.
func (s *limitScan) scanNode(line []byte, p int) {
	seqEntry := (line[p] == '-' || line[p] == '?') && (p+1 == len(line) || isBlank(line[p+1]))
	afterKey := -1
	if !seqEntry {
		afterKey = keyEnd(line, p)
		if afterKey < 0 {
			s.scanValue(line, p)
			return
		}
	}
	top := len(s.levels) - 1
	if top >= 0 && s.levels[top].col == p {
		if !seqEntry {
			s.levels[top].keys++
		}
	} else {
		keys := 0
		if !seqEntry {
			keys = 1
		}
		s.levels = append(s.levels, blockLevel{col: p, keys: keys})
		top++
	}
	if s.depth() > maxDepth+1 {
		s.fail(p, "YAML nesting is deeper than %d levels", maxDepth)
		return
	}
	if s.levels[top].keys > maxKeys {
		s.fail(p, "a mapping has more than %d keys", maxKeys)
		return
	}
	s.countValue(p)
	if s.hit != nil {
		return
	}
	next := p + 1
	if !seqEntry {
		next = afterKey
	}
	next = skipBlanks(line, next)
	if endOfContent(line, next) {
		s.open = true
		return
	}
	if seqEntry {
		s.scanNode(line, next)
		return
	}
	s.scanValue(line, next)
}

// keyEnd returns the offset just past the `:` of an implicit mapping key
// starting at p (plain or quoted, possibly after an anchor or tag), or -1
// when the node at p is not a key.
func keyEnd(line []byte, p int) int {
	for p < len(line) && (line[p] == '&' || line[p] == '!') {
		for p < len(line) && !isBlank(line[p]) {
			p++
		}
		p = skipBlanks(line, p)
	}
	if p == len(line) {
		return -1
	}
	switch line[p] {
	case '"', '\'':
		end := closeQuote(line, p+1, line[p])
		if end < 0 {
			return -1
		}
		p = skipBlanks(line, end)
		if p < len(line) && line[p] == ':' && (p+1 == len(line) || isBlank(line[p+1])) {
			return p + 1
		}
		return -1
	case '[', '{', '|', '>', '*', '#', '`', '@', '%', ',', ']', '}':
		return -1
	}
	for i := p; i < len(line); i++ {
		switch {
		case line[i] == ':' && (i+1 == len(line) || isBlank(line[i+1])):
			return i + 1
		case line[i] == '#' && isBlank(line[i-1]):
			return -1
		}
	}
	return -1
}

// closeQuote returns the offset just past the quote q closing a scalar whose
// text starts at i, or -1 when it does not close on this line.
func closeQuote(line []byte, i int, q byte) int {
	for ; i < len(line); i++ {
		switch {
		case q == '"' && line[i] == '\\':
			i++
		case line[i] == q && q == '\'' && i+1 < len(line) && line[i+1] == '\'':
			i++
		case line[i] == q:
			return i + 1
		}
	}
	return -1
}

// skipQuoted continues the quoted scalar s.quote from offset i: it returns
// the offset past its closing quote, or -1 (keeping s.quote) when the scalar
// goes on past the line.
func (s *limitScan) skipQuoted(line []byte, i int) int {
	end := closeQuote(line, i, s.quote)
	if end >= 0 {
		s.quote = 0
	}
	return end
}

// scanValue scans a block value starting at offset p (after `key: ` or
// `- `, or on a line of its own): only a flow collection, a quoted scalar
// spanning lines or a block scalar matter.
func (s *limitScan) scanValue(line []byte, p int) {
	for p < len(line) && (line[p] == '&' || line[p] == '!') {
		for p < len(line) && !isBlank(line[p]) {
			p++
		}
		if p = skipBlanks(line, p); endOfContent(line, p) {
			s.open = true
			return
		}
	}
	if p >= len(line) {
		return
	}
	switch c := line[p]; c {
	case '[', '{':
		s.scanFlow(line, p)
	case '"', '\'':
		s.quote = c
		s.skipQuoted(line, p+1)
	case '|', '>':
		i := p + 1
		for i < len(line) && (line[i] == '-' || line[i] == '+' || ('0' <= line[i] && line[i] <= '9')) {
			i++
		}
		if endOfContent(line, i) {
			s.literal, s.literalIndent, s.literalParent = true, 0, -1
			if top := len(s.levels) - 1; top >= 0 {
				s.literalParent = s.levels[top].col
			}
		}
	case '*', '#':
	default:
		s.plain = true
	}
}

// scanFlow scans from offset p inside flow collections (or at the `[` or
// `{` that opens one) to the end of the line or of the outermost collection.
func (s *limitScan) scanFlow(line []byte, p int) {
	quoteEnd := -1 // offset just past the last quoted scalar: a JSON-like key's `:` may follow it directly
	for i := p; i < len(line); i++ {
		c := line[i]
		if isBlank(c) {
			continue
		}
		if c == '#' && (i == 0 || isBlank(line[i-1])) {
			return // a comment
		}
		if s.expect != expectNothing && c != ']' && c != '}' && c != ',' {
			if c == '&' || c == '!' {
				// An anchor or tag: the node itself follows.
				for i+1 < len(line) && !isBlank(line[i+1]) && !isFlowIndicator(line[i+1]) {
					i++
				}
				continue
			}
			s.startFlowNode(i)
			if s.hit != nil {
				return
			}
			if c == '"' || c == '\'' {
				s.quote = c
				end := s.skipQuoted(line, i+1)
				if end < 0 {
					return
				}
				i, quoteEnd = end-1, end
				continue
			}
		}
		switch c {
		case '[', '{':
			s.flow = append(s.flow, flowLevel{mapping: c == '{'})
			if s.depth() > maxDepth+1 {
				s.fail(i, "YAML nesting is deeper than %d levels", maxDepth)
				return
			}
			s.expect = expectItem
		case ']', '}':
			s.expect = expectNothing
			if len(s.flow) > 0 {
				s.flow = s.flow[:len(s.flow)-1]
			}
			if len(s.flow) == 0 {
				s.afterFlow(line, i+1)
				return
			}
		case ',':
			s.expect = expectItem
		case ':':
			if i+1 == len(line) || isBlank(line[i+1]) || isFlowIndicator(line[i+1]) || i == quoteEnd {
				s.expect = expectValue
			}
		}
	}
}

// startFlowNode counts the node starting at offset i inside a flow
// collection: an item of a sequence (a value), a key of a mapping (a key,
// whose value is counted after its `:`), or a mapping's value.
func (s *limitScan) startFlowNode(i int) {
	expect := s.expect
	s.expect = expectNothing
	top := len(s.flow) - 1
	if top < 0 {
		return
	}
	if expect == expectItem {
		s.flow[top].items++
		if s.flow[top].mapping {
			if s.flow[top].items > maxKeys {
				s.fail(i, "a mapping has more than %d keys", maxKeys)
			}
			return
		}
	}
	s.countValue(i)
}

func isFlowIndicator(c byte) bool {
	return c == ',' || c == '[' || c == ']' || c == '{' || c == '}'
}

// afterFlow scans what follows the outermost flow collection closing at
// offset i: nothing, or `: value` when the collection was a key.
func (s *limitScan) afterFlow(line []byte, i int) {
	s.open, s.plain = false, false
	i = skipBlanks(line, i)
	if i < len(line) && line[i] == ':' && (i+1 == len(line) || isBlank(line[i+1])) {
		if i = skipBlanks(line, i+1); endOfContent(line, i) {
			s.open = true
			return
		}
		s.scanValue(line, i)
	}
}
