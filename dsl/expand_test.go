package dsl

import (
	"reflect"
	"strings"
	"testing"
)

// instanceSummary is what the positive tests compare: ids in order, and for
// chosen instances their params and inputs.
func ids(exp *Expansion) []string {
	var out []string
	for _, in := range exp.Instances {
		out = append(out, in.ID)
	}
	return out
}

func instance(t *testing.T, exp *Expansion, id string) *Instance {
	t.Helper()
	for _, in := range exp.Instances {
		if in.ID == id {
			return in
		}
	}
	t.Fatalf("no instance %q in %v", id, ids(exp))
	return nil
}

func TestExpand(t *testing.T) {
	const base = `
stages:
  data: {uses: load, with: {dataset: mnist-mini}}
`
	tests := []struct {
		name  string
		src   string
		sets  []string
		ids   []string
		check func(t *testing.T, exp *Expansion)
	}{
		{
			name: "vars keep their type when whole and splice into strings",
			src: `
vars: {epochs: 30, layers: [256, 128], tag: run, rate: 0.5}
stages:
  data: {uses: load, with: {dataset: mnist-mini}}
  train: {uses: train, inputs: {train: data.train}, with: {epochs: "${{ vars.epochs }}", layers: ${{ vars.layers }}, labels: "${{ vars.tag }}-${{ vars.epochs }}", lr: ${{ vars.rate }}}}
`,
			ids: []string{"data", "train"},
			check: func(t *testing.T, exp *Expansion) {
				p := instance(t, exp, "train").Params
				want := map[string]any{"epochs": int64(30), "layers": []any{int64(256), int64(128)}, "labels": "run-30", "lr": 0.5}
				for k, v := range want {
					if !reflect.DeepEqual(p[k], v) {
						t.Errorf("param %s = %#v, want %#v", k, p[k], v)
					}
				}
				if got := exp.Spec.Vars["epochs"]; got != int64(30) {
					t.Errorf("Spec.Vars[epochs] = %#v", got)
				}
			},
		},
		{
			name: "--set overrides vars, params, seed, name and the matrix",
			src: `
name: first
seed: 1
vars: {epochs: 30}
matrix:
  noise: [0.0]
stages:
  data: {uses: load, with: {dataset: mnist-mini}}
  noisy: {uses: noise, inputs: {dataset: data.train}, with: {rate: ${{ matrix.noise }}}}
  train: {uses: train, inputs: {train: noisy.dataset}, with: {epochs: ${{ vars.epochs }}, lr: 0.1}}
`,
			sets: []string{"vars.epochs=40", "stages.train.with.lr=0.5", "stages.train.with.model=cnn", "seed=3", "name=second", "matrix.noise=[0.1, 0.3]"},
			ids:  []string{"data", "noisy[noise=0.1]", "noisy[noise=0.3]", "train[noise=0.1]", "train[noise=0.3]"},
			check: func(t *testing.T, exp *Expansion) {
				if exp.Spec.Seed != 3 || exp.Spec.Name != "second" {
					t.Errorf("seed %d name %q, want 3 second", exp.Spec.Seed, exp.Spec.Name)
				}
				p := instance(t, exp, "train[noise=0.3]").Params
				if p["epochs"] != int64(40) || p["lr"] != 0.5 || p["model"] != "cnn" {
					t.Errorf("params %v", p)
				}
				if r := instance(t, exp, "noisy[noise=0.3]").Params["rate"]; r != 0.3 {
					t.Errorf("rate = %v", r)
				}
			},
		},
		{
			name: "matrix with exclude and include; first axis varies slowest",
			src: `
matrix:
  method: [at, sglr]
  noise: [0.0, 0.2]
  exclude:
    - {method: at, noise: 0.2}
  include:
    - {method: trades, noise: 0.4}
    - {method: at, noise: 0.0}
stages:
  data: {uses: load, with: {dataset: mnist-mini}}
  train: {uses: train, inputs: {train: data.train}, with: {labels: "${{ matrix.method }}", lr: ${{ matrix.noise }}}}
`,
			ids: []string{"data", "train[method=at,noise=0.0]", "train[method=sglr,noise=0.0]", "train[method=sglr,noise=0.2]", "train[method=trades,noise=0.4]"},
			check: func(t *testing.T, exp *Expansion) {
				in := instance(t, exp, "train[method=trades,noise=0.4]")
				if in.Params["labels"] != "trades" || in.Params["lr"] != 0.4 {
					t.Errorf("params %v", in.Params)
				}
				want := []Binding{{"method", "trades", "trades"}, {"noise", "0.4", 0.4}}
				if !reflect.DeepEqual(in.Axes, want) {
					t.Errorf("axes %v, want %v", in.Axes, want)
				}
			},
		},
		{
			name: "mapping axis values are labelled by name and expose fields",
			src: `
matrix:
  method: [{name: AT, labels: hard, epochs: 5}, {name: AT+SGLR, labels: sglr, epochs: 7}]
stages:
  data: {uses: load, with: {dataset: mnist-mini}}
  train: {uses: train, inputs: {train: data.train}, with: {labels: "${{ matrix.method.labels }}", epochs: "${{ matrix.method.epochs }}", opts: ${{ matrix.method }}, model: "mlp"}}
`,
			ids: []string{"data", "train[method=AT]", "train[method=AT+SGLR]"},
			check: func(t *testing.T, exp *Expansion) {
				in := instance(t, exp, "train[method=AT+SGLR]")
				if in.Params["labels"] != "sglr" || in.Params["epochs"] != int64(7) {
					t.Errorf("params %v", in.Params)
				}
				want := map[string]any{"name": "AT+SGLR", "labels": "sglr", "epochs": int64(7)}
				if !reflect.DeepEqual(in.Params["opts"], want) {
					t.Errorf("opts = %#v", in.Params["opts"])
				}
			},
		},
		{
			name: "axes propagate through single inputs, gathers tag every producer",
			src: `
matrix:
  method: [at, sglr]
  noise: [0.0, 0.2]
stages:
  table: {uses: report, inputs: {rows: eval.metrics[]}}
  data: {uses: load, with: {dataset: mnist-mini}}
  noisy: {uses: noise, inputs: {dataset: data.train}, with: {rate: ${{ matrix.noise }}}}
  train: {uses: train, inputs: {train: noisy.dataset, val: data.val}, with: {labels: "${{ matrix.method }}"}}
  eval: {uses: eval, inputs: {model: train.best, dataset: data.test}}
  bynoise: {uses: report, inputs: {rows: eval.metrics[]}, with: {title: "noise ${{ matrix.noise }}"}}
`,
			ids: []string{"data", "noisy[noise=0.0]", "noisy[noise=0.2]",
				"train[method=at,noise=0.0]", "train[method=at,noise=0.2]", "train[method=sglr,noise=0.0]", "train[method=sglr,noise=0.2]",
				"eval[method=at,noise=0.0]", "eval[method=at,noise=0.2]", "eval[method=sglr,noise=0.0]", "eval[method=sglr,noise=0.2]",
				"table", "bynoise[noise=0.0]", "bynoise[noise=0.2]"},
			check: func(t *testing.T, exp *Expansion) {
				e := instance(t, exp, "eval[method=sglr,noise=0.2]")
				want := map[string][]Edge{
					"model":   {{From: "train[method=sglr,noise=0.2]", Output: "best"}},
					"dataset": {{From: "data", Output: "test"}},
				}
				if !reflect.DeepEqual(e.Inputs, want) {
					t.Errorf("eval inputs %v", e.Inputs)
				}
				rows := instance(t, exp, "table").Inputs["rows"]
				if len(rows) != 4 || rows[3].From != "eval[method=sglr,noise=0.2]" || !reflect.DeepEqual(rows[3].Tags, map[string]string{"method": "sglr", "noise": "0.2"}) {
					t.Errorf("table rows %v", rows)
				}
				byNoise := instance(t, exp, "bynoise[noise=0.2]")
				if got := byNoise.Inputs["rows"]; len(got) != 2 || got[0].From != "eval[method=at,noise=0.2]" || got[1].From != "eval[method=sglr,noise=0.2]" {
					t.Errorf("bynoise rows %v", got)
				}
				if byNoise.Params["title"] != "noise 0.2" {
					t.Errorf("title %v", byNoise.Params["title"])
				}
			},
		},
		{
			name: "defaults are filled and normalised, values typed",
			src: base + `  train: {uses: train, inputs: {train: data.train}, with: {lr: 1, opts: {depth: 2, act: [relu]}}}
  noisy: {uses: noise, inputs: {dataset: data.train}}
`,
			ids: []string{"data", "train", "noisy"},
			check: func(t *testing.T, exp *Expansion) {
				want := map[string]any{
					"model": "mlp", "epochs": int64(10), "labels": "hard", "lr": float64(1), "augment": false,
					"layers": []any{int64(128), int64(64)}, "opts": map[string]any{"depth": int64(2), "act": []any{"relu"}},
				}
				if got := instance(t, exp, "train").Params; !reflect.DeepEqual(got, want) {
					t.Errorf("train params\n got %#v\nwant %#v", got, want)
				}
				if got := instance(t, exp, "noisy").Params; !reflect.DeepEqual(got, map[string]any{"kind": "symmetric", "rate": float64(0)}) {
					t.Errorf("noisy params %#v", got)
				}
				if got := instance(t, exp, "data").Params["limit"]; got != int64(1000) {
					t.Errorf("limit default %#v", got)
				}
			},
		},
		{
			name: "block style, anchors, merge keys and quoted refs",
			src: `
name: blocky
vars:
  common: &common {epochs: 3, lr: 0.2}
stages:
  data:
    uses: load
    with:
      dataset: mnist-mini
  train:
    uses: train
    inputs:
      train: "data.train"
    with:
      <<: *common
      lr: 0.3
`,
			ids: []string{"data", "train"},
			check: func(t *testing.T, exp *Expansion) {
				p := instance(t, exp, "train").Params
				if p["epochs"] != int64(3) || p["lr"] != 0.3 {
					t.Errorf("params %v", p)
				}
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
			if got := ids(exp); !reflect.DeepEqual(got, tt.ids) {
				t.Errorf("instances\n got %v\nwant %v", got, tt.ids)
			}
			if tt.check != nil {
				tt.check(t, exp)
			}
			assertTopological(t, exp)
		})
	}
}

// assertTopological checks that every instance comes after its producers.
func assertTopological(t *testing.T, exp *Expansion) {
	t.Helper()
	seen := map[string]bool{}
	for _, in := range exp.Instances {
		for port, edges := range in.Inputs {
			for _, e := range edges {
				if !seen[e.From] {
					t.Errorf("%s.%s reads %s before it is produced", in.ID, port, e.From)
				}
			}
		}
		seen[in.ID] = true
	}
}

func TestParseDefaults(t *testing.T) {
	tests := []struct {
		file, src, name string
		seed            uint64
	}{
		{"dir/ablation.yaml", "stages: {data: {uses: load}}", "ablation", 0},
		{"pipe.yml", "name: mine\nseed: 42\nstages: {data: {uses: load}}", "mine", 42},
		{"noext", "stages: {data: {uses: load}}", "noext", 0},
	}
	for _, tt := range tests {
		spec, diags := Parse(tt.file, []byte(tt.src), nil)
		if diags.HasErrors() {
			t.Fatalf("%s: %s", tt.file, diags.Error())
		}
		if spec.Name != tt.name || spec.Seed != tt.seed {
			t.Errorf("%s: name %q seed %d, want %q %d", tt.file, spec.Name, spec.Seed, tt.name, tt.seed)
		}
	}
}

func TestDiagnosticsRenderAndSort(t *testing.T) {
	d := Diagnostics{
		{Pos: Pos{File: "p.yaml", Line: 12, Col: 30}, Summary: "second", Detail: "did you mean \"epochs\"?", Length: 5},
		{Pos: Pos{File: "--set x=1"}, Summary: "override"},
		{Pos: Pos{File: "p.yaml", Line: 2, Col: 1}, Summary: "first"},
	}
	src := "name: p\nseed: 1\n" + strings.Repeat("\n", 9) + "  train: {uses: train, with: {epoch: 3}}\n"
	got := d.finish("p.yaml", []byte(src)).Error()
	want := `Error: first
 --> p.yaml:2:1
  |
2 | seed: 1
  | ^

Error: second
  --> p.yaml:12:30
   |
12 |   train: {uses: train, with: {epoch: 3}}
   |                              ^^^^^
   = did you mean "epochs"?

Error: override
 --> --set x=1`
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestDidYouMean(t *testing.T) {
	tests := []struct{ name, want string }{
		{"epoch", `did you mean "epochs"?`},
		{"trian", `did you mean "train"?`},
		{"zzzzzz", ""},
		{"epochs", ""},
	}
	for _, tt := range tests {
		if got := didYouMean(tt.name, []string{"epochs", "train", "lr"}); got != tt.want {
			t.Errorf("didYouMean(%q) = %q, want %q", tt.name, got, tt.want)
		}
	}
}
