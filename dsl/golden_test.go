package dsl

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/errors")

// diagnose runs Parse and, when the file parses, Expand, and renders what
// the CLI would print. A first line "# sets: a=b c=d" gives --set overrides.
func diagnose(name string, src []byte) Diagnostics {
	var sets []string
	if first, _, _ := strings.Cut(string(src), "\n"); strings.HasPrefix(first, "# sets:") {
		sets = strings.Fields(strings.TrimPrefix(first, "# sets:"))
	}
	spec, diags := Parse(name, src, sets)
	if diags.HasErrors() {
		return diags
	}
	_, diags = Expand(spec, catalog)
	return diags
}

// TestErrorGolden checks one file per kind of error: the rendered
// diagnostics must match the golden file, and must contain the summaries
// listed here (so a regenerated golden file cannot silently lose them).
func TestErrorGolden(t *testing.T) {
	want := map[string][]string{
		"syntax":             {"YAML syntax error"},
		"duplicate_key":      {`duplicate key "dataset"`, `duplicate key "train"`, "first defined at line 3"},
		"unknown_key":        {`unknown top-level key "sed"`, `unknown key "wiht" in stage "data"`, `did you mean "with"?`, `unknown key "retries"`},
		"wrong_type":         {"seed: want a non-negative integer, got int -1", "vars: want a mapping", `matrix axis "noise": want a non-empty list`, `stage "data": with: want a mapping`, `stage "train": inputs: want a mapping`, `uses: want a stage name, got list`},
		"unknown_stage":      {`uses "trian": unknown stage "trian"`, `did you mean "train"?`, `uses "matplotlib"`},
		"unknown_param":      {`unknown parameter "epoch" for stage "train" (train)`, `did you mean "epochs"?`, `unknown parameter "verbose"`, "parameters: attacks"},
		"ill_typed_param":    {`limit: want int, got float 2.5`, `epochs: want int, got string "ten"`, `lr: want float, got string "0.1"`, `augment: want bool, got int 1`, `layers: list elements must be scalars`, `model: want string, got int 3 (quote it: "3")`},
		"out_of_range":       {`limit: 0 is below the minimum 1`, `stage "noisy" (noise): rate: 1.5 is above the maximum 1`, "out_of_range.yaml:2:21", "given to rate by ${{ matrix.noise }} at out_of_range.yaml:5:68", `epochs: 5000 is above the maximum 1000`},
		"not_in_enum":        {`dataset: "cifar10" is not one of "fashion-mnist-mini", "mnist-mini"`, `model: "resnet" is not one of "mlp", "cnn"`},
		"missing_param":      {`missing required parameter "dataset" for stage "data" (load)`},
		"unknown_input_port": {`unknown input port "vall"`, `did you mean "val"?`, `unknown input port "extra"`, "input ports: train, val"},
		"missing_input_port": {`missing required input "train" for stage "train" (train)`, `missing required input "dataset" for stage "eval" (eval)`},
		"unknown_ref_stage":  {`reads from unknown stage "dta"`, `did you mean "data"?`, `reads from unknown stage "trained"`},
		"unknown_ref_output": {`stage "data" (load) has no output "trian"`, `did you mean "train"?`, `stage "train" (train) has no output "model"`, "output ports: best, curve"},
		"kind_mismatch":      {`kind mismatch: data.test is a dataset, but input "model" of stage "eval" (eval) wants a model`, `kind mismatch: train.best is a model`},
		"gather_not_multi":   {`input "train" of stage "train" (train) takes a single dataset; noisy.dataset[] gathers several`},
		"cycle":              {"cycle: relabel -> clean -> relabel", "cycle: self -> self"},
		"unknown_axis":       {`unknown matrix axis "nois" in ${{ matrix.nois }}`, `did you mean "noise"?`, `unknown matrix axis "label"`, `matrix exclude: unknown matrix axis "methd"`, "matrix include: an entry must name every axis; missing method"},
		"unknown_var":        {`unknown var "noise" in ${{ vars.noise }}`, `did you mean "noises"?`, `unknown var "epoch"`, `unknown var "lables"`},
		"bad_set":            {`invalid override: no stage "trian" in the pipeline`, "--> --set seed=[1", "YAML syntax error", `--set vars=5`, `unknown top-level key "stage"`, "no '=' in"},
		"set_ill_typed":      {"--> --set stages.train.with.epochs=ten", `epochs: want int, got string "ten"`, `--> --set stages.train.with.epoch=3`, `did you mean "epochs"?`},
		"axis_field":         {`matrix axis "method": a mapping value needs a scalar "name" field`},
		"list_not_multi":     {`input "model" takes one artifact; a list needs a port that accepts many (multi)`, "list_not_multi.yaml:7:14", "list_not_multi.yaml:13:9"},
		"list_empty":         {`input "models" of stage "cmp" (compare): the list of references is empty`, "list_empty.yaml:4:41"},
		"list_unknown_ref":   {`reads from unknown stage "fit"`, "list_unknown_ref.yaml:4:53", `stage "ft" (finetune) has no output "last"`, "list_unknown_ref.yaml:4:66", `reads from unknown stage "trained"`, "list_unknown_ref.yaml:10:11"},
		"list_kind_mismatch": {`kind mismatch: data.test is a dataset, but input "models" of stage "cmp" (compare) wants a model`, "list_kind_mismatch.yaml:4:53"},
		"list_cycle":         {"cycle: recap -> summary -> recap", "list_cycle.yaml:6:41"},
		"list_malformed":     {`input "models": want "stage.output" or "stage.output[]", got int 3`, "list_malformed.yaml:4:53", "got list", `input "dataset": want "stage.output", "stage.output[]" or a list of them, got mapping`},
		"bad_number":         {`rate: .nan is not a number; want a finite number from 0 to 1`, `lr: want float, got string "1_000" (YAML 1.2 numbers have no '_' separators: write 1000)`, `epochs: want int, got float 0.1`},
		"too_deep":           {"YAML nesting is deeper than 100 levels", "too_deep.yaml:4:118", "checked before parsing"},
		"list_enum":          {`stage "eval" (eval): attacks: "pgd20" is not one of`, "list_enum.yaml:8:24", `did you mean "pgd"?`, "list_enum.yaml:8:43", `did you mean "cw"?`},
		"matrix_enum_once":   {`stage "noisy" (noise): kind: "asymetric" is not one of`, "matrix_enum_once.yaml:2:21", `did you mean "asymmetric"?`, "given to kind by ${{ matrix.kind }} at matrix_enum_once.yaml:6:68"},
		"checker":            {`stage "train" (train): warmup: warmup 5 leaves no refinement epoch in 5 epochs`, "checker.yaml:6:82", `stage "table" (report): rows: "nosie" is not a tag of the rows`, "checker.yaml:8:78", `did you mean "noise"?`, `stage "refine" (train): warmup: labels refined needs a warmup`, "checker.yaml:9:3"},
		"set_undeclared_var": {`invalid override: the pipeline declares no var "epoch"`, "--> --set vars.epoch=5", `did you mean "epochs"?`, `no var "trian_size"`, `did you mean "train_size"?`},
		"all_at_once":        {`kind: "symetric" is not one of`, `did you mean "symmetric"?`, `attacks: "pgd20" is not one of`, `attacks: "cw20" is not one of`, `unknown parameter "epoch"`, `unknown matrix axis "methods"`, `has no output "tst"`, `uses "reprot"`},
	}
	files, err := filepath.Glob("testdata/errors/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden inputs in testdata/errors: %v", err)
	}
	for _, file := range files {
		kind := strings.TrimSuffix(filepath.Base(file), ".yaml")
		t.Run(kind, func(t *testing.T) {
			src, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			diags := diagnose(filepath.Base(file), src)
			if !diags.HasErrors() {
				t.Fatalf("%s: no diagnostics", file)
			}
			got := diags.Error() + "\n"
			golden := strings.TrimSuffix(file, ".yaml") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			wantText, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("read golden (run go test ./dsl -update): %v", err)
			}
			if !bytes.Equal([]byte(got), wantText) {
				t.Errorf("diagnostics differ from %s (run go test ./dsl -update after checking):\n--- got\n%s\n--- want\n%s", golden, got, wantText)
			}
			subs, ok := want[kind]
			if !ok {
				t.Fatalf("add the expected summaries for %s to the table", kind)
			}
			for _, s := range subs {
				if !strings.Contains(got, s) {
					t.Errorf("diagnostics lack %q:\n%s", s, got)
				}
			}
		})
	}
}
