//go:build !(linux && sglrcuda)

package cuda

import (
	"errors"
	"fmt"
	"runtime"
)

// This file is the default build: without -tags sglrcuda (or off Linux) the
// package does not link purego, whose dlopen stubs would make every
// binary importing nn/cuda (the stages do, for discovery) dynamically
// linked against libc. Discovery and the CPU references work; Open finds
// the driver as the real one does and then reports that this binary cannot
// drive it.

// errNotBuilt is what every device call returns in this build.
var errNotBuilt = errors.New("cuda: this binary was built without the CUDA bindings (go build -tags sglrcuda, Linux only; " +
	"the default build stays a static binary and cannot dlopen libcuda)")

// Device is a GPU opened for use; in this build none can be opened.
type Device struct {
	Index         int
	Name          string
	TotalMem      uint64
	Major, Minor  int
	DriverVersion int
	DriverPath    string
}

// BLAS is cuBLAS on a Device; in this build there is none.
type BLAS struct {
	Version int
	Path    string
}

// Open opens GPU index with DefaultSearch's libcuda.
func Open(index int) (*Device, error) { return DefaultSearch().Open(index) }

// Open returns the search's *LibraryError when there is no libcuda.so.1,
// and otherwise an error saying this build cannot use it.
func (s Search) Open(index int) (*Device, error) {
	path, err := s.Find(Driver)
	if err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("cuda: Open(%d): found %s, but %w (this one: %s/%s)", index, path, errNotBuilt, runtime.GOOS, runtime.GOARCH)
}

func (d *Device) String() string                                         { return fmt.Sprintf("cuda:%d (not built)", d.Index) }
func (d *Device) Close() error                                           { return nil }
func (d *Device) Alloc(n int) (Buffer, error)                            { return Buffer{}, errNotBuilt }
func (d *Device) Free(b Buffer) error                                    { return errNotBuilt }
func (d *Device) Upload(dst Buffer, src []float32) error                 { return errNotBuilt }
func (d *Device) Download(dst []float32, src Buffer) error               { return errNotBuilt }
func (d *Device) Zero(b Buffer) error                                    { return errNotBuilt }
func (d *Device) Sync() error                                            { return errNotBuilt }
func (d *Device) ReLU(y, x Buffer, n int) error                          { return errNotBuilt }
func (d *Device) ReLUGrad(dx, y, g Buffer, n int) error                  { return errNotBuilt }
func (d *Device) PGDStep(x, g, c Buffer, n int, step, eps float64) error { return errNotBuilt }
func (d *Device) SGDStep(w, g, buf Buffer, n int, o SGDOptions) error    { return errNotBuilt }
func (d *Device) BLAS() (*BLAS, error)                                   { return nil, errNotBuilt }
func (b *BLAS) SetTF32(on bool) error                                    { return errNotBuilt }
func (b *BLAS) MatMul(c, a, bm Buffer, m, n, k int) error                { return errNotBuilt }
