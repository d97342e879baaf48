package stages

import "testing"

// fileInput is stagetest.Input for this package's own tests, which cannot
// import stagetest (it imports stages).
func fileInput(t testing.TB, path string, tags map[string]string) Input {
	t.Helper()
	in, err := InputFile(path, tags)
	if err != nil {
		t.Fatalf("stage input %s: %v", path, err)
	}
	return in
}
