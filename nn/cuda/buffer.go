package cuda

// Buffer is device memory for Len float32 values. The zero Buffer holds
// nothing (SGDStep takes it for the buffer when momentum is 0).
type Buffer struct {
	ptr uintptr
	n   int
}

// Len is the number of float32 values b holds.
func (b Buffer) Len() int { return b.n }

// Ptr is b's device address (a CUdeviceptr), for calls this package does
// not wrap.
func (b Buffer) Ptr() uintptr { return b.ptr }
