package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/sglr-pipe/sglr-pipe/artifacts"
	"github.com/sglr-pipe/sglr-pipe/pipeline"
	"github.com/sglr-pipe/sglr-pipe/stages"
)

// Values of run's --tables flag: which leaf tables the run prints.
const (
	tablesChanged = "changed" // those whose digest differs from the one last printed for that pipeline
	tablesAlways  = "always"
	tablesNever   = "never"
)

// leafOptions say how run prints its leaf tables.
type leafOptions struct {
	mode  string // tablesChanged, tablesAlways or tablesNever
	width int    // fit tables to this many columns (0: print them whole)
	// shown keeps, per pipeline file and output, the digest last printed
	// (nil: remember nothing, print as with tablesAlways).
	shown artifacts.Store
}

// checkTablesFlag refuses a --tables value other than the three modes.
func checkTablesFlag(cmd *cobra.Command, mode string) error {
	switch mode {
	case tablesChanged, tablesAlways, tablesNever:
		return nil
	}
	return usageErrorf(cmd, "--tables %q: want changed, always or never", mode)
}

// shownRef names the ref that remembers which digest of INSTANCE.PORT a run
// of the pipeline file last printed.
func shownRef(pipelineFile, instance, port string) string {
	return "shown:" + pipelineFile + "#" + instance + "." + port
}

// printLeafTables prints every table that a leaf instance (one nothing reads
// from) produced in this run, and the table.md of its files outputs, so that
// a pipeline ending in a report shows its result. With tablesChanged, a
// table whose digest is the one this pipeline's runs printed last time is
// not printed again, only named: a fully cached run does not repeat its
// tables. Tables are fitted to opts.width (see fitMarkdown).
func printLeafTables(w io.Writer, p *pipeline.Pipeline, run *artifacts.Run, store artifacts.Store, opts leafOptions) {
	if run == nil || opts.mode == tablesNever {
		return
	}
	byID := make(map[string]artifacts.RunInstance, len(run.Instances))
	for _, in := range run.Instances {
		byID[in.ID] = in
	}
	for _, n := range p.Nodes {
		in, ok := byID[n.ID()]
		if len(n.Consumers) > 0 || !ok {
			continue
		}
		for _, port := range n.Spec.Outputs {
			d, ok := in.Outputs[port.Name]
			show := map[string]func(artifacts.Store, artifacts.Digest) (string, error){
				artifacts.KindTable: tableArtifactMarkdown, artifacts.KindFiles: filesTableMarkdown}[port.Kind]
			if show == nil || !ok {
				continue
			}
			ref := shownRef(p.File, n.ID(), port.Name)
			if opts.mode == tablesChanged && opts.shown != nil {
				if last, err := opts.shown.GetRef(ref); err == nil && last == string(d) {
					fmt.Fprintf(w, "\n%s.%s (%s): unchanged since a run printed it (--tables always prints it)\n", n.ID(), port.Name, shortDigest(string(d)))
					continue
				}
			}
			fmt.Fprintf(w, "\n%s.%s (%s)\n", n.ID(), port.Name, shortDigest(string(d)))
			md, err := show(store, d)
			if err != nil {
				fmt.Fprintf(w, "  (cannot show: %v)\n", err)
				continue
			}
			fmt.Fprint(w, fitMarkdown(md, opts.width))
			if opts.shown != nil {
				if err := opts.shown.SetRef(ref, string(d)); err != nil {
					fmt.Fprintf(w, "  (cannot remember that it was shown: %v)\n", err)
				}
			}
		}
	}
}

// readAfterRun reports whether run reads an output after the pipeline has
// run: the leaf tables it prints and every files artifact (printed or written
// under --out). Their cache hits are re-hashed, so that a corrupt one is
// rebuilt within the run instead of failing here.
func readAfterRun(n *pipeline.Node, port stages.Port) bool {
	return port.Kind == artifacts.KindFiles || (port.Kind == artifacts.KindTable && len(n.Consumers) == 0)
}

// tableArtifactMarkdown renders a stored table artifact as a Markdown table
// followed by a blank line.
func tableArtifactMarkdown(store artifacts.Store, d artifacts.Digest) (string, error) {
	path, err := store.Path(d)
	if err != nil {
		return "", err
	}
	t, err := artifacts.DecodeObject(path, d, artifacts.ReadTable)
	if err != nil {
		return "", err
	}
	return renderTable(t, -1) + "\n", nil
}

// filesTableMarkdown is the table.md of a stored files artifact ("" when it
// has none).
func filesTableMarkdown(store artifacts.Store, d artifacts.Digest) (string, error) {
	path, err := store.Path(d)
	if err != nil {
		return "", err
	}
	files, err := artifacts.DecodeObject(path, d, artifacts.ReadFiles)
	if err != nil {
		return "", err
	}
	md, ok := files.File("table.md")
	if !ok {
		return "", nil
	}
	return ensureNewline(string(md)), nil
}

// renderTable renders the first limit rows of t (all when limit < 0) as a
// Markdown table with aligned source. Numeric columns are right-aligned
// ("---:"), text columns (tags, labels) left-aligned: fitMarkdown repeats
// the leading text columns as the keys of each part.
func renderTable(t *artifacts.Table, limit int) string {
	md := &mdTable{}
	rows := 0
	for _, c := range t.Columns {
		md.header = append(md.header, escapeCell(c.Name))
		md.right = append(md.right, c.Strings == nil)
		rows = max(rows, columnLen(c))
	}
	if len(md.header) == 0 {
		return ""
	}
	if limit >= 0 && rows > limit {
		rows = limit
	}
	for r := 0; r < rows; r++ {
		row := make([]string, len(t.Columns))
		for i, c := range t.Columns {
			row[i] = escapeCell(columnCell(c, r))
		}
		md.rows = append(md.rows, row)
	}
	return md.render(allColumns(len(md.header)), md.widths())
}

// escapeCell makes s safe inside a Markdown table cell: a pipe is escaped
// and a line break becomes a space.
func escapeCell(s string) string {
	return strings.NewReplacer("|", `\|`, "\r\n", " ", "\n", " ", "\r", " ").Replace(s)
}

// columnLen is the number of values a column holds.
func columnLen(c artifacts.Column) int {
	return max(len(c.Strings), len(c.Ints), len(c.Floats))
}

// columnCell renders row r of a column ("" past its end).
func columnCell(c artifacts.Column, r int) string {
	switch {
	case c.Strings != nil && r < len(c.Strings):
		return c.Strings[r]
	case c.Ints != nil && r < len(c.Ints):
		return strconv.FormatInt(c.Ints[r], 10)
	case c.Floats != nil && r < len(c.Floats):
		return strconv.FormatFloat(c.Floats[r], 'g', 6, 64)
	}
	return ""
}
