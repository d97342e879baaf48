package report

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Markdown renders g as a GitHub-flavoured Markdown table with aligned
// source: key columns left-aligned, values right-aligned, an em dash for an
// empty cell. A non-empty title becomes a heading above it.
func (g *Grid) Markdown(title string, digits int) []byte {
	header := g.headerLabels()
	body := g.textRows(func(c Cell) string { return formatCell(c, digits, " ± ", "—") })
	widths := make([]int, len(header))
	for i, h := range header {
		widths[i] = max(3, utf8.RuneCountInString(h))
	}
	for _, r := range body {
		for i, c := range r {
			widths[i] = max(widths[i], utf8.RuneCountInString(c))
		}
	}
	numeric := func(i int) bool { return i >= len(g.KeyNames) }
	var b bytes.Buffer
	if title != "" {
		fmt.Fprintf(&b, "### %s\n\n", title)
	}
	writeRow := func(cells []string) {
		b.WriteString("|")
		for i, c := range cells {
			b.WriteString(" " + pad(c, widths[i], numeric(i)) + " |")
		}
		b.WriteString("\n")
	}
	writeRow(header)
	b.WriteString("|")
	for i, w := range widths {
		if numeric(i) {
			b.WriteString(" " + strings.Repeat("-", w-1) + ": |")
		} else {
			b.WriteString(" " + strings.Repeat("-", w) + " |")
		}
	}
	b.WriteString("\n")
	for _, r := range body {
		writeRow(r)
	}
	return b.Bytes()
}

// CSV renders g as CSV (RFC 4180) for programs rather than people: the key
// columns, then for every value column three numeric ones, <label>_mean,
// <label>_std and <label>_n, where label is the column's group and leaf in
// lower-case words joined by "_" (clean_best, pgd_accuracy_diff; a second
// label of the same name gets "_2"). Values are
// plain numbers, scaled as the table shows them (percentages when Percent)
// but not rounded to its digits (csvNumber); a std over fewer than two
// values and an empty cell are empty fields.
func (g *Grid) CSV() []byte {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	head := append([]string{}, g.KeyNames...)
	used := map[string]int{}
	for i, group := range g.Groups {
		label := csvLabel(group + " " + g.Leaves[i])
		if used[label]++; used[label] > 1 { // labels that differ only in case
			label += "_" + strconv.Itoa(used[label])
		}
		head = append(head, label+"_mean", label+"_std", label+"_n")
	}
	_ = w.Write(head) // a bytes.Buffer does not fail
	for _, r := range g.Rows {
		row := append([]string{}, r.Keys...)
		for _, c := range r.Cells {
			if c.N == 0 {
				row = append(row, "", "", "")
				continue
			}
			row = append(row, csvNumber(c.Mean), csvStd(c.Std, c.N), strconv.Itoa(c.N))
		}
		_ = w.Write(row)
	}
	w.Flush()
	return b.Bytes()
}

// csvLabel makes a column label a CSV column name: lower case, runs of
// spaces become one "_".
func csvLabel(s string) string {
	return strings.Join(strings.Fields(strings.ToLower(s)), "_")
}

// LaTeX renders g as a booktabs tabular (\toprule, \midrule, \bottomrule).
// When value columns have leaf labels (Best / Final / Diff) the group labels
// span them on a first header row with \cmidrule rules below, as in the
// paper's tables. A non-empty title goes in a comment line above it.
func (g *Grid) LaTeX(title string, digits int) []byte {
	var b bytes.Buffer
	if title != "" {
		fmt.Fprintf(&b, "%% %s\n", strings.ReplaceAll(title, "\n", " "))
	}
	nk := len(g.KeyNames)
	b.WriteString(`\begin{tabular}{` + strings.Repeat("l", nk) + strings.Repeat("r", len(g.Groups)) + "}\n")
	b.WriteString("\\toprule\n")
	twoLevel := false
	for _, leaf := range g.Leaves {
		twoLevel = twoLevel || leaf != ""
	}
	keyHeads := make([]string, nk)
	for i, k := range g.KeyNames {
		keyHeads[i] = texEscape(k)
	}
	if twoLevel {
		top := make([]string, nk)
		var rules []string
		for start := 0; start < len(g.Groups); {
			end := start
			for end+1 < len(g.Groups) && g.Groups[end+1] == g.Groups[start] {
				end++
			}
			span := end - start + 1
			top = append(top, fmt.Sprintf(`\multicolumn{%d}{c}{%s}`, span, texEscape(g.Groups[start])))
			rules = append(rules, fmt.Sprintf(`\cmidrule(lr){%d-%d}`, nk+start+1, nk+end+1))
			start = end + 1
		}
		b.WriteString(strings.Join(top, " & ") + ` \\` + "\n")
		b.WriteString(strings.Join(rules, " ") + "\n")
		second := append([]string{}, keyHeads...)
		for _, leaf := range g.Leaves {
			second = append(second, texEscape(leaf))
		}
		b.WriteString(strings.Join(second, " & ") + ` \\` + "\n")
	} else {
		head := append([]string{}, keyHeads...)
		for _, group := range g.Groups {
			head = append(head, texEscape(group))
		}
		b.WriteString(strings.Join(head, " & ") + ` \\` + "\n")
	}
	b.WriteString("\\midrule\n")
	for _, r := range g.Rows {
		cells := make([]string, 0, nk+len(r.Cells))
		for _, k := range r.Keys {
			cells = append(cells, texEscape(k))
		}
		for _, c := range r.Cells {
			cells = append(cells, texNumber(formatCell(c, digits, `\pm`, "--")))
		}
		b.WriteString(strings.Join(cells, " & ") + ` \\` + "\n")
	}
	b.WriteString("\\bottomrule\n\\end{tabular}\n")
	return b.Bytes()
}

// headerLabels are the one-row column names: key names, then each value
// column's group and leaf label joined by a space.
func (g *Grid) headerLabels() []string {
	out := append([]string{}, g.KeyNames...)
	for i, group := range g.Groups {
		out = append(out, strings.TrimSpace(group+" "+g.Leaves[i]))
	}
	return out
}

// textRows renders every row's keys and cells with format.
func (g *Grid) textRows(format func(Cell) string) [][]string {
	out := make([][]string, len(g.Rows))
	for i, r := range g.Rows {
		row := append([]string{}, r.Keys...)
		for _, c := range r.Cells {
			row = append(row, format(c))
		}
		out[i] = row
	}
	return out
}

// formatCell prints a cell with digits decimals, "mean<pm>std" when it shows
// its spread, empty for an empty cell. Negative zero prints as zero.
func formatCell(c Cell, digits int, pm, empty string) string {
	if c.N == 0 {
		return empty
	}
	digits += c.ExtraDigits
	s := formatNumber(c.Mean, digits)
	if c.ShowStd {
		s += pm + formatNumber(c.Std, digits)
	}
	return s
}

func formatNumber(v float64, digits int) string {
	s := strconv.FormatFloat(v, 'f', digits, 64)
	if strings.HasPrefix(s, "-") && strings.Trim(s, "-0.") == "" {
		return s[1:]
	}
	return s
}

// pad pads s with spaces to width runes, on the left when right-aligned.
func pad(s string, width int, right bool) string {
	fill := strings.Repeat(" ", max(0, width-utf8.RuneCountInString(s)))
	if right {
		return fill + s
	}
	return s + fill
}

// texEscape escapes LaTeX's special characters in text.
func texEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '\\':
			b.WriteString(`\textbackslash{}`)
		case '&', '%', '$', '#', '_', '{', '}':
			b.WriteString(`\` + string(r))
		case '~':
			b.WriteString(`\textasciitilde{}`)
		case '^':
			b.WriteString(`\textasciicircum{}`)
		case '±':
			b.WriteString(`$\pm$`)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// texNumber typesets a formatted cell: numbers in math mode, so that a
// minus is a minus and \pm works.
func texNumber(s string) string {
	if s == "--" {
		return s
	}
	return "$" + s + "$"
}
