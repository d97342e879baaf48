package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sglr-pipe/sglr-pipe/stages"
)

// TestReadmeDocumentsEveryStage keeps the README's stage reference true: every
// built-in stage, port and parameter the binary reports must be named there.
func TestReadmeDocumentsEveryStage(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(readme)
	r := mustSucceed(t, t.TempDir(), "stages", "--json")
	var specs []stages.Spec
	if err := json.Unmarshal([]byte(r.stdout), &specs); err != nil {
		t.Fatalf("stages --json: %v\n%s", err, r.stdout)
	}
	if len(specs) == 0 {
		t.Fatal("stages --json listed no stage")
	}
	for _, s := range specs {
		if !strings.Contains(text, "### `"+s.Name+"`") {
			t.Errorf("README has no section \"### `%s`\"", s.Name)
			continue
		}
		var names []string
		for _, p := range s.Params {
			names = append(names, p.Name)
		}
		for _, p := range append(append([]stages.Port{}, s.Inputs...), s.Outputs...) {
			names = append(names, p.Name)
		}
		for _, n := range names {
			if !strings.Contains(text, "`"+n+"`") {
				t.Errorf("README does not mention %s's %q", s.Name, n)
			}
		}
	}
}

// TestReadmePipelinesAreValid plans every complete pipeline (a ```yaml block
// with a `stages:` key) shown in the README, so its examples cannot rot.
// Blocks of the plugin how-to (marked `<!-- howto:NAME -->`) use a plugin
// that the how-to builds first: TestPluginHowTo runs those.
func TestReadmePipelinesAreValid(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks := 0
	parts := strings.Split(string(readme), "```yaml\n")
	for i, block := range parts[1:] {
		src, _, ok := strings.Cut(block, "```")
		if !ok || !strings.Contains(src, "\nstages:") {
			continue
		}
		before := strings.TrimSpace(parts[i])
		if j := strings.LastIndex(before, "\n"); strings.HasPrefix(before[j+1:], "<!-- howto:") {
			continue
		}
		blocks++
		dir, file := writePipeline(t, src)
		if r := sglr(t, dir, "plan", file); r.code != 0 {
			t.Errorf("README yaml block %d does not plan (exit %d):\n%s\n%s", i+1, r.code, r.stderr, src)
		}
	}
	if blocks == 0 {
		t.Error("found no pipeline in README.md")
	}
}
