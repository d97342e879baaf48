//go:build amd64 && !purego

#include "textflag.h"

// Each routine handles 8 float32 values (8 columns or 8 tiles) per
// iteration in YMM registers; the Go callers pass a multiple of 8 and do
// the rest themselves.

// func rowsAVX2(d0, d1, d2, d3, a0, a1, a2, a3 *float32, n int)
TEXT ·rowsAVX2(SB), NOSPLIT, $0-72
	MOVQ d0+0(FP), AX
	MOVQ d1+8(FP), BX
	MOVQ d2+16(FP), CX
	MOVQ d3+24(FP), DX
	MOVQ a0+32(FP), R8
	MOVQ a1+40(FP), R9
	MOVQ a2+48(FP), R10
	MOVQ a3+56(FP), R11
	MOVQ n+64(FP), SI
	SHLQ $2, SI
	XORQ DI, DI
rloop:
	CMPQ DI, SI
	JGE rdone
	VMOVUPS (AX)(DI*1), Y0
	VMOVUPS (BX)(DI*1), Y1
	VMOVUPS (CX)(DI*1), Y2
	VMOVUPS (DX)(DI*1), Y3
	VSUBPS Y2, Y0, Y4
	VADDPS Y2, Y1, Y5
	VSUBPS Y1, Y2, Y6
	VSUBPS Y3, Y1, Y7
	VMOVUPS Y4, (R8)(DI*1)
	VMOVUPS Y5, (R9)(DI*1)
	VMOVUPS Y6, (R10)(DI*1)
	VMOVUPS Y7, (R11)(DI*1)
	ADDQ $32, DI
	JMP rloop
rdone:
	VZEROUPPER
	RET

// Tiles t … t+7 read a[2t … 2t+17]: P = a[2t … 2t+15] and Q = a[2t+2 …
// 2t+17], whose even and odd entries (split by VSHUFPS, put back in order
// by VPERMPD) are the tiles' columns 0, 1 (from P) and 2, 3 (from Q).

// func columnsAVX2(a *float32, n int, v0, v1, v2, v3 *float32)
TEXT ·columnsAVX2(SB), NOSPLIT, $0-48
	MOVQ a+0(FP), AX
	MOVQ n+8(FP), SI
	MOVQ v0+16(FP), R8
	MOVQ v1+24(FP), R9
	MOVQ v2+32(FP), R10
	MOVQ v3+40(FP), R11
	SHLQ $2, SI
	XORQ DI, DI
cloop:
	CMPQ DI, SI
	JGE cdone
	LEAQ (AX)(DI*2), BX
	VMOVUPS 0(BX), Y0
	VMOVUPS 32(BX), Y1
	VMOVUPS 8(BX), Y2
	VMOVUPS 40(BX), Y3
	VSHUFPS $0x88, Y1, Y0, Y4
	VPERMPD $0xD8, Y4, Y4
	VSHUFPS $0xDD, Y1, Y0, Y5
	VPERMPD $0xD8, Y5, Y5
	VSHUFPS $0x88, Y3, Y2, Y6
	VPERMPD $0xD8, Y6, Y6
	VSHUFPS $0xDD, Y3, Y2, Y7
	VPERMPD $0xD8, Y7, Y7
	VSUBPS Y6, Y4, Y8
	VADDPS Y6, Y5, Y9
	VSUBPS Y5, Y6, Y10
	VSUBPS Y7, Y5, Y11
	VMOVUPS Y8, (R8)(DI*1)
	VMOVUPS Y9, (R9)(DI*1)
	VMOVUPS Y10, (R10)(DI*1)
	VMOVUPS Y11, (R11)(DI*1)
	ADDQ $32, DI
	JMP cloop
cdone:
	VZEROUPPER
	RET

// R8, R9, R10, R11 point at values 0, 4, 8 and 12 of the current 8 tiles;
// BX is the step in bytes and CX three steps, so value 4i+j is at
// (R8+4i·step)+j·step. For column j: p_j = m_j + m_{4+j} + m_{8+j} and
// q_j = m_{4+j} − m_{8+j} − m_{12+j}; then row0 gets p0+p1+p2 and
// p1−p2−p3, row1 q0+q1+q2 and q1−q2−q3, interleaved tile by tile
// (VUNPCKLPS/VUNPCKHPS, lanes put in order by VPERM2F128).

// func outputAVX2(m *float32, step, n int, row0, row1 *float32)
TEXT ·outputAVX2(SB), NOSPLIT, $0-40
	MOVQ m+0(FP), R8
	MOVQ step+8(FP), BX
	MOVQ n+16(FP), SI
	MOVQ row0+24(FP), R12
	MOVQ row1+32(FP), R13
	SHLQ $2, BX
	LEAQ (BX)(BX*2), CX
	LEAQ (R8)(BX*4), R9
	LEAQ (R9)(BX*4), R10
	LEAQ (R10)(BX*4), R11
	SHRQ $3, SI
oloop:
	TESTQ SI, SI
	JZ odone
	// column 0
	VMOVUPS (R9), Y12
	VMOVUPS (R10), Y13
	VADDPS Y13, Y12, Y0
	VSUBPS Y13, Y12, Y4
	VADDPS (R8), Y0, Y0
	VSUBPS (R11), Y4, Y4
	// column 1
	VMOVUPS (R9)(BX*1), Y12
	VMOVUPS (R10)(BX*1), Y13
	VADDPS Y13, Y12, Y1
	VSUBPS Y13, Y12, Y5
	VADDPS (R8)(BX*1), Y1, Y1
	VSUBPS (R11)(BX*1), Y5, Y5
	// column 2
	VMOVUPS (R9)(BX*2), Y12
	VMOVUPS (R10)(BX*2), Y13
	VADDPS Y13, Y12, Y2
	VSUBPS Y13, Y12, Y6
	VADDPS (R8)(BX*2), Y2, Y2
	VSUBPS (R11)(BX*2), Y6, Y6
	// column 3
	VMOVUPS (R9)(CX*1), Y12
	VMOVUPS (R10)(CX*1), Y13
	VADDPS Y13, Y12, Y3
	VSUBPS Y13, Y12, Y7
	VADDPS (R8)(CX*1), Y3, Y3
	VSUBPS (R11)(CX*1), Y7, Y7
	// row 0: Y8 = p0+p1+p2, Y9 = p1−p2−p3
	VADDPS Y1, Y0, Y8
	VADDPS Y2, Y8, Y8
	VSUBPS Y2, Y1, Y9
	VSUBPS Y3, Y9, Y9
	VUNPCKLPS Y9, Y8, Y10
	VUNPCKHPS Y9, Y8, Y11
	VPERM2F128 $0x20, Y11, Y10, Y12
	VPERM2F128 $0x31, Y11, Y10, Y13
	VMOVUPS Y12, 0(R12)
	VMOVUPS Y13, 32(R12)
	// row 1: Y8 = q0+q1+q2, Y9 = q1−q2−q3
	VADDPS Y5, Y4, Y8
	VADDPS Y6, Y8, Y8
	VSUBPS Y6, Y5, Y9
	VSUBPS Y7, Y9, Y9
	VUNPCKLPS Y9, Y8, Y10
	VUNPCKHPS Y9, Y8, Y11
	VPERM2F128 $0x20, Y11, Y10, Y12
	VPERM2F128 $0x31, Y11, Y10, Y13
	VMOVUPS Y12, 0(R13)
	VMOVUPS Y13, 32(R13)
	ADDQ $32, R8
	ADDQ $32, R9
	ADDQ $32, R10
	ADDQ $32, R11
	ADDQ $64, R12
	ADDQ $64, R13
	DECQ SI
	JMP oloop
odone:
	VZEROUPPER
	RET
