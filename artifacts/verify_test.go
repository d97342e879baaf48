package artifacts

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func TestFirstOutsideUnit(t *testing.T) {
	negZero := float32(math.Copysign(0, -1))
	nan := float32(math.NaN())
	cases := []struct {
		name   string
		values []float32
		bad    int // index of the value placed at position at, -1 for none
		at     int
	}{
		{"empty", nil, -1, 0},
		{"all valid", nil, -1, 1000},
		{"just above one", []float32{math.Nextafter32(1, 2)}, 0, 700},
		{"negative", []float32{-1e-30}, 0, 3},
		{"NaN", []float32{nan}, 0, 999},
		{"+Inf", []float32{float32(math.Inf(1))}, 0, 256},
		{"-Inf", []float32{float32(math.Inf(-1))}, 0, 255},
		{"-0 is valid", []float32{negZero}, -1, 500},
		{"1 is valid", []float32{1}, -1, 12},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			values := make([]float32, 1031)
			for i := range values {
				values[i] = float32(i%256) / 255
			}
			if tc.name == "empty" {
				values = nil
			} else if len(tc.values) > 0 {
				values[tc.at] = tc.values[0]
				values[len(values)-1] = 2 // a later bad value must not be reported first
			}
			want := -1
			if tc.bad >= 0 {
				want = tc.at
			} else if len(tc.values) > 0 {
				want = len(values) - 1
			}
			if got := firstOutsideUnit(values); got != want {
				t.Fatalf("firstOutsideUnit = %d, want %d", got, want)
			}
		})
	}
}

func TestReadVerified(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "obj")
	if err := os.WriteFile(path, []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := FileDigest(path)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ReadVerified(path, d)
	if err != nil || string(got) != "hello" {
		t.Fatalf("ReadVerified = %q, %v", got, err)
	}
	for name, change := range map[string]func(){
		"flipped byte": func() { os.WriteFile(path, []byte("hellp"), 0o644) },
		"truncated":    func() { os.WriteFile(path, []byte("hell"), 0o644) },
		"empty":        func() { os.WriteFile(path, nil, 0o644) },
	} {
		change()
		_, err := ReadVerified(path, d)
		var de *DigestError
		if !errors.As(err, &de) || de.Digest != d || !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: err = %v, want a *DigestError for %s wrapping ErrCorrupt", name, err, d)
		}
		if cd, ok := CorruptObject(err); !ok || cd != d {
			t.Errorf("%s: CorruptObject = %q, %v", name, cd, ok)
		}
	}
	os.Remove(path)
	if _, err := ReadVerified(path, d); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing file: err = %v, want ErrNotFound", err)
	}
	link := filepath.Join(dir, "link")
	if err := os.WriteFile(path, []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(path, link); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadVerified(link, d); !errors.Is(err, ErrCorrupt) {
		t.Errorf("symlink: err = %v, want ErrCorrupt (links are never read)", err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := mkfifo(fifo); err == nil {
		if _, err := ReadVerified(fifo, d); !errors.Is(err, ErrCorrupt) {
			t.Errorf("fifo: err = %v, want ErrCorrupt (not a regular file)", err)
		}
	}
}

func mkfifo(path string) error { return syscall.Mkfifo(path, 0o644) }

// TestCheckedReaderHashesWholeFile reads a file in random patterns (ahead,
// behind, overlapping, large and small) and checks that finish always gives
// the file's digest, so DecodeObject's check does not depend on how a decoder
// reads.
func TestCheckedReaderHashesWholeFile(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, size := range []int{0, 1, 100, maxHeldRead + 17, 3*readPiece + 5} {
		data := make([]byte, size)
		for i := range data {
			data[i] = byte(rng.IntN(256))
		}
		path := filepath.Join(t.TempDir(), "f")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		want, err := FileDigest(path)
		if err != nil {
			t.Fatal(err)
		}
		for trial := 0; trial < 20; trial++ {
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			r := newCheckedReader(f, int64(size))
			for k := rng.IntN(8); k > 0 && size > 0; k-- {
				off := rng.IntN(size)
				n := rng.IntN(size-off) + 1
				if rng.IntN(3) == 0 {
					n = min(n, 64) // a small read, often ahead of the hash
				}
				buf := make([]byte, n)
				if got, err := r.ReadAt(buf, int64(off)); err != nil || got != n || !bytes.Equal(buf, data[off:off+n]) {
					t.Fatalf("size %d: ReadAt(%d, %d) = %d, %v or wrong bytes", size, n, off, got, err)
				}
			}
			got, err := r.finish()
			f.Close()
			if err != nil || got != want {
				t.Fatalf("size %d trial %d: finish = %s, %v; want %s", size, trial, got, err, want)
			}
		}
	}
}

// TestDecodeObjectRefusesChangedBytes flips, truncates and extends a stored
// dataset at many positions: every change is a *DigestError, whether or not
// the decoder would have noticed it, and the untouched object decodes.
func TestDecodeObjectRefusesChangedBytes(t *testing.T) {
	s, err := OpenDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	d, err := putBenchDataset(s, 50)
	if err != nil {
		t.Fatal(err)
	}
	path, err := s.Path(d)
	if err != nil {
		t.Fatal(err)
	}
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if ds, err := DecodeObject(path, d, ReadDataset); err != nil || ds.Len() != 50 {
		t.Fatalf("good object: %v", err)
	}
	write := func(b []byte) {
		t.Helper()
		os.Chmod(path, 0o644)
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	rng := rand.New(rand.NewPCG(3, 4))
	changes := map[string][]byte{
		"truncated to half": good[:len(good)/2],
		"last byte cut":     good[:len(good)-1],
		"byte appended":     append(append([]byte(nil), good...), 0),
		"empty":             {},
	}
	for _, at := range []int{0, 9, 200, len(good) / 2, len(good) - 20, len(good) - 1, rng.IntN(len(good))} {
		b := append([]byte(nil), good...)
		b[at] ^= 0x01
		changes[fmt.Sprintf("bit flipped at %d", at)] = b
	}
	for name, b := range changes {
		write(b)
		_, err := DecodeObject(path, d, ReadDataset)
		if got, ok := CorruptObject(err); !ok || got != d {
			t.Errorf("%s: err = %v, want a *DigestError for the object", name, err)
		}
	}
	write(good)
	if _, err := DecodeObject(path, d, ReadDataset); err != nil {
		t.Fatalf("restored object: %v", err)
	}
}
