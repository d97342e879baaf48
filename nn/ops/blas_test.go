package ops

import (
	"fmt"
	"strings"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// TestBLASIsInstalledEverywhere checks that gorgonia and gorgonia.org/tensor
// (which runs the matrix products) use the BLAS this build selects, and that
// BLAS() names it.
func TestBLASIsInstalledEverywhere(t *testing.T) {
	for _, c := range []struct{ lib, got string }{
		{"gorgonia", fmt.Sprintf("%T", G.WhichBLAS())},
		{"tensor", fmt.Sprintf("%T", tensor.WhichBLAS())},
	} {
		if c.got != wantBLASType {
			t.Errorf("%s uses BLAS %s, this build wants %s", c.lib, c.got, wantBLASType)
		}
	}
	if name := BLAS(); !strings.Contains(name, wantBLASType) || !strings.Contains(name, wantBLASName) {
		t.Errorf("BLAS() = %q, want it to name %s and %s", name, wantBLASName, wantBLASType)
	}
}
