package optim

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// legalCrops builds, independently of Apply, every output torchvision's
// RandomCrop(h×w, padding=pad) + RandomHorizontalFlip can give for one
// single-channel image: pad explicitly, take every window, mirror it.
func legalCrops(img []float32, h, w, pad int, flip bool) map[string]bool {
	ph, pw := h+2*pad, w+2*pad
	padded := make([]float32, ph*pw)
	for y := range h {
		copy(padded[(y+pad)*pw+pad:], img[y*w:(y+1)*w])
	}
	legal := map[string]bool{}
	for oy := 0; oy <= 2*pad; oy++ {
		for ox := 0; ox <= 2*pad; ox++ {
			win := make([]float32, h*w)
			for y := range h {
				copy(win[y*w:(y+1)*w], padded[(y+oy)*pw+ox:])
			}
			legal[fmt.Sprint(win)] = true
			if flip {
				for y := range h {
					slices.Reverse(win[y*w : (y+1)*w])
				}
				legal[fmt.Sprint(win)] = true
			}
		}
	}
	return legal
}

func TestAugmentGivesOnlyLegalCropsUniformly(t *testing.T) {
	img := []float32{1, 2, 3, 4, 5, 6, 7, 8, 9}
	tests := []struct {
		name  string
		aug   Augment
		kinds int
	}{
		{"crop pad 1 and flip", Augment{Pad: 1, Flip: true}, 18},
		{"crop pad 1", Augment{Pad: 1}, 9},
		{"flip only", Augment{Flip: true}, 2},
		{"identity", Augment{}, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			legal := legalCrops(img, 3, 3, tc.aug.Pad, tc.aug.Flip)
			if len(legal) != tc.kinds {
				t.Fatalf("%d legal outputs, want %d", len(legal), tc.kinds)
			}
			const draws = 200 // expected count of each legal output
			n := draws * tc.kinds
			x := slices.Repeat(img, n)
			out := make([]float32, len(x))
			tc.aug.Apply(rand.New(rand.NewPCG(1, 2)), x, n, []int{1, 3, 3}, out)
			counts := map[string]int{}
			for i := range n {
				got := fmt.Sprint(out[i*9 : (i+1)*9])
				if !legal[got] {
					t.Fatalf("image %d = %s is not a legal crop/flip", i, got)
				}
				counts[got]++
			}
			// Pearson chi-square against the uniform distribution; 40.8 is the
			// 99.9% quantile for 17 degrees of freedom (the most here).
			chi2 := 0.0
			for key := range legal {
				d := float64(counts[key] - draws)
				chi2 += d * d / draws
			}
			if chi2 > 40.8 {
				t.Errorf("chi-square %.1f: counts %v far from uniform", chi2, counts)
			}
		})
	}
}

func TestAugmentHandWorkedCropIsProduced(t *testing.T) {
	// Offset (0,0) in the padded 5×5 image, mirrored: rows [0 0 0],[2 1 0],[5 4 0].
	want := []float32{0, 0, 0, 2, 1, 0, 5, 4, 0}
	img := []float32{1, 2, 3, 4, 5, 6, 7, 8, 9}
	const n = 500
	x := slices.Repeat(img, n)
	out := make([]float32, len(x))
	Augment{Pad: 1, Flip: true}.Apply(rand.New(rand.NewPCG(3, 4)), x, n, []int{1, 3, 3}, out)
	for i := range n {
		if slices.Equal(out[i*9:(i+1)*9], want) {
			return
		}
	}
	t.Errorf("top-left flipped crop %v never produced in %d draws", want, n)
}

func TestAugmentTransformsAllChannelsAlikeAndIsSeeded(t *testing.T) {
	// Channel 1 is channel 0 times 10: the same crop and flip must keep that.
	const n = 64
	shape := []int{2, 4, 5}
	size := 2 * 4 * 5
	x := make([]float32, n*size)
	for i := range n {
		for j := range 20 {
			v := float32(i*20 + j + 1)
			x[i*size+j] = v
			x[i*size+20+j] = 10 * v
		}
	}
	aug := Augment{Pad: 2, Flip: true}
	a := make([]float32, len(x))
	b := make([]float32, len(x))
	aug.Apply(rand.New(rand.NewPCG(7, 7)), x, n, shape, a)
	aug.Apply(rand.New(rand.NewPCG(7, 7)), x, n, shape, b)
	if !slices.Equal(a, b) {
		t.Fatal("same seed gave different batches")
	}
	changed := 0
	for i := range n {
		for j := range 20 {
			if a[i*size+20+j] != 10*a[i*size+j] {
				t.Fatalf("image %d pixel %d: channels transformed differently (%v vs %v)", i, j, a[i*size+j], a[i*size+20+j])
			}
			if a[i*size+j] != x[i*size+j] {
				changed++
			}
		}
	}
	if changed == 0 {
		t.Error("augmentation left every image unchanged")
	}
}

func TestAugmentDoesNotAllocate(t *testing.T) {
	x := make([]float32, 8*3*6*6)
	out := make([]float32, len(x))
	rng := rand.New(rand.NewPCG(1, 1))
	aug := Augment{Pad: 2, Flip: true}
	shape := []int{3, 6, 6}
	if allocs := testing.AllocsPerRun(20, func() { aug.Apply(rng, x, 8, shape, out) }); allocs != 0 {
		t.Errorf("Apply allocates %v times per call", allocs)
	}
}

func TestAugmentValidate(t *testing.T) {
	if err := (Augment{Pad: -1}).Validate(); err == nil {
		t.Error("negative pad accepted")
	}
	if err := (Augment{Pad: 4, Flip: true}).Validate(); err != nil {
		t.Error(err)
	}
}
