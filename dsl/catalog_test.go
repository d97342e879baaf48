package dsl

import (
	"fmt"
	"sort"
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
		},
	},
	"eval": {
		Inputs:  []PortSchema{{Name: "model", Kind: "model"}, {Name: "dataset", Kind: "dataset"}},
		Outputs: []PortSchema{{Name: "metrics", Kind: "table"}},
		Params:  []ParamSchema{{Name: "attacks", Type: "list", Default: []string{"clean"}}},
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
