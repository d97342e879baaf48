package dsl

import (
	"reflect"
	"testing"
)

// TestExpandInputLists checks ports given a list of references: each
// reference resolves as it would alone, edges are concatenated in list
// order, and single references inside a list propagate their axes.
func TestExpandInputLists(t *testing.T) {
	const head = `
matrix:
  method: [at, sglr]
  noise: [0.0, 0.2]
stages:
  data: {uses: load, with: {dataset: mnist-mini}}
  ft: {uses: finetune, inputs: {train: data.train}, with: {labels: "${{ matrix.method }}"}}
  noisy: {uses: finetune, inputs: {train: data.train}, with: {labels: "n${{ matrix.noise }}"}}
`
	at := map[string]string{"method": "at"}
	sglr := map[string]string{"method": "sglr"}
	test := Edge{From: "data", Output: "test"}
	tests := []struct {
		name string
		src  string
		sets []string
		want map[string]map[string][]Edge // instance id -> its inputs
	}{
		{
			name: "gathered references, in list order, with tags",
			src: head + `  cmp: {uses: compare, inputs: {models: [ft.best[], ft.final[]], dataset: data.test}}
`,
			want: map[string]map[string][]Edge{"cmp": {
				"models": {
					{From: "ft[method=at]", Output: "best", Tags: at},
					{From: "ft[method=sglr]", Output: "best", Tags: sglr},
					{From: "ft[method=at]", Output: "final", Tags: at},
					{From: "ft[method=sglr]", Output: "final", Tags: sglr},
				},
				"dataset": {test},
			}},
		},
		{
			name: "order follows the list, not the producers",
			src: head + `  cmp: {uses: compare, inputs: {models: [ft.final[], ft.best[]], dataset: data.test}}
`,
			want: map[string]map[string][]Edge{"cmp": {
				"models": {
					{From: "ft[method=at]", Output: "final", Tags: at},
					{From: "ft[method=sglr]", Output: "final", Tags: sglr},
					{From: "ft[method=at]", Output: "best", Tags: at},
					{From: "ft[method=sglr]", Output: "best", Tags: sglr},
				},
				"dataset": {test},
			}},
		},
		{
			name: "a single reference in a list propagates its axes; a gathered one does not",
			src: head + `  cmp:
    uses: compare
    inputs:
      models:
        - ft.best
        - noisy.final[]
      dataset: data.test
`,
			want: map[string]map[string][]Edge{
				"cmp[method=at]": {
					"models": {
						{From: "ft[method=at]", Output: "best"},
						{From: "noisy[noise=0.0]", Output: "final", Tags: map[string]string{"noise": "0.0"}},
						{From: "noisy[noise=0.2]", Output: "final", Tags: map[string]string{"noise": "0.2"}},
					},
					"dataset": {test},
				},
				"cmp[method=sglr]": {
					"models": {
						{From: "ft[method=sglr]", Output: "best"},
						{From: "noisy[noise=0.0]", Output: "final", Tags: map[string]string{"noise": "0.0"}},
						{From: "noisy[noise=0.2]", Output: "final", Tags: map[string]string{"noise": "0.2"}},
					},
					"dataset": {test},
				},
			},
		},
		{
			name: "single references of different producers combine their axes",
			src: head + `  cmp: {uses: compare, inputs: {models: [ft.best, noisy.best], dataset: data.test}}
`,
			want: map[string]map[string][]Edge{
				"cmp[method=sglr,noise=0.2]": {
					"models":  {{From: "ft[method=sglr]", Output: "best"}, {From: "noisy[noise=0.2]", Output: "best"}},
					"dataset": {test},
				},
			},
		},
		{
			name: "a one-element list and a list given by --set",
			src: head + `  cmp: {uses: compare, inputs: {models: [ft.best[]], dataset: data.test}}
  again: {uses: compare, inputs: {models: ft.best, dataset: data.test}}
`,
			sets: []string{"stages.again.inputs.models=[noisy.best[], ft.final]"},
			want: map[string]map[string][]Edge{
				"cmp": {
					"models":  {{From: "ft[method=at]", Output: "best", Tags: at}, {From: "ft[method=sglr]", Output: "best", Tags: sglr}},
					"dataset": {test},
				},
				"again[method=at]": {
					"models": {
						{From: "noisy[noise=0.0]", Output: "best", Tags: map[string]string{"noise": "0.0"}},
						{From: "noisy[noise=0.2]", Output: "best", Tags: map[string]string{"noise": "0.2"}},
						{From: "ft[method=at]", Output: "final"},
					},
					"dataset": {test},
				},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec, diags := Parse("pipe.yaml", []byte(tt.src), tt.sets)
			if diags.HasErrors() {
				t.Fatalf("parse:\n%s", diags.Error())
			}
			exp, diags := Expand(spec, catalog)
			if diags.HasErrors() {
				t.Fatalf("expand:\n%s", diags.Error())
			}
			for id, want := range tt.want {
				if got := instance(t, exp, id).Inputs; !reflect.DeepEqual(got, want) {
					t.Errorf("%s inputs\n got %v\nwant %v", id, got, want)
				}
			}
			assertTopological(t, exp)
		})
	}
}

// TestParseInputLists checks what Parse records for list values: every
// reference with its own position, in order.
func TestParseInputLists(t *testing.T) {
	src := "stages:\n  cmp: {uses: compare, inputs: {models: [a.best[], b.model]}}\n"
	spec, diags := Parse("p.yaml", []byte(src), nil)
	if diags.HasErrors() {
		t.Fatalf("parse:\n%s", diags.Error())
	}
	want := []InputRef{
		{Stage: "a", Output: "best", Gather: true, Pos: Pos{File: "p.yaml", Line: 2, Col: 42}},
		{Stage: "b", Output: "model", Pos: Pos{File: "p.yaml", Line: 2, Col: 52}},
	}
	if got := spec.Stages[0].Inputs["models"]; !reflect.DeepEqual(got, want) {
		t.Errorf("refs\n got %+v\nwant %+v", got, want)
	}
}
