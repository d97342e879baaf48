package cuda

import (
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// TestOpenWithoutDriver: in a tree with no libcuda, Open fails with the
// search's *LibraryError, listing the directories tried, and does not
// panic. This is the no-GPU path; it runs everywhere.
func TestOpenWithoutDriver(t *testing.T) {
	root := t.TempDir()
	tree(t, root, "/usr/local/cuda/lib64/libcublas.so.12")
	s := Search{Getenv: envOf(root, map[string]string{"SGLR_CUDA_LIBS": "$ROOT/mine"}), Root: root}
	d, err := s.Open(0)
	if d != nil || err == nil {
		t.Fatalf("Open(0) = %v, %v; want no device and an error", d, err)
	}
	var le *LibraryError
	if !errors.As(err, &le) || le.Lib != Driver {
		t.Fatalf("Open(0): %v; want a *LibraryError for the driver", err)
	}
	if !strings.Contains(err.Error(), root+"/mine/libcuda.so.1") || !strings.Contains(err.Error(), root+"/usr/local/cuda/lib64/libcuda.so.1") {
		t.Fatalf("error %q does not list the directories tried", err)
	}
}

// TestOpenHere: Open(0) on this machine either works or fails with an
// error (never a panic). Without a driver the error is a *LibraryError.
func TestOpenHere(t *testing.T) {
	d, err := Open(0)
	if err != nil {
		if _, findErr := Find(Driver); findErr != nil {
			var le *LibraryError
			if !errors.As(err, &le) {
				t.Fatalf("no driver, yet Open(0) failed with %v, not a *LibraryError", err)
			}
		}
		t.Logf("Open(0): %v", err)
		return
	}
	t.Logf("Open(0): %v", d)
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
}

// openOrSkip opens GPU 0 or skips the test, saying why.
func openOrSkip(t *testing.T) *Device {
	t.Helper()
	d, err := Open(0)
	if err != nil {
		t.Skipf("no CUDA device: %v", err)
	}
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return d
}

// upload allocates a buffer holding v.
func upload(t *testing.T, d *Device, v []float32) Buffer {
	t.Helper()
	b, err := d.Alloc(len(v))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Free(b) })
	if err := d.Upload(b, v); err != nil {
		t.Fatal(err)
	}
	return b
}

func download(t *testing.T, d *Device, b Buffer) []float32 {
	t.Helper()
	v := make([]float32, b.Len())
	if err := d.Download(v, b); err != nil {
		t.Fatal(err)
	}
	return v
}

// compare reports the values of got that differ from want: bit for bit
// (NaNs all alike), or, with zeroSign, also −0 and +0 alike.
func compare(t *testing.T, what string, got, want []float32, zeroSign bool, inputs ...[]float32) {
	t.Helper()
	bad := 0
	for i := range want {
		if same(got[i], want[i]) || (zeroSign && got[i] == 0 && want[i] == 0) {
			continue
		}
		if bad++; bad <= 5 {
			in := make([]float32, len(inputs))
			for j, v := range inputs {
				in[j] = v[i]
			}
			t.Errorf("%s[%d]: device %v (%#08x), reference %v (%#08x); inputs %v", what, i, got[i],
				math.Float32bits(got[i]), want[i], math.Float32bits(want[i]), in)
		}
	}
	if bad > 0 {
		t.Errorf("%s: %d of %d values differ", what, bad, len(want))
	}
}

// sizes cover one partial block, exact blocks and a tail.
var sizes = []int{1, 255, 256, 257, 100003}

func TestDeviceOpen(t *testing.T) {
	d := openOrSkip(t)
	t.Logf("%v", d)
	if d.Name == "" || d.TotalMem == 0 || d.Major == 0 {
		t.Errorf("device %+v: want a name, memory and a compute capability", d)
	}
	if _, err := Open(1 << 20); err == nil || !strings.Contains(err.Error(), "out of range") {
		t.Errorf("Open(1<<20): %v, want out of range", err)
	}
}

func TestDeviceCopy(t *testing.T) {
	d := openOrSkip(t)
	r := rand.New(rand.NewPCG(7, 8))
	v := values(r, 1000)
	b := upload(t, d, v)
	compare(t, "round trip", download(t, d, b), v, false)
	if err := d.Zero(b); err != nil {
		t.Fatal(err)
	}
	compare(t, "Zero", download(t, d, b), make([]float32, 1000), false)
	if err := d.Upload(b, make([]float32, 1001)); err == nil {
		t.Error("Upload past the end: want an error")
	}
}

func TestDeviceReLU(t *testing.T) {
	d := openOrSkip(t)
	r := rand.New(rand.NewPCG(9, 10))
	for _, n := range sizes {
		x, g := values(r, n), values(r, n)
		xb, gb := upload(t, d, x), upload(t, d, g)
		yb, dxb := upload(t, d, make([]float32, n)), upload(t, d, make([]float32, n))
		if err := d.ReLU(yb, xb, n); err != nil {
			t.Fatal(err)
		}
		want := make([]float32, n)
		ReLURef(want, x)
		compare(t, "ReLU", download(t, d, yb), want, false, x)
		if err := d.ReLUGrad(dxb, xb, gb, n); err != nil {
			t.Fatal(err)
		}
		ReLUGradRef(want, x, g)
		compare(t, "ReLUGrad", download(t, d, dxb), want, false, x, g)
	}
}

func TestDevicePGDStep(t *testing.T) {
	d := openOrSkip(t)
	r := rand.New(rand.NewPCG(11, 12))
	for _, n := range sizes {
		for _, se := range [][2]float64{{2.0 / 255, 8.0 / 255}, {0, 0.1}, {0.1, 0}} {
			clean, g := pixels(r, n), values(r, n)
			x := make([]float32, n)
			for i := range x {
				x[i] = clean[i] + float32((r.Float64()*3-1.5)*se[1])
				if r.IntN(50) == 0 {
					x[i] = specials[r.IntN(len(specials))]
				}
			}
			xb, gb, cb := upload(t, d, x), upload(t, d, g), upload(t, d, clean)
			if err := d.PGDStep(xb, gb, cb, n, se[0], se[1]); err != nil {
				t.Fatal(err)
			}
			want := append([]float32(nil), x...)
			PGDStepRef(want, g, clean, se[0], se[1])
			compare(t, "PGDStep", download(t, d, xb), want, true, x, g, clean)
		}
	}
}

func TestDeviceSGDStep(t *testing.T) {
	d := openOrSkip(t)
	r := rand.New(rand.NewPCG(13, 14))
	for _, o := range []SGDOptions{
		{LR: 0.1, Momentum: 0.9, WeightDecay: 5e-4},
		{LR: 0.1, Momentum: 0.9, WeightDecay: 5e-4, Nesterov: true},
		{LR: 0.1, WeightDecay: 5e-4},
		{LR: 0.1, Momentum: 0.9},
	} {
		n := 100003
		w, buf := values(r, n), make([]float32, n)
		wb, bb := upload(t, d, w), upload(t, d, buf)
		for step := range 3 {
			o.First = step == 0
			g := values(r, n)
			gb := upload(t, d, g)
			bufArg := bb
			if o.Momentum == 0 {
				bufArg = Buffer{}
			}
			if err := d.SGDStep(wb, gb, bufArg, n, o); err != nil {
				t.Fatal(err)
			}
			SGDStepRef(w, g, buf, o)
			compare(t, "SGDStep w", download(t, d, wb), w, false)
			if o.Momentum != 0 {
				compare(t, "SGDStep buf", download(t, d, bb), buf, false)
			}
		}
	}
}

// TestDeviceMatMul: cuBLAS SGEMM with TF32 off against a float64 CPU
// product, within 1e-5 relative to the sum of |terms|.
func TestDeviceMatMul(t *testing.T) {
	d := openOrSkip(t)
	blas, err := d.BLAS()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("cuBLAS %d from %s", blas.Version, blas.Path)
	r := rand.New(rand.NewPCG(15, 16))
	m, n, k := 67, 129, 300
	a, b := make([]float32, m*k), make([]float32, k*n)
	for i := range a {
		a[i] = float32(r.NormFloat64())
	}
	for i := range b {
		b[i] = float32(r.NormFloat64())
	}
	ab, bb, cb := upload(t, d, a), upload(t, d, b), upload(t, d, make([]float32, m*n))
	if err := blas.MatMul(cb, ab, bb, m, n, k); err != nil {
		t.Fatal(err)
	}
	c := download(t, d, cb)
	bad := 0
	for i := range m {
		for j := range n {
			var s, mag float64
			for l := range k {
				p := float64(a[i*k+l]) * float64(b[l*n+j])
				s += p
				mag += math.Abs(p)
			}
			if math.Abs(float64(c[i*n+j])-s) > 1e-5*mag {
				if bad++; bad <= 5 {
					t.Errorf("C[%d,%d] = %v, want %v (sum of |terms| %v)", i, j, c[i*n+j], s, mag)
				}
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d values off", bad, m*n)
	}
}

// TestDeviceClosed: calls after Close fail with an error naming the call.
func TestDeviceClosed(t *testing.T) {
	d, err := Open(0)
	if err != nil {
		t.Skipf("no CUDA device: %v", err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := d.Alloc(4); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Errorf("Alloc after Close: %v, want a closed-device error", err)
	}
}
