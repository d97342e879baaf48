//go:build amd64 && !purego

package gemm

import (
	"unsafe"

	"golang.org/x/sys/cpu"
)

// chooseKernels returns the AVX2/FMA assembly kernels when the CPU (and OS)
// support them, else the portable Go kernels.
func chooseKernels() kernels {
	if hasAVX2FMA() {
		return avx2Kernels()
	}
	return portableKernels()
}

// availableKernels lists the kernel sets this machine can run, for tests and
// benchmarks: the portable ones always, the assembly ones where supported.
func availableKernels() []kernels {
	ks := []kernels{portableKernels()}
	if hasAVX2FMA() {
		ks = append(ks, avx2Kernels())
	}
	return ks
}

// hasAVX2FMA reports whether the AVX2 and FMA instructions can run
// (x/sys/cpu also checks that the OS saves the YMM registers).
func hasAVX2FMA() bool { return cpu.X86.HasAVX2 && cpu.X86.HasFMA }

// avx2Kernels are the assembly micro-kernels of kernel_amd64.s: 6×16 float32
// and 6×8 float64 tiles, twelve YMM accumulators each. The blocking keeps a
// kc×nr B panel (20 KiB) in L1 and an mc×kc A block in L2; kc 320 takes the
// k = 288 of a 3×3 convolution over 32 channels in one block.
func avx2Kernels() kernels {
	return kernels{
		f32: kernelSet[float32]{name: "avx2-fma 6x16", mr: 6, nr: 16, kc: 320, mc: 144, nc: 4080, micro: sgemmMicro6x16AVX2,
			pack: packers[float32]{copyRows: copyRowsAVX[float32], copyPanels: copyPanelsAVX[float32], interleave4: interleave4AVX, interleave2: interleave2AVX}},
		f64: kernelSet[float64]{name: "avx2-fma 6x8", mr: 6, nr: 8, kc: 320, mc: 72, nc: 4080, micro: dgemmMicro6x8AVX2,
			pack: packers[float64]{copyRows: copyRowsAVX[float64], copyPanels: copyPanelsAVX[float64], interleave4: interleave4Go[float64], interleave2: interleave2Go[float64]}},
	}
}

// sgemmMicro6x16AVX2 is the microKernel over the assembly: the slice
// expressions bound-check every element the assembly touches.
func sgemmMicro6x16AVX2(kc int, ap, bp, c []float32, ldc int, alpha, beta float32) {
	_ = ap[kc*6-1]
	_ = bp[kc*16-1]
	_ = c[5*ldc+15]
	sgemmKernel6x16AVX2(kc, &ap[0], &bp[0], &c[0], ldc, alpha, beta)
}

// dgemmMicro6x8AVX2 is sgemmMicro6x16AVX2 for float64 6×8 tiles.
func dgemmMicro6x8AVX2(kc int, ap, bp, c []float64, ldc int, alpha, beta float64) {
	_ = ap[kc*6-1]
	_ = bp[kc*8-1]
	_ = c[5*ldc+7]
	dgemmKernel6x8AVX2(kc, &ap[0], &bp[0], &c[0], ldc, alpha, beta)
}

// copyRowsAVX is packers.copyRows with AVX moves for rows of 24 and 48
// bytes (the A panels of both kernel sets), plain Go otherwise.
func copyRowsAVX[T float](dst []T, width int, src []T, ld, n int) {
	if n == 0 {
		return
	}
	size := int(unsafe.Sizeof(dst[0]))
	var copyRows func(dst, src unsafe.Pointer, ld, n int)
	switch width * size {
	case 24:
		copyRows = copyRows24
	case 48:
		copyRows = copyRows48
	default:
		copyRowsGo(dst, width, src, ld, n)
		return
	}
	_ = dst[n*width-1]
	_ = src[(n-1)*ld+width-1]
	copyRows(unsafe.Pointer(&dst[0]), unsafe.Pointer(&src[0]), ld*size, n)
}

// copyPanelsAVX is packers.copyPanels with AVX moves for panels 64 bytes
// wide (the B panels of both kernel sets), plain Go otherwise.
func copyPanelsAVX[T float](dst []T, width int, src []T, ld, n, panels int) {
	size := int(unsafe.Sizeof(dst[0]))
	if width*size != 64 {
		copyPanelsGo(dst, width, src, ld, n, panels)
		return
	}
	if n == 0 || panels == 0 {
		return
	}
	_ = dst[panels*n*width-1]
	_ = src[(n-1)*ld+panels*width-1]
	copyPanels64(unsafe.Pointer(&dst[0]), unsafe.Pointer(&src[0]), ld*size, n, panels, n*width*size)
}

// interleave4AVX is packers.interleave4 for float32, transposing 4×4 blocks
// in registers.
func interleave4AVX(dst []float32, width int, src []float32, ld, n int) {
	if n == 0 {
		return
	}
	_ = dst[(n-1)*width+3]
	_ = src[3*ld+n-1]
	interleave4F32(unsafe.Pointer(&dst[0]), width*4, unsafe.Pointer(&src[0]), ld*4, n)
}

// interleave2AVX is packers.interleave2 for float32.
func interleave2AVX(dst []float32, width int, src []float32, ld, n int) {
	if n == 0 {
		return
	}
	_ = dst[(n-1)*width+1]
	_ = src[ld+n-1]
	interleave2F32(unsafe.Pointer(&dst[0]), width*4, unsafe.Pointer(&src[0]), ld*4, n)
}

// sgemmKernel6x16AVX2 computes C[0:6, 0:16] = beta·C + alpha·Ap·Bp over
// kc > 0 steps (kernel_amd64.s); beta 0 does not read C. It requires AVX2
// and FMA.
//
//go:noescape
func sgemmKernel6x16AVX2(kc int, a, b, c *float32, ldc int, alpha, beta float32)

// dgemmKernel6x8AVX2 computes C[0:6, 0:8] = beta·C + alpha·Ap·Bp over
// kc > 0 steps (kernel_amd64.s); beta 0 does not read C. It requires AVX2
// and FMA.
//
//go:noescape
func dgemmKernel6x8AVX2(kc int, a, b, c *float64, ldc int, alpha, beta float64)

// copyRows48 and copyRows24 copy n rows of 48 or 24 bytes, ld bytes apart
// from src, to consecutive rows of dst (kernel_amd64.s). They require AVX.
//
//go:noescape
func copyRows48(dst, src unsafe.Pointer, ld, n int)

//go:noescape
func copyRows24(dst, src unsafe.Pointer, ld, n int)

// copyPanels64 cuts n rows of src, ld bytes apart, into panels panels 64
// bytes wide, panelSize bytes apart in dst (kernel_amd64.s). It requires
// AVX and panels > 0.
//
//go:noescape
func copyPanels64(dst, src unsafe.Pointer, ld, n, panels, panelSize int)

// interleave4F32 sets dst[p*width+i] = src[i*ld+p] for four rows i of
// float32 and p < n, width and ld in bytes (kernel_amd64.s). It requires
// AVX.
//
//go:noescape
func interleave4F32(dst unsafe.Pointer, width int, src unsafe.Pointer, ld, n int)

// interleave2F32 is interleave4F32 for two rows.
//
//go:noescape
func interleave2F32(dst unsafe.Pointer, width int, src unsafe.Pointer, ld, n int)
