package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/jedib0t/go-pretty/v6/table"
	"github.com/jedib0t/go-pretty/v6/text"
)

// writeJSON writes v as indented JSON followed by a newline.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("write JSON: %w", err)
	}
	return nil
}

// textTable collects a table's header and rows and renders them with
// go-pretty, as aligned terminal columns or as Markdown.
type textTable struct {
	head []string
	rows [][]string
}

// newTable returns an empty table.
func newTable() *textTable { return &textTable{} }

// header sets the column names.
func (t *textTable) header(cols ...string) { t.head = cols }

// row appends one row; values are rendered with fmt.Sprint.
func (t *textTable) row(cells ...any) {
	r := make([]string, len(cells))
	for i, c := range cells {
		r[i] = fmt.Sprint(c)
	}
	t.rows = append(t.rows, r)
}

// writer fills a go-pretty table writer with the header and rows.
func (t *textTable) writer() table.Writer {
	tw := table.NewWriter()
	if len(t.head) > 0 {
		tw.AppendHeader(toRow(t.head))
	}
	for _, r := range t.rows {
		tw.AppendRow(toRow(r))
	}
	return tw
}

// render writes the table as borderless aligned columns with a rule under
// the header; every line starts with prefix.
func (t *textTable) render(w io.Writer, prefix string) {
	tw := t.writer()
	style := table.StyleLight
	style.Options.DrawBorder = false
	style.Options.SeparateColumns = false
	style.Options.SeparateRows = false
	style.Format.Header = text.FormatDefault
	style.Box.PaddingLeft = ""
	style.Box.PaddingRight = ""
	style.Box.MiddleSeparator = "  "
	style.Options.SeparateColumns = true
	style.Box.MiddleVertical = "  "
	tw.SetStyle(style)
	for _, line := range strings.Split(tw.Render(), "\n") {
		fmt.Fprintln(w, strings.TrimRight(prefix+line, " "))
	}
}

func toRow(cells []string) table.Row {
	row := make(table.Row, len(cells))
	for i, c := range cells {
		row[i] = c
	}
	return row
}

// humanBytes renders a size in B, KiB, MiB or GiB.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 3; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGT"[exp])
}

// writeJSONLine writes v as compact JSON on one line (for JSON-lines streams).
func writeJSONLine(w io.Writer, v any) error {
	if err := json.NewEncoder(w).Encode(v); err != nil {
		return fmt.Errorf("write JSON: %w", err)
	}
	return nil
}
