//go:build !amd64 || purego

package gemm

// chooseKernels returns the portable Go kernels: this build has no assembly.
func chooseKernels() kernels { return portableKernels() }

// availableKernels lists the kernel sets this build can run, for tests and
// benchmarks.
func availableKernels() []kernels { return []kernels{portableKernels()} }
