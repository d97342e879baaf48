// Package winograd holds the element-wise transforms of the Winograd
// F(2×2, 3×3) convolution (Lavin & Gray 2016) that package nn runs its 3×3
// stride-1 convolutions with. nn arranges the data and does the 16 matrix
// products; the transforms here are what remains: additions over
// contiguous rows, which in float32 run on AVX2 where the CPU has it
// (build tag !purego on amd64), and otherwise in portable Go.
//
// With Bᵀ = [1 0 −1 0; 0 1 1 0; 0 −1 1 0; 0 1 0 −1],
// G = [1 0 0; ½ ½ ½; ½ −½ ½; 0 0 1] and Aᵀ = [1 1 1 0; 0 1 −1 −1], a 3×3
// kernel k becomes G·k·Gᵀ (Filter), a 4×4 input tile d becomes Bᵀ·d·B (Rows
// combines the tile's rows, Columns its columns) and a 4×4 transformed
// product m becomes the 2×2 output Aᵀ·m·A (Output).
package winograd

// Filter writes G·k·Gᵀ for a 3×3 kernel k (row-major, 9 values) into u,
// value ξ = 4i+j (row i, column j of the 4×4 result) at u[ξ·stride].
func Filter[E float32 | float64](k, u []E, stride int) {
	k = k[:9]
	u = u[:15*stride+1]
	// q = G·k, 4×3, column by column.
	var q [4][3]E
	for j := range 3 {
		k0, k1, k2 := k[j], k[3+j], k[6+j]
		q[0][j] = k0
		q[1][j] = (k0 + k1 + k2) / 2
		q[2][j] = (k0 - k1 + k2) / 2
		q[3][j] = k2
	}
	// q·Gᵀ, row by row.
	for i := range 4 {
		q0, q1, q2 := q[i][0], q[i][1], q[i][2]
		u[(i*4+0)*stride] = q0
		u[(i*4+1)*stride] = (q0 + q1 + q2) / 2
		u[(i*4+2)*stride] = (q0 - q1 + q2) / 2
		u[(i*4+3)*stride] = q2
	}
}

// Rows writes the rows of Bᵀ·d element-wise over len(a0) columns:
// a0 = d0 − d2, a1 = d1 + d2, a2 = d2 − d1, a3 = d1 − d3, for four
// consecutive image rows d0 … d3.
func Rows[E float32 | float64](d0, d1, d2, d3, a0, a1, a2, a3 []E) {
	n := len(a0)
	d0, d1, d2, d3 = d0[:n], d1[:n], d2[:n], d3[:n]
	a1, a2, a3 = a1[:n], a2[:n], a3[:n]
	done := 0
	if useAVX2 && n >= 8 {
		if f, ok := any(d0).([]float32); ok {
			done = n &^ 7
			rowsAVX2(&f[0], &any(d1).([]float32)[0], &any(d2).([]float32)[0], &any(d3).([]float32)[0],
				&any(a0).([]float32)[0], &any(a1).([]float32)[0], &any(a2).([]float32)[0], &any(a3).([]float32)[0], done)
		}
	}
	for i := done; i < n; i++ {
		a0[i] = d0[i] - d2[i]
		a1[i] = d1[i] + d2[i]
		a2[i] = d2[i] - d1[i]
		a3[i] = d1[i] - d3[i]
	}
}

// Columns writes ·B for len(v0) tiles of one row of Bᵀ·d: tile t reads
// a[2t] … a[2t+3] (a starts at the tile row's first column, so a holds at
// least 2·len(v0)+2 values) and writes v0[t] = a[2t] − a[2t+2],
// v1[t] = a[2t+1] + a[2t+2], v2[t] = a[2t+2] − a[2t+1],
// v3[t] = a[2t+1] − a[2t+3].
func Columns[E float32 | float64](a, v0, v1, v2, v3 []E) {
	n := len(v0)
	a = a[:2*n+2]
	v1, v2, v3 = v1[:n], v2[:n], v3[:n]
	done := 0
	if useAVX2 && n >= 8 {
		if f, ok := any(a).([]float32); ok {
			done = n &^ 7
			columnsAVX2(&f[0], done, &any(v0).([]float32)[0], &any(v1).([]float32)[0],
				&any(v2).([]float32)[0], &any(v3).([]float32)[0])
		}
	}
	for t := done; t < n; t++ {
		x := a[2*t : 2*t+4]
		v0[t] = x[0] - x[2]
		v1[t] = x[1] + x[2]
		v2[t] = x[2] - x[1]
		v3[t] = x[1] - x[3]
	}
}

// Output writes Aᵀ·m·A for n tiles whose 16 transformed values lie step
// apart in m (value ξ of tile t at m[ξ·step+t], ξ = 4i+j for row i and
// column j of the 4×4 tile) into two image rows: row0[2t], row0[2t+1],
// row1[2t], row1[2t+1].
func Output[E float32 | float64](m []E, step, n int, row0, row1 []E) {
	if n == 0 {
		return
	}
	m = m[:15*step+n]
	row0, row1 = row0[:2*n], row1[:2*n]
	done := 0
	if useAVX2 && n >= 8 {
		if f, ok := any(m).([]float32); ok {
			done = n &^ 7
			outputAVX2(&f[0], step, done, &any(row0).([]float32)[0], &any(row1).([]float32)[0])
		}
	}
	for t := done; t < n; t++ {
		p, q := outputColumns(m, step, t)
		row0[2*t] = p[0] + p[1] + p[2]
		row0[2*t+1] = p[1] - p[2] - p[3]
		row1[2*t] = q[0] + q[1] + q[2]
		row1[2*t+1] = q[1] - q[2] - q[3]
	}
}

// outputColumns is the first step of Output for tile t: the two rows of
// Aᵀ·m, p = m0 + m1 + m2 and q = m1 − m2 − m3 per column, summed in the
// assembly's order so that both give the same bits.
func outputColumns[E float32 | float64](m []E, step, t int) (p, q [4]E) {
	for j := range 4 {
		m0, m1, m2, m3 := m[j*step+t], m[(4+j)*step+t], m[(8+j)*step+t], m[(12+j)*step+t]
		p[j] = m1 + m2 + m0
		q[j] = m1 - m2 - m3
	}
	return p, q
}
