package ops

import (
	nngemm "github.com/sglr-pipe/sglr-pipe/nn/gemm"
	"github.com/sglr-pipe/sglr-pipe/nn/internal/vec"
	"github.com/sglr-pipe/sglr-pipe/nn/winograd"
	"gonum.org/v1/gonum/blas"
)

// The Winograd F(2×2, 3×3) convolution (Lavin & Gray 2016, "Fast
// Algorithms for Convolutional Neural Networks") is what convForward uses
// for 3×3, stride-1, padding-1 convolutions with enough channels: the
// bulk of a ResNet's work, forward and (through sameSizeInputGrad, which is
// itself such a convolution) backward to the input.
//
// The output is cut into 2×2 tiles; tile t reads the 4×4 input patch d_t
// around it. With the transforms
//
//	Bᵀ = [1 0 −1 0; 0 1 1 0; 0 −1 1 0; 0 1 0 −1]
//	G  = [1 0 0; ½ ½ ½; ½ −½ ½; 0 0 1]
//	Aᵀ = [1 1 1 0; 0 1 −1 −1]
//
// the tile's output is Aᵀ·[Σ_c (G·w_{o,c}·Gᵀ) ⊙ (Bᵀ·d_{t,c}·B)]·A. For each
// of the 16 positions ξ of the 4×4 transformed tile, the sum over input
// channels is one matrix product M_ξ [O, T] = U_ξ [O, C] · V_ξ [C, T] over
// the T tiles of a group of images, so the 16 products do the work of
// im2col's single [O, 9C]·[9C, 4T] product with 16/36 of its
// multiplications. The transforms are additions (and halvings of the
// kernel), so the results agree with im2col's to float rounding.

// winogradMinChannels is the fewest input and output channels for which
// convForward takes the Winograd path: with fewer, the 16 products' inner
// dimension (C) or rows (O) are too short to run at speed, and im2col's
// single product over 9C wins.
const winogradMinChannels = 16

// winogradTargetTiles is the fewest tiles (columns of the 16 products) a
// group of images is given when images are small, so that deep layers with
// 4×4 planes still multiply matrices of useful width.
const winogradTargetTiles = 256

// isWinograd reports a convolution convForward runs as Winograd F(2×2,3×3):
// 3×3 kernel, stride 1, padding 1, at least winogradMinChannels channels in
// and out.
func (g convGeometry) isWinograd() bool {
	return g.k == 3 && g.stride == 1 && g.pad == 1 &&
		g.inC >= winogradMinChannels && g.outC >= winogradMinChannels
}

// winogradGEMM is the matrix product Winograd's 16 products run on: package
// gemm in every build, also with -tags openblas, whose kernel suits these
// shapes (wide B, strided A and C) better than OpenBLAS.
func winogradGEMM[E vec.Float]() gemmFunc[E] {
	var f any
	switch any(*new(E)).(type) {
	case float32:
		f = gemmFunc[float32](nngemm.Implementation{}.Sgemm)
	default:
		f = gemmFunc[float64](nngemm.Implementation{}.Dgemm)
	}
	return f.(gemmFunc[E])
}

// winogradForward is convForward for a geometry with isWinograd: y
// [B,O,H,W] = x [B,C,H,W] ⋆ w [O,C,3,3]. ws is grown to
// g.winogradWorkspaceLen() on first use and reused.
func winogradForward[E vec.Float](g convGeometry, x, w, y []E, ws *[]E, gemm gemmFunc[E]) {
	th, tw := g.winogradTiles()
	perImage := th * tw
	nb := g.winogradImagesPerGroup()
	oc, ic := g.outC, g.inC
	ldMax := winogradStride(nb * perImage)
	buf := growWorkspace(ws, g.winogradWorkspaceLen())
	u, buf := buf[:16*oc*ic], buf[16*oc*ic:]
	v, buf := buf[:16*ic*ldMax], buf[16*ic*ldMax:]
	m, rows := buf[:16*oc*ldMax], buf[16*oc*ldMax:]

	winogradKernel(g, w, u)
	pin, pout := ic*g.inPlane(), oc*g.outPlane()
	for b0 := 0; b0 < g.batch; b0 += nb {
		n := min(nb, g.batch-b0)
		t := n * perImage
		ld := winogradStride(t)
		for j := range n {
			winogradInput(g, x[(b0+j)*pin:(b0+j+1)*pin], v, ld, j*perImage, rows)
		}
		for xi := range 16 {
			gemm(blas.NoTrans, blas.NoTrans, oc, t, ic, 1, u[xi*ic:], 16*ic, v[xi*ld:], 16*ld, 0, m[xi*ld:], 16*ld)
		}
		for j := range n {
			winogradOutput(g, m, ld, j*perImage, y[(b0+j)*pout:(b0+j+1)*pout])
		}
	}
}

// winogradStride is the distance between the 16 rows of one channel's
// transformed tiles in V and M when a group has t tiles: t rounded up to
// whole cache lines plus one, so that the 16 rows a tile's values are read
// from do not fall in the same cache sets (strides of a power of two
// would, and the transforms would thrash the L1 cache).
func winogradStride(t int) int { return (t+15)/16*16 + 16 }

// winogradTiles is the number of 2×2 output tiles down and across an
// image (a last row or column of tiles hangs over an odd edge).
func (g convGeometry) winogradTiles() (th, tw int) { return winograd.Tiles(g.outH, g.outW) }

// winogradImagesPerGroup is how many images share the 16 products.
func (g convGeometry) winogradImagesPerGroup() int {
	th, tw := g.winogradTiles()
	return max(1, min(g.batch, winogradTargetTiles/(th*tw)))
}

// winogradWorkspaceLen is the scratch winogradForward needs: the
// transformed kernel U [O,16,C], the transformed tiles V [C,16,T] and the
// products M [O,16,T] of one group (T padded to winogradStride), and four
// padded rows and a row of zeros for the input transform. Product ξ reads
// U_ξ, V_ξ and writes M_ξ as strided matrices.
func (g convGeometry) winogradWorkspaceLen() int {
	th, tw := g.winogradTiles()
	ld := winogradStride(g.winogradImagesPerGroup() * th * tw)
	return 16*g.outC*g.inC + 16*g.inC*ld + 16*g.outC*ld + winograd.ScratchLen(g.inW)
}

// winogradKernel writes U_ξ = G·w_{o,c}·Gᵀ for every output channel o and
// input channel c of w [O,C,3,3] into u [O,16,C], with winograd.Filter.
func winogradKernel[E vec.Float](g convGeometry, w, u []E) {
	oc, ic := g.outC, g.inC
	for o := range oc {
		for c := range ic {
			winograd.Filter(w[(o*ic+c)*9:(o*ic+c+1)*9], u[o*16*ic+c:], ic)
		}
	}
}

// winogradInput writes Bᵀ·d·B for every tile d of one image x [C,H,W] into
// columns t0 to t0+th·tw of v [C,16,ld] (tile (ty,tx) at column
// t0+ty·tw+tx), channel by channel with winograd.InputPlane. rows is its
// scratch.
func winogradInput[E vec.Float](g convGeometry, x, v []E, ld, t0 int, rows []E) {
	h, wd := g.inH, g.inW
	for c := range g.inC {
		winograd.InputPlane(x[c*h*wd:(c+1)*h*wd], h, wd, v[c*16*ld+t0:], ld, rows)
	}
}

// winogradOutput writes Aᵀ·m·A for every tile of one image from columns
// t0 to t0+th·tw of m [O,16,ld] into y [O,H,W], channel by channel with
// winograd.OutputPlane.
func winogradOutput[E vec.Float](g convGeometry, m []E, ld, t0 int, y []E) {
	h, wd := g.outH, g.outW
	for o := range g.outC {
		winograd.OutputPlane(m[o*16*ld+t0:], ld, h, wd, y[o*h*wd:(o+1)*h*wd])
	}
}
