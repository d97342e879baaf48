package gemm

import "sync"

// float is the element type of the kernels.
type float interface{ ~float32 | ~float64 }

// microKernel computes C[0:mr, 0:nr] = beta·C + alpha·Ap·Bp for one mr×nr
// tile, where Ap is a packed A panel (kc steps of mr values) and Bp a packed
// B panel (kc steps of nr values); c holds the tile's rows ldc apart. kc > 0.
// With beta 0 it writes C without reading it.
type microKernel[T float] func(kc int, ap, bp, c []T, ldc int, alpha, beta T)

// kernelSet is a micro-kernel with its tile (mr×nr) and the cache blocking it
// is tuned for: kc steps of k per packed panel, mc rows of A per packed block
// (kept in L2), nc columns of B per packed block (kept in L3).
type kernelSet[T float] struct {
	name       string
	mr, nr     int
	kc, mc, nc int
	micro      microKernel[T]
	pack       packers[T]
}

// kernels is the pair of kernel sets Sgemm and Dgemm run on.
type kernels struct {
	f32 kernelSet[float32]
	f64 kernelSet[float64]
}

// activeKernels is chosen once at start-up, by CPU features (kernel_amd64.go)
// or as the portable kernels (kernel_other.go).
var activeKernels = chooseKernels()

// workspace holds the packed A and B blocks and an edge tile. One is taken
// from a pool per call so that concurrent callers never share one and the
// steady state allocates nothing.
type workspace[T float] struct {
	a, b, tile []T
}

var (
	workspaces32 sync.Pool // of *workspace[float32]
	workspaces64 sync.Pool // of *workspace[float64]
)

// gemm computes C = alpha·op(A)·op(B) + beta·C (row-major) with kernel set ks;
// the arguments have been checked.
func gemm[T float](ks *kernelSet[T], pool *sync.Pool, aTrans, bTrans bool, m, n, k int, alpha T, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int) {
	if alpha == 0 || k == 0 {
		scaleC(m, n, beta, c, ldc)
		return
	}
	ws, _ := pool.Get().(*workspace[T])
	if ws == nil {
		ws = new(workspace[T])
	}
	defer pool.Put(ws)

	// Blocks of near-equal size: k = 784 with kc 256 runs as 4 blocks of
	// 196 rather than 3 of 256 and one of 16.
	mr, nr := ks.mr, ks.nr
	kc := evenBlock(k, ks.kc, 1)
	mc := evenBlock(m, ks.mc, mr)
	nc := evenBlock(n, ks.nc, nr)
	ws.a = grow(ws.a, roundUp(min(mc, m), mr)*kc)
	ws.b = grow(ws.b, roundUp(min(nc, n), nr)*kc)
	ws.tile = grow(ws.tile, mr*nr)

	for jc := 0; jc < n; jc += nc {
		ncb := min(nc, n-jc)
		for pc := 0; pc < k; pc += kc {
			kcb := min(kc, k-pc)
			// The first k block applies beta; the later ones add to C.
			blockBeta := T(1)
			if pc == 0 {
				blockBeta = beta
			}
			packB(ks, bTrans, b, ldb, pc, kcb, jc, ncb, ws.b)
			for ic := 0; ic < m; ic += mc {
				mcb := min(mc, m-ic)
				packA(ks, aTrans, a, lda, ic, mcb, pc, kcb, ws.a)
				macroKernel(ks, mcb, ncb, kcb, alpha, blockBeta, ws.a, ws.b, ws.tile, c[ic*ldc+jc:], ldc)
			}
		}
	}
}

// evenBlock splits n into as few blocks of at most limit as possible, of
// near-equal size rounded up to a multiple of unit, and returns that size.
func evenBlock(n, limit, unit int) int {
	blocks := (n + limit - 1) / limit
	return min(limit, roundUp((n+blocks-1)/blocks, unit))
}

// macroKernel sets an mcb×ncb block of C to beta·C + alpha·Ap·Bp from packed
// A and B blocks, tile by tile. Full tiles are computed in place; tiles cut
// by the block's edge are computed in tile and their valid part merged into
// C.
func macroKernel[T float](ks *kernelSet[T], mcb, ncb, kcb int, alpha, beta T, ap, bp, tile, c []T, ldc int) {
	mr, nr := ks.mr, ks.nr
	for jr := 0; jr < ncb; jr += nr {
		nrb := min(nr, ncb-jr)
		bPanel := bp[(jr/nr)*kcb*nr:][:kcb*nr]
		for ir := 0; ir < mcb; ir += mr {
			mrb := min(mr, mcb-ir)
			aPanel := ap[(ir/mr)*kcb*mr:][:kcb*mr]
			if mrb == mr && nrb == nr {
				ks.micro(kcb, aPanel, bPanel, c[ir*ldc+jr:], ldc, alpha, beta)
				continue
			}
			ks.micro(kcb, aPanel, bPanel, tile, nr, alpha, 0)
			for i := range mrb {
				dst := c[(ir+i)*ldc+jr:][:nrb]
				src := tile[i*nr:][:nrb]
				if beta == 0 {
					copy(dst, src)
					continue
				}
				for j, v := range src {
					dst[j] = beta*dst[j] + v
				}
			}
		}
	}
}

// scaleC sets C = beta·C; beta 0 writes zeros without reading C, as BLAS does.
func scaleC[T float](m, n int, beta T, c []T, ldc int) {
	switch beta {
	case 1:
		return
	case 0:
		for i := range m {
			clear(c[i*ldc:][:n])
		}
	default:
		for i := range m {
			row := c[i*ldc:][:n]
			for j := range row {
				row[j] *= beta
			}
		}
	}
}

// roundUp rounds n up to a multiple of to.
func roundUp(n, to int) int { return (n + to - 1) / to * to }

// grow returns s resliced or reallocated to length n.
func grow[T float](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}
