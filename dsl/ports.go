package dsl

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// checkInputs checks every input against both ends' schemas, each
// reference of a list on its own.
func (x *expander) checkInputs() {
	for _, d := range x.spec.Stages {
		schema := x.schemas[d.ID]
		for _, port := range slices.Sorted(maps.Keys(d.Inputs)) {
			refs := d.Inputs[port]
			at := x.inputAt(d, port)
			var in *PortSchema
			if schema != nil {
				in = findPort(schema.Inputs, port)
				if in == nil {
					x.diags.add(at.key, at.keyLen, portHint(port, schema.Inputs, "input"), "unknown input port %q for %s", port, stageName(d.ID, d))
				}
			}
			listed := d.at.listed[port] || len(refs) > 1
			switch {
			case len(refs) == 0:
				x.diags.add(at.val, at.valLen, "list at least one STAGE.OUTPUT, or remove the input", "input %q of %s: the list of references is empty", port, stageName(d.ID, d))
			case listed && in != nil && !in.Multi:
				x.diags.add(at.val, at.valLen, fmt.Sprintf("give one STAGE.OUTPUT of kind %s", in.Kind), "input %q takes one artifact; a list needs a port that accepts many (multi)", port)
			}
			for i, ref := range refs {
				x.checkRef(d, port, ref, x.refAt(d, port, i), in, listed)
			}
		}
		if schema == nil {
			continue
		}
		for _, p := range schema.Inputs {
			if _, given := d.Inputs[p.Name]; !given && !p.Optional {
				x.diags.add(d.Pos, x.declKeyLen(d), fmt.Sprintf("add inputs: {%s: STAGE.OUTPUT} with an output of kind %s", p.Name, p.Kind), "missing required input %q for %s", p.Name, stageName(d.ID, d))
			}
		}
	}
}

// checkRef checks one reference of d's input port, written at at, against
// the producer's outputs and, when in is known, the input port's schema.
func (x *expander) checkRef(d *StageDecl, port string, ref InputRef, at valueAt, in *PortSchema, listed bool) {
	producer, ok := x.decls[ref.Stage]
	if !ok {
		x.diags.add(at.val, at.valLen, didYouMean(ref.Stage, slices.Sorted(maps.Keys(x.decls))), "input %q of %s reads from unknown stage %q", port, stageName(d.ID, d), ref.Stage)
		return
	}
	pschema := x.schemas[producer.ID]
	if pschema == nil {
		return
	}
	out := findPort(pschema.Outputs, ref.Output)
	if out == nil {
		x.diags.add(at.val, at.valLen, portHint(ref.Output, pschema.Outputs, "output"), "%s has no output %q", stageName(producer.ID, producer), ref.Output)
		return
	}
	if in == nil {
		return
	}
	if in.Kind != "" && out.Kind != "" && in.Kind != out.Kind {
		x.diags.add(at.val, at.valLen, "", "kind mismatch: %s.%s is a %s, but input %q of %s wants a %s", ref.Stage, ref.Output, out.Kind, port, stageName(d.ID, d), in.Kind)
	}
	if ref.Gather && !in.Multi && !listed { // a list into a single port is reported once, at the list
		x.diags.add(at.val, at.valLen, fmt.Sprintf("write %s.%s to read the one instance that matches each %s instance", ref.Stage, ref.Output, d.ID), "input %q of %s takes a single %s; %s.%s[] gathers several", port, stageName(d.ID, d), in.Kind, ref.Stage, ref.Output)
	}
}

func findPort(ports []PortSchema, name string) *PortSchema {
	for i := range ports {
		if ports[i].Name == name {
			return &ports[i]
		}
	}
	return nil
}

// portHint suggests a close port name, or lists the ports there are.
func portHint(name string, ports []PortSchema, what string) string {
	names := make([]string, len(ports))
	for i, p := range ports {
		names[i] = p.Name
	}
	if hint := didYouMean(name, names); hint != "" {
		return hint
	}
	if len(names) == 0 {
		return fmt.Sprintf("the stage has no %s ports", what)
	}
	return fmt.Sprintf("%s ports: %s", what, strings.Join(names, ", "))
}
