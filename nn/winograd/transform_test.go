package winograd

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

var (
	bT = [4][4]float64{{1, 0, -1, 0}, {0, 1, 1, 0}, {0, -1, 1, 0}, {0, 1, 0, -1}}
	aT = [2][4]float64{{1, 1, 1, 0}, {0, 1, -1, -1}}
)

// TestTransformsMatchMatrixProducts checks Rows+Columns against Bᵀ·d·B and
// Output against Aᵀ·m·A computed with the explicit matrices in float64, in
// float32 and float64, with and without the assembly, on row lengths that
// leave every remainder of 8; and the assembly against the portable code
// bit for bit.
func TestTransformsMatchMatrixProducts(t *testing.T) {
	for _, n := range []int{1, 2, 7, 8, 9, 16, 17, 31, 40} {
		for _, asm := range []bool{false, true} {
			if asm && !useAVX2 {
				continue
			}
			t.Run(fmt.Sprintf("%d tiles asm %v", n, asm), func(t *testing.T) {
				defer func(saved bool) { useAVX2 = saved }(useAVX2)
				useAVX2 = asm
				rng := rand.New(rand.NewPCG(7, uint64(n)))
				checkInput[float32](t, rng, n, 1e-6)
				checkInput[float64](t, rng, n, 1e-12)
				checkOutput[float32](t, rng, n, 1e-6)
				checkOutput[float64](t, rng, n, 1e-12)
			})
		}
	}
	if !useAVX2 {
		return
	}
	t.Run("assembly equals portable code", func(t *testing.T) {
		rng := rand.New(rand.NewPCG(9, 9))
		n := 37
		d := randomRows[float32](rng, 4, 2*n+2)
		m := randomRows[float32](rng, 1, 16*(n+3))[0]
		run := func(asm bool) (v [4][]float32, rows [2][]float32) {
			defer func(saved bool) { useAVX2 = saved }(useAVX2)
			useAVX2 = asm
			a := randomRows[float32](rng, 4, 2*n+2)
			Rows(d[0], d[1], d[2], d[3], a[0], a[1], a[2], a[3])
			for j := range v {
				v[j] = make([]float32, n)
			}
			Columns(a[1], v[0], v[1], v[2], v[3])
			rows[0], rows[1] = make([]float32, 2*n), make([]float32, 2*n)
			Output(m, n+3, n, rows[0], rows[1])
			return v, rows
		}
		v1, r1 := run(true)
		v2, r2 := run(false)
		for j := range v1 {
			for i := range v1[j] {
				if math.Float32bits(v1[j][i]) != math.Float32bits(v2[j][i]) {
					t.Fatalf("Columns v%d[%d]: assembly %v, Go %v", j, i, v1[j][i], v2[j][i])
				}
			}
		}
		for j := range r1 {
			for i := range r1[j] {
				if math.Float32bits(r1[j][i]) != math.Float32bits(r2[j][i]) {
					t.Fatalf("Output row%d[%d]: assembly %v, Go %v", j, i, r1[j][i], r2[j][i])
				}
			}
		}
	})
}

// checkInput transforms a 4-row strip of n tiles (2n+2 columns) and
// compares every tile's 16 values with Bᵀ·d·B.
func checkInput[E float32 | float64](t *testing.T, rng *rand.Rand, n int, tol float64) {
	t.Helper()
	d := randomRows[E](rng, 4, 2*n+2)
	a := randomRows[E](rng, 4, 2*n+2) // stale values must be overwritten
	Rows(d[0], d[1], d[2], d[3], a[0], a[1], a[2], a[3])
	var v [16][]E
	for i := range 4 {
		for j := range 4 {
			v[4*i+j] = make([]E, n)
		}
		Columns(a[i], v[4*i], v[4*i+1], v[4*i+2], v[4*i+3])
	}
	for tile := range n {
		// want = Bᵀ·d·B for the tile's columns 2t … 2t+3.
		for i := range 4 {
			for j := range 4 {
				want := 0.0
				for r := range 4 {
					for c := range 4 {
						want += bT[i][r] * float64(d[r][2*tile+c]) * bT[j][c]
					}
				}
				if got := float64(v[4*i+j][tile]); math.Abs(got-want) > tol*4 {
					t.Fatalf("%T tile %d value (%d,%d) = %v, Bᵀ·d·B gives %v", d[0][0], tile, i, j, got, want)
				}
			}
		}
	}
}

// checkOutput transforms n tiles of 16 values (step n+3 apart) and
// compares each tile's 2×2 output with Aᵀ·m·A.
func checkOutput[E float32 | float64](t *testing.T, rng *rand.Rand, n int, tol float64) {
	t.Helper()
	step := n + 3
	m := randomRows[E](rng, 1, 16*step)[0]
	rows := randomRows[E](rng, 2, 2*n)
	Output(m, step, n, rows[0], rows[1])
	for tile := range n {
		for i := range 2 {
			for j := range 2 {
				want := 0.0
				for r := range 4 {
					for c := range 4 {
						want += aT[i][r] * float64(m[(4*r+c)*step+tile]) * aT[j][c]
					}
				}
				if got := float64(rows[i][2*tile+j]); math.Abs(got-want) > tol*9 {
					t.Fatalf("%T tile %d output (%d,%d) = %v, Aᵀ·m·A gives %v", m[0], tile, i, j, got, want)
				}
			}
		}
	}
}

func randomRows[E float32 | float64](rng *rand.Rand, rows, n int) [][]E {
	out := make([][]E, rows)
	for i := range out {
		out[i] = make([]E, n)
		for j := range out[i] {
			out[i][j] = E(rng.Float64()*2 - 1)
		}
	}
	return out
}

func BenchmarkTransforms(b *testing.B) {
	const n = 256
	rng := rand.New(rand.NewPCG(1, 1))
	d := randomRows[float32](rng, 4, 2*n+2)
	a := randomRows[float32](rng, 4, 2*n+2)
	v := randomRows[float32](rng, 4, n)
	m := randomRows[float32](rng, 1, 16*n)[0]
	rows := randomRows[float32](rng, 2, 2*n)
	b.Run("input", func(b *testing.B) {
		for range b.N {
			Rows(d[0], d[1], d[2], d[3], a[0], a[1], a[2], a[3])
			for i := range 4 {
				Columns(a[i], v[0], v[1], v[2], v[3])
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/tile")
	})
	b.Run("output", func(b *testing.B) {
		for range b.N {
			Output(m, n, n, rows[0], rows[1])
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/tile")
	})
}

// TestPlanesMatchMatrixProducts checks InputPlane and OutputPlane on whole
// images of odd and even sizes against Bᵀ·d·B of the zero-padded patches
// and Aᵀ·m·A, with and without the assembly.
func TestPlanesMatchMatrixProducts(t *testing.T) {
	for _, size := range [][2]int{{1, 1}, {2, 3}, {4, 4}, {5, 7}, {8, 8}, {16, 17}, {17, 32}, {32, 32}} {
		for _, asm := range []bool{false, true} {
			if asm && !useAVX2 {
				continue
			}
			h, w := size[0], size[1]
			t.Run(fmt.Sprintf("%dx%d asm %v", h, w, asm), func(t *testing.T) {
				defer func(saved bool) { useAVX2 = saved }(useAVX2)
				useAVX2 = asm
				rng := rand.New(rand.NewPCG(11, uint64(h*100+w)))
				th, tw := Tiles(h, w)
				ld := th*tw + 5
				plane := randomRows[float32](rng, 1, h*w)[0]
				v := randomRows[float32](rng, 1, 16*ld)[0]
				InputPlane(plane, h, w, v, ld, randomRows[float32](rng, 1, ScratchLen(w))[0])
				pixel := func(y, x int) float64 {
					if y < 0 || y >= h || x < 0 || x >= w {
						return 0
					}
					return float64(plane[y*w+x])
				}
				for ty := range th {
					for tx := range tw {
						for i := range 4 {
							for j := range 4 {
								want := 0.0
								for r := range 4 {
									for c := range 4 {
										want += bT[i][r] * pixel(2*ty-1+r, 2*tx-1+c) * bT[j][c]
									}
								}
								if got := float64(v[(4*i+j)*ld+ty*tw+tx]); math.Abs(got-want) > 1e-5 {
									t.Fatalf("input tile (%d,%d) value (%d,%d) = %v, Bᵀ·d·B gives %v", ty, tx, i, j, got, want)
								}
							}
						}
					}
				}
				m := randomRows[float32](rng, 1, 16*ld)[0]
				y := randomRows[float32](rng, 1, h*w)[0]
				OutputPlane(m, ld, h, w, y)
				for oy := range h {
					for ox := range w {
						ty, tx, i, j := oy/2, ox/2, oy%2, ox%2
						want := 0.0
						for r := range 4 {
							for c := range 4 {
								want += aT[i][r] * float64(m[(4*r+c)*ld+ty*tw+tx]) * aT[j][c]
							}
						}
						if got := float64(y[oy*w+ox]); math.Abs(got-want) > 1e-5 {
							t.Fatalf("output (%d,%d) = %v, Aᵀ·m·A gives %v", oy, ox, got, want)
						}
					}
				}
			})
		}
	}
}

// TestFilterMatchesMatrixProduct checks Filter against G·k·Gᵀ computed with
// the explicit matrix, in float64 and float32, at a stride that leaves gaps.
func TestFilterMatchesMatrixProduct(t *testing.T) {
	g := [4][3]float64{{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}}
	rng := rand.New(rand.NewPCG(11, 12))
	for trial := range 5 {
		k := make([]float64, 9)
		for i := range k {
			k[i] = rng.NormFloat64()
		}
		var want [4][4]float64
		for i := range 4 {
			for j := range 4 {
				for a := range 3 {
					for b := range 3 {
						want[i][j] += g[i][a] * k[a*3+b] * g[j][b]
					}
				}
			}
		}
		const stride = 3
		u64 := make([]float64, 16*stride)
		Filter(k, u64, stride)
		k32, u32 := make([]float32, 9), make([]float32, 16*stride)
		for i, v := range k {
			k32[i] = float32(v)
		}
		Filter(k32, u32, stride)
		for i := range 4 {
			for j := range 4 {
				xi := (4*i + j) * stride
				if math.Abs(u64[xi]-want[i][j]) > 1e-12 || math.Abs(float64(u32[xi])-want[i][j]) > 1e-5 {
					t.Fatalf("trial %d, value (%d,%d): got %v (float64), %v (float32), want %v", trial, i, j, u64[xi], u32[xi], want[i][j])
				}
			}
		}
	}
}
