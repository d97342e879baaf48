package main

import (
	"strings"
	"testing"
)

// TestReplayBadRunIDExits2: a RUN argument that names no run, malformed or
// unknown, is the user's mistake: exit 2 with a message naming the id.
func TestReplayBadRunIDExits2(t *testing.T) {
	dir, file := writePipeline(t, `name: tiny
stages:
  data:
    uses: load
    with: {dataset: synthetic, train: 40, val: 10, test: 10, classes: 2, shape: [1, 2, 2]}
`)
	mustSucceed(t, dir, "run", file)
	tests := []struct {
		name, id, want string
	}{
		{"parent directory", "..", `invalid run id ".."`},
		{"path up", "../runs/x", `invalid run id "../runs/x": a run id is a name, not a path`},
		{"path down", "a/b", `invalid run id "a/b"`},
		{"backslash", `a\b`, `invalid run id "a\\b"`},
		{"dot", ".", `invalid run id "."`},
		{"empty", "", "empty run id"},
		{"control character", "a\x01b", `invalid run id "a\x01b": it holds control characters`},
		{"unknown", "20200101T000000Z-000000", `no run "20200101T000000Z-000000"`},
		{"not an id at all", "yesterday", `no run "yesterday"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := sglr(t, dir, "replay", tt.id, "data")
			if r.code != exitUsage {
				t.Fatalf("replay %q: exit %d, want %d\nstderr: %s", tt.id, r.code, exitUsage, r.stderr)
			}
			if !strings.Contains(r.stderr, tt.want) || !strings.Contains(r.stderr, "replay --help") {
				t.Errorf("replay %q: stderr %q, want it to say %q and point to --help", tt.id, r.stderr, tt.want)
			}
		})
	}
}
