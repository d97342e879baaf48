package optim

import (
	"fmt"
	"math/rand/v2"
)

// Augment is the reference training augmentation on CHW float32 images:
// torchvision RandomCrop(H×W, padding=Pad) followed by RandomHorizontalFlip().
// The crop zero-pads each side by Pad and takes a random H×W window whose
// offsets are uniform in [0, 2·Pad] (independently in y and x); the flip
// mirrors the crop left-right with probability 0.5. The zero value is the
// identity (no crop, no flip).
type Augment struct {
	Pad  int  // zero padding on each side before the random crop; 0 = no crop
	Flip bool // random horizontal flip with probability 0.5
}

// Validate reports a user mistake in the augmentation settings.
func (a Augment) Validate() error {
	if a.Pad < 0 {
		return fmt.Errorf("augment: pad %d must be >= 0", a.Pad)
	}
	return nil
}

// Apply augments the n images of x (each of shape [C,H,W], row-major) into
// out, drawing per image, in this order, the y offset and x offset (only when
// Pad > 0) and the flip (only when Flip), all from rng, so a seeded rng gives
// the same batch bytes every run. It allocates nothing. out must not overlap
// x; wrong lengths are programming errors and panic.
func (a Augment) Apply(rng *rand.Rand, x []float32, n int, shape []int, out []float32) {
	if len(shape) != 3 {
		panic(fmt.Sprintf("augment: shape %v is not [C,H,W]", shape))
	}
	c, h, w := shape[0], shape[1], shape[2]
	size := c * h * w
	if len(x) < n*size || len(out) < n*size {
		panic(fmt.Sprintf("augment: %d images of %v need %d values, have x %d, out %d", n, shape, n*size, len(x), len(out)))
	}
	if n > 0 && size > 0 && &x[0] == &out[0] {
		panic("augment: out must not alias x")
	}
	p := a.Pad
	for i := range n {
		dy, dx := 0, 0
		if p > 0 {
			dy = rng.IntN(2*p+1) - p
			dx = rng.IntN(2*p+1) - p
		}
		flip := a.Flip && rng.Float64() < 0.5
		src := x[i*size : (i+1)*size]
		dst := out[i*size : (i+1)*size]
		for ch := range c {
			plane := src[ch*h*w : (ch+1)*h*w]
			for y := range h {
				row := dst[(ch*h+y)*w : (ch*h+y+1)*w]
				sy := y + dy
				if sy < 0 || sy >= h {
					clear(row)
					continue
				}
				srow := plane[sy*w : (sy+1)*w]
				for xo := range w {
					sx := xo
					if flip {
						sx = w - 1 - xo
					}
					sx += dx
					if sx < 0 || sx >= w {
						row[xo] = 0
					} else {
						row[xo] = srow[sx]
					}
				}
			}
		}
	}
}
