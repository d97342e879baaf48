// Package cuda is the foundation of sglr-pipe's GPU backend (issue 14): it
// finds NVIDIA's shared libraries at run time, binds the parts of the CUDA
// driver API and cuBLAS a backend needs through github.com/ebitengine/purego
// (dlopen without cgo, so CGO_ENABLED=0 still builds), and ships the small
// element-wise kernels as hand-written PTX that the driver JIT-compiles,
// each with a CPU reference in Go that defines what the kernel must compute.
//
// What is here:
//
//   - Find / Search: where libcuda.so.1, cuBLAS(Lt), cuDNN 9 and NVRTC are
//     looked for (SGLR_CUDA_LIBS, LD_LIBRARY_PATH, the usual system and CUDA
//     toolkit directories, PyTorch's wheels), with a *LibraryError naming the
//     library and every path tried when one is missing.
//   - Open(index) *Device (with -tags sglrcuda): driver init, primary context, one stream, the
//     kernel module; Alloc/Free/Upload/Download; ReLU, ReLUGrad, PGDStep and
//     SGDStep on device buffers; BLAS() for cublasSgemm_v2 with TF32 off.
//   - ReLURef, ReLUGradRef, PGDStepRef, SGDStepRef: the CPU references,
//     tested here against nn/elementwise and nn/optim.
//
// What is NOT verified without a GPU: that the PTX is accepted by the
// driver's JIT, that the kernels match their references, that the purego
// signatures match the real libraries' ABI, and every CUDA error path past
// "library not found". Those are the TestDevice… tests, which skip with the
// discovery error on a machine without a driver; bench/gpu/check.sh runs them
// on a GPU machine. cuDNN and NVRTC are found but not bound yet: the kernels
// are PTX, so NVRTC is not needed.
//
// Build tag: the bindings (driver.go, device.go, blas.go) build only with
// -tags sglrcuda on Linux. purego's dlopen stubs make a CGO_ENABLED=0
// executable dynamically linked against glibc (libc.so.6, libdl.so.2), and
// the stages import this package for discovery, so without the tag the
// sglr-pipe binary stays fully static: discovery and the references work,
// and Open returns the *LibraryError when there is no driver, or an error
// saying the binary was built without the bindings when there is one
// (device_other.go). The tag is not "cuda", which switches gorgonia to its
// cgo CUDA build.
//
// Threads: CUDA keeps the current context per OS thread and Go moves
// goroutines between threads, so every Device method locks its goroutine to
// its thread and makes the device's context current for the duration of the
// call. A Device serialises its calls with a mutex; all work goes to one
// stream.
package cuda
