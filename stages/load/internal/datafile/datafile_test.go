package datafile

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// idxBytes builds a plain IDX file of unsigned bytes with the given dims and payload.
func idxBytes(dims []uint32, payload []byte) []byte {
	var b bytes.Buffer
	b.Write([]byte{0, 0, IDXUnsignedByte, byte(len(dims))})
	for _, d := range dims {
		_ = binary.Write(&b, binary.BigEndian, d)
	}
	b.Write(payload)
	return b.Bytes()
}

func gz(t testing.TB, data []byte) []byte {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	if _, err := zw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func writeFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestReadIDXFileImagesAndLabels(t *testing.T) {
	pixels := []byte{0, 255, 51, 102, 0, 0, 255, 255} // 2 images of 2x2
	images := idxBytes([]uint32{2, 2, 2}, pixels)
	labels := idxBytes([]uint32{2}, []byte{3, 9})
	for _, compress := range []bool{false, true} {
		dir := t.TempDir()
		imgData, lblData := images, labels
		if compress {
			imgData, lblData = gz(t, images), gz(t, labels)
		}
		imgArr, err := ReadIDXFile(writeFile(t, dir, "img", imgData))
		if err != nil {
			t.Fatalf("compress=%v: %v", compress, err)
		}
		img, shape, err := IDXImages(imgArr)
		if err != nil {
			t.Fatal(err)
		}
		if !equalInts(shape, []int{1, 2, 2}) {
			t.Errorf("shape %v", shape)
		}
		want := []float32{0, 1, 0.2, 0.4, 0, 0, 1, 1}
		for i := range want {
			if d := img[i] - want[i]; d > 1e-6 || d < -1e-6 {
				t.Errorf("compress=%v pixel %d = %v want %v", compress, i, img[i], want[i])
			}
		}
		lblArr, err := ReadIDXFile(writeFile(t, dir, "lbl", lblData))
		if err != nil {
			t.Fatal(err)
		}
		lbl, err := IDXLabels(lblArr, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(lbl) != 2 || lbl[0] != 3 || lbl[1] != 9 {
			t.Errorf("labels %v", lbl)
		}
		if _, err := IDXLabels(lblArr, 5); err == nil || !strings.Contains(err.Error(), "label 9") {
			t.Errorf("label 9 with 5 classes: err %v", err)
		}
		if _, _, err := IDXImages(lblArr); err == nil {
			t.Error("labels accepted as images")
		}
	}
}

func TestEncodeIDXRoundTrip(t *testing.T) {
	arr := &IDXArray{Dims: []int{3, 2}, Data: []byte{1, 2, 3, 4, 5, 6}}
	for _, compress := range []bool{false, true} {
		var a, b bytes.Buffer
		if err := EncodeIDX(&a, arr, compress); err != nil {
			t.Fatal(err)
		}
		if err := EncodeIDX(&b, arr, compress); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a.Bytes(), b.Bytes()) {
			t.Errorf("compress=%v: encoding not deterministic", compress)
		}
		got, err := DecodeIDXBytesOrGzip(bufio.NewReader(bytes.NewReader(a.Bytes())), int64(a.Len()))
		if err != nil {
			t.Fatal(err)
		}
		if !equalInts(got.Dims, arr.Dims) || !bytes.Equal(got.Data, arr.Data) {
			t.Errorf("compress=%v: round trip %v %v", compress, got.Dims, got.Data)
		}
	}
	if err := EncodeIDX(&bytes.Buffer{}, &IDXArray{Dims: []int{4}, Data: []byte{1}}, false); err == nil {
		t.Error("mismatched dims encoded")
	}
}

func TestIDXBadFiles(t *testing.T) {
	good := idxBytes([]uint32{2, 2, 2}, make([]byte, 8))
	cases := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "truncated"},
		{"short header", []byte{0, 0, 8}, "truncated"},
		{"foreign magic", []byte("PK\x03\x04 a zip file, not idx"), "not an IDX file"},
		{"float type", append([]byte{0, 0, 0x0D, 1}, good[4:]...), "unsupported"},
		{"zero dims", []byte{0, 0, 8, 0}, "0 dimensions"},
		{"too many dims", []byte{0, 0, 8, 9, 0, 0, 0, 1}, "9 dimensions"},
		{"dims truncated", []byte{0, 0, 8, 3, 0, 0, 0, 2}, "truncated"},
		{"payload truncated", good[:len(good)-1], "need 8 bytes"},
		{"trailing bytes", append(append([]byte{}, good...), 7), "need 8 bytes"},
		{"absurd header", idxBytes([]uint32{0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF}, nil), "announce more than"},
		{"gzip truncated", gz(t, good)[:20], "unexpected EOF"},
		{"gzip payload short", gz(t, good[:len(good)-3]), "truncated"},
		{"gzip trailing", gz(t, append(append([]byte{}, good...), 1, 2)), "trailing data"},
		{"gzip absurd", gz(t, idxBytes([]uint32{60000, 0xFFFF, 0xFFFF}, make([]byte, 100))), "announce more than"},
		{"gzip lying header", gz(t, idxBytes([]uint32{60000, 28, 28}, make([]byte, 100))), "truncated"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := writeFile(t, t.TempDir(), "train-images-idx3-ubyte", tc.data)
			_, err := ReadIDXFile(path)
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path) {
				t.Errorf("error %q: want it to name %s and say %q", err, path, tc.want)
			}
		})
	}
}

func TestReadIDXFileMissing(t *testing.T) {
	_, err := ReadIDXFile(filepath.Join(t.TempDir(), "nope"))
	if !os.IsNotExist(err) {
		t.Errorf("missing file: %v, want a not-exist error", err)
	}
}

func TestCIFARDecode(t *testing.T) {
	for _, f := range []CIFARFormat{CIFAR10, CIFAR100} {
		t.Run(f.Name, func(t *testing.T) {
			var data []byte
			for i := 0; i < 3; i++ {
				if f.LabelBytes == 2 {
					data = append(data, byte(i+1)) // coarse
				}
				data = append(data, byte(3*i))
				px := bytes.Repeat([]byte{byte(100 * i)}, CIFARImageBytes)
				px[0] = 255
				data = append(data, px...)
			}
			path := writeFile(t, t.TempDir(), "batch.bin", data)
			img, lbl, err := ReadCIFARFile(path, f)
			if err != nil {
				t.Fatal(err)
			}
			if len(lbl) != 3 || lbl[0] != 0 || lbl[1] != 3 || lbl[2] != 6 {
				t.Errorf("labels %v", lbl)
			}
			if len(img) != 3*CIFARImageBytes {
				t.Fatalf("%d pixels", len(img))
			}
			if img[CIFARImageBytes] != 1 || img[CIFARImageBytes+1] != float32(100)/255 || img[2*CIFARImageBytes+5] != float32(200)/255 {
				t.Errorf("pixels wrong: %v %v %v", img[CIFARImageBytes], img[CIFARImageBytes+1], img[2*CIFARImageBytes+5])
			}
		})
	}
}

func TestCIFARBadFiles(t *testing.T) {
	rec10 := append([]byte{3}, make([]byte, CIFARImageBytes)...)
	rec100 := append([]byte{3, 99}, make([]byte, CIFARImageBytes)...)
	cases := []struct {
		name string
		f    CIFARFormat
		data []byte
		want string
	}{
		{"empty", CIFAR10, nil, "not a positive multiple"},
		{"truncated record", CIFAR10, rec10[:100], "not a positive multiple"},
		{"cifar100 file as cifar10", CIFAR10, append(append([]byte{}, rec100...), rec100...), "not a positive multiple"},
		{"cifar10 label out of range", CIFAR10, append([]byte{10}, make([]byte, CIFARImageBytes)...), "label 10"},
		{"cifar100 fine out of range", CIFAR100, append([]byte{1, 100}, make([]byte, CIFARImageBytes)...), "label 100"},
		{"cifar100 coarse out of range", CIFAR100, append([]byte{20, 1}, make([]byte, CIFARImageBytes)...), "coarse label 20"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := writeFile(t, t.TempDir(), "data_batch_1.bin", tc.data)
			_, _, err := ReadCIFARFile(path, tc.f)
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path) {
				t.Errorf("error %q: want it to name %s and say %q", err, path, tc.want)
			}
		})
	}
}

func TestParseClassNames(t *testing.T) {
	names, err := ParseClassNames("airplane\nautomobile\n\n", 2)
	if err != nil || len(names) != 2 || names[1] != "automobile" {
		t.Errorf("names %v err %v", names, err)
	}
	if _, err := ParseClassNames("a\nb\nc\n", 2); err == nil {
		t.Error("3 names accepted for 2 classes")
	}
}

// TestDebianFashionMNIST decodes the real files from Debian's
// dataset-fashion-mnist package when it is installed.
func TestDebianFashionMNIST(t *testing.T) {
	dir := "/usr/share/datasets/fashion-mnist"
	if _, err := os.Stat(filepath.Join(dir, "t10k-images-idx3-ubyte.gz")); err != nil {
		t.Skip("dataset-fashion-mnist not installed")
	}
	imgArr, err := ReadIDXFile(filepath.Join(dir, "t10k-images-idx3-ubyte.gz"))
	if err != nil {
		t.Fatal(err)
	}
	img, shape, err := IDXImages(imgArr)
	if err != nil {
		t.Fatal(err)
	}
	if !equalInts(imgArr.Dims, []int{10000, 28, 28}) || !equalInts(shape, []int{1, 28, 28}) || len(img) != 10000*784 {
		t.Errorf("dims %v shape %v", imgArr.Dims, shape)
	}
	lblArr, err := ReadIDXFile(filepath.Join(dir, "t10k-labels-idx1-ubyte.gz"))
	if err != nil {
		t.Fatal(err)
	}
	lbl, err := IDXLabels(lblArr, 10)
	if err != nil {
		t.Fatal(err)
	}
	counts := make([]int, 10)
	for _, l := range lbl {
		counts[l]++
	}
	for k, c := range counts {
		if c != 1000 {
			t.Errorf("class %d has %d test samples, want 1000", k, c)
		}
	}
}

func FuzzIDX(f *testing.F) {
	f.Add(idxBytes([]uint32{2, 2, 2}, make([]byte, 8)))
	f.Add(idxBytes([]uint32{3}, []byte{1, 2, 3}))
	f.Add(idxBytes([]uint32{0xFFFFFFFF, 0xFFFFFFFF}, nil))
	f.Add(gz(f, idxBytes([]uint32{2, 1, 1}, []byte{9, 9})))
	f.Add(gz(f, idxBytes([]uint32{1 << 20, 28, 28}, []byte{9, 9})))
	f.Add([]byte{0x1f, 0x8b})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		arr, err := DecodeIDXBytesOrGzip(bufio.NewReader(bytes.NewReader(data)), int64(len(data)))
		if err != nil {
			return
		}
		n := 1
		for _, d := range arr.Dims {
			n *= d
		}
		if n != len(arr.Data) {
			t.Fatalf("dims %v but %d bytes", arr.Dims, len(arr.Data))
		}
		// A decoded array never holds more than the input can carry: gzip
		// expands at most ~1032x, and plain input holds its payload verbatim.
		if len(arr.Data) > 1100*len(data)+1024 {
			t.Fatalf("%d bytes decoded from %d input bytes", len(arr.Data), len(data))
		}
		_, _, _ = IDXImages(arr)
		_, _ = IDXLabels(arr, 10)
	})
}

func FuzzCIFAR(f *testing.F) {
	f.Add(append([]byte{3}, make([]byte, CIFARImageBytes)...), false)
	f.Add(append([]byte{3, 99}, make([]byte, CIFARImageBytes)...), true)
	f.Add([]byte{1, 2, 3}, false)
	f.Add([]byte{}, true)
	f.Fuzz(func(t *testing.T, data []byte, hundred bool) {
		format := CIFAR10
		if hundred {
			format = CIFAR100
		}
		// Claim a size larger than the data too: the decoder must fail on
		// the short read, not allocate for the claim beyond its limit.
		for _, size := range []int64{int64(len(data)), int64(len(data)) * 1000} {
			img, lbl, err := DecodeCIFAR(bytes.NewReader(data), size, format)
			if err != nil {
				continue
			}
			if len(img) != len(lbl)*CIFARImageBytes || int64(len(lbl)*format.RecordSize()) != size {
				t.Fatalf("%d pixels, %d labels from %d bytes", len(img), len(lbl), size)
			}
			for _, v := range img {
				if v < 0 || v > 1 {
					t.Fatalf("pixel %v outside [0,1]", v)
				}
			}
		}
	})
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
