//go:build amd64 && !purego

package elementwise

import "golang.org/x/sys/cpu"

// useAVX2 selects the assembly loops.
var useAVX2 = cpu.X86.HasAVX2

// reluAVX2 is ReLU for n values, n a multiple of 8.
//
//go:noescape
func reluAVX2(y, x *float32, n int)

// reluGradAVX2 is ReLUGrad for n values, n a multiple of 8.
//
//go:noescape
func reluGradAVX2(dx, y, grad *float32, n int)

// signStepAVX2 is SignStep for n values, n a multiple of 4; it reports
// whether grad held a NaN.
//
//go:noescape
func signStepAVX2(x, grad, clean *float32, n int, step, eps float64) bool
