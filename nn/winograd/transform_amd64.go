//go:build amd64 && !purego

package winograd

import "golang.org/x/sys/cpu"

// useAVX2 selects the assembly transforms for float32.
var useAVX2 = cpu.X86.HasAVX2

// rowsAVX2 is Rows for n float32 columns, n a multiple of 8.
//
//go:noescape
func rowsAVX2(d0, d1, d2, d3, a0, a1, a2, a3 *float32, n int)

// columnsAVX2 is Columns for n float32 tiles, n a multiple of 8.
//
//go:noescape
func columnsAVX2(a *float32, n int, v0, v1, v2, v3 *float32)

// outputAVX2 is Output for n float32 tiles, n a multiple of 8.
//
//go:noescape
func outputAVX2(m *float32, step, n int, row0, row1 *float32)
