package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/sglr-pipe/sglr-pipe/stages"
)

// newStagesCommand lists the registered stages and their schemas.
func newStagesCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "stages [NAME]",
		Short: "List the built-in stages, or describe one: version, ports and parameters",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			specs, err := selectSpecs(stages.Builtin, args)
			if err != nil {
				return usageErrorf(cmd, "%v", err)
			}
			out := cmd.OutOrStdout()
			if asJSON {
				return writeJSON(out, specs)
			}
			for i, s := range specs {
				if i > 0 {
					fmt.Fprintln(out)
				}
				printSpec(out, s)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the specs as a JSON array")
	return cmd
}

// selectSpecs returns the spec of every registered stage, or of the one named.
func selectSpecs(reg *stages.Registry, names []string) ([]stages.Spec, error) {
	if len(names) == 0 {
		names = reg.Names()
	}
	specs := make([]stages.Spec, 0, len(names))
	for _, n := range names {
		s, ok := reg.Lookup(n)
		if !ok {
			return nil, fmt.Errorf("unknown stage %q (known: %s)", n, strings.Join(reg.Names(), ", "))
		}
		specs = append(specs, s.Spec())
	}
	return specs, nil
}

// printSpec writes a human-readable description of one stage.
func printSpec(w io.Writer, s stages.Spec) {
	fmt.Fprintf(w, "%s %s", s.Name, s.Version)
	if s.CoresWanted() > 1 {
		fmt.Fprintf(w, " (%d cores)", s.CoresWanted())
	}
	fmt.Fprintln(w)
	for _, line := range wrapText(s.Doc, 96) {
		fmt.Fprintf(w, "  %s\n", line)
	}
	printPorts(w, "inputs", s.Inputs)
	printPorts(w, "outputs", s.Outputs)
	if len(s.Params) == 0 {
		return
	}
	fmt.Fprintln(w, "  params:")
	width := 0
	for _, p := range s.Params {
		width = max(width, len(p.Name))
	}
	for _, p := range s.Params {
		facts := []string{string(p.Type)}
		switch {
		case p.Required:
			facts = append(facts, "required")
		case p.Default != nil:
			facts = append(facts, "default "+formatValue(p.Default))
		}
		if r := paramRange(p); r != "" {
			if len(p.Enum) > 0 {
				facts = append(facts, "one of "+r)
			} else {
				facts = append(facts, "in "+r)
			}
		}
		fmt.Fprintf(w, "    %-*s  %s\n", width, p.Name, strings.Join(facts, ", "))
		for _, line := range wrapText(p.Doc, 88) {
			fmt.Fprintf(w, "    %-*s    %s\n", width, "", line)
		}
	}
}

// wrapText splits s into lines of at most width characters at spaces.
func wrapText(s string, width int) []string {
	var lines []string
	var cur strings.Builder
	for _, word := range strings.Fields(s) {
		if cur.Len() > 0 && cur.Len()+1+len(word) > width {
			lines = append(lines, cur.String())
			cur.Reset()
		}
		if cur.Len() > 0 {
			cur.WriteByte(' ')
		}
		cur.WriteString(word)
	}
	if cur.Len() > 0 {
		lines = append(lines, cur.String())
	}
	return lines
}

// printPorts writes one line per port: name, kind, flags and doc.
func printPorts(w io.Writer, title string, ports []stages.Port) {
	if len(ports) == 0 {
		return
	}
	fmt.Fprintf(w, "  %s:\n", title)
	for _, p := range ports {
		var flags []string
		if p.Optional {
			flags = append(flags, "optional")
		}
		if p.Multi {
			flags = append(flags, "multi")
		}
		line := fmt.Sprintf("    %-12s %-12s", p.Name, p.Kind)
		if len(flags) > 0 {
			line += " [" + strings.Join(flags, ",") + "]"
		}
		if p.Doc != "" {
			line += "  " + p.Doc
		}
		fmt.Fprintln(w, strings.TrimRight(line, " "))
	}
}

// paramRange renders a parameter's allowed values: an enum or [min, max].
func paramRange(p stages.Param) string {
	if len(p.Enum) > 0 {
		return strings.Join(p.Enum, "|")
	}
	if p.Min == nil && p.Max == nil {
		return ""
	}
	lo, hi := "-inf", "+inf"
	if p.Min != nil {
		lo = strconv.FormatFloat(*p.Min, 'g', -1, 64)
	}
	if p.Max != nil {
		hi = strconv.FormatFloat(*p.Max, 'g', -1, 64)
	}
	return "[" + lo + ", " + hi + "]"
}

// formatValue renders a parameter value compactly (JSON for lists and maps).
func formatValue(v any) string {
	switch x := v.(type) {
	case string:
		if x == "" {
			return `""`
		}
		return x
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case float32:
		return strconv.FormatFloat(float64(x), 'g', -1, 32)
	case []any, map[string]any:
		b, err := json.Marshal(x)
		if err != nil {
			return fmt.Sprint(x)
		}
		return string(b)
	default:
		return fmt.Sprint(x)
	}
}
