package cuda

// The element-wise kernels, hand-written PTX that the driver JIT-compiles
// for whatever GPU it runs on (cuModuleLoadDataEx). PTX was chosen over
// NVRTC-compiled CUDA C so the kernels need nothing beyond libcuda.so.1;
// NVRTC stays an option for larger kernels.
//
// ISA: PTX 7.0 for sm_75, accepted by drivers from CUDA 11.0 on and
// JIT-compiled forward to newer GPUs (Hopper is sm_90). One thread per
// element, blocks of blockSize threads, n < 2^31 checked by the host.
//
// Arithmetic uses explicit rounding (.rn), which forbids ptxas from fusing
// a multiply and an add into an FMA: the Go references round every
// operation too, which is what makes ReLU, ReLUGrad and SGDStep
// bit-identical to them by construction. PGDStep computes in float64 like
// nn/elementwise.SignStep. None of this is verified without a GPU: the
// PTX is checked here only for its entry names and parameter lists
// (kernels_test.go); TestDevice… compare each kernel with its reference.

// blockSize is the threads per block of every element-wise launch.
const blockSize = 256

// kernel describes one entry of the module: its name and the PTX types of
// its parameters, in order. The launch wrappers check their arguments
// against it.
type kernel struct {
	name   string
	params []string
}

var (
	kReLU     = kernel{"sglr_relu", []string{"u64", "u64", "u32"}}
	kReLUGrad = kernel{"sglr_relu_grad", []string{"u64", "u64", "u64", "u32"}}
	kPGDStep  = kernel{"sglr_pgd_step", []string{"u64", "u64", "u64", "u32", "f64", "f64"}}
	kSGDStep  = kernel{"sglr_sgd_step", []string{"u64", "u64", "u64", "u32", "f32", "f32", "f32", "u32"}}
)

// kernels lists every entry of kernelPTX.
var kernels = []kernel{kReLU, kReLUGrad, kPGDStep, kSGDStep}

// SGD step flags, the last parameter of sglr_sgd_step.
const (
	sgdFirst    = 1 // first step of this buffer: buf = d (PyTorch's fresh momentum_buffer)
	sgdNesterov = 2 // d = d + μ·buf instead of d = buf
	sgdMomentum = 4 // momentum ≠ 0: keep a buffer (else buf is not touched and may be 0)
)

// kernelPTX is the module. Each kernel computes its global index
// i = ctaid.x·ntid.x + tid.x and returns when i ≥ n.
const kernelPTX = `//
// sglr-pipe element-wise kernels (nn/cuda/kernels.go). Hand-written PTX.
//
.version 7.0
.target sm_75
.address_size 64

// y[i] = x[i] < 0 ? 0 : x[i]   (NaN and -0 pass through, as in PyTorch)
.visible .entry sglr_relu(
	.param .u64 p_y,
	.param .u64 p_x,
	.param .u32 p_n
)
{
	.reg .pred %p<3>;
	.reg .b32 %r<6>;
	.reg .f32 %f<3>;
	.reg .b64 %rd<6>;

	ld.param.u64 %rd1, [p_y];
	ld.param.u64 %rd2, [p_x];
	ld.param.u32 %r1, [p_n];
	mov.u32 %r2, %ctaid.x;
	mov.u32 %r3, %ntid.x;
	mov.u32 %r4, %tid.x;
	mad.lo.u32 %r5, %r2, %r3, %r4;
	setp.ge.u32 %p1, %r5, %r1;
	@%p1 bra RELU_DONE;
	cvta.to.global.u64 %rd1, %rd1;
	cvta.to.global.u64 %rd2, %rd2;
	mul.wide.u32 %rd3, %r5, 4;
	add.u64 %rd4, %rd2, %rd3;
	ld.global.f32 %f1, [%rd4];
	setp.lt.f32 %p2, %f1, 0f00000000;
	selp.f32 %f2, 0f00000000, %f1, %p2;
	add.u64 %rd5, %rd1, %rd3;
	st.global.f32 [%rd5], %f2;
RELU_DONE:
	ret;
}

// dx[i] = y[i] > 0 ? g[i] : 0   (y is ReLU's output; NaN y gives 0)
.visible .entry sglr_relu_grad(
	.param .u64 p_dx,
	.param .u64 p_y,
	.param .u64 p_g,
	.param .u32 p_n
)
{
	.reg .pred %p<3>;
	.reg .b32 %r<6>;
	.reg .f32 %f<4>;
	.reg .b64 %rd<8>;

	ld.param.u64 %rd1, [p_dx];
	ld.param.u64 %rd2, [p_y];
	ld.param.u64 %rd3, [p_g];
	ld.param.u32 %r1, [p_n];
	mov.u32 %r2, %ctaid.x;
	mov.u32 %r3, %ntid.x;
	mov.u32 %r4, %tid.x;
	mad.lo.u32 %r5, %r2, %r3, %r4;
	setp.ge.u32 %p1, %r5, %r1;
	@%p1 bra RELU_GRAD_DONE;
	cvta.to.global.u64 %rd1, %rd1;
	cvta.to.global.u64 %rd2, %rd2;
	cvta.to.global.u64 %rd3, %rd3;
	mul.wide.u32 %rd4, %r5, 4;
	add.u64 %rd5, %rd2, %rd4;
	ld.global.f32 %f1, [%rd5];
	add.u64 %rd6, %rd3, %rd4;
	ld.global.f32 %f2, [%rd6];
	setp.gt.f32 %p2, %f1, 0f00000000;
	selp.f32 %f3, %f2, 0f00000000, %p2;
	add.u64 %rd7, %rd1, %rd4;
	st.global.f32 [%rd7], %f3;
RELU_GRAD_DONE:
	ret;
}

// PGD L-inf step in place, in float64 and rounded to float32 once:
//   s  = step with the sign bit of g[i], 0 when g[i] is +-0 (NaN g steps by its sign bit)
//   lo = max(c-eps, 0), hi = min(c+eps, 1), c = clean[i]
//   x[i] = min(max(x[i]+s, lo), hi), NaN when x+s, c-eps or c+eps is NaN
.visible .entry sglr_pgd_step(
	.param .u64 p_x,
	.param .u64 p_g,
	.param .u64 p_c,
	.param .u32 p_n,
	.param .f64 p_step,
	.param .f64 p_eps
)
{
	.reg .pred %p<6>;
	.reg .b32 %r<8>;
	.reg .f32 %f<5>;
	.reg .b64 %rd<14>;
	.reg .f64 %fd<14>;

	ld.param.u64 %rd1, [p_x];
	ld.param.u64 %rd2, [p_g];
	ld.param.u64 %rd3, [p_c];
	ld.param.u32 %r1, [p_n];
	ld.param.f64 %fd1, [p_step];
	ld.param.f64 %fd2, [p_eps];
	mov.u32 %r2, %ctaid.x;
	mov.u32 %r3, %ntid.x;
	mov.u32 %r4, %tid.x;
	mad.lo.u32 %r5, %r2, %r3, %r4;
	setp.ge.u32 %p1, %r5, %r1;
	@%p1 bra PGD_DONE;
	cvta.to.global.u64 %rd1, %rd1;
	cvta.to.global.u64 %rd2, %rd2;
	cvta.to.global.u64 %rd3, %rd3;
	mul.wide.u32 %rd4, %r5, 4;
	add.u64 %rd5, %rd1, %rd4;
	add.u64 %rd6, %rd2, %rd4;
	add.u64 %rd7, %rd3, %rd4;
	ld.global.f32 %f1, [%rd5];
	ld.global.f32 %f2, [%rd6];
	ld.global.f32 %f3, [%rd7];
	// s = step | signbit(g) << 63
	mov.b32 %r6, %f2;
	and.b32 %r7, %r6, -2147483648;
	cvt.u64.u32 %rd8, %r7;
	shl.b64 %rd9, %rd8, 32;
	mov.b64 %rd10, %fd1;
	or.b64 %rd11, %rd10, %rd9;
	mov.b64 %fd3, %rd11;
	setp.eq.f32 %p2, %f2, 0f00000000;
	selp.f64 %fd3, 0d0000000000000000, %fd3, %p2;
	// a = x + s; lo, hi from c
	cvt.f64.f32 %fd4, %f1;
	add.rn.f64 %fd5, %fd4, %fd3;
	cvt.f64.f32 %fd6, %f3;
	sub.rn.f64 %fd7, %fd6, %fd2;
	add.rn.f64 %fd8, %fd6, %fd2;
	max.f64 %fd9, %fd7, 0d0000000000000000;
	min.f64 %fd10, %fd8, 0d3FF0000000000000;
	max.f64 %fd11, %fd5, %fd9;
	min.f64 %fd12, %fd11, %fd10;
	// PTX min/max return the non-NaN operand; Go's propagate NaN
	setp.nan.f64 %p3, %fd5, %fd7;
	setp.nan.f64 %p4, %fd8, %fd8;
	or.pred %p5, %p3, %p4;
	add.rn.f64 %fd13, %fd5, %fd7;
	add.rn.f64 %fd13, %fd13, %fd8;
	selp.f64 %fd12, %fd13, %fd12, %p5;
	cvt.rn.f32.f64 %f4, %fd12;
	st.global.f32 [%rd5], %f4;
PGD_DONE:
	ret;
}

// SGD with momentum and weight decay in place, float32, every operation
// rounded (PyTorch's torch.optim.SGD with dampening 0, as nn/optim.SGD):
//   d = g + wd*w           (d = g when wd == 0)
//   buf = d                (flags&1: first step)  or  buf = mom*buf + d
//   d = d + mom*buf        (flags&2: Nesterov)    or  d = buf
//   w = w - lr*d
// Without flags&4 (momentum 0) buf is not read or written: w = w - lr*d.
.visible .entry sglr_sgd_step(
	.param .u64 p_w,
	.param .u64 p_g,
	.param .u64 p_buf,
	.param .u32 p_n,
	.param .f32 p_lr,
	.param .f32 p_mom,
	.param .f32 p_wd,
	.param .u32 p_flags
)
{
	.reg .pred %p<6>;
	.reg .b32 %r<10>;
	.reg .f32 %f<14>;
	.reg .b64 %rd<10>;

	ld.param.u64 %rd1, [p_w];
	ld.param.u64 %rd2, [p_g];
	ld.param.u64 %rd3, [p_buf];
	ld.param.u32 %r1, [p_n];
	ld.param.f32 %f1, [p_lr];
	ld.param.f32 %f2, [p_mom];
	ld.param.f32 %f3, [p_wd];
	ld.param.u32 %r6, [p_flags];
	mov.u32 %r2, %ctaid.x;
	mov.u32 %r3, %ntid.x;
	mov.u32 %r4, %tid.x;
	mad.lo.u32 %r5, %r2, %r3, %r4;
	setp.ge.u32 %p1, %r5, %r1;
	@%p1 bra SGD_DONE;
	cvta.to.global.u64 %rd1, %rd1;
	cvta.to.global.u64 %rd2, %rd2;
	mul.wide.u32 %rd4, %r5, 4;
	add.u64 %rd5, %rd1, %rd4;
	add.u64 %rd6, %rd2, %rd4;
	ld.global.f32 %f4, [%rd5];
	ld.global.f32 %f5, [%rd6];
	// d = g, or g + wd*w
	mov.f32 %f6, %f5;
	setp.eq.f32 %p2, %f3, 0f00000000;
	@%p2 bra SGD_NO_WD;
	mul.rn.f32 %f7, %f3, %f4;
	add.rn.f32 %f6, %f5, %f7;
SGD_NO_WD:
	and.b32 %r7, %r6, 4;
	setp.eq.u32 %p3, %r7, 0;
	@%p3 bra SGD_UPDATE;
	cvta.to.global.u64 %rd3, %rd3;
	add.u64 %rd7, %rd3, %rd4;
	// buf = d on the first step, else mom*buf + d
	mov.f32 %f8, %f6;
	and.b32 %r8, %r6, 1;
	setp.ne.u32 %p4, %r8, 0;
	@%p4 bra SGD_STORE_BUF;
	ld.global.f32 %f9, [%rd7];
	mul.rn.f32 %f10, %f2, %f9;
	add.rn.f32 %f8, %f10, %f6;
SGD_STORE_BUF:
	st.global.f32 [%rd7], %f8;
	// d = d + mom*buf (Nesterov) or buf
	and.b32 %r9, %r6, 2;
	setp.ne.u32 %p5, %r9, 0;
	mul.rn.f32 %f11, %f2, %f8;
	add.rn.f32 %f12, %f6, %f11;
	selp.f32 %f6, %f12, %f8, %p5;
SGD_UPDATE:
	mul.rn.f32 %f13, %f1, %f6;
	sub.rn.f32 %f4, %f4, %f13;
	st.global.f32 [%rd5], %f4;
SGD_DONE:
	ret;
}
`
