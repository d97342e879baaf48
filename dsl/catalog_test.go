package dsl

import (
	"fmt"
	"slices"
	"sort"

	"github.com/sglr-pipe/sglr-pipe/stages/param"
)

// testCatalog is a real, map-backed Catalog of a few stages shaped like the
// built-in ones.
type testCatalog map[string]*StageSchema

func (c testCatalog) Schema(uses string) (*StageSchema, error) {
	s, ok := c[uses]
	if !ok {
		return nil, fmt.Errorf("unknown stage %q", uses)
	}
	return s, nil
}

func (c testCatalog) Names() []string {
	names := make([]string, 0, len(c))
	for n := range c {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Check implements Checker with two rules shaped like the real stages':
// train's warmup must leave an epoch (a rule over two parameters) and be
// given with labels refined (a rule blaming a parameter not written), and report's rows must name matrix tags of what
// its rows input gathers (a rule against the upstream instances).
func (c testCatalog) Check(inst *Instance, instances map[string]*Instance) []param.Problem {
	switch inst.Decl.Uses {
	case "train":
		warmup, given := inst.Params["warmup"].(int64)
		if epochs := inst.Params["epochs"].(int64); given && warmup >= epochs {
			return []param.Problem{{Param: "warmup", Msg: fmt.Sprintf("warmup %d leaves no refinement epoch in %d epochs", warmup, epochs)}}
		}
		if inst.Params["labels"] == "refined" && !given {
			return []param.Problem{{Param: "warmup", Msg: "labels refined needs a warmup", Hint: "add with: {warmup: N}"}}
		}
	case "report":
		var tags []string
		for _, e := range inst.Inputs["rows"] {
			if instances[e.From] == nil {
				panic("Check got an edge from an unknown instance " + e.From)
			}
			for axis := range e.Tags {
				if !slices.Contains(tags, axis) {
					tags = append(tags, axis)
				}
			}
		}
		rows, _ := inst.Params["rows"].([]any)
		var problems []param.Problem
		for i, r := range rows {
			if name, _ := r.(string); !slices.Contains(tags, name) {
				problems = append(problems, param.Problem{Param: "rows", Elem: i + 1, Msg: fmt.Sprintf("%q is not a tag of the rows", name), Hint: param.Suggest(name, tags)})
			}
		}
		return problems
	}
	return nil
}

func ptr(f float64) *float64 { return &f }

var catalog = testCatalog{
	"load": {
		Outputs: []PortSchema{{Name: "train", Kind: "dataset"}, {Name: "val", Kind: "dataset"}, {Name: "test", Kind: "dataset"}},
		Params: []ParamSchema{
			{Name: "dataset", Type: "string", Required: true, Enum: []string{"fashion-mnist-mini", "mnist-mini"}},
			{Name: "limit", Type: "int", Default: 1000, Min: ptr(1)},
		},
	},
	"noise": {
		Inputs:  []PortSchema{{Name: "dataset", Kind: "dataset"}},
		Outputs: []PortSchema{{Name: "dataset", Kind: "dataset"}},
		Params: []ParamSchema{
			{Name: "kind", Type: "string", Default: "symmetric", Enum: []string{"symmetric", "asymmetric"}},
			{Name: "rate", Type: "float", Default: float32(0), Min: ptr(0), Max: ptr(1)},
		},
	},
	"train": {
		Inputs:  []PortSchema{{Name: "train", Kind: "dataset"}, {Name: "val", Kind: "dataset", Optional: true}},
		Outputs: []PortSchema{{Name: "best", Kind: "model"}, {Name: "curve", Kind: "curve"}},
		Params: []ParamSchema{
			{Name: "model", Type: "string", Default: "mlp", Enum: []string{"mlp", "cnn"}},
			{Name: "epochs", Type: "int", Default: 10, Min: ptr(1), Max: ptr(1000)},
			{Name: "labels", Type: "string", Default: "hard"},
			{Name: "lr", Type: "float", Default: 0.01},
			{Name: "augment", Type: "bool", Default: false},
			{Name: "layers", Type: "list", Default: []int{128, 64}},
			{Name: "opts", Type: "map"},
			{Name: "warmup", Type: "int"},
		},
	},
	"eval": {
		Inputs:  []PortSchema{{Name: "model", Kind: "model"}, {Name: "dataset", Kind: "dataset"}},
		Outputs: []PortSchema{{Name: "metrics", Kind: "table"}},
		Params:  []ParamSchema{{Name: "attacks", Type: "list", Default: []string{"clean"}, Enum: []string{"clean", "fgsm", "pgd", "cw", "autoattack"}}},
	},
	"finetune": {
		Inputs:  []PortSchema{{Name: "train", Kind: "dataset"}},
		Outputs: []PortSchema{{Name: "best", Kind: "model"}, {Name: "final", Kind: "model"}},
		Params:  []ParamSchema{{Name: "labels", Type: "string", Default: "hard"}},
	},
	"compare": {
		Inputs:  []PortSchema{{Name: "models", Kind: "model", Multi: true}, {Name: "dataset", Kind: "dataset"}},
		Outputs: []PortSchema{{Name: "metrics", Kind: "table"}},
	},
	"report": {
		Inputs:  []PortSchema{{Name: "rows", Kind: "table", Multi: true}},
		Outputs: []PortSchema{{Name: "table", Kind: "table"}},
		Params:  []ParamSchema{{Name: "rows", Type: "list"}, {Name: "cols", Type: "list"}, {Name: "title", Type: "string"}},
	},
}
