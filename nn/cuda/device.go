//go:build linux && sglrcuda

package cuda

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"sync"
	"unsafe"
)

// Device is one GPU opened for use: its primary context (shared with
// anything else in the process that uses the runtime API, as PyTorch
// does), one stream for all work, and the module of element-wise kernels.
// Methods are safe for concurrent use; they are serialised.
type Device struct {
	Index         int
	Name          string
	TotalMem      uint64 // bytes
	Major, Minor  int    // compute capability
	DriverVersion int    // cuDriverGetVersion: 13000 for CUDA 13.0
	DriverPath    string // the libcuda found

	search Search
	mu     sync.Mutex
	drv    *driver
	dev    int32
	ctx    uintptr
	stream uintptr
	module uintptr
	fns    map[string]uintptr
	blas   *BLAS
	closed bool
}

// Open opens GPU index with DefaultSearch's libcuda.
func Open(index int) (*Device, error) { return DefaultSearch().Open(index) }

// Open finds libcuda.so.1 through s, initialises the driver and opens GPU
// index: primary context, a stream, and the kernel module (JIT-compiled
// here, so a PTX the driver rejects fails Open, with the JIT's log). On a
// machine without a driver it returns the *LibraryError of the search.
func (s Search) Open(index int) (*Device, error) {
	path, err := s.Find(Driver)
	if err != nil {
		return nil, err
	}
	drv, err := loadDriver(path)
	if err != nil {
		return nil, err
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()

	d := &Device{Index: index, DriverPath: path, search: s, drv: drv, fns: map[string]uintptr{}}
	var v, count int32
	if err := drv.check(drv.cuDriverGetVersion(&v), "cuDriverGetVersion"); err != nil {
		return nil, err
	}
	d.DriverVersion = int(v)
	if err := drv.check(drv.cuDeviceGetCount(&count), "cuDeviceGetCount"); err != nil {
		return nil, err
	}
	if index < 0 || index >= int(count) {
		return nil, fmt.Errorf("cuda: device %d out of range: the driver at %s reports %d devices", index, path, count)
	}
	if err := drv.check(drv.cuDeviceGet(&d.dev, int32(index)), fmt.Sprintf("cuDeviceGet(%d)", index)); err != nil {
		return nil, err
	}
	name := make([]byte, 256)
	if err := drv.check(drv.cuDeviceGetName(&name[0], int32(len(name)), d.dev), "cuDeviceGetName"); err != nil {
		return nil, err
	}
	d.Name = cString(name)
	var mem uintptr
	if err := drv.check(drv.cuDeviceTotalMem(&mem, d.dev), "cuDeviceTotalMem_v2"); err != nil {
		return nil, err
	}
	d.TotalMem = uint64(mem)
	var major, minor int32
	if err := drv.check(drv.cuDeviceGetAttribute(&major, attrComputeCapabilityMajor, d.dev), "cuDeviceGetAttribute(COMPUTE_CAPABILITY_MAJOR)"); err != nil {
		return nil, err
	}
	if err := drv.check(drv.cuDeviceGetAttribute(&minor, attrComputeCapabilityMinor, d.dev), "cuDeviceGetAttribute(COMPUTE_CAPABILITY_MINOR)"); err != nil {
		return nil, err
	}
	d.Major, d.Minor = int(major), int(minor)

	if err := drv.check(drv.cuDevicePrimaryCtxRetain(&d.ctx, d.dev), fmt.Sprintf("cuDevicePrimaryCtxRetain(device %d)", index)); err != nil {
		return nil, err
	}
	fail := func(err error) (*Device, error) {
		d.release()
		return nil, err
	}
	if err := drv.check(drv.cuCtxSetCurrent(d.ctx), "cuCtxSetCurrent"); err != nil {
		return fail(err)
	}
	if err := drv.check(drv.cuStreamCreate(&d.stream, 0), "cuStreamCreate"); err != nil {
		return fail(err)
	}
	if d.module, err = drv.loadModule(kernelPTX); err != nil {
		return fail(err)
	}
	for _, k := range kernels {
		var f uintptr
		if err := drv.check(drv.cuModuleGetFunction(&f, d.module, k.name), "cuModuleGetFunction("+k.name+")"); err != nil {
			return fail(err)
		}
		d.fns[k.name] = f
	}
	return d, nil
}

// String names the device for logs.
func (d *Device) String() string {
	return fmt.Sprintf("cuda:%d %s (sm_%d%d, %.1f GiB, driver %d.%d, %s)", d.Index, d.Name, d.Major, d.Minor,
		float64(d.TotalMem)/(1<<30), d.DriverVersion/1000, d.DriverVersion%1000/10, d.DriverPath)
}

// release frees what Open acquired; the thread is locked and ctx current.
func (d *Device) release() error {
	var errs []error
	if d.blas != nil {
		errs = append(errs, d.blas.destroy())
		d.blas = nil
	}
	if d.module != 0 {
		errs = append(errs, d.drv.check(d.drv.cuModuleUnload(d.module), "cuModuleUnload"))
		d.module = 0
	}
	if d.stream != 0 {
		errs = append(errs, d.drv.check(d.drv.cuStreamDestroy(d.stream), "cuStreamDestroy_v2"))
		d.stream = 0
	}
	if d.ctx != 0 {
		errs = append(errs, d.drv.check(d.drv.cuDevicePrimaryCtxRelease(d.dev), "cuDevicePrimaryCtxRelease_v2"))
		d.ctx = 0
	}
	return errors.Join(errs...)
}

// Close releases the stream, the module, cuBLAS and the primary context.
// Buffers not freed are freed with the context when nothing else in the
// process holds it. Closing twice is a no-op.
func (d *Device) Close() error {
	return d.do("Close", func() error {
		d.closed = true
		return d.release()
	})
}

// do runs f with d's context current on a locked OS thread, under d.mu.
func (d *Device) do(what string, f func() error) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		if what == "Close" {
			return nil
		}
		return fmt.Errorf("cuda: %s on closed device %d", what, d.Index)
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := d.drv.check(d.drv.cuCtxSetCurrent(d.ctx), "cuCtxSetCurrent"); err != nil {
		return err
	}
	return f()
}

// Alloc returns device memory for n float32 values, not initialised.
func (d *Device) Alloc(n int) (Buffer, error) {
	if n <= 0 {
		return Buffer{}, fmt.Errorf("cuda: Alloc(%d): want n > 0", n)
	}
	var b Buffer
	err := d.do("Alloc", func() error {
		var p uintptr
		if err := d.drv.check(d.drv.cuMemAlloc(&p, uintptr(n)*4), fmt.Sprintf("cuMemAlloc_v2(%d bytes)", n*4)); err != nil {
			return err
		}
		b = Buffer{ptr: p, n: n}
		return nil
	})
	return b, err
}

// Free releases b (after the work queued on the stream that uses it).
func (d *Device) Free(b Buffer) error {
	if b.ptr == 0 {
		return nil
	}
	return d.do("Free", func() error {
		if err := d.drv.check(d.drv.cuStreamSynchronize(d.stream), "cuStreamSynchronize"); err != nil {
			return err
		}
		return d.drv.check(d.drv.cuMemFree(b.ptr), fmt.Sprintf("cuMemFree_v2(%#x)", b.ptr))
	})
}

// Upload copies src into the start of dst, after the queued work.
func (d *Device) Upload(dst Buffer, src []float32) error {
	if len(src) > dst.n {
		return fmt.Errorf("cuda: Upload of %d values into a buffer of %d", len(src), dst.n)
	}
	if len(src) == 0 {
		return nil
	}
	return d.do("Upload", func() error {
		if err := d.drv.check(d.drv.cuStreamSynchronize(d.stream), "cuStreamSynchronize"); err != nil {
			return err
		}
		code := d.drv.cuMemcpyHtoD(dst.ptr, unsafe.Pointer(&src[0]), uintptr(len(src))*4)
		runtime.KeepAlive(src)
		return d.drv.check(code, fmt.Sprintf("cuMemcpyHtoD_v2(%d bytes)", len(src)*4))
	})
}

// Download copies the start of src into dst, after the queued work.
func (d *Device) Download(dst []float32, src Buffer) error {
	if len(dst) > src.n {
		return fmt.Errorf("cuda: Download of %d values from a buffer of %d", len(dst), src.n)
	}
	if len(dst) == 0 {
		return nil
	}
	return d.do("Download", func() error {
		if err := d.drv.check(d.drv.cuStreamSynchronize(d.stream), "cuStreamSynchronize"); err != nil {
			return err
		}
		code := d.drv.cuMemcpyDtoH(unsafe.Pointer(&dst[0]), src.ptr, uintptr(len(dst))*4)
		runtime.KeepAlive(dst)
		return d.drv.check(code, fmt.Sprintf("cuMemcpyDtoH_v2(%d bytes)", len(dst)*4))
	})
}

// Zero sets every value of b to +0 (cuMemsetD32, on the legacy default
// stream, which waits for d's stream).
func (d *Device) Zero(b Buffer) error {
	return d.do("Zero", func() error {
		return d.drv.check(d.drv.cuMemsetD32(b.ptr, 0, uintptr(b.n)), fmt.Sprintf("cuMemsetD32_v2(%d values)", b.n))
	})
}

// Sync waits for the work queued on d's stream.
func (d *Device) Sync() error {
	return d.do("Sync", func() error {
		return d.drv.check(d.drv.cuStreamSynchronize(d.stream), "cuStreamSynchronize")
	})
}

// launch queues kernel k over n elements; args are uintptr (u64), uint32,
// float32 or float64, checked against k's parameter list.
func (d *Device) launch(k kernel, n int, args ...any) error {
	if len(args) != len(k.params) {
		return fmt.Errorf("cuda: %s: %d arguments for %d parameters", k.name, len(args), len(k.params))
	}
	// Each argument in its own heap cell: Go's heap does not move, and
	// params keeps the cells alive until the call returns.
	params := make([]unsafe.Pointer, len(args))
	for i, a := range args {
		var ok bool
		switch v := a.(type) {
		case uintptr:
			ok = k.params[i] == "u64"
			params[i] = unsafe.Pointer(&[]uint64{uint64(v)}[0])
		case uint32:
			ok = k.params[i] == "u32"
			params[i] = unsafe.Pointer(&[]uint32{v}[0])
		case float32:
			ok = k.params[i] == "f32"
			params[i] = unsafe.Pointer(&[]float32{v}[0])
		case float64:
			ok = k.params[i] == "f64"
			params[i] = unsafe.Pointer(&[]float64{v}[0])
		}
		if !ok {
			return fmt.Errorf("cuda: %s: argument %d is %T, parameter is .%s", k.name, i, a, k.params[i])
		}
	}
	if n == 0 {
		return nil
	}
	grid := (n + blockSize - 1) / blockSize
	return d.do(k.name, func() error {
		code := d.drv.cuLaunchKernel(d.fns[k.name], uint32(grid), 1, 1, blockSize, 1, 1, 0, d.stream, &params[0], nil)
		runtime.KeepAlive(params)
		return d.drv.check(code, fmt.Sprintf("cuLaunchKernel(%s, %d blocks of %d, n=%d)", k.name, grid, blockSize, n))
	})
}

// count checks that n values fit every buffer and the kernels' uint32
// index, naming the op.
func count(op string, n int, bufs ...Buffer) (uint32, error) {
	if n < 0 || n > math.MaxInt32 {
		return 0, fmt.Errorf("cuda: %s: n=%d out of range [0, 2^31)", op, n)
	}
	for i, b := range bufs {
		if b.n < n {
			return 0, fmt.Errorf("cuda: %s: buffer %d holds %d values, need %d", op, i, b.n, n)
		}
	}
	return uint32(n), nil
}

// ReLU queues y[:n] = ReLURef(x[:n]).
func (d *Device) ReLU(y, x Buffer, n int) error {
	n32, err := count("ReLU", n, y, x)
	if err != nil {
		return err
	}
	return d.launch(kReLU, n, y.ptr, x.ptr, n32)
}

// ReLUGrad queues dx[:n] = ReLUGradRef(y[:n], g[:n]).
func (d *Device) ReLUGrad(dx, y, g Buffer, n int) error {
	n32, err := count("ReLUGrad", n, dx, y, g)
	if err != nil {
		return err
	}
	return d.launch(kReLUGrad, n, dx.ptr, y.ptr, g.ptr, n32)
}

// PGDStep queues PGDStepRef(x[:n], g[:n], clean[:n], step, eps) in place.
func (d *Device) PGDStep(x, g, clean Buffer, n int, step, eps float64) error {
	n32, err := count("PGDStep", n, x, g, clean)
	if err != nil {
		return err
	}
	return d.launch(kPGDStep, n, x.ptr, g.ptr, clean.ptr, n32, step, eps)
}

// SGDStep queues SGDStepRef(w[:n], g[:n], buf[:n], o) in place; buf may
// be the zero Buffer when o.Momentum is 0.
func (d *Device) SGDStep(w, g, buf Buffer, n int, o SGDOptions) error {
	bufs := []Buffer{w, g}
	if o.Momentum != 0 {
		bufs = append(bufs, buf)
	}
	n32, err := count("SGDStep", n, bufs...)
	if err != nil {
		return err
	}
	return d.launch(kSGDStep, n, w.ptr, g.ptr, buf.ptr, n32, o.LR, o.Momentum, o.WeightDecay, o.flags())
}
