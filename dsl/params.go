package dsl

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/sglr-pipe/sglr-pipe/stages/param"
)

// Parameters are typed by package param, the typer the stages, the plugin
// protocol and the NATS workers share; this file names them, resolves their
// expressions, fills defaults (the one place they are filled) and adds the
// DSL's advice on writing a value in YAML.

// checkParamNames reports unknown parameters and missing required ones.
func (x *expander) checkParamNames() {
	for _, d := range x.spec.Stages {
		schema := x.schemas[d.ID]
		if schema == nil {
			continue
		}
		names := make([]string, len(schema.Params))
		for i, p := range schema.Params {
			names[i] = p.Name
		}
		for _, name := range slices.Sorted(maps.Keys(d.With)) {
			if findParam(schema, name) == nil {
				at := x.paramAt(d, name)
				hint := didYouMean(name, names)
				if hint == "" {
					hint = "parameters: " + strings.Join(names, ", ")
					if len(names) == 0 {
						hint = "the stage takes no parameters"
					}
				}
				x.diags.add(at.key, at.keyLen, hint, "unknown parameter %q for %s", name, stageName(d.ID, d))
			}
		}
		for _, p := range schema.Params {
			if _, given := d.With[p.Name]; !given && p.Required {
				x.diags.add(d.Pos, x.declKeyLen(d), fmt.Sprintf("add with: {%s: ...} (a %s)", p.Name, p.Type), "missing required parameter %q for %s", p.Name, stageName(d.ID, d))
			}
		}
	}
}

func findParam(schema *StageSchema, name string) *ParamSchema {
	for i := range schema.Params {
		if schema.Params[i].Name == name {
			return &schema.Params[i]
		}
	}
	return nil
}

// typeParams fills inst's parameters for the combination c: each given value
// with its expressions replaced and typed by its declaration, then the
// defaults of those not given. It reports every refused value and returns
// whether all were accepted.
func (x *expander) typeParams(inst *Instance, c []int) bool {
	d := inst.Decl
	schema := x.schemas[d.ID]
	ok := schema != nil
	for _, name := range slices.Sorted(maps.Keys(d.With)) {
		value, resolved := x.resolve(d, name, c)
		if !resolved {
			ok = false
			continue
		}
		if schema == nil {
			inst.Params[name] = value
			continue
		}
		p := findParam(schema, name)
		if p == nil {
			ok = false // reported by checkParamNames
			continue
		}
		typed, problems := checkParam(*p, value)
		for _, problem := range problems {
			x.reportProblem(d, c, problem)
		}
		if len(problems) > 0 {
			ok = false
			continue
		}
		inst.Params[name] = typed
	}
	if schema == nil {
		return false
	}
	for _, p := range schema.Params {
		if _, given := d.With[p.Name]; given || p.Default == nil {
			continue
		}
		def, problems := p.DefaultValue()
		for _, problem := range problems {
			at := x.usesAt(d)
			x.diags.add(at.pos, at.length, "this is a bug in the stage, not in the pipeline", "stage %q declares a bad default for parameter %q: %s", d.Uses, p.Name, strings.TrimPrefix(problem.Msg, "default: "))
		}
		if len(problems) > 0 {
			ok = false
			continue
		}
		inst.Params[p.Name] = def
	}
	return ok
}

// checkParam types v as a value of p (see param.Decl.Value) and adds to a
// type mismatch how to write the value in YAML: quote a scalar meant as a
// string, write a number the YAML 1.2 way.
func checkParam(p ParamSchema, v any) (any, []param.Problem) {
	typed, problems := p.Value(v)
	for i, problem := range problems {
		if !problem.Mismatch {
			continue
		}
		switch p.Type {
		case param.String:
			if text, scalar := param.Text(v); scalar && v != nil {
				problems[i].Msg += fmt.Sprintf(" (quote it: %q)", text)
			}
		case param.Int, param.Float:
			problems[i].Msg += numberHint(v)
		}
	}
	return typed, problems
}

// numberHint explains why a string that looks like a number is not one in
// YAML 1.2 (the rule is in yamltree.go), or is "".
func numberHint(v any) string {
	s, ok := v.(string)
	if !ok {
		return ""
	}
	if plain := strings.ReplaceAll(s, "_", ""); plain != s && (coreDecimal.MatchString(plain) || coreFloat.MatchString(plain)) {
		return fmt.Sprintf(" (YAML 1.2 numbers have no '_' separators: write %s)", plain)
	}
	if len(s) > 2 && (s[:2] == "0b" || s[:2] == "0B") {
		if i, err := strconv.ParseInt(s[2:], 2, 64); err == nil {
			return fmt.Sprintf(" (YAML 1.2 has no binary numbers: write %d or %#x)", i, i)
		}
	}
	return ""
}
