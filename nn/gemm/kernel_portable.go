package gemm

// portableKernels are the pure-Go micro-kernels: 4×4 tiles, sixteen scalar
// accumulators (all in registers on arm64; amd64, with sixteen, spills a
// few). They run where the assembly kernels cannot (other architectures,
// CPUs without AVX2/FMA, the purego build tag) and serve the tests as a
// second implementation.
func portableKernels() kernels {
	return kernels{
		f32: kernelSet[float32]{name: "portable-go 4x4", mr: 4, nr: 4, kc: 256, mc: 128, nc: 4096, micro: portableMicro4x4[float32], pack: goPackers[float32]()},
		f64: kernelSet[float64]{name: "portable-go 4x4", mr: 4, nr: 4, kc: 256, mc: 128, nc: 4096, micro: portableMicro4x4[float64], pack: goPackers[float64]()},
	}
}

// portableMicro4x4 is the microKernel for 4×4 tiles in plain Go.
func portableMicro4x4[T float](kc int, ap, bp, c []T, ldc int, alpha, beta T) {
	ap = ap[:kc*4]
	bp = bp[:kc*4]
	var c00, c01, c02, c03 T
	var c10, c11, c12, c13 T
	var c20, c21, c22, c23 T
	var c30, c31, c32, c33 T
	for len(ap) >= 4 && len(bp) >= 4 {
		b0, b1, b2, b3 := bp[0], bp[1], bp[2], bp[3]
		a0, a1, a2, a3 := ap[0], ap[1], ap[2], ap[3]
		c00 += a0 * b0
		c01 += a0 * b1
		c02 += a0 * b2
		c03 += a0 * b3
		c10 += a1 * b0
		c11 += a1 * b1
		c12 += a1 * b2
		c13 += a1 * b3
		c20 += a2 * b0
		c21 += a2 * b1
		c22 += a2 * b2
		c23 += a2 * b3
		c30 += a3 * b0
		c31 += a3 * b1
		c32 += a3 * b2
		c33 += a3 * b3
		ap, bp = ap[4:], bp[4:]
	}
	storeRow4(c[0*ldc:], alpha, beta, c00, c01, c02, c03)
	storeRow4(c[1*ldc:], alpha, beta, c10, c11, c12, c13)
	storeRow4(c[2*ldc:], alpha, beta, c20, c21, c22, c23)
	storeRow4(c[3*ldc:], alpha, beta, c30, c31, c32, c33)
}

// storeRow4 sets the first four values of row to beta·row + alpha·v; beta 0
// does not read row.
func storeRow4[T float](row []T, alpha, beta, v0, v1, v2, v3 T) {
	row = row[:4]
	if beta == 0 {
		row[0], row[1], row[2], row[3] = alpha*v0, alpha*v1, alpha*v2, alpha*v3
		return
	}
	row[0] = beta*row[0] + alpha*v0
	row[1] = beta*row[1] + alpha*v1
	row[2] = beta*row[2] + alpha*v2
	row[3] = beta*row[3] + alpha*v3
}
