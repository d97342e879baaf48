package main

import (
	"strings"
	"testing"
)

// TestLeafTablesPrintedWhenChanged runs smallPipeline a few times and checks
// when its stats table is printed: when its digest differs from the one the
// pipeline's runs printed last.
func TestLeafTablesPrintedWhenChanged(t *testing.T) {
	dir, file := writePipeline(t, smallPipeline)
	const table, unchanged = "n_class0 |", "): unchanged since a run printed it"
	steps := []struct {
		name    string
		args    []string
		printed bool
	}{
		{"first run", nil, true},
		{"fully cached", nil, false},
		{"a changed parameter", []string{"--set", "stages.noisy.with.rate=0.25"}, true},
		{"back to the first table: not the one printed last", nil, true},
		{"cached again", nil, false},
		{"--json prints no table", []string{"--json"}, false},
		{"still the one printed last", nil, false},
		{"--tables always", []string{"--tables", "always"}, true},
	}
	for _, s := range steps {
		r := mustSucceed(t, dir, append([]string{"run", file}, s.args...)...)
		if got := strings.Contains(r.stdout, table); got != s.printed {
			t.Errorf("%s: table printed %v, want %v:\n%s", s.name, got, s.printed, r.stdout)
		}
		if s.args == nil && !s.printed && !strings.Contains(r.stdout, unchanged) {
			t.Errorf("%s: the unchanged table is not named:\n%s", s.name, r.stdout)
		}
	}
}
