package eval

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"

	nnattack "github.com/sglr-pipe/sglr-pipe/nn/attack"
	"github.com/sglr-pipe/sglr-pipe/stages"
	"github.com/sglr-pipe/sglr-pipe/stages/param"
)

// Check implements stages.Checker: the rules of Config.Validate, at plan
// time (the schema has already checked each attack name against the enum).
func (Stage) Check(ps stages.Params, _ map[string][]stages.Upstream) []stages.Problem {
	cfg, err := ConfigFromParams(ps)
	if err != nil {
		param := "attacks"
		if strings.HasPrefix(err.Error(), "norm ") { // nnattack.ParseNorm's error
			param = "norm"
		}
		return []stages.Problem{{Param: param, Msg: err.Error()}}
	}
	return cfg.problems()
}

// problems lists the configuration's mistakes, each blaming the parameter
// (and list element) to change.
func (c Config) problems() []stages.Problem {
	var ps []stages.Problem
	if len(c.Attacks) == 0 {
		ps = append(ps, stages.Problem{Param: "attacks", Msg: "is empty: name at least one of " + strings.Join(nnattack.Names, ", ")})
	}
	for i, a := range c.Attacks {
		switch {
		case !slices.Contains(nnattack.Names, a):
			ps = append(ps, stages.Problem{Param: "attacks", Elem: i + 1, Msg: fmt.Sprintf("%q is not an attack: want one of %s", a, strings.Join(nnattack.Names, ", ")),
				Hint: param.Suggest(a, nnattack.Names)})
		case slices.Index(c.Attacks, a) != i:
			ps = append(ps, stages.Problem{Param: "attacks", Elem: i + 1, Msg: fmt.Sprintf("lists %q twice", a), Hint: "remove one: each attack is run once"})
		case !nnattack.Supports(a, c.Norm):
			ps = append(ps, stages.Problem{Param: "attacks", Elem: i + 1, Msg: fmt.Sprintf("%q has no %s version", a, c.Norm),
				Hint: "remove it, or use norm " + joinNorms(nnattack.SupportedNorms(a))})
		}
	}
	maxEps := math.Inf(1)
	if c.Norm == nnattack.Linf {
		maxEps = 1
	}
	for _, r := range []struct {
		param string
		bad   bool
		msg   string
	}{
		{"eps", !(c.Eps >= 0 && c.Eps <= maxEps), epsMessage(c.Eps, c.Norm)},
		{"step", !(c.Step >= 0 && c.Step <= 1), fmt.Sprintf("step %v must be in [0,1] (0 = default)", c.Step)},
		{"kappa", !(c.Kappa >= 0), fmt.Sprintf("kappa %v must be >= 0", c.Kappa)},
		{"steps", c.Steps < 0, fmt.Sprintf("steps %d must be >= 0 (0 = each attack's default)", c.Steps)},
		{"restarts", c.Restarts < 1, fmt.Sprintf("restarts %d must be >= 1", c.Restarts)},
		{"queries", c.Queries < 1, fmt.Sprintf("queries %d must be >= 1", c.Queries)},
		{"targets", c.Targets < 1, fmt.Sprintf("targets %d must be >= 1", c.Targets)},
		{"batch", c.Batch < 1, fmt.Sprintf("batch %d must be >= 1", c.Batch)},
		{"workers", c.Workers < 0, fmt.Sprintf("workers %d must be >= 0 (0 = every core)", c.Workers)},
		{"limit", c.Limit < 0, fmt.Sprintf("limit %d must be >= 0 (0 = every sample)", c.Limit)},
	} {
		if r.bad {
			ps = append(ps, stages.Problem{Param: r.param, Msg: r.msg})
		}
	}
	return ps
}

// epsMessage explains why eps is out of range for norm.
func epsMessage(eps float64, norm nnattack.Norm) string {
	if norm == nnattack.Linf {
		return fmt.Sprintf("eps %v must be in [0,1]", eps)
	}
	return fmt.Sprintf("eps %v must be a finite number >= 0 (a radius in %s)", eps, norm)
}

// joinNorms lists norms as "linf or l2".
func joinNorms(norms []nnattack.Norm) string {
	names := make([]string, len(norms))
	for i, n := range norms {
		names[i] = n.String()
	}
	return strings.Join(names, " or ")
}

// autoAttackParts are the components a white-box autoattack reports a row
// for, as autoattack/<component>, before its own row.
var autoAttackParts = []string{nnattack.NameAPGDCE, nnattack.NameAPGDT, nnattack.NameFABT, nnattack.NameSquare}

// Columns implements stages.ColumnDeclarer for both outputs: [split,]
// checkpoint, attack (the attacks run, and the autoattack component rows of
// a white-box run), accuracy and n for metrics; checkpoint and attack for
// predictions. Both also declare, as text columns, the matrix tags of the
// gathered models: a checkpoint label carries them ("labels=sglr/best"),
// and a report splits them out into columns of their own.
func (Stage) Columns(port string, ps stages.Params, inputs map[string][]stages.Upstream) []stages.Column {
	cfg, err := ConfigFromParams(ps)
	if err != nil || (port != "metrics" && port != "predictions") {
		return nil
	}
	var attacks []string
	for _, a := range cfg.Attacks {
		attacks = append(attacks, cfg.AttackLabel(a))
	}
	var cols []stages.Column
	if port == "metrics" {
		if slices.Contains(cfg.Attacks, nnattack.NameAutoAttack) && len(inputs["source"]) == 0 {
			for _, part := range autoAttackParts {
				attacks = append(attacks, cfg.AttackLabel(nnattack.NameAutoAttack)+"/"+part)
			}
		}
		if cfg.Split != "" {
			cols = append(cols, stages.Column{Name: ColSplit, Values: []string{cfg.Split}})
		}
	}
	cols = append(cols, stages.Column{Name: ColCheckpoint}, stages.Column{Name: ColAttack, Values: attacks})
	if port == "metrics" {
		cols = append(cols, stages.Column{Name: ColAccuracy, Numeric: true}, stages.Column{Name: ColN, Numeric: true})
	}
	return append(cols, tagColumns(inputs["models"])...)
}

// tagColumns declares the matrix tags of gathered models as text columns
// with the values they take, sorted by name.
func tagColumns(models []stages.Upstream) []stages.Column {
	values := map[string][]string{}
	for _, m := range models {
		for axis, v := range m.Tags {
			if !slices.Contains(values[axis], v) {
				values[axis] = append(values[axis], v)
			}
		}
	}
	var cols []stages.Column
	for _, axis := range slices.Sorted(maps.Keys(values)) {
		cols = append(cols, stages.Column{Name: axis, Values: values[axis]})
	}
	return cols
}
