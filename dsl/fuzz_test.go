package dsl

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse feeds arbitrary files and one override through Parse and, when
// that succeeds, Expand: neither may panic, rendering must work, and an
// Expansion is returned exactly when there is no diagnostic.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/errors/*.yaml")
	extra, _ := filepath.Glob("testdata/fuzz/*.yaml")
	for _, file := range append(files, extra...) {
		src, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(src, "vars.epochs=30")
	}
	f.Add([]byte("stages: {a: {uses: load, with: {dataset: ${{ vars.x }}}}}"), "matrix.noise=[0.0,0.4]")
	f.Add([]byte("a: &x [*x]\n"), "stages.a.with.b={c: [1, 2]}")
	f.Fuzz(func(t *testing.T, src []byte, set string) {
		spec, diags := Parse("fuzz.yaml", src, []string{set})
		_ = diags.Error()
		if spec == nil {
			t.Fatal("Parse returned no spec")
		}
		exp, diags := Expand(spec, catalog)
		_ = diags.Error()
		if (exp == nil) != diags.HasErrors() {
			t.Fatalf("expansion %v with %d diagnostics", exp != nil, len(diags))
		}
	})
}
