package gemm

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"testing"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// gemmCase is one product to check: sizes, transposes, scalars and how much
// wider than the matrices their leading dimensions are.
type gemmCase struct {
	m, n, k          int
	tA, tB           blas.Transpose
	alpha, beta      float64
	padA, padB, padC int
}

func (tc gemmCase) String() string {
	return fmt.Sprintf("m%d_n%d_k%d_%c%c_alpha%g_beta%g_pad%d,%d,%d", tc.m, tc.n, tc.k, tc.tA, tc.tB, tc.alpha, tc.beta, tc.padA, tc.padB, tc.padC)
}

// operands are random A, B, C for a case, stored as the case says.
type operands[T float] struct {
	a, b, c       []T
	lda, ldb, ldc int
}

// sentinel fills the padding of C; the kernels must leave it alone.
const sentinel = -12345.5

func newOperands[T float](tc gemmCase, rng *rand.Rand) operands[T] {
	aRows, aCols := tc.m, tc.k
	if tc.tA != blas.NoTrans {
		aRows, aCols = tc.k, tc.m
	}
	bRows, bCols := tc.k, tc.n
	if tc.tB != blas.NoTrans {
		bRows, bCols = tc.n, tc.k
	}
	o := operands[T]{lda: max(1, aCols+tc.padA), ldb: max(1, bCols+tc.padB), ldc: max(1, tc.n+tc.padC)}
	random := func(rows, cols, ld int, pad T) []T {
		s := make([]T, rows*ld)
		for i := range rows {
			for j := range ld {
				if j < cols {
					s[i*ld+j] = T(rng.Float64()*2 - 1)
				} else {
					s[i*ld+j] = pad
				}
			}
		}
		return s
	}
	// Padding of A and B is NaN: reading it would poison the result.
	nan := T(math.NaN())
	o.a = random(aRows, aCols, o.lda, nan)
	o.b = random(bRows, bCols, o.ldb, nan)
	o.c = random(tc.m, tc.n, o.ldc, sentinel)
	if tc.beta == 0 {
		for i := range tc.m {
			for j := range tc.n {
				o.c[i*o.ldc+j] = nan // beta 0 must not read C
			}
		}
	}
	return o
}

// naiveGemm is the reference: the triple loop in float64, returning C
// and, per element, the magnitude bound |alpha|·Σ|a||b| + |beta·c| that
// scales the rounding error allowed.
func naiveGemm[T float](tc gemmCase, o operands[T]) (want, bound []float64) {
	opA := func(i, p int) float64 {
		if tc.tA != blas.NoTrans {
			return float64(o.a[p*o.lda+i])
		}
		return float64(o.a[i*o.lda+p])
	}
	opB := func(p, j int) float64 {
		if tc.tB != blas.NoTrans {
			return float64(o.b[j*o.ldb+p])
		}
		return float64(o.b[p*o.ldb+j])
	}
	want = make([]float64, tc.m*tc.n)
	bound = make([]float64, tc.m*tc.n)
	for i := range tc.m {
		for j := range tc.n {
			var sum, abs float64
			for p := range tc.k {
				sum += opA(i, p) * opB(p, j)
				abs += math.Abs(opA(i, p) * opB(p, j))
			}
			w, bd := tc.alpha*sum, math.Abs(tc.alpha)*abs
			if tc.beta != 0 {
				cv := float64(o.c[i*o.ldc+j])
				w += tc.beta * cv
				bd += math.Abs(tc.beta * cv)
			}
			want[i*tc.n+j], bound[i*tc.n+j] = w, bd
		}
	}
	return want, bound
}

// checkAgainstNaive compares got (C after the product) with the float64
// triple loop, allowing (k+4) roundings of unit eps on the magnitude bound,
// and checks that C's padding is untouched.
func checkAgainstNaive[T float](t *testing.T, tc gemmCase, before operands[T], got []T, eps float64) {
	t.Helper()
	want, bound := naiveGemm(tc, before)
	bad := 0
	for i := range tc.m {
		for j := range tc.n {
			g, w := float64(got[i*before.ldc+j]), want[i*tc.n+j]
			tol := float64(tc.k+4)*eps*bound[i*tc.n+j] + 1e-30
			if math.IsNaN(g) || math.Abs(g-w) > tol {
				if bad++; bad <= 3 {
					t.Errorf("C[%d][%d] = %v, want %v (tolerance %.3g)", i, j, g, w, tol)
				}
			}
		}
		for j := tc.n; j < before.ldc && i*before.ldc+j < len(got); j++ {
			if got[i*before.ldc+j] != sentinel {
				t.Fatalf("C padding [%d][%d] overwritten with %v", i, j, got[i*before.ldc+j])
			}
		}
	}
	if bad > 3 {
		t.Errorf("... %d elements wrong in all", bad)
	}
}

// gemmCases crosses sizes (1, odd, exact tiles, past the block sizes) with
// every transpose pair, alpha 0/1/-0.5, beta 0/1/0.3 and tight or padded
// leading dimensions, then adds random small sizes.
func gemmCases() []gemmCase {
	sizes := [][3]int{
		{1, 1, 1}, {1, 7, 3}, {5, 1, 9}, {3, 5, 1}, {6, 16, 8}, {4, 4, 4},
		{7, 17, 300}, {13, 33, 5}, {29, 45, 61}, {70, 9, 257},
	}
	trans := []blas.Transpose{blas.NoTrans, blas.Trans}
	var cases []gemmCase
	for si, s := range sizes {
		for _, tA := range trans {
			for _, tB := range trans {
				for _, alpha := range []float64{0, 1, -0.5} {
					for _, beta := range []float64{0, 1, 0.3} {
						pad := 0
						if (si+int(tA)+int(tB))%2 == 1 {
							pad = 3
						}
						cases = append(cases, gemmCase{s[0], s[1], s[2], tA, tB, alpha, beta, pad, pad + 1, pad + 2})
					}
				}
			}
		}
	}
	rng := rand.New(rand.NewPCG(7, 7))
	for range 40 {
		cases = append(cases, gemmCase{
			m: 1 + rng.IntN(40), n: 1 + rng.IntN(40), k: 1 + rng.IntN(80),
			tA: trans[rng.IntN(2)], tB: trans[rng.IntN(2)],
			alpha: []float64{1, -0.5, 2}[rng.IntN(3)], beta: []float64{0, 1, 0.3}[rng.IntN(3)],
			padA: rng.IntN(4), padB: rng.IntN(4), padC: rng.IntN(4),
		})
	}
	// ConjTrans means Trans for real matrices.
	cases = append(cases, gemmCase{9, 11, 13, blas.ConjTrans, blas.ConjTrans, 1, 0.3, 1, 0, 2})
	return cases
}

// testKernelSets returns every kernel set this build can run, each also with
// tiny cache blocks so that small matrices cross every block edge.
func testKernelSets[T float](pick func(kernels) kernelSet[T]) []kernelSet[T] {
	var sets []kernelSet[T]
	for _, ks := range availableKernels() {
		s := pick(ks)
		sets = append(sets, s)
		tiny := s
		tiny.name += " tiny blocks"
		tiny.kc, tiny.mc, tiny.nc = 7, 2*s.mr, 3*s.nr
		sets = append(sets, tiny)
	}
	return sets
}

func TestSgemmKernelsMatchNaive(t *testing.T) {
	for _, ks := range testKernelSets(func(k kernels) kernelSet[float32] { return k.f32 }) {
		t.Run(ks.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, 2))
			for _, tc := range gemmCases() {
				o := newOperands[float32](tc, rng)
				got := append([]float32(nil), o.c...)
				aT, bT := checkGemm(tc.tA, tc.tB, tc.m, tc.n, tc.k, len(o.a), o.lda, len(o.b), o.ldb, len(got), o.ldc)
				gemm(&ks, &sync.Pool{}, aT, bT, tc.m, tc.n, tc.k, float32(tc.alpha), o.a, o.lda, o.b, o.ldb, float32(tc.beta), got, o.ldc)
				t.Run(tc.String(), func(t *testing.T) { checkAgainstNaive(t, tc, o, got, 0x1p-24) })
			}
		})
	}
}

func TestDgemmKernelsMatchNaive(t *testing.T) {
	for _, ks := range testKernelSets(func(k kernels) kernelSet[float64] { return k.f64 }) {
		t.Run(ks.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(3, 4))
			for _, tc := range gemmCases() {
				o := newOperands[float64](tc, rng)
				got := append([]float64(nil), o.c...)
				aT, bT := checkGemm(tc.tA, tc.tB, tc.m, tc.n, tc.k, len(o.a), o.lda, len(o.b), o.ldb, len(got), o.ldc)
				gemm(&ks, &sync.Pool{}, aT, bT, tc.m, tc.n, tc.k, tc.alpha, o.a, o.lda, o.b, o.ldb, tc.beta, got, o.ldc)
				// The reference itself rounds in float64, hence 2x.
				t.Run(tc.String(), func(t *testing.T) { checkAgainstNaive(t, tc, o, got, 0x1p-52) })
			}
		})
	}
}

// TestSgemmMatchesGonum runs Implementation.Sgemm and gonum's native Sgemm on
// the same operands, including sizes past the default cache blocks.
func TestSgemmMatchesGonum(t *testing.T) {
	cases := []gemmCase{
		{128, 256, 784, blas.NoTrans, blas.Trans, 1, 1, 0, 0, 0},
		{128, 784, 256, blas.NoTrans, blas.NoTrans, 1, 0, 0, 0, 0},
		{256, 784, 128, blas.Trans, blas.NoTrans, 1, 0, 0, 0, 0},
		{64, 196, 288, blas.NoTrans, blas.NoTrans, -0.5, 0.3, 1, 2, 3},
		{300, 5, 600, blas.Trans, blas.Trans, 2, 1, 0, 5, 0},
	}
	rng := rand.New(rand.NewPCG(5, 6))
	for _, tc := range cases {
		t.Run(tc.String(), func(t *testing.T) {
			o := newOperands[float32](tc, rng)
			got := append([]float32(nil), o.c...)
			ref := append([]float32(nil), o.c...)
			Implementation{}.Sgemm(tc.tA, tc.tB, tc.m, tc.n, tc.k, float32(tc.alpha), o.a, o.lda, o.b, o.ldb, float32(tc.beta), got, o.ldc)
			gonum.Implementation{}.Sgemm(tc.tA, tc.tB, tc.m, tc.n, tc.k, float32(tc.alpha), o.a, o.lda, o.b, o.ldb, float32(tc.beta), ref, o.ldc)
			_, bound := naiveGemm(tc, o)
			for i := range tc.m {
				for j := range tc.n {
					g, r := got[i*o.ldc+j], ref[i*o.ldc+j]
					// Both are within (k+4)·eps·bound of the exact value.
					tol := 2 * float64(tc.k+4) * 0x1p-24 * bound[i*tc.n+j]
					if math.Abs(float64(g-r)) > tol {
						t.Fatalf("C[%d][%d] = %v, gonum %v (tolerance %.3g)", i, j, g, r, tol)
					}
				}
			}
		})
	}
}

// TestDgemmMatchesGonum runs Implementation.Dgemm and gonum's native Dgemm on
// the same operands.
func TestDgemmMatchesGonum(t *testing.T) {
	cases := []gemmCase{
		{128, 256, 784, blas.NoTrans, blas.Trans, 1, 1, 0, 0, 0},
		{67, 45, 350, blas.Trans, blas.NoTrans, -0.5, 0.3, 2, 1, 0},
		{20, 130, 9, blas.Trans, blas.Trans, 2, 0, 0, 3, 1},
	}
	rng := rand.New(rand.NewPCG(10, 11))
	for _, tc := range cases {
		t.Run(tc.String(), func(t *testing.T) {
			o := newOperands[float64](tc, rng)
			got := append([]float64(nil), o.c...)
			ref := append([]float64(nil), o.c...)
			Implementation{}.Dgemm(tc.tA, tc.tB, tc.m, tc.n, tc.k, tc.alpha, o.a, o.lda, o.b, o.ldb, tc.beta, got, o.ldc)
			gonum.Implementation{}.Dgemm(tc.tA, tc.tB, tc.m, tc.n, tc.k, tc.alpha, o.a, o.lda, o.b, o.ldb, tc.beta, ref, o.ldc)
			_, bound := naiveGemm(tc, o)
			for i := range tc.m {
				for j := range tc.n {
					g, r := got[i*o.ldc+j], ref[i*o.ldc+j]
					tol := 2 * float64(tc.k+4) * 0x1p-53 * bound[i*tc.n+j]
					if math.Abs(g-r) > tol {
						t.Fatalf("C[%d][%d] = %v, gonum %v (tolerance %.3g)", i, j, g, r, tol)
					}
				}
			}
		})
	}
}

// TestGemmIsDeterministic checks that the same product gives the same bits
// every time, from fresh or reused workspaces and from concurrent callers.
func TestGemmIsDeterministic(t *testing.T) {
	tc := gemmCase{97, 131, 530, blas.NoTrans, blas.Trans, 1, 0.3, 1, 0, 2}
	o := newOperands[float32](tc, rand.New(rand.NewPCG(8, 9)))
	run := func() []float32 {
		c := append([]float32(nil), o.c...)
		Implementation{}.Sgemm(tc.tA, tc.tB, tc.m, tc.n, tc.k, 1, o.a, o.lda, o.b, o.ldb, 0.3, c, o.ldc)
		return c
	}
	first := run()
	results := make([][]float32, 4)
	var wg sync.WaitGroup
	for g := range results {
		wg.Go(func() { results[g] = run() })
	}
	wg.Wait()
	for g, r := range results {
		for i := range r {
			if math.Float32bits(r[i]) != math.Float32bits(first[i]) {
				t.Fatalf("run %d: C[%d] = %v, first run %v", g, i, r[i], first[i])
			}
		}
	}
}

// TestGemmPanicsLikeGonum checks each invalid argument panics with gonum's
// message, so callers cannot tell the implementations apart by their errors.
func TestGemmPanicsLikeGonum(t *testing.T) {
	a, b, c := make([]float32, 12), make([]float32, 12), make([]float32, 12)
	type args struct {
		tA, tB                 blas.Transpose
		m, n, k, lda, ldb, ldc int
		a, b, c                []float32
	}
	ok := args{blas.NoTrans, blas.NoTrans, 3, 4, 3, 3, 4, 4, a[:9], b, c}
	for _, tc := range []struct {
		name   string
		change func(*args)
		want   string
	}{
		{"bad transpose", func(x *args) { x.tA = 'x' }, badTranspose},
		{"m < 0", func(x *args) { x.m = -1 }, mLT0},
		{"n < 0", func(x *args) { x.n = -1 }, nLT0},
		{"k < 0", func(x *args) { x.k = -1 }, kLT0},
		{"lda < k", func(x *args) { x.lda = 2 }, badLdA},
		{"lda < m transposed", func(x *args) { x.tA, x.lda = blas.Trans, 2 }, badLdA},
		{"ldb < n", func(x *args) { x.ldb = 3 }, badLdB},
		{"ldc < n", func(x *args) { x.ldc = 3 }, badLdC},
		{"short a", func(x *args) { x.a = a[:8] }, shortA},
		{"short b", func(x *args) { x.b = b[:11] }, shortB},
		{"short c", func(x *args) { x.c = c[:11] }, shortC},
	} {
		t.Run(tc.name, func(t *testing.T) {
			x := ok
			tc.change(&x)
			for _, impl := range []blas.Float32Level3{Implementation{}, gonum.Implementation{}} {
				got := func() (msg any) {
					defer func() { msg = recover() }()
					impl.Sgemm(x.tA, x.tB, x.m, x.n, x.k, 1, x.a, x.lda, x.b, x.ldb, 0, x.c, x.ldc)
					return nil
				}()
				if got != tc.want {
					t.Errorf("%T panicked with %v, want %q", impl, got, tc.want)
				}
			}
		})
	}
	// The valid call does not panic.
	Implementation{}.Sgemm(ok.tA, ok.tB, ok.m, ok.n, ok.k, 1, ok.a, ok.lda, ok.b, ok.ldb, 0, ok.c, ok.ldc)
}
