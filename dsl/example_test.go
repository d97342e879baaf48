package dsl_test

import (
	"fmt"

	"github.com/sglr-pipe/sglr-pipe/dsl"
)

type schemas map[string]*dsl.StageSchema

func (s schemas) Schema(uses string) (*dsl.StageSchema, error) {
	if schema, ok := s[uses]; ok {
		return schema, nil
	}
	return nil, fmt.Errorf("unknown stage %q", uses)
}

func Example() {
	src := []byte(`
matrix:
  noise: [0.0, 0.2]
stages:
  data:  {uses: load}
  noisy: {uses: noise, inputs: {dataset: data.train}, with: {rate: ${{ matrix.noise }}}}
  table: {uses: report, inputs: {rows: noisy.dataset[]}}
`)
	cat := schemas{
		"load":   {Outputs: []dsl.PortSchema{{Name: "train", Kind: "dataset"}}},
		"noise":  {Inputs: []dsl.PortSchema{{Name: "dataset", Kind: "dataset"}}, Outputs: []dsl.PortSchema{{Name: "dataset", Kind: "dataset"}}, Params: []dsl.ParamSchema{{Name: "rate", Type: "float"}}},
		"report": {Inputs: []dsl.PortSchema{{Name: "rows", Kind: "dataset", Multi: true}}},
	}
	spec, diags := dsl.Parse("pipe.yaml", src, []string{"matrix.noise=[0.1, 0.3]"})
	if diags.HasErrors() {
		fmt.Println(diags.Error())
		return
	}
	exp, diags := dsl.Expand(spec, cat)
	if diags.HasErrors() {
		fmt.Println(diags.Error())
		return
	}
	for _, in := range exp.Instances {
		fmt.Println(in.ID, in.Params, len(in.Inputs["rows"]))
	}

	_, diags = dsl.Parse("pipe.yaml", []byte("stages:\n  data: {uses: load, wiht: {}}\n"), nil)
	fmt.Println(diags.Error())
	// Output:
	// data map[] 0
	// noisy[noise=0.1] map[rate:0.1] 0
	// noisy[noise=0.3] map[rate:0.3] 0
	// table map[] 2
	// Error: unknown key "wiht" in stage "data"
	//  --> pipe.yaml:2:22
	//   |
	// 2 |   data: {uses: load, wiht: {}}
	//   |                      ^^^^
	//   = did you mean "with"?
}
