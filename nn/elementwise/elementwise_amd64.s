//go:build amd64 && !purego

#include "textflag.h"

// Operand order is Go's: sources first, destination last. For VMAXPS and
// VMINPS/PD the hardware returns its second source (Go's first operand)
// when either is NaN, so the operand a NaN must pass through goes first.

// func reluAVX2(y, x *float32, n int)
TEXT ·reluAVX2(SB), NOSPLIT, $0-24
	MOVQ y+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ n+16(FP), CX
	SHLQ $2, CX
	XORQ AX, AX
	VXORPS Y15, Y15, Y15
rloop:
	CMPQ AX, CX
	JGE rdone
	VMOVUPS (SI)(AX*1), Y0
	VMAXPS Y0, Y15, Y0 // 0 > x ? 0 : x — NaN and −0 pass through
	VMOVUPS Y0, (DI)(AX*1)
	ADDQ $32, AX
	JMP rloop
rdone:
	VZEROUPPER
	RET

// func reluGradAVX2(dx, y, grad *float32, n int)
TEXT ·reluGradAVX2(SB), NOSPLIT, $0-32
	MOVQ dx+0(FP), DI
	MOVQ y+8(FP), SI
	MOVQ grad+16(FP), DX
	MOVQ n+24(FP), CX
	SHLQ $2, CX
	XORQ AX, AX
	VXORPS Y15, Y15, Y15
gloop:
	CMPQ AX, CX
	JGE gdone
	VMOVUPS (SI)(AX*1), Y0
	VCMPPS $0x1e, Y15, Y0, Y1 // y > 0 (ordered: NaN gives false)
	VANDPS (DX)(AX*1), Y1, Y1
	VMOVUPS Y1, (DI)(AX*1)
	ADDQ $32, AX
	JMP gloop
gdone:
	VZEROUPPER
	RET

// Four values per iteration, widened to float64 so that the result rounds
// to float32 once, as the Go loop does.

// func signStepAVX2(x, grad, clean *float32, n int, step, eps float64) bool
TEXT ·signStepAVX2(SB), NOSPLIT, $0-49
	MOVQ x+0(FP), DI
	MOVQ grad+8(FP), SI
	MOVQ clean+16(FP), DX
	MOVQ n+24(FP), CX
	SHLQ $2, CX
	VBROADCASTSD step+32(FP), Y10
	VBROADCASTSD eps+40(FP), Y11
	MOVQ $0x8000000000000000, AX
	MOVQ AX, X12
	VBROADCASTSD X12, Y12        // sign bit
	MOVQ $0x3ff0000000000000, AX
	MOVQ AX, X14
	VBROADCASTSD X14, Y14        // 1.0
	VXORPD Y13, Y13, Y13         // 0.0
	VXORPD Y9, Y9, Y9            // NaN seen
	XORQ AX, AX
sloop:
	CMPQ AX, CX
	JGE sdone
	VCVTPS2PD (DI)(AX*1), Y0     // x
	VCVTPS2PD (SI)(AX*1), Y1     // g
	VCVTPS2PD (DX)(AX*1), Y2     // c
	VANDPD Y12, Y1, Y3
	VORPD Y10, Y3, Y3            // step with g's sign
	VCMPPD $0x00, Y13, Y1, Y4    // g == 0
	VANDNPD Y3, Y4, Y3           // s = 0 there
	VCMPPD $0x03, Y1, Y1, Y5     // g is NaN
	VORPD Y5, Y9, Y9
	VADDPD Y3, Y0, Y0            // t = x + s
	VSUBPD Y11, Y2, Y6
	VMAXPD Y6, Y13, Y6           // lo = max(c − eps, 0)
	VADDPD Y11, Y2, Y7
	VMINPD Y7, Y14, Y7           // hi = min(c + eps, 1)
	VMAXPD Y0, Y6, Y0            // max(t, lo)
	VMINPD Y0, Y7, Y0            // min(…, hi)
	VCVTPD2PSY Y0, X0
	VMOVUPS X0, (DI)(AX*1)
	ADDQ $16, AX
	JMP sloop
sdone:
	VMOVMSKPD Y9, AX
	TESTQ AX, AX
	SETNE ret+48(FP)
	VZEROUPPER
	RET
