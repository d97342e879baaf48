package main

import (
	"math/rand/v2"
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
	// One epoch of the paper's protocol (preact-resnet18) on a tiny subset of
	// a synthetic dataset in the CIFAR-10 binary format (vars.data_dir is
	// added by the test).
	"cifar10.yaml": {"vars.train_size=8", "vars.val_size=4", "vars.test_size=4", "vars.batch=8",
		"vars.attack_steps=1", "vars.val_steps=1", "vars.eval_steps=1", "vars.attacks=[clean, pgd]"},
}

// exampleTimeLimit is how long a shrunk example may take; the CIFAR-10 one
// builds preact-resnet18 graphs, which take longer than the MLPs.
var exampleTimeLimit = map[string]time.Duration{"cifar10.yaml": 90 * time.Second}

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
	cifarDir := writeSyntheticCIFAR10(t, 10)
	for _, file := range files {
		name := filepath.Base(file)
		t.Run(strings.TrimSuffix(name, ".yaml"), func(t *testing.T) {
			var set []string
			for _, kv := range append(append([]string{}, defaultShrink...), exampleShrink[name]...) {
				set = append(set, "--set", kv)
			}
			if name == "cifar10.yaml" {
				set = append(set, "--set", "vars.data_dir="+cifarDir)
			}
			store, out := t.TempDir(), t.TempDir()
			plan := mustSucceed(t, examplesDir, append([]string{"plan", file, "--store", store}, set...)...)
			if !strings.Contains(plan.stdout, "not run before") {
				t.Errorf("plan of %s on an empty store does not say what will run:\n%s", name, plan.stdout)
			}
			started := time.Now()
			run := mustSucceed(t, examplesDir, append([]string{"run", file, "--store", store, "--out", out}, set...)...)
			limit := 20 * time.Second
			if l, ok := exampleTimeLimit[name]; ok {
				limit = l
			}
			if elapsed := time.Since(started); elapsed > limit {
				t.Errorf("shrunk %s took %s; shrink it further in exampleShrink", name, elapsed)
			}
			if !strings.Contains(run.stdout, " 0 failed") {
				t.Errorf("run of %s:\n%s", name, run.stdout)
			}
			reports, err := filepath.Glob(filepath.Join(out, "*", latestLink, "*", "table.md"))
			if err != nil {
				t.Fatal(err)
			}
			if len(reports) == 0 {
				t.Errorf("run of %s wrote no report table under %s", name, out)
			}
		})
	}
}

// writeSyntheticCIFAR10 writes a dataset laid out as the CIFAR-10 binary
// version — data_batch_1.bin … data_batch_5.bin and test_batch.bin, each
// record one label byte and 3072 pixel bytes, plus batches.meta.txt — with
// perRecord records per file of seeded random pixels, and returns its directory.
func writeSyntheticCIFAR10(t *testing.T, perFile int) string {
	t.Helper()
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(10, 0))
	files := []string{"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin"}
	for _, name := range files {
		var buf []byte
		for i := range perFile {
			buf = append(buf, byte(i%10))
			for range 3 * 32 * 32 {
				buf = append(buf, byte(rng.IntN(256)))
			}
		}
		if err := os.WriteFile(filepath.Join(dir, name), buf, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	names := "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n"
	if err := os.WriteFile(filepath.Join(dir, "batches.meta.txt"), []byte(names), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestCIFAR10ExampleNamesMissingData checks that the CIFAR-10 example, run
// without the dataset, fails in its load stage with a message that says
// which file is missing and what to set.
func TestCIFAR10ExampleNamesMissingData(t *testing.T) {
	examplesDir, err := filepath.Abs(filepath.Join("..", "..", "examples"))
	if err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(t.TempDir(), "no-cifar")
	res := sglr(t, examplesDir, "run", "cifar10.yaml", "--store", t.TempDir(), "--out", t.TempDir(),
		"--set", "vars.data_dir="+missing)
	if res.code != 1 || !strings.Contains(res.stderr+res.stdout, filepath.Join(missing, "data_batch_1.bin")+" not found") {
		t.Errorf("exit %d, output:\n%s%s\nwant exit 1 naming the missing data_batch_1.bin", res.code, res.stdout, res.stderr)
	}
}
