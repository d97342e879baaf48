package winograd

// Tiles is the number of 2×2 output tiles down and across an h×w image
// convolved by a 3×3 kernel with stride 1 and padding 1 (a last row or
// column of tiles hangs over an odd edge).
func Tiles(h, w int) (th, tw int) { return (h + 1) / 2, (w + 1) / 2 }

// ScratchLen is the scratch InputPlane needs for an image w wide.
func ScratchLen(w int) int {
	_, tw := Tiles(1, w)
	return 4*(2*tw+2) + w
}

// InputPlane writes Bᵀ·d·B for every 4×4 input tile d of one h×w channel
// plane (padding 1, zeros outside the image) into v: value ξ of tile
// (ty,tx) goes to v[ξ·ld + ty·tw + tx]. scratch holds ScratchLen(w)
// values; its contents on entry do not matter.
func InputPlane[E float32 | float64](plane []E, h, w int, v []E, ld int, scratch []E) {
	th, tw := Tiles(h, w)
	rl := 2*tw + 2
	zeros := scratch[4*rl : 4*rl+w]
	clear(scratch[:4*rl+w])
	a0, a1, a2, a3 := scratch[:rl], scratch[rl:2*rl], scratch[2*rl:3*rl], scratch[3*rl:4*rl]
	for ty := range th {
		// Image rows 2ty−1 … 2ty+2; those outside the image read zeros.
		y0 := 2*ty - 1
		d0, d1, d2, d3 := zeros, plane[(y0+1)*w:(y0+2)*w], zeros, zeros
		if y0 >= 0 {
			d0 = plane[y0*w : (y0+1)*w]
		}
		if y0+2 < h {
			d2 = plane[(y0+2)*w : (y0+3)*w]
		}
		if y0+3 < h {
			d3 = plane[(y0+3)*w : (y0+4)*w]
		}
		// Column x of the image is at index x+1 of a padded row.
		Rows(d0, d1, d2, d3, a0[1:1+w], a1[1:1+w], a2[1:1+w], a3[1:1+w])
		col := ty * tw
		for i, a := range [4][]E{a0, a1, a2, a3} {
			base := i*4*ld + col
			Columns(a, v[base:base+tw], v[base+ld:base+ld+tw], v[base+2*ld:base+2*ld+tw], v[base+3*ld:base+3*ld+tw])
		}
	}
}

// OutputPlane writes Aᵀ·m·A for every tile of one h×w output plane y from
// m, where value ξ of tile (ty,tx) is m[ξ·ld + ty·tw + tx]; the outputs of
// tiles hanging over an odd edge that fall outside the image are dropped.
func OutputPlane[E float32 | float64](m []E, ld, h, w int, y []E) {
	th, tw := Tiles(h, w)
	for ty := range th {
		row0 := y[2*ty*w : (2*ty+1)*w]
		if 2*ty+1 < h && w%2 == 0 {
			Output(m[ty*tw:], ld, tw, row0, y[(2*ty+1)*w:(2*ty+2)*w])
			continue
		}
		var row1 []E
		if 2*ty+1 < h {
			row1 = y[(2*ty+1)*w : (2*ty+2)*w]
		}
		outputEdgeRow(m[ty*tw:], ld, tw, row0, row1)
	}
}

// outputEdgeRow is Output for a row of tiles that hangs over an odd right
// or bottom edge (row1 nil below the bottom edge): the outputs outside the
// image are dropped.
func outputEdgeRow[E float32 | float64](m []E, step, tw int, row0, row1 []E) {
	full := len(row0) / 2
	for tx := range tw {
		p, q := outputColumns(m, step, tx)
		x0 := 2 * tx
		row0[x0] = p[0] + p[1] + p[2]
		if tx < full {
			row0[x0+1] = p[1] - p[2] - p[3]
		}
		if row1 != nil {
			row1[x0] = q[0] + q[1] + q[2]
			if tx < full {
				row1[x0+1] = q[1] - q[2] - q[3]
			}
		}
	}
}
