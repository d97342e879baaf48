package dsl

import (
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/sglr-pipe/sglr-pipe/stages/param"
)

// TestCoreSchemaNumbers checks that plain scalars are typed by the YAML 1.2
// core schema: `1e-3` is a float (go-yaml alone makes it a string), `1_000`
// and `0b101` are strings (go-yaml alone makes them ints), `017` is decimal.
func TestCoreSchemaNumbers(t *testing.T) {
	tests := []struct {
		text string
		want any
	}{
		{"1e-3", 1e-3},
		{"5e-4", 5e-4},
		{"1E3", 1000.0},
		{"1e3", 1000.0},
		{"-2.5e+2", -250.0},
		{"12e03", 12000.0},
		{"0.1", 0.1},
		{"1.", 1.0},
		{".5", 0.5},
		{"+.5", 0.5},
		{"3", int64(3)},
		{"+1", int64(1)},
		{"-0", int64(0)},
		{"017", int64(17)},
		{"0o17", int64(15)},
		{"0x10", int64(16)},
		{"0xFf", int64(255)},
		{"1_000", "1_000"},
		{"0b101", "0b101"},
		{"0X10", "0X10"},
		{"-0x10", "-0x10"},
		{"0o", "0o"},
		{"1:30", "1:30"},
		{"1e", "1e"},
		{"'1e-3'", "1e-3"},
		{`"0x10"`, "0x10"},
		{"!!str 1e-3", "1e-3"},
		{"!!float 3", 3.0},
		{".inf", math.Inf(1)},
		{"-.Inf", math.Inf(-1)},
		{"+.INF", math.Inf(1)},
		{"true", true},
		{"null", nil},
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			spec, diags := Parse("n.yaml", []byte("vars: {x: "+tt.text+"}\nstages: {a: {uses: load}}\n"), nil)
			if diags.HasErrors() {
				t.Fatal(diags.Error())
			}
			if got := spec.Vars["x"]; !reflect.DeepEqual(got, tt.want) {
				t.Errorf("%s = %#v, want %#v", tt.text, got, tt.want)
			}
		})
	}
	spec, _ := Parse("n.yaml", []byte("vars: {x: .nan}\n"), nil)
	if f, ok := spec.Vars["x"].(float64); !ok || !math.IsNaN(f) {
		t.Errorf(".nan = %#v, want NaN", spec.Vars["x"])
	}
	for _, text := range []string{"9223372036854775808", "0x8000000000000000", "1e999"} {
		_, diags := Parse("n.yaml", []byte("vars: {x: "+text+"}\n"), nil)
		if !strings.Contains(diags.Error(), text+" does not fit in 64 bits") {
			t.Errorf("%s: %s, want it reported as too large", text, diags.Error())
		}
	}
}

// TestNumberParams checks how numbers as users write them meet int and float
// parameters, in the file and in --set, and that a NaN or infinity given to a
// ranged parameter is called what it is.
func TestNumberParams(t *testing.T) {
	tests := []struct {
		name    string
		with    string
		sets    []string
		want    map[string]any // params of instance "train" when the pipeline is good
		problem string         // else a part of the diagnostics
	}{
		{name: "float in exponent form", with: "lr: 1e-3", want: map[string]any{"lr": 1e-3}},
		{name: "float with capital E", with: "lr: 5E-4", want: map[string]any{"lr": 5e-4}},
		{name: "int into float", with: "lr: 1", want: map[string]any{"lr": 1.0}},
		{name: "hex int into float", with: "lr: 0x10", want: map[string]any{"lr": 16.0}},
		{name: "integral float into int", with: "epochs: 1e2", want: map[string]any{"epochs": int64(100)}},
		{name: "integral float with a point into int", with: "epochs: 20.0", want: map[string]any{"epochs": int64(20)}},
		{name: "octal into int", with: "epochs: 0o17", want: map[string]any{"epochs": int64(15)}},
		{name: "exponent in --set", with: "lr: 0.1", sets: []string{"stages.train.with.lr=2.5e-4"}, want: map[string]any{"lr": 2.5e-4}},
		{name: "fractional float into int", with: "epochs: 2.5e0", problem: `epochs: want int, got float 2.5`},
		{name: "small float into int", with: "epochs: 1e-3", problem: `epochs: want int, got float 0.001`},
		{name: "float too large for int", with: "epochs: 1e19", problem: `epochs: want int, got float 1e+19`},
		{name: "underscores", with: "lr: 1_000", problem: `lr: want float, got string "1_000" (YAML 1.2 numbers have no '_' separators: write 1000)`},
		{name: "binary", with: "epochs: 0b101", problem: `epochs: want int, got string "0b101" (YAML 1.2 has no binary numbers: write 5 or 0x5)`},
		{name: "NaN into a ranged float", with: "rate: .nan", problem: `rate: .nan is not a number; want a finite number from 0 to 1`},
		{name: "infinity into a ranged float", with: "rate: .inf", problem: `rate: .inf is not finite; want a finite number from 0 to 1`},
		{name: "minus infinity into a ranged float", with: "rate: -.inf", problem: `rate: -.inf is not finite`},
		{name: "NaN into an int", with: "epochs: .nan", problem: `epochs: want int, got float .nan`},
		{name: "NaN in --set", with: "rate: 0.5", sets: []string{"stages.train.with.rate=.NaN"}, problem: `rate: .nan is not a number`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := "stages:\n  data: {uses: load, with: {dataset: mnist-mini}}\n  train:\n    uses: ranged\n    inputs: {train: data.train}\n    with: {" + tt.with + "}\n"
			spec, diags := Parse("n.yaml", []byte(src), tt.sets)
			if !diags.HasErrors() {
				var exp *Expansion
				exp, diags = Expand(spec, rangedCatalog)
				if !diags.HasErrors() {
					if tt.problem != "" {
						t.Fatalf("no diagnostics, want %q", tt.problem)
					}
					params := instance(t, exp, "train").Params
					for k, v := range tt.want {
						if !reflect.DeepEqual(params[k], v) {
							t.Errorf("%s = %#v, want %#v", k, params[k], v)
						}
					}
					return
				}
			}
			got := diags.Error()
			if tt.problem == "" || !strings.Contains(got, tt.problem) {
				t.Errorf("diagnostics:\n%s\nwant %q", got, tt.problem)
			}
			if strings.Contains(got, "NaN.0") || strings.Contains(got, "Inf.0") {
				t.Errorf("diagnostics print a non-finite float as Go does:\n%s", got)
			}
		})
	}
}

// rangedCatalog is the test catalog plus a stage with a ranged float.
var rangedCatalog = func() testCatalog {
	c := testCatalog{}
	for k, v := range catalog {
		c[k] = v
	}
	train := *catalog["train"]
	train.Params = append(append([]ParamSchema(nil), train.Params...), ParamSchema{Name: "rate", Type: "float", Default: 0.5, Min: ptr(0), Max: ptr(1)})
	c["ranged"] = &train
	return c
}()

func TestFormatFloat(t *testing.T) {
	tests := []struct {
		f    float64
		want string
	}{
		{2, "2.0"},
		{0.25, "0.25"},
		{1e21, "1e+21"},
		{math.NaN(), ".nan"},
		{math.Inf(1), ".inf"},
		{math.Inf(-1), "-.inf"},
	}
	for _, tt := range tests {
		if got := param.FormatFloat(tt.f); got != tt.want {
			t.Errorf("param.FormatFloat(%v) = %q, want %q", tt.f, got, tt.want)
		}
	}
}
