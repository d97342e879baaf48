package main

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/sglr-pipe/sglr-pipe/pipeline"
)

// newGraphCommand prints the instance DAG as Graphviz dot or Mermaid.
func newGraphCommand(g *globalFlags) *cobra.Command {
	var format string
	var sets []string
	var maxInstances int
	cmd := &cobra.Command{
		Use:   "graph FILE",
		Short: "Print the stage-instance DAG (dot or mermaid), edges labelled by port",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != "dot" && format != "mermaid" {
				return usageErrorf(cmd, "--format must be dot or mermaid, got %q", format)
			}
			p, err := loadPipeline(args[0], sets, maxInstances)
			if err != nil {
				return err
			}
			edges := graphEdges(p)
			if format == "mermaid" {
				writeMermaid(cmd.OutOrStdout(), p, edges)
			} else {
				writeDot(cmd.OutOrStdout(), p, edges)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&format, "format", "dot", "output format: dot or mermaid")
	cmd.Flags().StringArrayVar(&sets, "set", nil, "override a pipeline value, k=v (repeatable)")
	registerMaxInstances(cmd, &maxInstances)
	return cmd
}

// graphEdge is one data dependency: producer output -> consumer input port.
type graphEdge struct {
	from, to     string
	output, port string
}

// label names the ports an edge connects: "train" when both ends share the
// name, else "output→port".
func (e graphEdge) label() string {
	if e.output == e.port {
		return e.port
	}
	return e.output + "→" + e.port
}

// graphEdges lists every edge of the DAG in a stable order.
func graphEdges(p *pipeline.Pipeline) []graphEdge {
	var edges []graphEdge
	for _, n := range p.Nodes {
		ports := make([]string, 0, len(n.Instance.Inputs))
		for port := range n.Instance.Inputs {
			ports = append(ports, port)
		}
		sort.Strings(ports)
		for _, port := range ports {
			for _, e := range n.Instance.Inputs[port] {
				edges = append(edges, graphEdge{from: e.From, to: n.ID(), output: e.Output, port: port})
			}
		}
	}
	return edges
}

// writeDot renders the DAG in Graphviz dot.
func writeDot(w io.Writer, p *pipeline.Pipeline, edges []graphEdge) {
	name := p.Expansion.Spec.Name
	if name == "" {
		name = "pipeline"
	}
	fmt.Fprintf(w, "digraph %s {\n", strconv.Quote(name))
	fmt.Fprintln(w, "  rankdir=LR;")
	fmt.Fprintln(w, "  node [shape=box];")
	for _, n := range p.Nodes {
		fmt.Fprintf(w, "  %s [label=%s];\n", strconv.Quote(n.ID()), strconv.Quote(n.ID()+"\n"+n.Uses()))
	}
	for _, e := range edges {
		fmt.Fprintf(w, "  %s -> %s [label=%s];\n", strconv.Quote(e.from), strconv.Quote(e.to), strconv.Quote(e.label()))
	}
	fmt.Fprintln(w, "}")
}

// writeMermaid renders the DAG as a Mermaid flowchart. Instance ids contain
// brackets and commas, so nodes get positional ids and quoted labels.
func writeMermaid(w io.Writer, p *pipeline.Pipeline, edges []graphEdge) {
	ids := make(map[string]string, len(p.Nodes))
	fmt.Fprintln(w, "flowchart LR")
	for i, n := range p.Nodes {
		id := "n" + strconv.Itoa(i)
		ids[n.ID()] = id
		fmt.Fprintf(w, "  %s[\"%s<br/><i>%s</i>\"]\n", id, mermaidText(n.ID()), mermaidText(n.Uses()))
	}
	for _, e := range edges {
		fmt.Fprintf(w, "  %s -->|\"%s\"| %s\n", ids[e.from], mermaidText(e.label()), ids[e.to])
	}
}

// mermaidText escapes the characters Mermaid gives meaning inside a quoted label.
func mermaidText(s string) string {
	return strings.NewReplacer(`"`, "#quot;", "<", "#lt;", ">", "#gt;").Replace(s)
}
