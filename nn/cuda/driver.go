//go:build linux && sglrcuda

package cuda

import (
	"fmt"
	"runtime"
	"sync"
	"unsafe"

	"github.com/ebitengine/purego"
)

// driver holds libcuda's entry points, bound with purego. The Go types
// follow cuda.h on 64-bit Linux: CUresult and CUdevice are int,
// CUcontext/CUstream/CUmodule/CUfunction are pointers (uintptr here),
// CUdeviceptr is unsigned long long (uintptr), size_t is uintptr. Each _v2
// name is the one cuda.h's macros map the plain name to. None of these
// signatures is checked against the real library without a GPU run.
type driver struct {
	path   string
	handle uintptr

	cuInit                    func(flags uint32) int32
	cuDriverGetVersion        func(v *int32) int32
	cuDeviceGetCount          func(n *int32) int32
	cuDeviceGet               func(dev *int32, ordinal int32) int32
	cuDeviceGetName           func(name *byte, n int32, dev int32) int32
	cuDeviceTotalMem          func(bytes *uintptr, dev int32) int32 // cuDeviceTotalMem_v2
	cuDeviceGetAttribute      func(v *int32, attr int32, dev int32) int32
	cuDevicePrimaryCtxRetain  func(ctx *uintptr, dev int32) int32
	cuDevicePrimaryCtxRelease func(dev int32) int32 // cuDevicePrimaryCtxRelease_v2
	cuCtxSetCurrent           func(ctx uintptr) int32
	cuMemAlloc                func(p *uintptr, bytes uintptr) int32                  // cuMemAlloc_v2
	cuMemFree                 func(p uintptr) int32                                  // cuMemFree_v2
	cuMemcpyHtoD              func(dst uintptr, src unsafe.Pointer, n uintptr) int32 // cuMemcpyHtoD_v2
	cuMemcpyDtoH              func(dst unsafe.Pointer, src uintptr, n uintptr) int32 // cuMemcpyDtoH_v2
	cuMemsetD32               func(dst uintptr, v uint32, n uintptr) int32           // cuMemsetD32_v2
	cuStreamCreate            func(s *uintptr, flags uint32) int32
	cuStreamSynchronize       func(s uintptr) int32
	cuStreamDestroy           func(s uintptr) int32 // cuStreamDestroy_v2
	cuModuleLoadDataEx        func(m *uintptr, image *byte, n uint32, opts *int32, vals *uintptr) int32
	cuModuleGetFunction       func(f *uintptr, m uintptr, name string) int32
	cuModuleUnload            func(m uintptr) int32
	cuLaunchKernel            func(f uintptr, gx, gy, gz, bx, by, bz, shared uint32, stream uintptr, params *unsafe.Pointer, extra *unsafe.Pointer) int32
	cuGetErrorName            func(code int32, s **byte) int32
	cuGetErrorString          func(code int32, s **byte) int32
}

// Attribute numbers from cuda.h's CUdevice_attribute.
const (
	attrComputeCapabilityMajor = 75
	attrComputeCapabilityMinor = 76
)

// CUjit_option numbers from cuda.h, for the JIT's error log.
const (
	jitInfoLogBuffer           = 3
	jitInfoLogBufferSizeBytes  = 4
	jitErrorLogBuffer          = 5
	jitErrorLogBufferSizeBytes = 6
)

var (
	driversMu sync.Mutex
	drivers   = map[string]*driver{} // by path: dlopen once, cuInit once
)

// dlopen opens the library at path, naming it in the error.
func dlopen(path string) (uintptr, error) {
	h, err := purego.Dlopen(path, purego.RTLD_NOW|purego.RTLD_GLOBAL)
	if err != nil {
		return 0, fmt.Errorf("cuda: dlopen %s: %v", path, err)
	}
	return h, nil
}

// binder binds symbols of one library, remembering the first failure so
// a list of bindings reads straight.
type binder struct {
	handle uintptr
	path   string
	err    error
}

func (b *binder) bind(fptr any, name string) {
	if b.err != nil {
		return
	}
	sym, err := purego.Dlsym(b.handle, name)
	if err != nil {
		b.err = fmt.Errorf("cuda: %s has no symbol %s (too old a version?): %v", b.path, name, err)
		return
	}
	purego.RegisterFunc(fptr, sym)
}

// loadDriver dlopens libcuda at path, binds the entry points and calls
// cuInit(0), once per path per process.
func loadDriver(path string) (*driver, error) {
	driversMu.Lock()
	defer driversMu.Unlock()
	if d, ok := drivers[path]; ok {
		return d, nil
	}
	h, err := dlopen(path)
	if err != nil {
		return nil, err
	}
	d := &driver{path: path, handle: h}
	b := &binder{handle: h, path: path}
	b.bind(&d.cuGetErrorName, "cuGetErrorName")
	b.bind(&d.cuGetErrorString, "cuGetErrorString")
	b.bind(&d.cuInit, "cuInit")
	b.bind(&d.cuDriverGetVersion, "cuDriverGetVersion")
	b.bind(&d.cuDeviceGetCount, "cuDeviceGetCount")
	b.bind(&d.cuDeviceGet, "cuDeviceGet")
	b.bind(&d.cuDeviceGetName, "cuDeviceGetName")
	b.bind(&d.cuDeviceTotalMem, "cuDeviceTotalMem_v2")
	b.bind(&d.cuDeviceGetAttribute, "cuDeviceGetAttribute")
	b.bind(&d.cuDevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain")
	b.bind(&d.cuDevicePrimaryCtxRelease, "cuDevicePrimaryCtxRelease_v2")
	b.bind(&d.cuCtxSetCurrent, "cuCtxSetCurrent")
	b.bind(&d.cuMemAlloc, "cuMemAlloc_v2")
	b.bind(&d.cuMemFree, "cuMemFree_v2")
	b.bind(&d.cuMemcpyHtoD, "cuMemcpyHtoD_v2")
	b.bind(&d.cuMemcpyDtoH, "cuMemcpyDtoH_v2")
	b.bind(&d.cuMemsetD32, "cuMemsetD32_v2")
	b.bind(&d.cuStreamCreate, "cuStreamCreate")
	b.bind(&d.cuStreamSynchronize, "cuStreamSynchronize")
	b.bind(&d.cuStreamDestroy, "cuStreamDestroy_v2")
	b.bind(&d.cuModuleLoadDataEx, "cuModuleLoadDataEx")
	b.bind(&d.cuModuleGetFunction, "cuModuleGetFunction")
	b.bind(&d.cuModuleUnload, "cuModuleUnload")
	b.bind(&d.cuLaunchKernel, "cuLaunchKernel")
	if b.err != nil {
		return nil, b.err
	}
	if err := d.check(d.cuInit(0), "cuInit(0) with "+path); err != nil {
		return nil, err
	}
	drivers[path] = d
	return d, nil
}

// check turns a CUresult into an *Error naming call, nil for CUDA_SUCCESS.
func (d *driver) check(code int32, call string) error {
	if code == 0 {
		return nil
	}
	e := &Error{Call: call, Code: int(code), Name: codeName(cuResultNames, int(code))}
	if d.cuGetErrorName != nil {
		var p *byte
		if d.cuGetErrorName(code, &p) == 0 && p != nil {
			e.Name = goString(p)
		}
		if d.cuGetErrorString(code, &p) == 0 && p != nil {
			e.Msg = goString(p)
		}
	}
	return e
}

// goString copies the NUL-terminated C string at p.
func goString(p *byte) string {
	n := 0
	for *(*byte)(unsafe.Add(unsafe.Pointer(p), n)) != 0 {
		n++
	}
	return string(unsafe.Slice(p, n))
}

// loadModule JIT-compiles ptx (NUL added here), returning the JIT's error
// log in the error when it fails: the first thing to read if the
// hand-written PTX is rejected on a new driver.
func (d *driver) loadModule(ptx string) (uintptr, error) {
	image := append([]byte(ptx), 0)
	errLog := make([]byte, 16<<10)
	infoLog := make([]byte, 16<<10)
	opts := []int32{jitErrorLogBuffer, jitErrorLogBufferSizeBytes, jitInfoLogBuffer, jitInfoLogBufferSizeBytes}
	vals := []uintptr{
		uintptr(unsafe.Pointer(&errLog[0])), uintptr(len(errLog)),
		uintptr(unsafe.Pointer(&infoLog[0])), uintptr(len(infoLog)),
	}
	var m uintptr
	code := d.cuModuleLoadDataEx(&m, &image[0], uint32(len(opts)), &opts[0], &vals[0])
	runtime.KeepAlive(image)
	runtime.KeepAlive(errLog)
	runtime.KeepAlive(infoLog)
	if err := d.check(code, fmt.Sprintf("cuModuleLoadDataEx(%d bytes of PTX)", len(ptx))); err != nil {
		e := err.(*Error)
		if s := cString(errLog); s != "" {
			e.Msg += "; JIT log: " + s
		}
		return 0, e
	}
	return m, nil
}

// cString is b up to its first NUL.
func cString(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}
