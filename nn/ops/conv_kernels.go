package ops

import (
	"github.com/sglr-pipe/sglr-pipe/nn/internal/vec"
	"gonum.org/v1/gonum/blas"
	G "gorgonia.org/gorgonia"
)

// The kernels behind the 2-D convolution ops of conv.go are
// im2col/col2im over NCHW images and the three matrix products of a
// convolution, on the BLAS gorgonia uses (G.WhichBLAS). They are
// single-threaded (the Trainer and the Evaluator run one graph per core) and
// allocate nothing once the caller's workspace has grown to its size.
//
// An image x [C,H,W] unrolls into col [C·k·k, Ho·Wo]: row (c,ki,kj) holds
// x[c, oy·s−p+ki, ox·s−p+kj] at column oy·Wo+ox (zero outside the image).
// With the weight read in place as a [O, C·k·k] matrix, one image's output
// [O, Ho·Wo] is W·col, already in NCHW order. When an image's output plane
// is small (deep, strided layers) several images share one matrix product
// of at least convMinGEMMColumns columns, so that the product stays
// efficient; their columns then pass through a [O, n·Ho·Wo] staging matrix.

// convMinGEMMColumns is the least number of columns (output positions) a
// convolution's matrix products are given, by grouping images whose output
// plane is smaller.
const convMinGEMMColumns = 256

// convGeometry is the shape of one 2-D convolution: input
// [batch,inC,inH,inW], weight [outC,inC,k,k], the stride and zero padding on
// every side, and output [batch,outC,outH,outW].
type convGeometry struct {
	batch, inC, inH, inW int
	outC, k, stride, pad int
	outH, outW           int
}

// newConvGeometry is the geometry of a convolution of x [B,C,H,W] by a
// square kernel [O,C,k,k]; ok is false when the kernel does not fit the
// padded input or the stride or padding are out of range.
func newConvGeometry(batch, inC, inH, inW, outC, k, stride, pad int) (g convGeometry, ok bool) {
	if batch < 1 || inC < 1 || inH < 1 || inW < 1 || outC < 1 || k < 1 || stride < 1 || pad < 0 {
		return convGeometry{}, false
	}
	outH, outW := convOutSize(inH, k, stride, pad), convOutSize(inW, k, stride, pad)
	if outH < 1 || outW < 1 {
		return convGeometry{}, false
	}
	return convGeometry{batch: batch, inC: inC, inH: inH, inW: inW, outC: outC, k: k, stride: stride, pad: pad, outH: outH, outW: outW}, true
}

// convOutSize is torch's output length floor((n + 2·pad − k)/stride) + 1
// (zero or less when the kernel does not fit).
func convOutSize(n, k, stride, pad int) int {
	span := n + 2*pad - k
	if span < 0 {
		return 0
	}
	return span/stride + 1
}

// inputShape is [B,C,H,W].
func (g convGeometry) inputShape() shape4 { return shape4{g.batch, g.inC, g.inH, g.inW} }

// weightShape is [O,C,k,k].
func (g convGeometry) weightShape() shape4 { return shape4{g.outC, g.inC, g.k, g.k} }

// outputShape is [B,O,Ho,Wo].
func (g convGeometry) outputShape() shape4 { return shape4{g.batch, g.outC, g.outH, g.outW} }

// colRows is C·k·k, the rows of an unrolled image and the columns of the
// weight matrix.
func (g convGeometry) colRows() int { return g.inC * g.k * g.k }

// inPlane is H·W, the values of one input channel.
func (g convGeometry) inPlane() int { return g.inH * g.inW }

// outPlane is Ho·Wo, the values of one output channel.
func (g convGeometry) outPlane() int { return g.outH * g.outW }

// imagesPerGEMM is how many images share one matrix product.
func (g convGeometry) imagesPerGEMM() int {
	return max(1, min(g.batch, convMinGEMMColumns/g.outPlane()))
}

// isPointwise reports a 1x1 kernel with stride 1 and no padding, whose
// unrolled image is the image itself.
func (g convGeometry) isPointwise() bool { return g.k == 1 && g.stride == 1 && g.pad == 0 }

// forwardWorkspaceLen is the scratch convForward needs.
func (g convGeometry) forwardWorkspaceLen() int {
	if g.isWinograd() {
		return g.winogradWorkspaceLen()
	}
	return g.im2colWorkspaceLen()
}

// im2colWorkspaceLen is the scratch an im2col kernel needs: the unrolled
// images of one group and, when images are grouped, the staging matrix.
func (g convGeometry) im2colWorkspaceLen() int {
	nb := g.imagesPerGEMM()
	n := g.colRows() * nb * g.outPlane()
	if nb > 1 {
		n += g.outC * nb * g.outPlane()
	}
	return n
}

// gemmFunc is C = alpha·op(A)·op(B) + beta·C on row-major matrices, as
// blas.Float32Level3.Sgemm and blas.Float64Level3.Dgemm.
type gemmFunc[E vec.Float] func(tA, tB blas.Transpose, m, n, k int, alpha E, a []E, lda int, b []E, ldb int, beta E, c []E, ldc int)

// sgemm is Sgemm on the BLAS gorgonia currently uses.
func sgemm(tA, tB blas.Transpose, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	G.WhichBLAS().Sgemm(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// dgemm is Dgemm on the BLAS gorgonia currently uses.
func dgemm(tA, tB blas.Transpose, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int) {
	G.WhichBLAS().Dgemm(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// convForward computes y [B,O,Ho,Wo] = x [B,C,H,W] ⋆ w [O,C,k,k], as
// Winograd F(2×2,3×3) when g.isWinograd (conv_winograd.go, its products on
// winogradGEMM), else by im2col and matrix products on gemm. ws is grown to
// g.forwardWorkspaceLen() on first use and reused.
func convForward[E vec.Float](g convGeometry, x, w, y []E, ws *[]E, gemm gemmFunc[E]) {
	if g.isWinograd() {
		winogradForward(g, x, w, y, ws, winogradGEMM[E]())
		return
	}
	im2colForward(g, x, w, y, ws, gemm)
}

// im2colForward is convForward by im2col: each group of images is unrolled
// and multiplied by the weight in one matrix product.
func im2colForward[E vec.Float](g convGeometry, x, w, y []E, ws *[]E, gemm gemmFunc[E]) {
	kk, pin, pout, oc := g.colRows(), g.inC*g.inPlane(), g.outPlane(), g.outC
	nb := g.imagesPerGEMM()
	if nb == 1 && g.isPointwise() {
		for b := range g.batch {
			gemm(blas.NoTrans, blas.NoTrans, oc, pout, kk, 1, w, kk, x[b*pin:(b+1)*pin], pout, 0, y[b*oc*pout:(b+1)*oc*pout], pout)
		}
		return
	}
	buf := growWorkspace(ws, g.im2colWorkspaceLen())
	col, stage := buf[:kk*nb*pout], buf[kk*nb*pout:]
	for b0 := 0; b0 < g.batch; b0 += nb {
		n := min(nb, g.batch-b0)
		ld := n * pout
		for j := range n {
			im2col(g, x[(b0+j)*pin:(b0+j+1)*pin], col[j*pout:], ld)
		}
		if n == 1 {
			gemm(blas.NoTrans, blas.NoTrans, oc, pout, kk, 1, w, kk, col[:kk*pout], pout, 0, y[b0*oc*pout:(b0+1)*oc*pout], pout)
			continue
		}
		gemm(blas.NoTrans, blas.NoTrans, oc, ld, kk, 1, w, kk, col[:kk*ld], ld, 0, stage[:oc*ld], ld)
		scatterImages(stage, y[b0*oc*pout:(b0+n)*oc*pout], oc, pout, n)
	}
}

// convInputGrad computes dx [B,C,H,W] = ∂⟨y, gy⟩/∂x for y = x ⋆ w, from the
// output gradient gy [B,O,Ho,Wo]: col2im of Wᵀ·gy, image by image, or, for
// a size-preserving stride-1 convolution (isSameSize), the forward
// convolution of gy by the flipped, transposed kernel (sameSizeInputGrad),
// which unrolls gy with contiguous copies instead of scattering sums.
func convInputGrad[E vec.Float](g convGeometry, gy, w, dx []E, ws *[]E, gemm gemmFunc[E]) {
	kk, pin, pout, oc := g.colRows(), g.inC*g.inPlane(), g.outPlane(), g.outC
	if g.isSameSize() {
		sameSizeInputGrad(g, gy, w, dx, ws, gemm)
		return
	}
	nb := g.imagesPerGEMM()
	if nb == 1 && g.isPointwise() {
		for b := range g.batch {
			gemm(blas.Trans, blas.NoTrans, kk, pout, oc, 1, w, kk, gy[b*oc*pout:(b+1)*oc*pout], pout, 0, dx[b*pin:(b+1)*pin], pout)
		}
		return
	}
	buf := growWorkspace(ws, g.im2colWorkspaceLen())
	dcol, stage := buf[:kk*nb*pout], buf[kk*nb*pout:]
	for b0 := 0; b0 < g.batch; b0 += nb {
		n := min(nb, g.batch-b0)
		ld := n * pout
		gsrc := gy[b0*oc*pout : (b0+n)*oc*pout]
		if n > 1 {
			gatherImages(gsrc, stage[:oc*ld], oc, pout, n)
			gsrc = stage[:oc*ld]
		}
		gemm(blas.Trans, blas.NoTrans, kk, ld, oc, 1, w, kk, gsrc, ld, 0, dcol[:kk*ld], ld)
		for j := range n {
			img := dx[(b0+j)*pin : (b0+j+1)*pin]
			clear(img)
			col2im(g, dcol[j*pout:], ld, img)
		}
	}
}

// convWeightGrad computes dw [O,C,k,k] = ∂⟨y, gy⟩/∂w for y = x ⋆ w, from
// the output gradient gy [B,O,Ho,Wo] and the input x: Σ_b gy_b·col(x_b)ᵀ.
func convWeightGrad[E vec.Float](g convGeometry, gy, x, dw []E, ws *[]E, gemm gemmFunc[E]) {
	kk, pin, pout, oc := g.colRows(), g.inC*g.inPlane(), g.outPlane(), g.outC
	nb := g.imagesPerGEMM()
	if nb == 1 && g.isPointwise() {
		for b := range g.batch {
			gemm(blas.NoTrans, blas.Trans, oc, kk, pout, 1, gy[b*oc*pout:(b+1)*oc*pout], pout, x[b*pin:(b+1)*pin], pout, betaAfterFirst[E](b), dw, kk)
		}
		return
	}
	buf := growWorkspace(ws, g.im2colWorkspaceLen())
	col, stage := buf[:kk*nb*pout], buf[kk*nb*pout:]
	for b0 := 0; b0 < g.batch; b0 += nb {
		n := min(nb, g.batch-b0)
		ld := n * pout
		gsrc := gy[b0*oc*pout : (b0+n)*oc*pout]
		if n > 1 {
			gatherImages(gsrc, stage[:oc*ld], oc, pout, n)
			gsrc = stage[:oc*ld]
		}
		for j := range n {
			im2col(g, x[(b0+j)*pin:(b0+j+1)*pin], col[j*pout:], ld)
		}
		gemm(blas.NoTrans, blas.Trans, oc, kk, ld, 1, gsrc, ld, col[:kk*ld], ld, betaAfterFirst[E](b0), dw, kk)
	}
}

// isSameSize reports a non-pointwise stride-1 convolution whose padding
// keeps the image size (2·pad = k − 1, as every 3x3 padding-1 convolution of
// a ResNet block).
func (g convGeometry) isSameSize() bool {
	return g.stride == 1 && g.k > 1 && 2*g.pad == g.k-1
}

// transposedGeometry is the geometry of the convolution that carries a
// size-preserving convolution's output gradient back to its input: the
// output gradient [B,O,H,W] convolved by the flipped kernel [C,O,k,k] with
// the same padding gives [B,C,H,W].
func (g convGeometry) transposedGeometry() convGeometry {
	t, _ := newConvGeometry(g.batch, g.outC, g.outH, g.outW, g.inC, g.k, 1, g.pad)
	return t
}

// sameSizeInputGrad is convInputGrad for a size-preserving stride-1
// convolution: dx = gy ⋆ w′ with w′[c,o,i,j] = w[o,c,k−1−i,k−1−j], the
// adjoint of the convolution. ws holds w′ followed by the forward
// convolution's workspace.
func sameSizeInputGrad[E vec.Float](g convGeometry, gy, w, dx []E, ws *[]E, gemm gemmFunc[E]) {
	t := g.transposedGeometry()
	wlen := g.outC * g.colRows()
	buf := growWorkspace(ws, wlen+t.forwardWorkspaceLen())
	flipped, rest := buf[:wlen], buf[wlen:]
	flipTransposeKernel(g, w, flipped)
	convForward(t, gy, flipped, dx, &rest, gemm)
}

// flipTransposeKernel writes w′[c,o,i,j] = w[o,c,k−1−i,k−1−j] for the
// weight w [O,C,k,k] of g into dst [C,O,k,k].
func flipTransposeKernel[E vec.Float](g convGeometry, w, dst []E) {
	kk := g.k * g.k
	for o := range g.outC {
		for c := range g.inC {
			src := w[(o*g.inC+c)*kk : (o*g.inC+c+1)*kk]
			d := dst[(c*g.outC+o)*kk : (c*g.outC+o+1)*kk]
			for i, v := range src {
				d[kk-1-i] = v
			}
		}
	}
}

// betaAfterFirst is the GEMM beta that overwrites the output for the first
// image (b = 0) and accumulates into it for the others.
func betaAfterFirst[E vec.Float](b int) E {
	if b == 0 {
		return 0
	}
	return 1
}

// growWorkspace returns (*ws)[:n], reallocating *ws only when it is too
// small.
func growWorkspace[E vec.Float](ws *[]E, n int) []E {
	if cap(*ws) < n {
		*ws = make([]E, n)
	}
	return (*ws)[:n]
}

// im2col unrolls one image x [C,H,W] into col: row r = (c,ki,kj) of the
// unrolled image starts at col[r·ld] and holds Ho·Wo values.
func im2col[E vec.Float](g convGeometry, x, col []E, ld int) {
	if g.stride == 1 && g.outW == g.inW {
		im2colSameWidth(g, x, col, ld)
		return
	}
	s, p, ow := g.stride, g.pad, g.outW
	pout := g.outPlane()
	r := 0
	for c := range g.inC {
		plane := x[c*g.inPlane() : (c+1)*g.inPlane()]
		for ki := range g.k {
			yLo, yHi := validOutputs(g.outH, s, ki-p, g.inH)
			for kj := range g.k {
				off := kj - p
				xLo, xHi := validOutputs(ow, s, off, g.inW)
				dst := col[r*ld : r*ld+pout]
				r++
				clear(dst[:yLo*ow])
				clear(dst[yHi*ow:])
				for oy := yLo; oy < yHi; oy++ {
					row := dst[oy*ow : (oy+1)*ow]
					iy := oy*s - p + ki
					src := plane[iy*g.inW : (iy+1)*g.inW]
					clear(row[:xLo])
					clear(row[xHi:])
					if s == 1 {
						copy(row[xLo:xHi], src[xLo+off:xHi+off])
						continue
					}
					for ox := xLo; ox < xHi; ox++ {
						row[ox] = src[ox*s+off]
					}
				}
			}
		}
	}
}

// im2colSameWidth is im2col for a stride-1 convolution whose output rows
// are as wide as the input's (2·pad = k − 1): row (c,ki,kj) of the unrolled
// image is then the plane shifted by (ki−pad)·W + kj−pad, so it is one
// contiguous copy, after which the entries that wrapped around from the
// neighbouring image row (columns outside the image) are zeroed.
func im2colSameWidth[E vec.Float](g convGeometry, x, col []E, ld int) {
	p, w, kk := g.pad, g.inW, g.k*g.k
	plane := g.inPlane()
	pout := g.outPlane()
	// The kernel offset (ki,kj) decides every range and the channels only
	// move the source plane and the destination row, so the ranges are
	// worked out once per block of channels, a block small enough
	// (im2colBlockValues) to be re-read from L1 for every offset.
	cb := max(1, im2colBlockValues/plane)
	for c0 := 0; c0 < g.inC; c0 += cb {
		c1 := min(c0+cb, g.inC)
		for ki := range g.k {
			yLo, yHi := validOutputs(g.outH, 1, ki-p, g.inH)
			for kj := range g.k {
				off := kj - p
				xLo, xHi := validOutputs(w, 1, off, w)
				// dst[d] = src[d+shift] for d in [lo, hi): the rows
				// [yLo, yHi) clipped to the plane; the clipped ends fall
				// in wrapped columns.
				shift := (ki-p)*w + off
				lo, hi := max(yLo*w, -shift), min(yHi*w, plane-shift)
				wrapped := xLo > 0 || xHi < w
				for c, r := c0, c0*kk+ki*g.k+kj; c < c1; c, r = c+1, r+kk {
					dst := col[r*ld : r*ld+pout]
					if yLo > 0 {
						clear(dst[:yLo*w])
					}
					if yHi < g.outH {
						clear(dst[yHi*w:])
					}
					if lo < hi {
						src := x[c*plane : (c+1)*plane]
						copy(dst[lo:hi], src[lo+shift:hi+shift])
					}
					if wrapped {
						zeroColumns(dst, 0, xLo, yLo, yHi, w)
						zeroColumns(dst, xHi, w, yLo, yHi, w)
					}
				}
			}
		}
	}
}

// im2colBlockValues is how many input values im2colSameWidth unrolls at a
// time: 16 KB of float32, half a typical L1 data cache.
const im2colBlockValues = 4096

// zeroColumns zeroes columns [c0,c1) of rows [y0,y1) of the row-major
// plane p, w values wide, column by column: the columns are one or two
// wide, the rows many.
func zeroColumns[E vec.Float](p []E, c0, c1, y0, y1, w int) {
	for c := c0; c < c1; c++ {
		for d := y0*w + c; d < y1*w; d += w {
			p[d] = 0
		}
	}
}

// col2im adds the unrolled image col (rows ld apart, as im2col writes them)
// back onto the image dx [C,H,W]: every input position receives the sum of
// the entries it was copied to.
func col2im[E vec.Float](g convGeometry, col []E, ld int, dx []E) {
	s, p, ow := g.stride, g.pad, g.outW
	r := 0
	for c := range g.inC {
		plane := dx[c*g.inPlane() : (c+1)*g.inPlane()]
		for ki := range g.k {
			yLo, yHi := validOutputs(g.outH, s, ki-p, g.inH)
			for kj := range g.k {
				off := kj - p
				xLo, xHi := validOutputs(ow, s, off, g.inW)
				src := col[r*ld : r*ld+g.outPlane()]
				r++
				for oy := yLo; oy < yHi; oy++ {
					row := src[oy*ow : (oy+1)*ow]
					iy := oy*s - p + ki
					dst := plane[iy*g.inW : (iy+1)*g.inW]
					if s == 1 {
						d := dst[xLo+off : xHi+off]
						for i, v := range row[xLo:xHi] {
							d[i] += v
						}
						continue
					}
					for ox := xLo; ox < xHi; ox++ {
						dst[ox*s+off] += row[ox]
					}
				}
			}
		}
	}
}

// validOutputs is the range [lo,hi) of output positions o < outLen whose
// input position o·stride + off lies inside [0, inLen).
func validOutputs(outLen, stride, off, inLen int) (lo, hi int) {
	if off < 0 {
		lo = (-off + stride - 1) / stride
	}
	if inLen-off > 0 {
		hi = (inLen - off + stride - 1) / stride
	}
	hi = min(hi, outLen)
	lo = min(lo, hi)
	return lo, hi
}

// scatterImages copies the staging matrix stage [O, n·P] (image j in
// columns j·P to (j+1)·P) into n consecutive NCHW images y [n,O,P].
func scatterImages[E vec.Float](stage, y []E, oc, plane, n int) {
	ld := n * plane
	for j := range n {
		for o := range oc {
			copy(y[(j*oc+o)*plane:(j*oc+o+1)*plane], stage[o*ld+j*plane:o*ld+(j+1)*plane])
		}
	}
}

// gatherImages is the inverse of scatterImages: n NCHW images y [n,O,P] into
// the staging matrix stage [O, n·P].
func gatherImages[E vec.Float](y, stage []E, oc, plane, n int) {
	ld := n * plane
	for j := range n {
		for o := range oc {
			copy(stage[o*ld+j*plane:o*ld+(j+1)*plane], y[(j*oc+o)*plane:(j*oc+o+1)*plane])
		}
	}
}
