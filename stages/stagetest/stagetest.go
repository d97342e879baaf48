// Package stagetest helps tests run a stage outside a pipeline, on artifact
// files that are not in a store.
package stagetest

import (
	"testing"

	"github.com/sglr-pipe/sglr-pipe/stages"
)

// Input hashes the file at path and returns it as a stage input with tags,
// as the pipeline would deliver it; it fails the test if the file cannot be
// read. Stages check every input against its digest, so a test input needs one.
func Input(t testing.TB, path string, tags map[string]string) stages.Input {
	t.Helper()
	in, err := stages.InputFile(path, tags)
	if err != nil {
		t.Fatalf("stage input %s: %v", path, err)
	}
	return in
}
