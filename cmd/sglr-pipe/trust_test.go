package main

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sglr-pipe/sglr-pipe/artifacts"
)

// Tests of the store's promise through the binary: a cache hit means "these
// bytes are what this stage produced from these inputs", whatever happens to
// the files under .sglr.

// tinyQuickstart shrinks examples/quickstart.yaml to well under a second: the
// same stages and edges, a few dozen images, one epoch, clean and PGD only.
var tinyQuickstart = []string{
	"--set", "vars.epochs=1", "--set", "vars.train_size=60", "--set", "vars.test_size=20",
	"--set", "stages.data.with.val=20", "--set", "stages.train.with.steps=1", "--set", "stages.train.with.val_steps=1",
	"--set", "stages.eval.with.attacks=[clean, pgd]", "--set", "stages.eval.with.steps=2",
	"--set", "stages.report.with.col_values=[clean, pgd]",
}

// quickstartDir copies the quickstart pipeline into a fresh directory.
func quickstartDir(t *testing.T) (dir, file string) {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("..", "..", "examples", "quickstart.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return writePipeline(t, string(src))
}

// objectFile is where the store under dir keeps object d.
func objectFile(dir string, d artifacts.Digest) string {
	return filepath.Join(dir, ".sglr", "objects", "sha256", string(d)[:2], string(d)[2:])
}

// rewriteObject replaces the bytes of object d (objects are read-only).
func rewriteObject(t *testing.T, dir string, d artifacts.Digest, data []byte) {
	t.Helper()
	path := objectFile(dir, d)
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// mustVerify runs `cache verify` and fails the test unless the store is sound.
func mustVerify(t *testing.T, dir string) {
	t.Helper()
	if r := sglr(t, dir, "cache", "verify"); r.code != 0 {
		t.Fatalf("cache verify: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// TestCorruptInputIsRebuiltNotTrusted is the cache poisoning: one
// byte flipped in the middle of noisy.dataset, then a run that retrains from
// it. The flip is found as train reads its input, noise is rebuilt, and the
// run's digests are a clean store's; nothing computed from the bad bytes is
// recorded. A truncated report table is rebuilt by a plain run too, because
// the CLI re-hashes what it prints.
func TestCorruptInputIsRebuiltNotTrusted(t *testing.T) {
	dir, file := quickstartDir(t)
	epochs2 := append(slices.Clone(tinyQuickstart), "--set", "stages.train.with.epochs=2")
	_, clean, r := runJSON(t, t.TempDir(), append([]string{file, "--store", t.TempDir()}, epochs2...)...)
	if r.code != 0 {
		t.Fatalf("clean run: exit %d\n%s", r.code, r.stderr)
	}
	_, first, r := runJSON(t, dir, append([]string{file}, tinyQuickstart...)...)
	if r.code != 0 {
		t.Fatalf("first run: exit %d\n%s", r.code, r.stderr)
	}

	noisy := outputsOf(first)["noisy.dataset"]
	good, err := os.ReadFile(objectFile(dir, noisy))
	if err != nil {
		t.Fatal(err)
	}
	bad := slices.Clone(good)
	bad[len(bad)/2] ^= 0x01
	rewriteObject(t, dir, noisy, bad)

	_, s, r := runJSON(t, dir, append([]string{file}, epochs2...)...)
	if r.code != 0 {
		t.Fatalf("run after the flip: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if got, want := outputsOf(s), outputsOf(clean); !maps.Equal(got, want) {
		t.Errorf("digests after the flip differ from a clean run's:\n got %v\nwant %v", got, want)
	}
	if st := instanceStatus(s, "noisy"); st != "ran" {
		t.Errorf("noisy is %q, want ran (rebuilt when train found its output corrupt)", st)
	}
	mustVerify(t, dir)

	report := outputsOf(s)["report.report"]
	rewriteObject(t, dir, report, good[:len(good)/3])
	_, s2, r := runJSON(t, dir, append([]string{file}, epochs2...)...)
	if r.code != 0 {
		t.Fatalf("run after truncating the report: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if got, want := outputsOf(s2), outputsOf(clean); !maps.Equal(got, want) {
		t.Errorf("digests after truncating the report differ from a clean run's")
	}
	if st := instanceStatus(s2, "report"); st != "ran" {
		t.Errorf("report is %q, want ran (its truncated output rebuilt)", st)
	}
	mustVerify(t, dir)
}

// instanceStatus is the status of instance id in a run summary.
func instanceStatus(s runSummary, id string) string {
	for _, in := range s.Instances {
		if in.ID == id {
			return in.Status
		}
	}
	return ""
}

// badPluginTemplate is an exec plugin with a dataset output whose run step
// is %s, with $in (the dataset input), $table (a table input) and $out (the
// output directory) set.
const badPluginTemplate = `#!/bin/sh
set -e
case "$1" in
describe)
	cat <<'JSON'
{"name": "bad", "version": "1", "doc": "writes a bad output",
 "inputs": [{"name": "dataset", "kind": "dataset", "doc": "in"}, {"name": "table", "kind": "table", "doc": "in"}],
 "outputs": [{"name": "dataset", "kind": "dataset", "doc": "out"}],
 "params": [], "cores": 1}
JSON
	;;
run)
	# The request's inputs are sorted by port: dataset first, then table.
	in=$(sed -n 's/.*"path": *"\([^"]*\)".*/\1/p' "$2" | sed -n 1p)
	table=$(sed -n 's/.*"path": *"\([^"]*\)".*/\1/p' "$2" | sed -n 2p)
	out=$(sed -n 's/.*"out_dir": *"\([^"]*\)".*/\1/p' "$2")
	%s
	;;
esac
`

// TestBadPluginOutputsFailTheStage writes, from an exec plugin, every kind of
// bad output the issue lists: links into and out of the store, junk, a cut
// Arrow file and an artifact of another kind. Each fails that stage (exit 1,
// naming the plugin, the port and what is wrong), is cached nowhere (a rerun
// fails again), and leaves only regular, sound files in the store.
func TestBadPluginOutputsFailTheStage(t *testing.T) {
	tests := []struct {
		name, step, want string
	}{
		{"link to its input", `ln -s "$in" "$out/dataset"`, "is a symbolic link"},
		{"link outside the store", `ln -s /etc/passwd "$out/dataset"`, "is a symbolic link (to /etc/passwd)"},
		{"junk", `echo junk > "$out/dataset"`, "not a valid dataset artifact"},
		{"truncated arrow", `head -c 300 "$in" > "$out/dataset"`, "not a valid dataset artifact"},
		{"table on a dataset port", `cp "$table" "$out/dataset"`, `artifact kind is "table", want "dataset"`},
		{"nothing", `true`, `without writing output "dataset"`},
		{"fifo", `mkfifo "$out/dataset"`, `output "dataset"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir, file := writePipeline(t, `name: badplugin
stages:
  data:
    uses: load
    with: {dataset: synthetic, train: 50, val: 10, test: 10, classes: 3, shape: [1, 4, 4]}
  stats:
    uses: label-stats
    inputs: {datasets: data.train[]}
  bad:
    uses: exec:./bad.sh
    inputs: {dataset: data.train, table: stats.table}
`)
			script := fmt.Sprintf(badPluginTemplate, tc.step)
			if err := os.WriteFile(filepath.Join(dir, "bad.sh"), []byte(script), 0o755); err != nil {
				t.Fatal(err)
			}
			for attempt := 1; attempt <= 2; attempt++ {
				r := sglr(t, dir, "run", file)
				out := r.stdout + r.stderr
				if r.code != exitFailed || !strings.Contains(out, "bad.sh") ||
					!strings.Contains(out, `output "dataset"`) || !strings.Contains(out, tc.want) {
					t.Fatalf("run %d: exit %d, want %d naming the plugin, the port and %q:\n%s", attempt, r.code, exitFailed, tc.want, out)
				}
				if attempt == 2 && strings.Contains(r.stdout, "1 cached") && !strings.Contains(r.stdout, "2 cached") {
					t.Fatalf("the bad output was cached:\n%s", r.stdout)
				}
			}
			assertOnlyRegularObjects(t, dir)
			mustVerify(t, dir)
		})
	}
}

// assertOnlyRegularObjects fails if anything under objects/ is not a regular
// file or does not hash to its name.
func assertOnlyRegularObjects(t *testing.T, dir string) {
	t.Helper()
	root := filepath.Join(dir, ".sglr", "objects")
	err := filepath.WalkDir(root, func(path string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		if !e.Type().IsRegular() {
			t.Errorf("%s in the store is %s, not a regular file", path, e.Type())
			return nil
		}
		rel, _ := filepath.Rel(filepath.Join(root, "sha256"), path)
		d := artifacts.Digest(strings.ReplaceAll(rel, string(filepath.Separator), ""))
		if got, err := artifacts.FileDigest(path); err != nil || got != d {
			t.Errorf("%s hashes to %s (%v)", path, got, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestFaultInjectionNeverGivesWrongDigests damages a random object of a
// finished quickstart store 20 times (seeded): a flipped byte, a cut, or a
// link in its place (to another object, to a file outside the store, to
// itself). After each, a run — plain, with --verify, or --from a stage that
// reads the damaged object — either exits 0 with a clean run's digests or
// exits 1 naming the object; it never exits 0 with other digests.
func TestFaultInjectionNeverGivesWrongDigests(t *testing.T) {
	dir, file := quickstartDir(t)
	_, clean, r := runJSON(t, t.TempDir(), append([]string{file, "--store", t.TempDir()}, tinyQuickstart...)...)
	if r.code != 0 {
		t.Fatalf("clean run: exit %d\n%s", r.code, r.stderr)
	}
	want := outputsOf(clean)
	if _, _, r := runJSON(t, dir, append([]string{file}, tinyQuickstart...)...); r.code != 0 {
		t.Fatalf("first run: exit %d\n%s", r.code, r.stderr)
	}
	readers := objectReaders(t, dir)
	objects := slices.Sorted(maps.Keys(readers))
	outside := filepath.Join(t.TempDir(), "outside")
	if err := os.WriteFile(outside, []byte("not an artifact"), 0o644); err != nil {
		t.Fatal(err)
	}

	rng := rand.New(rand.NewPCG(12, 2026))
	for i := range 20 {
		d := objects[rng.IntN(len(objects))]
		path := objectFile(dir, d)
		damage := ""
		switch rng.IntN(4) {
		case 0:
			data, err := os.ReadFile(path)
			if err != nil || len(data) == 0 {
				damage = "left as it was (already replaced)"
				break
			}
			at := rng.IntN(len(data))
			data[at] ^= byte(1 + rng.IntN(255))
			rewriteObject(t, dir, d, data)
			damage = fmt.Sprintf("byte %d changed", at)
		case 1:
			data, err := os.ReadFile(path)
			if err != nil {
				damage = "left as it was (already replaced)"
				break
			}
			cut := rng.IntN(len(data) + 1)
			rewriteObject(t, dir, d, data[:cut])
			damage = fmt.Sprintf("cut to %d of %d bytes", cut, len(data))
		case 2:
			other := objectFile(dir, objects[rng.IntN(len(objects))])
			os.Remove(path)
			if err := os.Symlink(other, path); err != nil {
				t.Fatal(err)
			}
			damage = "replaced by a link to " + other
		case 3:
			os.Remove(path)
			if err := os.Symlink(outside, path); err != nil {
				t.Fatal(err)
			}
			damage = "replaced by a link outside the store"
		}
		args := append([]string{file}, tinyQuickstart...)
		mode := []string{"plain", "--verify", "--from"}[i%3]
		switch mode {
		case "--verify":
			args = append(args, "--verify")
		case "--from":
			args = append(args, "--from", readers[d][rng.IntN(len(readers[d]))])
		}
		_, s, r := runJSON(t, dir, args...)
		switch {
		case r.code == 0:
			if got := outputsOf(s); !maps.Equal(got, want) {
				t.Fatalf("round %d: object %s %s, run %s: exit 0 with digests other than a clean run's:\n got %v\nwant %v",
					i, d, damage, mode, got, want)
			}
		case r.code == exitFailed:
			if !strings.Contains(r.stdout+r.stderr, string(d)) {
				t.Fatalf("round %d: object %s %s, run %s: exit 1 without naming the object:\n%s%s", i, d, damage, mode, r.stdout, r.stderr)
			}
		default:
			t.Fatalf("round %d: object %s %s, run %s: exit %d\n%s%s", i, d, damage, mode, r.code, r.stdout, r.stderr)
		}
	}
	// Damage a plain run never read is still there; --verify finds and mends it.
	if _, s, r := runJSON(t, dir, append([]string{file, "--verify"}, tinyQuickstart...)...); r.code != 0 || !maps.Equal(outputsOf(s), want) {
		t.Fatalf("final run --verify: exit %d, digests %v\n%s", r.code, outputsOf(s), r.stderr)
	}
	mustVerify(t, dir)
}

// objectReaders maps every object that some stage reads to the stages
// (declaration ids) that read it, from the newest run record.
func objectReaders(t *testing.T, dir string) map[artifacts.Digest][]string {
	t.Helper()
	store, err := artifacts.OpenDir(filepath.Join(dir, ".sglr"))
	if err != nil {
		t.Fatal(err)
	}
	run, err := store.GetRun("latest")
	if err != nil {
		t.Fatal(err)
	}
	readers := map[artifacts.Digest][]string{}
	for _, in := range run.Instances {
		for _, ds := range in.Inputs {
			for _, d := range ds {
				if !slices.Contains(readers[d], in.Stage) {
					readers[d] = append(readers[d], in.Stage)
				}
			}
		}
	}
	if len(readers) == 0 {
		data, _ := json.Marshal(run)
		t.Fatalf("no inputs in the run record: %s", data)
	}
	return readers
}
