package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// defaultShrink is the --set overrides that shrink an example using the
// common var names (epochs, train_size, test_size) to seconds.
var defaultShrink = []string{"vars.epochs=1", "vars.train_size=100", "vars.test_size=50"}

// exampleShrink holds, per example file, overrides beyond defaultShrink for
// the vars that file declares on top of the common ones.
var exampleShrink = map[string][]string{
	"ablation.yaml":    {"vars.val_size=50", "vars.width=16", "vars.attack_steps=1"},
	"noise.yaml":       {"vars.val_size=50", "vars.width=16", "vars.attack_steps=1"},
	"calibration.yaml": {"vars.val_size=50", "vars.width=16", "vars.attack_steps=1", "vars.queries=20"},
	"blackbox.yaml": {"vars.val_size=50", "vars.width=16", "vars.attack_steps=1",
		"vars.source_epochs=1", "vars.source_width=32"},
	"components.yaml": {"vars.epochs=3", "vars.val_size=50", "vars.width=16", "vars.attack_steps=1",
		"vars.warmup_early=1", "vars.warmup_late=2"},
}

// TestExamplesPlanAndRunShrunk plans and runs every examples/*.yaml, shrunk by
// --set overrides, from the examples directory itself (so relative paths in a
// pipeline resolve as they do for users) with the store and the report
// output in temp dirs, so that no example rots and the tree stays clean.
func TestExamplesPlanAndRunShrunk(t *testing.T) {
	examplesDir, err := filepath.Abs(filepath.Join("..", "..", "examples"))
	if err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join(examplesDir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no examples/*.yaml under %s", examplesDir)
	}
	for name := range exampleShrink {
		if _, err := os.Stat(filepath.Join(examplesDir, name)); err != nil {
			t.Errorf("exampleShrink names %s, which is not an example: %v", name, err)
		}
	}
	for _, file := range files {
		name := filepath.Base(file)
		t.Run(strings.TrimSuffix(name, ".yaml"), func(t *testing.T) {
			var set []string
			for _, kv := range append(append([]string{}, defaultShrink...), exampleShrink[name]...) {
				set = append(set, "--set", kv)
			}
			store, out := t.TempDir(), t.TempDir()
			plan := mustSucceed(t, examplesDir, append([]string{"plan", file, "--store", store}, set...)...)
			if !strings.Contains(plan.stdout, "not run before") {
				t.Errorf("plan of %s on an empty store does not say what will run:\n%s", name, plan.stdout)
			}
			started := time.Now()
			run := mustSucceed(t, examplesDir, append([]string{"run", file, "--store", store, "--out", out}, set...)...)
			if elapsed := time.Since(started); elapsed > 20*time.Second {
				t.Errorf("shrunk %s took %s; shrink it further in exampleShrink", name, elapsed)
			}
			if !strings.Contains(run.stdout, " 0 failed") {
				t.Errorf("run of %s:\n%s", name, run.stdout)
			}
			reports, err := filepath.Glob(filepath.Join(out, "*", "*", "table.md"))
			if err != nil {
				t.Fatal(err)
			}
			if len(reports) == 0 {
				t.Errorf("run of %s wrote no report table under %s", name, out)
			}
		})
	}
}
