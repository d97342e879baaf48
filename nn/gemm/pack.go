package gemm

// packers move matrix data into packed panels. Each kernel set brings its
// own: the portable set plain Go, the AVX2 sets assembly for the shapes
// their panels have.
type packers[T float] struct {
	// copyRows sets dst[p*width+j] = src[p*ld+j] for j < width, p < n.
	copyRows func(dst []T, width int, src []T, ld, n int)
	// copyPanels cuts n rows of src (ld apart) into panels panels of width
	// columns, each stored as n consecutive rows of width in dst:
	// dst[(q*n+p)*width+j] = src[p*ld+q*width+j]. It reads src row by row.
	copyPanels func(dst []T, width int, src []T, ld, n, panels int)
	// interleave4 sets dst[p*width+i] = src[i*ld+p] for i < 4, p < n:
	// four strided rows become four columns of dst.
	interleave4 func(dst []T, width int, src []T, ld, n int)
	// interleave2 is interleave4 for two rows.
	interleave2 func(dst []T, width int, src []T, ld, n int)
}

// goPackers are the packers in plain Go.
func goPackers[T float]() packers[T] {
	return packers[T]{copyRows: copyRowsGo[T], copyPanels: copyPanelsGo[T], interleave4: interleave4Go[T], interleave2: interleave2Go[T]}
}

// packA copies rows ic..ic+mcb and columns pc..pc+kcb of op(A) into dst as
// panels of mr rows: panel r holds, for each of the kcb steps p, the mr
// values op(A)[ic+r·mr+i][pc+p], with rows past the block's end as zeros.
func packA[T float](ks *kernelSet[T], trans bool, a []T, lda, ic, mcb, pc, kcb int, dst []T) {
	mr := ks.mr
	for ir := 0; ir < mcb; ir += mr {
		panel := dst[(ir/mr)*kcb*mr:][:kcb*mr]
		rows := min(mr, mcb-ir)
		if rows < mr {
			clear(panel)
		}
		if trans {
			// op(A)[i][p] = a[p*lda+i]: each step's mr values are contiguous.
			src := a[pc*lda+ic+ir:]
			if rows == mr {
				ks.pack.copyRows(panel, mr, src, lda, kcb)
				continue
			}
			for p := range kcb {
				copy(panel[p*mr:][:rows], src[p*lda:][:rows])
			}
			continue
		}
		interleaveRows(&ks.pack, panel, mr, a[(ic+ir)*lda+pc:], lda, kcb, rows)
	}
}

// packB copies rows pc..pc+kcb and columns jc..jc+ncb of op(B) into dst as
// panels of nr columns: panel r holds, for each of the kcb steps p, the nr
// values op(B)[pc+p][jc+r·nr+j], with columns past the block's end as zeros.
func packB[T float](ks *kernelSet[T], trans bool, b []T, ldb, pc, kcb, jc, ncb int, dst []T) {
	nr := ks.nr
	full := ncb / nr
	if !trans && full > 0 {
		// op(B)[p][j] = b[p*ldb+j]: rows are contiguous; all full panels
		// are cut from them in one pass over B.
		ks.pack.copyPanels(dst, nr, b[pc*ldb+jc:], ldb, kcb, full)
	}
	for jr := 0; jr < ncb; jr += nr {
		panel := dst[(jr/nr)*kcb*nr:][:kcb*nr]
		cols := min(nr, ncb-jr)
		if !trans {
			if cols < nr {
				clear(panel)
				src := b[pc*ldb+jc+jr:]
				for p := range kcb {
					copy(panel[p*nr:][:cols], src[p*ldb:][:cols])
				}
			}
			continue
		}
		if cols < nr {
			clear(panel)
		}
		interleaveRows(&ks.pack, panel, nr, b[(jc+jr)*ldb+pc:], ldb, kcb, cols)
	}
}

// interleaveRows writes rows rows of kcb values, ld apart in src, into panel
// as its first columns: panel[p*width+i] = src[i*ld+p]. It moves four rows
// at a time, then two, then one.
func interleaveRows[T float](pk *packers[T], panel []T, width int, src []T, ld, kcb, rows int) {
	i := 0
	for ; i+4 <= rows; i += 4 {
		pk.interleave4(panel[i:], width, src[i*ld:], ld, kcb)
	}
	for ; i+2 <= rows; i += 2 {
		pk.interleave2(panel[i:], width, src[i*ld:], ld, kcb)
	}
	if i < rows {
		for p, v := range src[i*ld:][:kcb] {
			panel[i+p*width] = v
		}
	}
}

func copyRowsGo[T float](dst []T, width int, src []T, ld, n int) {
	for p := range n {
		copy(dst[p*width:][:width], src[p*ld:][:width])
	}
}

func copyPanelsGo[T float](dst []T, width int, src []T, ld, n, panels int) {
	for p := range n {
		row := src[p*ld:][:panels*width]
		for q := range panels {
			copy(dst[(q*n+p)*width:][:width], row[q*width:][:width])
		}
	}
}

func interleave4Go[T float](dst []T, width int, src []T, ld, n int) {
	s0, s1, s2, s3 := src[:n], src[ld:][:n], src[2*ld:][:n], src[3*ld:][:n]
	for p := range n {
		d := dst[p*width:][:4:4]
		d[0], d[1], d[2], d[3] = s0[p], s1[p], s2[p], s3[p]
	}
}

func interleave2Go[T float](dst []T, width int, src []T, ld, n int) {
	s0, s1 := src[:n], src[ld:][:n]
	for p := range n {
		d := dst[p*width:][:2:2]
		d[0], d[1] = s0[p], s1[p]
	}
}
