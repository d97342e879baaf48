//go:build linux && sglrcuda

package cuda

import (
	"fmt"
	"path/filepath"
	"runtime"
)

// BLAS is a cuBLAS handle bound to a Device's stream. Math mode starts at
// CUBLAS_DEFAULT_MATH, plain FP32 without TF32 tensor cores, so results
// can be compared with the CPU path at 1e-3 relative; SetTF32(true) trades
// that for speed. Not verified without a GPU: the signatures below and the
// cublasLt loading order.
type BLAS struct {
	d       *Device
	Path    string // the libcublas found
	handle  uintptr
	Version int // cublasGetVersion_v2: 120804 for 12.8.4

	cublasCreate      func(h *uintptr) int32
	cublasDestroy     func(h uintptr) int32
	cublasGetVersion  func(h uintptr, v *int32) int32
	cublasSetStream   func(h uintptr, s uintptr) int32
	cublasSetMathMode func(h uintptr, mode int32) int32
	cublasSgemm       func(h uintptr, ta, tb int32, m, n, k int32, alpha *float32, a uintptr, lda int32,
		b uintptr, ldb int32, beta *float32, c uintptr, ldc int32) int32
}

// cublasMath_t and cublasOperation_t values from cublas_api.h.
const (
	cublasDefaultMath = 0
	cublasTF32Math    = 3
	cublasOpN         = 0
	cublasOpT         = 1
)

func (b *BLAS) check(code int32, call string) error {
	if code == 0 {
		return nil
	}
	return &Error{Call: call, Code: int(code), Name: codeName(cublasStatusNames, int(code))}
}

// BLAS loads cuBLAS (found by the Search Open used; cublasLt from the same
// directory first, loaded before it with RTLD_GLOBAL so libcublas resolves
// it there) on the first call and returns the device's handle.
func (d *Device) BLAS() (*BLAS, error) {
	var out *BLAS
	err := d.do("BLAS", func() error {
		if d.blas != nil {
			out = d.blas
			return nil
		}
		path, err := d.search.Find(CUBLAS)
		if err != nil {
			return err
		}
		lt, err := findIn([]string{filepath.Dir(path)}, CUBLASLt)
		if err != nil {
			if lt, err = d.search.Find(CUBLASLt); err != nil {
				return err
			}
		}
		if _, err := dlopen(lt); err != nil {
			return err
		}
		h, err := dlopen(path)
		if err != nil {
			return err
		}
		b := &BLAS{d: d, Path: path}
		bd := &binder{handle: h, path: path}
		bd.bind(&b.cublasCreate, "cublasCreate_v2")
		bd.bind(&b.cublasDestroy, "cublasDestroy_v2")
		bd.bind(&b.cublasGetVersion, "cublasGetVersion_v2")
		bd.bind(&b.cublasSetStream, "cublasSetStream_v2")
		bd.bind(&b.cublasSetMathMode, "cublasSetMathMode")
		bd.bind(&b.cublasSgemm, "cublasSgemm_v2")
		if bd.err != nil {
			return bd.err
		}
		if err := b.check(b.cublasCreate(&b.handle), "cublasCreate_v2 ("+path+")"); err != nil {
			return err
		}
		var v int32
		if err := b.check(b.cublasGetVersion(b.handle, &v), "cublasGetVersion_v2"); err != nil {
			b.destroy()
			return err
		}
		b.Version = int(v)
		if err := b.check(b.cublasSetStream(b.handle, d.stream), "cublasSetStream_v2"); err != nil {
			b.destroy()
			return err
		}
		if err := b.check(b.cublasSetMathMode(b.handle, cublasDefaultMath), "cublasSetMathMode(CUBLAS_DEFAULT_MATH)"); err != nil {
			b.destroy()
			return err
		}
		d.blas, out = b, b
		return nil
	})
	return out, err
}

// destroy releases the handle; d's context is current.
func (b *BLAS) destroy() error {
	if b.handle == 0 {
		return nil
	}
	err := b.check(b.cublasDestroy(b.handle), "cublasDestroy_v2")
	b.handle = 0
	return err
}

// SetTF32 selects CUBLAS_TF32_TENSOR_OP_MATH (on) or CUBLAS_DEFAULT_MATH.
func (b *BLAS) SetTF32(on bool) error {
	mode, name := int32(cublasDefaultMath), "CUBLAS_DEFAULT_MATH"
	if on {
		mode, name = cublasTF32Math, "CUBLAS_TF32_TENSOR_OP_MATH"
	}
	return b.d.do("SetTF32", func() error {
		return b.check(b.cublasSetMathMode(b.handle, mode), "cublasSetMathMode("+name+")")
	})
}

// MatMul queues C = A·B for row-major A [m,k], B [k,n], C [m,n] (through
// cuBLAS's column-major SGEMM as Cᵀ = Bᵀ·Aᵀ, no copies).
func (b *BLAS) MatMul(c, a, bm Buffer, m, n, k int) error {
	if m <= 0 || n <= 0 || k <= 0 || m > 1<<31-1 || n > 1<<31-1 || k > 1<<31-1 {
		return fmt.Errorf("cuda: MatMul(m=%d, n=%d, k=%d): sizes must lie in [1, 2^31)", m, n, k)
	}
	if a.n < m*k || bm.n < k*n || c.n < m*n {
		return fmt.Errorf("cuda: MatMul(m=%d, n=%d, k=%d): buffers hold A %d, B %d, C %d values", m, n, k, a.n, bm.n, c.n)
	}
	alpha, beta := float32(1), float32(0)
	return b.d.do("MatMul", func() error {
		code := b.cublasSgemm(b.handle, cublasOpN, cublasOpN, int32(n), int32(m), int32(k),
			&alpha, bm.ptr, int32(n), a.ptr, int32(k), &beta, c.ptr, int32(n))
		runtime.KeepAlive(&alpha)
		runtime.KeepAlive(&beta)
		return b.check(code, fmt.Sprintf("cublasSgemm_v2(N, N, m=%d, n=%d, k=%d)", n, m, k))
	})
}
