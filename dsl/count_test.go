package dsl

import (
	"fmt"
	"math/rand"
	"strings"
	"testing"
	"time"
)

// matrixPipeline is a pipeline with the given matrix body (indented by two)
// and a train stage that varies over the axes named in axes.
func matrixPipeline(matrix string, axes ...string) string {
	var exprs []string
	for _, a := range axes {
		exprs = append(exprs, "${{ matrix."+a+" }}")
	}
	return "matrix:\n" + matrix + `stages:
  data: {uses: load, with: {dataset: mnist-mini}}
  train: {uses: train, inputs: {train: data.train}, with: {labels: "` + strings.Join(exprs, "-") + `"}}
`
}

// axisOf returns a matrix axis line with n values.
func axisOf(name string, n int) string {
	vals := make([]string, n)
	for i := range vals {
		vals[i] = fmt.Sprint(i)
	}
	return fmt.Sprintf("  %s: [%s]\n", name, strings.Join(vals, ", "))
}

// TestMatrixLimit checks the expansion is counted before it is made: a
// matrix of 10^6 combinations (which took 159 s and 4.2 GB to expand) is
// refused at once with the count, and include and exclude are accounted for.
func TestMatrixLimit(t *testing.T) {
	var million string
	for _, a := range []string{"a", "b", "c", "d", "e", "f"} {
		million += axisOf(a, 10)
	}
	tests := []struct {
		name  string
		src   string
		limit int
		want  string // "" when it expands, else a part of the diagnostics
	}{
		{"a million combinations", matrixPipeline(million, "a", "b", "c", "d", "e", "f"), 0,
			"the matrix would make 1000001 stage instances, more than the limit of 100000"},
		{"per stage", matrixPipeline(million, "a", "b", "c", "d", "e", "f"), 0, "instances per stage: train 1000000, data 1"},
		{"combinations no stage uses", matrixPipeline(million, "a"), 0, "the matrix has 1000000 combinations, more than the limit of 100000"},
		{"at the limit", matrixPipeline(axisOf("a", 4)+axisOf("b", 5), "a", "b"), 21, ""},
		{"over the limit", matrixPipeline(axisOf("a", 4)+axisOf("b", 5), "a", "b"), 20, "would make 21 stage instances, more than the limit of 20"},
		{"exclude subtracted", matrixPipeline(axisOf("a", 4)+axisOf("b", 5)+"  exclude: [{a: 0}, {a: 1, b: 0}, {b: 0}]\n", "a", "b"), 12,
			"would make 13 stage instances"},
		{"include added", matrixPipeline(axisOf("a", 4)+axisOf("b", 5)+"  include: [{a: 9, b: 0}, {a: 0, b: 0}, {a: 9, b: 0}]\n", "a", "b"), 21,
			"would make 22 stage instances"},
		{"include of an excluded combination", matrixPipeline(axisOf("a", 4)+axisOf("b", 5)+"  exclude: [{a: 0}]\n  include: [{a: 0, b: 0}]\n", "a", "b"), 16,
			"would make 17 stage instances"},
		{"exclude over other axes is an upper bound", matrixPipeline(axisOf("a", 4)+axisOf("b", 5)+"  exclude: [{a: 0, b: 0}]\n", "a"), 4,
			"would make up to 5 stage instances"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec, diags := Parse("m.yaml", []byte(tt.src), nil)
			if diags.HasErrors() {
				t.Fatal(diags.Error())
			}
			start := time.Now()
			exp, diags := ExpandWith(spec, catalog, ExpandOptions{MaxInstances: tt.limit})
			if elapsed := time.Since(start); elapsed > 2*time.Second {
				t.Errorf("Expand took %v", elapsed)
			}
			if tt.want == "" {
				if diags.HasErrors() {
					t.Fatal(diags.Error())
				}
				if len(exp.Instances) > tt.limit {
					t.Errorf("%d instances, limit %d", len(exp.Instances), tt.limit)
				}
				return
			}
			got := diags.Error()
			if !strings.Contains(got, tt.want) || !strings.Contains(got, "--> m.yaml:2:3") {
				t.Errorf("diagnostics:\n%s\nwant %q at m.yaml:2:3", got, tt.want)
			}
		})
	}
}

// TestMatrixCountMatchesExpansion checks countProjections against real
// expansions of random matrices with include and exclude entries: equal when
// it says it is exact, never below otherwise.
func TestMatrixCountMatchesExpansion(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	names := []string{"a", "b", "c"}
	compared, exactly := 0, 0
	for i := range 300 {
		var m strings.Builder
		for _, a := range names {
			m.WriteString(axisOf(a, 1+rng.Intn(4)))
		}
		entry := func(all bool) string {
			var kv []string
			for _, a := range names {
				if all || rng.Intn(2) == 0 {
					kv = append(kv, fmt.Sprintf("%s: %d", a, rng.Intn(6)))
				}
			}
			if len(kv) == 0 {
				kv = append(kv, "a: 0")
			}
			return "{" + strings.Join(kv, ", ") + "}"
		}
		for key, all := range map[string]bool{"exclude": false, "include": true} {
			var entries []string
			for range rng.Intn(4) {
				entries = append(entries, entry(all))
			}
			if len(entries) > 0 {
				fmt.Fprintf(&m, "  %s: [%s]\n", key, strings.Join(entries, ", "))
			}
		}
		var uses []string
		for _, a := range names {
			if rng.Intn(2) == 0 {
				uses = append(uses, a)
			}
		}
		src := matrixPipeline(m.String(), uses...)
		spec, diags := Parse("r.yaml", []byte(src), nil)
		if diags.HasErrors() {
			t.Fatal(diags.Error())
		}
		exp, diags := Expand(spec, catalog)
		if diags.HasErrors() {
			continue // e.g. every combination excluded
		}
		x := &expander{spec: spec, decls: map[string]*StageDecl{}, axesOf: map[string][]int{}}
		x.buildAxes()
		x.computeAxes(spec.Stages)
		var want, got int64
		exact := true
		for _, d := range spec.Stages {
			c := x.countProjections(x.axesOf[d.ID])
			got += c.n
			exact = exact && c.exact
		}
		want = int64(len(exp.Instances))
		if got < want || (exact && got != want) {
			t.Errorf("matrix %d: counted %d (exact %v), expanded %d\n%s", i, got, exact, want, src)
		}
		compared++
		if exact {
			exactly++
		}
	}
	if compared < 150 || exactly < 100 {
		t.Errorf("only %d matrices compared, %d of them exactly", compared, exactly)
	}
}
