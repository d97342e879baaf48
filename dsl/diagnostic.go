package dsl

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/sglr-pipe/sglr-pipe/stages/param"
)

// Diagnostic is one problem in a pipeline, located in the file (or in a
// --set override) so that the user can fix it without guessing.
type Diagnostic struct {
	Pos     Pos
	Summary string // one line: what is wrong, with what
	Detail  string // optional hint, e.g. `did you mean "epochs"?`

	// Snippet is the source line at Pos.Line, shown under the summary; empty
	// when the position is not a file line (a --set override).
	Snippet string
	// Length is how many characters from Pos.Col to underline (at least 1).
	Length int
}

// Diagnostics is every problem found in a pipeline. It is an error so that
// callers can return it as one; Error renders all of them.
type Diagnostics []Diagnostic

// String renders a position as file:line:col, or just the file part when the
// position is not a line (a --set override names itself there).
func (p Pos) String() string {
	if p.Line <= 0 {
		return p.File
	}
	return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Col)
}

// HasErrors reports whether there is any diagnostic. Every diagnostic is an
// error: a pipeline with one must not run.
func (d Diagnostics) HasErrors() bool { return len(d) > 0 }

// Error renders every diagnostic in the style of HCL/rustc: the summary, the
// location, the offending source line with the culprit underlined and the
// detail as a note. Diagnostics are separated by a blank line.
func (d Diagnostics) Error() string {
	var b strings.Builder
	for i, diag := range d {
		if i > 0 {
			b.WriteString("\n\n")
		}
		diag.render(&b)
	}
	return b.String()
}

// Error renders the diagnostic alone.
func (d Diagnostic) Error() string {
	var b strings.Builder
	d.render(&b)
	return b.String()
}

func (d Diagnostic) render(b *strings.Builder) {
	fmt.Fprintf(b, "Error: %s\n", d.Summary)
	width := 1
	if d.Pos.Line > 0 {
		width = len(strconv.Itoa(d.Pos.Line))
	}
	gutter := strings.Repeat(" ", width+1)
	fmt.Fprintf(b, "%s--> %s", strings.Repeat(" ", width), d.Pos)
	if d.Pos.Line > 0 && d.Snippet != "" {
		line, col := clipLine(strings.TrimRight(d.Snippet, "\r\n"), d.Pos.Col)
		fmt.Fprintf(b, "\n%s|\n%d | %s\n%s| %s", gutter, d.Pos.Line, line, gutter, underline(line, col, d.Length))
	}
	if d.Detail != "" {
		detail := strings.ReplaceAll(strings.TrimRight(d.Detail, "\n"), "\n", "\n"+gutter+"  ")
		fmt.Fprintf(b, "\n%s= %s", gutter, detail)
	}
}

// maxSnippet is how many characters of a source line a diagnostic shows.
const maxSnippet = 160

// clipLine cuts a source line longer than maxSnippet characters to a window
// around column col, marking each cut with "…", and returns it with col
// moved to the same character in the window. A generated or hostile file can
// have a line of megabytes; the message should still fit on a screen.
func clipLine(line string, col int) (string, int) {
	runes := []rune(line)
	if len(runes) <= maxSnippet {
		return line, col
	}
	start := max(0, min(col-1-maxSnippet/2, len(runes)-maxSnippet))
	end := min(len(runes), start+maxSnippet)
	clipped := string(runes[start:end])
	col -= start
	if start > 0 {
		clipped = "…" + clipped
		col++
	}
	if end < len(runes) {
		clipped += "…"
	}
	return clipped, col
}

// underline returns the caret line for line: blanks up to column col (tabs
// kept so the carets line up), then length carets, clamped to the line end.
func underline(line string, col, length int) string {
	if col < 1 {
		col = 1
	}
	runes := []rune(line)
	var b strings.Builder
	for i := 0; i < col-1; i++ {
		if i < len(runes) && runes[i] == '\t' {
			b.WriteRune('\t')
		} else {
			b.WriteRune(' ')
		}
	}
	if rest := len(runes) - (col - 1); length > rest {
		length = rest
	}
	if length < 1 {
		length = 1
	}
	b.WriteString(strings.Repeat("^", length))
	return b.String()
}

// finish attaches source lines to the diagnostics located in file, removes
// exact duplicates (the same problem found for several matrix instances) and
// sorts them by position: file lines first, then --set overrides.
func (d Diagnostics) finish(file string, src []byte) Diagnostics {
	var lines []string
	if src != nil {
		lines = strings.Split(string(src), "\n")
	}
	seen := map[string]bool{}
	out := Diagnostics{}
	for _, diag := range d {
		if diag.Pos.File == file && diag.Pos.Line >= 1 && diag.Pos.Line <= len(lines) && diag.Snippet == "" {
			diag.Snippet = lines[diag.Pos.Line-1]
		}
		key := fmt.Sprintf("%s\x00%d\x00%d\x00%s\x00%s", diag.Pos.File, diag.Pos.Line, diag.Pos.Col, diag.Summary, diag.Detail)
		if seen[key] {
			continue
		}
		seen[key] = true
		out = append(out, diag)
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i].Pos, out[j].Pos
		if (a.Line <= 0) != (b.Line <= 0) {
			return a.Line > 0
		}
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		if a.Col != b.Col {
			return a.Col < b.Col
		}
		return out[i].Summary < out[j].Summary
	})
	if len(out) == 0 {
		return nil
	}
	return out
}

// add appends a diagnostic.
func (d *Diagnostics) add(pos Pos, length int, detail string, format string, args ...any) {
	*d = append(*d, Diagnostic{Pos: pos, Length: length, Summary: fmt.Sprintf(format, args...), Detail: detail})
}

// didYouMean returns a `did you mean "x"?` hint naming the candidate closest
// to name, or "" (see param.Suggest: the stages' checks suggest the same way).
func didYouMean(name string, candidates []string) string { return param.Suggest(name, candidates) }
