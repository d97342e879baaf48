package main

import (
	"os"
	"strconv"
	"strings"

	"github.com/jedib0t/go-pretty/v6/text"
	"golang.org/x/term"
)

// minFitWidth is the narrowest width tables are split for: below it every
// part would hold one column, which is no easier to read than wrapped lines.
const minFitWidth = 40

// terminalWidth is the width tables printed on out are fitted to: the
// terminal's columns when out is a terminal ($COLUMNS when its size cannot
// be read), or 0 (do not fit) when out is a file or a pipe, whose reader
// wants the Markdown whole.
func terminalWidth(out any) int {
	f, ok := out.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return 0
	}
	if w, _, err := term.GetSize(int(f.Fd())); err == nil && w > 0 {
		return w
	}
	if w, err := strconv.Atoi(os.Getenv("COLUMNS")); err == nil && w > 0 {
		return w
	}
	return 0
}

// fitMarkdown splits every Markdown table in md that is wider than width
// into several tables, each as wide as width allows, that repeat the key
// columns (the leading columns that are not right-aligned: the row labels
// of a report, the matrix tags of a metrics table) so that each part reads
// on its own. Splits fall between column groups where they can (columns
// whose headers differ only in their last word, such as "pgd accuracy Best",
// "pgd accuracy Final" and "pgd accuracy Diff"). Everything else in md, and
// tables that fit, are returned unchanged; width < minFitWidth fits nothing.
func fitMarkdown(md string, width int) string {
	if width < minFitWidth {
		return md
	}
	lines := strings.SplitAfter(md, "\n")
	var b strings.Builder
	for i := 0; i < len(lines); {
		if !isTableLine(lines[i]) {
			b.WriteString(lines[i])
			i++
			continue
		}
		j := i
		for j < len(lines) && isTableLine(lines[j]) {
			j++
		}
		b.WriteString(fitTableBlock(lines[i:j], width))
		i = j
	}
	return b.String()
}

// isTableLine reports whether line is a row of a Markdown table.
func isTableLine(line string) bool {
	l := strings.TrimRight(line, "\r\n")
	return len(l) >= 2 && l[0] == '|' && l[len(l)-1] == '|'
}

// mdTable is a parsed Markdown table: header, per-column right alignment
// and the body rows, each cell as written (escapes kept).
type mdTable struct {
	header []string
	right  []bool
	rows   [][]string
}

// fitTableBlock fits the table made of lines, or returns them unchanged
// when they are not a well-formed table or already fit.
func fitTableBlock(lines []string, width int) string {
	whole := strings.Join(lines, "")
	t, ok := parseMarkdownTable(lines)
	if !ok {
		return whole
	}
	widths := t.widths()
	if lineWidth(widths, allColumns(len(widths))) <= width {
		return whole
	}
	parts := splitColumns(widths, t.keyColumns(), columnGroups(t.header), width)
	if len(parts) < 2 {
		return whole
	}
	var b strings.Builder
	for i, cols := range parts {
		if i > 0 {
			b.WriteString("\n")
		}
		b.WriteString(t.render(cols, widths))
	}
	return b.String()
}

// parseMarkdownTable reads a header line, an alignment line and body rows
// with the same number of cells.
func parseMarkdownTable(lines []string) (*mdTable, bool) {
	if len(lines) < 2 {
		return nil, false
	}
	t := &mdTable{header: splitCells(lines[0])}
	align := splitCells(lines[1])
	if len(align) != len(t.header) {
		return nil, false
	}
	for _, a := range align {
		dashes := strings.Trim(a, ":")
		if dashes == "" || strings.Trim(dashes, "-") != "" {
			return nil, false
		}
		t.right = append(t.right, strings.HasSuffix(a, ":") && !strings.HasPrefix(a, ":"))
	}
	for _, l := range lines[2:] {
		cells := splitCells(l)
		if len(cells) != len(t.header) {
			return nil, false
		}
		t.rows = append(t.rows, cells)
	}
	return t, true
}

// splitCells splits one table line on the pipes that are not escaped and
// trims each cell.
func splitCells(line string) []string {
	l := strings.TrimRight(line, "\r\n")
	l = l[1 : len(l)-1]
	var cells []string
	start := 0
	for i := 0; i < len(l); i++ {
		switch l[i] {
		case '\\':
			i++ // the next byte is escaped
		case '|':
			cells = append(cells, strings.TrimSpace(l[start:i]))
			start = i + 1
		}
	}
	return append(cells, strings.TrimSpace(l[start:]))
}

// widths is each column's display width (at least 3, as a separator of
// three dashes is the shortest Markdown allows).
func (t *mdTable) widths() []int {
	w := make([]int, len(t.header))
	for i, h := range t.header {
		w[i] = max(3, text.StringWidthWithoutEscSequences(h))
	}
	for _, r := range t.rows {
		for i, c := range r {
			w[i] = max(w[i], text.StringWidthWithoutEscSequences(c))
		}
	}
	return w
}

// keyColumns counts the leading columns that are not right-aligned.
func (t *mdTable) keyColumns() int {
	n := 0
	for n < len(t.right) && !t.right[n] {
		n++
	}
	return n
}

// render writes the columns cols of t, padded to widths, as go-pretty's
// Markdown writer does (so a part looks like a table that was never split).
func (t *mdTable) render(cols []int, widths []int) string {
	var b strings.Builder
	line := func(cell func(c int) string) {
		b.WriteString("|")
		for _, c := range cols {
			b.WriteString(" " + cell(c) + " |")
		}
		b.WriteString("\n")
	}
	pad := func(s string, c int) string {
		gap := strings.Repeat(" ", widths[c]-text.StringWidthWithoutEscSequences(s))
		if t.right[c] {
			return gap + s
		}
		return s + gap
	}
	line(func(c int) string { return pad(t.header[c], c) })
	line(func(c int) string {
		if t.right[c] {
			return strings.Repeat("-", widths[c]-1) + ":"
		}
		return strings.Repeat("-", widths[c])
	})
	for _, r := range t.rows {
		line(func(c int) string { return pad(r[c], c) })
	}
	return b.String()
}

// lineWidth is the width of a Markdown line holding the columns cols:
// "| " before each cell, " " after it, and the closing "|".
func lineWidth(widths []int, cols []int) int {
	w := 1
	for _, c := range cols {
		w += widths[c] + 3
	}
	return w
}

// allColumns is 0..n-1.
func allColumns(n int) []int {
	cols := make([]int, n)
	for i := range cols {
		cols[i] = i
	}
	return cols
}

// columnGroups names each column's group: its header without the last
// word, so "clean accuracy Best" and "clean accuracy Diff" share one.
// A one-word header is its own group.
func columnGroups(header []string) []string {
	groups := make([]string, len(header))
	for i, h := range header {
		if cut := strings.LastIndexByte(h, ' '); cut > 0 {
			groups[i] = h[:cut]
		} else {
			groups[i] = "\x00" + h
		}
	}
	return groups
}

// splitColumns distributes the columns after the first keys over parts no
// wider than width, each part led by the key columns. Key columns that
// would take more than two thirds of the width are not all repeated (the
// first always is). A part gets at least one column of its own, even when
// that column alone is too wide. When a column would overflow a part in
// the middle of its group, the group moves to the next part if it fits
// there, the part keeps at least one column, and the part began with a
// whole group (moving a group out of a part that is already a group's
// tail would only make one more part).
func splitColumns(widths []int, keys int, groups []string, width int) [][]int {
	n := len(widths)
	for keys > 1 && lineWidth(widths, allColumns(keys)) > width*2/3 {
		keys--
	}
	if keys >= n {
		return [][]int{allColumns(n)}
	}
	keyCols := allColumns(keys)
	var parts [][]int
	cur := []int{}
	for c := keys; c < n; c++ {
		if len(cur) == 0 || lineWidth(widths, append(append([]int{}, keyCols...), append(cur, c)...)) <= width {
			cur = append(cur, c)
			continue
		}
		moved := []int{}
		startsGroup := cur[0] == keys || groups[cur[0]] != groups[cur[0]-1]
		if startsGroup && groups[c] == groups[cur[len(cur)-1]] {
			b := len(cur) - 1
			for b > 0 && groups[cur[b-1]] == groups[c] {
				b--
			}
			tail := append(append([]int{}, cur[b:]...), c)
			if b > 0 && lineWidth(widths, append(append([]int{}, keyCols...), tail...)) <= width {
				moved, cur = cur[b:], cur[:b]
			}
		}
		parts = append(parts, append(append([]int{}, keyCols...), cur...))
		cur = append(append([]int{}, moved...), c)
	}
	return append(parts, append(append([]int{}, keyCols...), cur...))
}
