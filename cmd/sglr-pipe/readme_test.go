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
