package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

var updateCheck = flag.Bool("update-check", false, "rewrite the golden files in testdata/check")

// checkPipeline is a small, valid pipeline shaped like the quickstart; each
// case of TestPlanChecksBeforeRunning makes one mistake in it.
const checkPipeline = `name: check
vars:
  epochs: 2
matrix:
  labels: [hard, sglr]
  noise: [0.1, 0.2]
stages:
  data:
    uses: load
    with: {dataset: synthetic, train: 60, val: 20, test: 20, classes: 4}
  noisy:
    uses: noise
    inputs: {dataset: data.train}
    with: {kind: symmetric, rate: "${{ matrix.noise }}"}
  train:
    uses: train
    inputs: {train: noisy.dataset, val: data.val}
    with:
      epochs: ${{ vars.epochs }}
      labels: ${{ matrix.labels }}
      warmup: 1
      hidden: [8]
      workers: 1
  eval:
    uses: eval
    inputs: {models: [train.best[], train.final[]], dataset: data.test}
    with: {attacks: [clean, pgd], workers: 1}
  report:
    uses: report
    inputs: {tables: eval.metrics}
    with: {rows: [labels], cols: [attack], col_values: [clean, pgd], metrics: [accuracy]}
`

// TestPlanChecksBeforeRunning makes, one at a time, the mistakes a new user
// makes (the examples of issue 13) and checks that plan and run refuse each
// before anything runs: exit 2, the diagnostics of testdata/check/NAME.golden
// (go test -run TestPlanChecksBeforeRunning -update-check rewrites them), the
// offending value's file:line:col, a hint, and one message per location
// although the mistake is found for several instances.
func TestPlanChecksBeforeRunning(t *testing.T) {
	tests := []struct {
		name     string
		old, new string   // the mistake: new replaces old in checkPipeline
		sets     []string // --set overrides
		at       string   // the offending value: the message points at its first occurrence in the pipeline
		want     []string // in the message
	}{
		{name: "attack_not_in_enum", old: "attacks: [clean, pgd]", new: "attacks: [clean, pgd20]",
			at: "pgd20", want: []string{`attacks: "pgd20" is not one of "clean", "fgsm", "pgd"`, `did you mean "pgd"?`}},
		{name: "report_row_unknown", old: "rows: [labels]", new: "rows: [lables]",
			at: "lables", want: []string{`rows: "lables" is not a column or matrix tag of the tables`, `did you mean "labels"?`}},
		{name: "col_value_not_run", old: "col_values: [clean, pgd]", new: "col_values: [clean, cw]",
			at: "cw]", want: []string{`col_values: "cw" is not a value of attack in the tables`, "the column groups are: clean, pgd"}},
		{name: "set_undeclared_var", sets: []string{"vars.epoch=5"},
			want: []string{`invalid override: the pipeline declares no var "epoch"`, "--> --set vars.epoch=5", `did you mean "epochs"?`}},
		{name: "unknown_stage", old: "uses: train", new: "uses: trian",
			at: "trian", want: []string{`uses "trian": unknown stage "trian"`, `did you mean "train"?`}},
		{name: "matrix_value_not_in_enum", old: "labels: [hard, sglr]", new: "labels: [hard, sglrr]",
			at: "sglrr", want: []string{`stage "train" (train): labels: "sglrr" is not one of`, `did you mean "sglr"?`, "given to labels by ${{ matrix.labels }}"}},
		{name: "warmup_not_before_last_epoch", old: "warmup: 1", new: "warmup: 2",
			at: "2\n      hidden", want: []string{`stage "train" (train): warmup: warmup 2 leaves no refinement epoch in 2 epochs`}},
		{name: "trades_with_fgsm", old: "warmup: 1", new: "warmup: 1\n      method: trades\n      attack: fgsm",
			at: "fgsm", want: []string{`attack: attack "fgsm" has no effect with method trades`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := checkPipeline
			if tt.old != "" {
				if !strings.Contains(src, tt.old) {
					t.Fatalf("the pipeline has no %q", tt.old)
				}
				src = strings.Replace(src, tt.old, tt.new, 1)
			}
			dir, _ := writePipeline(t, src)
			var sets []string
			for _, s := range tt.sets {
				sets = append(sets, "--set", s)
			}
			for _, cmd := range []string{"plan", "run"} {
				r := sglr(t, dir, append([]string{cmd, "pipeline.yaml"}, sets...)...)
				if r.code != exitUsage {
					t.Fatalf("%s: exit %d, want 2\nstdout:\n%s\nstderr:\n%s", cmd, r.code, r.stdout, r.stderr)
				}
				checkDiagnostics(t, cmd, r.stderr, position(t, src, tt.at), tt.want)
				if cmd == "plan" {
					compareGolden(t, filepath.Join("testdata", "check", tt.name+".golden"), r.stderr)
				}
				if _, err := os.Stat(filepath.Join(dir, ".sglr", "runs")); err == nil {
					t.Errorf("%s: the mistake was found after the store was used", cmd)
				}
			}
		})
	}
	t.Run("the pipeline without mistakes plans", func(t *testing.T) {
		dir, _ := writePipeline(t, checkPipeline)
		mustSucceed(t, dir, "plan", "pipeline.yaml")
	})
}

// position is where value first occurs in src, as "L:C" (columns count
// characters from 1), or "" for no value.
func position(t *testing.T, src, value string) string {
	t.Helper()
	if value == "" {
		return ""
	}
	i := strings.Index(src, value)
	if i < 0 {
		t.Fatalf("the pipeline has no %q", value)
	}
	line := strings.Count(src[:i], "\n") + 1
	col := utf8.RuneCountInString(src[strings.LastIndex(src[:i], "\n")+1:i]) + 1
	return fmt.Sprintf("%d:%d", line, col)
}

// arrow matches the location line of a diagnostic.
var arrow = regexp.MustCompile(`(?m)^\s*--> (.*)$`)

// checkDiagnostics checks stderr holds each of want, points at
// pipeline.yaml:at (when at is set, "L:C") and names no location twice.
func checkDiagnostics(t *testing.T, cmd, stderr, at string, want []string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(stderr, w) {
			t.Errorf("%s: stderr lacks %q:\n%s", cmd, w, stderr)
		}
	}
	seen := map[string]bool{}
	for _, m := range arrow.FindAllStringSubmatch(stderr, -1) {
		if seen[m[1]] {
			t.Errorf("%s: %s is reported twice:\n%s", cmd, m[1], stderr)
		}
		seen[m[1]] = true
	}
	if at != "" && !seen["pipeline.yaml:"+at] {
		t.Errorf("%s: no message at pipeline.yaml:%s:\n%s", cmd, at, stderr)
	}
}

// compareGolden compares got with the golden file, rewriting it with
// -update-check.
func compareGolden(t *testing.T, golden, got string) {
	t.Helper()
	if *updateCheck {
		if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("read golden (run with -update-check): %v", err)
	}
	if got != string(want) {
		t.Errorf("diagnostics differ from %s (rerun with -update-check after checking):\n--- got\n%s\n--- want\n%s", golden, got, want)
	}
}
