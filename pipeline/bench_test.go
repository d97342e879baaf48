package pipeline

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

// BenchmarkPlan1000 times Load+Plan of a pipeline that expands to 1000
// instances (5 count and 5 sum declarations over a 10x10 matrix).
func BenchmarkPlan1000(b *testing.B) {
	var y strings.Builder
	y.WriteString("seed: 1\nmatrix:\n  a: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]\n  b: [0.5, 1.5, 2.5, 3.5, 4.5, 5.5, 6.5, 7.5, 8.5, 9.5]\nstages:\n")
	for i := 0; i < 5; i++ {
		fmt.Fprintf(&y, "  c%d:\n    uses: count\n    with:\n      n: ${{ matrix.a }}\n      scale: ${{ matrix.b }}\n      note: c%d\n", i, i)
		fmt.Fprintf(&y, "  s%d:\n    uses: sum\n    inputs: {in: c%d.table}\n", i, i)
	}
	ts := newTestStages("v1")
	path := writeFile(b, b.TempDir(), "big.yaml", y.String())
	store := openStore(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		p, err := Load(path, nil, ts.resolver())
		if err != nil {
			b.Fatal(err)
		}
		plan, err := p.Plan(context.Background(), Options{Store: store})
		if err != nil {
			b.Fatal(err)
		}
		if len(plan) != 1000 {
			b.Fatalf("plan has %d entries, want 1000", len(plan))
		}
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/op")
}
