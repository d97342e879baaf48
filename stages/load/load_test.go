package load

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sglr-pipe/sglr-pipe/artifacts"
	"github.com/sglr-pipe/sglr-pipe/stages"
	"github.com/sglr-pipe/sglr-pipe/stages/load/internal/datafile"
)

func TestBalancedSubset(t *testing.T) {
	// 3 classes: 0 has 10 samples, 1 has 10, 2 has only 2.
	var labels []int32
	for i := 0; i < 22; i++ {
		switch {
		case i < 10:
			labels = append(labels, 0)
		case i < 20:
			labels = append(labels, 1)
		default:
			labels = append(labels, 2)
		}
	}
	cases := []struct {
		n    int
		want []int // per-class counts
	}{
		{0, []int{0, 0, 0}},
		{6, []int{2, 2, 2}},
		{12, []int{5, 5, 2}}, // class 2 runs short, the others share its deficit
		{22, []int{10, 10, 2}},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprint(tc.n), func(t *testing.T) {
			got := balancedSubset(allIndices(len(labels)), labels, 3, tc.n, subsetRNG(1, streamTrain))
			if len(got) != tc.n || !slices.IsSorted(got) || len(slices.Compact(slices.Clone(got))) != tc.n {
				t.Fatalf("subset %v: want %d sorted distinct indices", got, tc.n)
			}
			counts := make([]int, 3)
			for _, i := range got {
				counts[labels[i]]++
			}
			if !slices.Equal(counts, tc.want) {
				t.Errorf("class counts %v, want %v", counts, tc.want)
			}
			again := balancedSubset(allIndices(len(labels)), labels, 3, tc.n, subsetRNG(1, streamTrain))
			if !slices.Equal(got, again) {
				t.Errorf("same seed gave %v then %v", got, again)
			}
		})
	}
	a := balancedSubset(allIndices(len(labels)), labels, 3, 6, subsetRNG(1, streamTrain))
	b := balancedSubset(allIndices(len(labels)), labels, 3, 6, subsetRNG(2, streamTrain))
	if slices.Equal(a, b) {
		t.Errorf("seeds 1 and 2 drew the same subset %v", a)
	}
	// Remainder: 7 of 3 equal classes gives counts {3,2,2} in some order.
	even := []int32{0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2}
	got := balancedSubset(allIndices(12), even, 3, 7, subsetRNG(5, streamVal))
	counts := make([]int, 3)
	for _, i := range got {
		counts[even[i]]++
	}
	slices.Sort(counts)
	if !slices.Equal(counts, []int{2, 2, 3}) {
		t.Errorf("7 of 3 balanced classes: counts %v", counts)
	}
}

func TestSelectSplits(t *testing.T) {
	src, err := makeSynthetic(3, []int{1, 2, 2}, 4, 40, 20)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name                string
		train, val, test    int
		nTrain, nVal, nTest int
		wantErr             string
	}{
		{"all", 0, 0, 0, 40, 0, 20, ""},
		{"val held out", 0, 8, 0, 32, 8, 20, ""},
		{"all sizes", 12, 8, 4, 12, 8, 4, ""},
		{"train+val too big", 35, 8, 0, 0, 0, 0, "exceeds the 40 samples"},
		{"test too big", 0, 0, 21, 0, 0, 0, "test 21 exceeds the 20 samples"},
		{"val takes everything", 0, 40, 0, 0, 0, 0, "leaving no training samples"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := loadParams{dataset: "fake", train: tc.train, val: tc.val, test: tc.test, subsetSeed: 7}
			got, err := selectSplits(src, p)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			train, val, test := got["train"], got["val"], got["test"]
			if train.Len() != tc.nTrain || val.Len() != tc.nVal || test.Len() != tc.nTest {
				t.Fatalf("sizes %d/%d/%d, want %d/%d/%d", train.Len(), val.Len(), test.Len(), tc.nTrain, tc.nVal, tc.nTest)
			}
			for _, ds := range []*artifacts.Dataset{train, val, test} {
				if err := ds.Validate(); err != nil {
					t.Fatal(err)
				}
			}
			// val keeps train ids and is disjoint from train; test ids are offset.
			for _, id := range val.IDs {
				if slices.Contains(train.IDs, id) || id >= TestIDOffset {
					t.Errorf("val id %d in train or offset", id)
				}
			}
			for j, id := range test.IDs {
				if id < TestIDOffset {
					t.Errorf("test id %d not offset", id)
				}
				i := int(id - TestIDOffset)
				if test.Labels[j] != src.test.labels[i] || test.Images[j*4] != src.test.images[i*4] {
					t.Errorf("test sample %d does not match source sample %d", j, i)
				}
			}
		})
	}
}

// idxFile is a plain IDX file of unsigned bytes.
func idxFile(dims []uint32, payload []byte) []byte {
	var b bytes.Buffer
	b.Write([]byte{0, 0, 8, byte(len(dims))})
	for _, d := range dims {
		_ = binary.Write(&b, binary.BigEndian, d)
	}
	b.Write(payload)
	return b.Bytes()
}

func gzipBytes(t *testing.T, data []byte) []byte {
	t.Helper()
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

// writeMNISTDir writes a tiny MNIST-layout directory: train images and
// labels gzip, test files plain (both forms are accepted side by side).
func writeMNISTDir(t *testing.T, nTrain, nTest int) string {
	t.Helper()
	dir := t.TempDir()
	make := func(n int) (images, labels []byte) {
		for i := 0; i < n; i++ {
			labels = append(labels, byte(i%10))
			images = append(images, bytes.Repeat([]byte{byte(i)}, 4*3)...)
		}
		return images, labels
	}
	trImg, trLbl := make(nTrain)
	teImg, teLbl := make(nTest)
	files := map[string][]byte{
		"train-images-idx3-ubyte.gz": gzipBytes(t, idxFile([]uint32{uint32(nTrain), 4, 3}, trImg)),
		"train-labels-idx1-ubyte.gz": gzipBytes(t, idxFile([]uint32{uint32(nTrain)}, trLbl)),
		"t10k-images-idx3-ubyte":     idxFile([]uint32{uint32(nTest), 4, 3}, teImg),
		"t10k-labels-idx1-ubyte":     idxFile([]uint32{uint32(nTest)}, teLbl),
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestLoadIDXDir(t *testing.T) {
	dir := writeMNISTDir(t, 30, 20)
	src, err := loadIDXDir(MNIST, dir, MNISTClasses, "hint")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(src.shape, []int{1, 4, 3}) || src.train.size() != 30 || src.test.size() != 20 {
		t.Fatalf("shape %v sizes %d/%d", src.shape, src.train.size(), src.test.size())
	}
	if src.train.labels[13] != 3 || src.train.images[13*12] != float32(13)/255 {
		t.Errorf("sample 13: label %d pixel %v", src.train.labels[13], src.train.images[13*12])
	}

	bad := []struct {
		name   string
		mutate func(dir string)
		want   string
	}{
		{"missing test labels", func(d string) { os.Remove(filepath.Join(d, "t10k-labels-idx1-ubyte")) },
			"t10k-labels-idx1-ubyte.gz not found"},
		{"label count mismatch", func(d string) {
			os.WriteFile(filepath.Join(d, "t10k-labels-idx1-ubyte"), idxFile([]uint32{19}, make([]byte, 19)), 0o644)
		}, "has 20 images but t10k-labels-idx1-ubyte has 19 labels"},
		{"test shape differs", func(d string) {
			os.WriteFile(filepath.Join(d, "t10k-images-idx3-ubyte"), idxFile([]uint32{20, 3, 4}, make([]byte, 240)), 0o644)
		}, "images are [1 3 4], train images are [1 4 3]"},
		{"truncated", func(d string) {
			os.WriteFile(filepath.Join(d, "t10k-images-idx3-ubyte"), idxFile([]uint32{20, 4, 3}, make([]byte, 200)), 0o644)
		}, "t10k-images-idx3-ubyte: idx dimensions [20 4 3] need 240 bytes"},
		{"label out of range", func(d string) {
			os.WriteFile(filepath.Join(d, "t10k-labels-idx1-ubyte"), idxFile([]uint32{20}, bytes.Repeat([]byte{12}, 20)), 0o644)
		}, "label 12 of sample 0 is not below 10 classes"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			d := writeMNISTDir(t, 30, 20)
			tc.mutate(d)
			_, err := loadIDXDir(MNIST, d, MNISTClasses, "set path:")
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "mnist: ") {
				t.Errorf("error %v, want it to start with mnist: and say %q", err, tc.want)
			}
		})
	}
}

// writeCIFARDir writes CIFAR-10 (5 train batches of perBatch records plus a
// test batch) or CIFAR-100 (train.bin, test.bin) binary files.
func writeCIFARDir(t *testing.T, format datafile.CIFARFormat, perBatch int, meta string) string {
	t.Helper()
	dir := t.TempDir()
	record := func(i int) []byte {
		var r []byte
		if format.LabelBytes == 2 {
			r = append(r, byte(i%20))
		}
		r = append(r, byte(i%format.Classes))
		return append(r, bytes.Repeat([]byte{byte(i)}, datafile.CIFARImageBytes)...)
	}
	batch := func(name string, first, n int) {
		var data []byte
		for i := first; i < first+n; i++ {
			data = append(data, record(i)...)
		}
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if format.Name == "cifar10" {
		for b := 1; b <= 5; b++ {
			batch(fmt.Sprintf("data_batch_%d.bin", b), (b-1)*perBatch, perBatch)
		}
		batch("test_batch.bin", 0, perBatch)
		if meta != "" {
			os.WriteFile(filepath.Join(dir, "batches.meta.txt"), []byte(meta), 0o644)
		}
	} else {
		batch("train.bin", 0, perBatch)
		batch("test.bin", 0, perBatch)
		if meta != "" {
			os.WriteFile(filepath.Join(dir, "fine_label_names.txt"), []byte(meta), 0o644)
		}
	}
	return dir
}

func TestLoadCIFAR(t *testing.T) {
	meta10 := "a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n\n"
	cases := []struct {
		name       string
		format     datafile.CIFARFormat
		meta       string
		nTrain     int
		wantClass0 string
	}{
		{"cifar10 standard names", datafile.CIFAR10, "", 5 * 12, "airplane"},
		{"cifar10 meta names", datafile.CIFAR10, meta10, 5 * 12, "a"},
		{"cifar100", datafile.CIFAR100, "", 12, "apple"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src, err := loadCIFAR(writeCIFARDir(t, tc.format, 12, tc.meta), tc.format)
			if err != nil {
				t.Fatal(err)
			}
			if src.train.size() != tc.nTrain || src.test.size() != 12 || src.classNames[0] != tc.wantClass0 ||
				len(src.classNames) != tc.format.Classes {
				t.Fatalf("sizes %d/%d classes %d %q", src.train.size(), src.test.size(), len(src.classNames), src.classNames[0])
			}
			// Record i has label i mod K and every pixel i/255, across batches.
			for _, i := range []int{0, 11, tc.nTrain - 1} {
				if src.train.labels[i] != int32(i%tc.format.Classes) || src.train.images[i*3072+100] != float32(i)/255 {
					t.Errorf("train record %d: label %d pixel %v", i, src.train.labels[i], src.train.images[i*3072+100])
				}
			}
		})
	}
	if len(CIFAR100Classes) != 100 || !slices.IsSorted(CIFAR100Classes) {
		t.Errorf("CIFAR-100 names: %d, sorted %v", len(CIFAR100Classes), slices.IsSorted(CIFAR100Classes))
	}

	t.Run("missing batch", func(t *testing.T) {
		dir := writeCIFARDir(t, datafile.CIFAR10, 2, "")
		os.Remove(filepath.Join(dir, "data_batch_4.bin"))
		_, err := loadCIFAR(dir, datafile.CIFAR10)
		if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "data_batch_4.bin")+" not found: set path:") {
			t.Errorf("error %v", err)
		}
	})
	t.Run("bad meta", func(t *testing.T) {
		_, err := loadCIFAR(writeCIFARDir(t, datafile.CIFAR10, 2, "a\nb\n"), datafile.CIFAR10)
		if err == nil || !strings.Contains(err.Error(), "batches.meta.txt: lists 2 class names, want 10") {
			t.Errorf("error %v", err)
		}
	})
	t.Run("partial record", func(t *testing.T) {
		dir := writeCIFARDir(t, datafile.CIFAR100, 2, "")
		os.WriteFile(filepath.Join(dir, "test.bin"), make([]byte, 3073), 0o644)
		_, err := loadCIFAR(dir, datafile.CIFAR100)
		if err == nil || !strings.Contains(err.Error(), "not a positive multiple of the 3074-byte record") {
			t.Errorf("error %v", err)
		}
	})
}

func TestMiniIsDeterministicAndBalanced(t *testing.T) {
	a, err := loadMini()
	if err != nil {
		t.Fatal(err)
	}
	b, err := loadMini()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(a.train.images, b.train.images) || !slices.Equal(a.test.labels, b.test.labels) {
		t.Error("two decodes of the embedded data differ")
	}
	for _, part := range []struct {
		s        split
		perClass int
	}{{a.train, 200}, {a.test, 100}} {
		counts := make([]int, 10)
		for _, l := range part.s.labels {
			counts[l]++
		}
		for c, n := range counts {
			if n != part.perClass {
				t.Errorf("class %d has %d samples, want %d", c, n, part.perClass)
			}
		}
		if len(part.s.images) != 784*len(part.s.labels) {
			t.Errorf("%d pixels for %d labels", len(part.s.images), len(part.s.labels))
		}
	}
	if !slices.Equal(a.shape, []int{1, 28, 28}) {
		t.Errorf("shape %v", a.shape)
	}
}

// TestMiniMatchesDebian checks the embedded subset is what minigen documents:
// the first 200 train / 100 test images of each class of the Debian files.
func TestMiniMatchesDebian(t *testing.T) {
	if _, err := os.Stat(filepath.Join(DebianFashionMNISTDir, "t10k-images-idx3-ubyte.gz")); err != nil {
		t.Skip("dataset-fashion-mnist not installed")
	}
	mini, err := loadMini()
	if err != nil {
		t.Fatal(err)
	}
	imgArr, err := datafile.ReadIDXFile(filepath.Join(DebianFashionMNISTDir, "t10k-images-idx3-ubyte.gz"))
	if err != nil {
		t.Fatal(err)
	}
	lblArr, err := datafile.ReadIDXFile(filepath.Join(DebianFashionMNISTDir, "t10k-labels-idx1-ubyte.gz"))
	if err != nil {
		t.Fatal(err)
	}
	taken, j := make([]int, 10), 0
	for i, l := range lblArr.Data {
		if taken[l] == 100 {
			continue
		}
		taken[l]++
		if mini.test.labels[j] != int32(l) || mini.test.images[j*784+400] != float32(imgArr.Data[i*784+400])/255 {
			t.Fatalf("mini test sample %d differs from Debian test sample %d", j, i)
		}
		j++
	}
}

func TestSynthetic(t *testing.T) {
	a, err := makeSynthetic(4, []int{3, 4, 5}, 7, 70, 35)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := makeSynthetic(4, []int{3, 4, 5}, 7, 70, 35)
	c, _ := makeSynthetic(5, []int{3, 4, 5}, 7, 70, 35)
	if !slices.Equal(a.train.images, b.train.images) || !slices.Equal(a.test.images, b.test.images) {
		t.Error("same seed, different data")
	}
	if slices.Equal(a.train.images, c.train.images) {
		t.Error("different seeds, same data")
	}
	if len(a.train.images) != 70*60 || len(a.classNames) != 7 || !slices.Equal(a.shape, []int{3, 4, 5}) {
		t.Fatalf("pixels %d classes %d shape %v", len(a.train.images), len(a.classNames), a.shape)
	}
	for _, v := range a.train.images {
		if v < 0 || v > 1 {
			t.Fatalf("pixel %v outside [0,1]", v)
		}
	}
	counts := make([]int, 7)
	for _, l := range a.train.labels {
		counts[l]++
	}
	for c, n := range counts {
		if n != 10 {
			t.Errorf("class %d: %d samples", c, n)
		}
	}
	// Classes differ: the mean distance between two samples of one class is
	// below that between samples of different classes.
	dist := func(i, j int) float64 {
		var d float64
		for p := 0; p < 60; p++ {
			x := float64(a.train.images[i*60+p] - a.train.images[j*60+p])
			d += x * x
		}
		return d
	}
	var same, diff float64
	for i := 0; i < 63; i++ {
		same += dist(i, i+7)
		diff += dist(i, i+1)
	}
	if same >= diff {
		t.Errorf("same-class distance %v not below cross-class %v", same, diff)
	}
	if _, err := makeSynthetic(1, []int{1, 1 << 14, 1 << 14}, 2, 10, 10); err == nil {
		t.Error("huge synthetic accepted")
	}
}

func TestParseShape(t *testing.T) {
	cases := []struct {
		in   []any
		want []int
		ok   bool
	}{
		{[]any{int64(1), int64(28), int64(28)}, []int{1, 28, 28}, true},
		{[]any{3.0, int64(8)}, []int{3, 8}, true},
		{[]any{}, nil, false},
		{[]any{int64(0)}, nil, false},
		{[]any{2.5}, nil, false},
		{[]any{"x"}, nil, false},
		{[]any{true}, nil, false},
	}
	for _, tc := range cases {
		got, err := parseShape(tc.in)
		if (err == nil) != tc.ok || !slices.Equal(got, tc.want) {
			t.Errorf("parseShape(%v) = %v, %v", tc.in, got, err)
		}
	}
}

// runLoad runs the stage with a real Env and reads the three outputs back.
func runLoad(t *testing.T, raw map[string]any) (map[string]*artifacts.Dataset, *stages.Env, error) {
	t.Helper()
	params, err := stages.DecodeParams(Stage{}.Spec(), raw)
	if err != nil {
		t.Fatal(err)
	}
	env := &stages.Env{Instance: "data", Params: params, Seed: 99, Progress: stages.NopProgress{}, OutDir: t.TempDir()}
	if err := (Stage{}).Run(context.Background(), env); err != nil {
		return nil, env, err
	}
	out := map[string]*artifacts.Dataset{}
	for _, port := range []string{"train", "val", "test"} {
		ds, err := artifacts.ReadDatasetFile(env.OutputPath(port))
		if err != nil {
			t.Fatalf("read %s: %v", port, err)
		}
		out[port] = ds
	}
	return out, env, nil
}

func TestStageRun(t *testing.T) {
	mnistDir := writeMNISTDir(t, 50, 30)
	cases := []struct {
		name                string
		raw                 map[string]any
		nTrain, nVal, nTest int
		shape               []int
		class0              string
	}{
		{"mini", map[string]any{"dataset": "fashion-mnist-mini", "val": 100, "test": 500}, 1900, 100, 500, []int{1, 28, 28}, "T-shirt/top"},
		{"synthetic defaults", map[string]any{"dataset": "synthetic", "classes": 3, "shape": []any{2, 3, 3}}, 1000, 200, 500, []int{2, 3, 3}, "class0"},
		{"synthetic sizes", map[string]any{"dataset": "synthetic", "train": 30, "val": 10, "test": 20}, 30, 10, 20, []int{1, 28, 28}, "class0"},
		{"mnist path", map[string]any{"dataset": "mnist", "path": mnistDir, "train": 20, "val": 10}, 20, 10, 30, []int{1, 4, 3}, "0"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, env, err := runLoad(t, tc.raw)
			if err != nil {
				t.Fatal(err)
			}
			for port, want := range map[string]int{"train": tc.nTrain, "val": tc.nVal, "test": tc.nTest} {
				ds := out[port]
				if ds.Len() != want || !slices.Equal(ds.Shape, tc.shape) || ds.ClassNames[0] != tc.class0 {
					t.Errorf("%s: %d samples shape %v class0 %q", port, ds.Len(), ds.Shape, ds.ClassNames[0])
				}
				if ds.Meta["split"] != port {
					t.Errorf("%s: meta %v", port, ds.Meta)
				}
				if env.Summary()[port] != want {
					t.Errorf("reported %s = %v", port, env.Summary()[port])
				}
			}
			// The outputs are a function of the params: a second run gives the same bytes.
			first, _ := os.ReadFile(env.OutputPath("train"))
			_, env2, err := runLoad(t, tc.raw)
			if err != nil {
				t.Fatal(err)
			}
			second, _ := os.ReadFile(env2.OutputPath("train"))
			if !bytes.Equal(first, second) {
				t.Error("two runs wrote different train bytes")
			}
		})
	}
}

func TestStageRunErrors(t *testing.T) {
	cases := []struct {
		name string
		raw  map[string]any
		want string
	}{
		{"fashion missing", map[string]any{"dataset": "fashion-mnist", "path": "/nonexistent/fm"},
			"fashion-mnist: /nonexistent/fm/train-images-idx3-ubyte.gz not found"},
		{"mnist without path", map[string]any{"dataset": "mnist"}, "set path:"},
		{"cifar10 without path", map[string]any{"dataset": "cifar10"}, "set path:"},
		{"cifar100 missing", map[string]any{"dataset": "cifar100", "path": "/nonexistent/c"}, "/nonexistent/c/train.bin not found"},
		{"too many", map[string]any{"dataset": "fashion-mnist-mini", "train": 1950, "val": 100}, "exceeds the 2000 samples"},
		{"bad shape", map[string]any{"dataset": "synthetic", "shape": []any{0}}, "synthetic: shape"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := runLoad(t, tc.raw)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
}

// TestStageDebianFashionMNIST loads subsets of the real Fashion-MNIST files
// from Debian's dataset-fashion-mnist package when it is installed.
func TestStageDebianFashionMNIST(t *testing.T) {
	if _, err := os.Stat(filepath.Join(DebianFashionMNISTDir, "train-images-idx3-ubyte.gz")); err != nil {
		t.Skip("dataset-fashion-mnist not installed")
	}
	if testing.Short() {
		t.Skip("decodes 30 MB of gzip")
	}
	out, env, err := runLoad(t, map[string]any{"dataset": "fashion-mnist", "train": 1000, "val": 500, "test": 200})
	if err != nil {
		t.Fatal(err)
	}
	if out["train"].Len() != 1000 || out["val"].Len() != 500 || out["test"].Len() != 200 {
		t.Fatalf("sizes %d/%d/%d", out["train"].Len(), out["val"].Len(), out["test"].Len())
	}
	counts := make([]int, 10)
	for _, l := range out["train"].Labels {
		counts[l]++
	}
	for c, n := range counts {
		if n != 100 {
			t.Errorf("class %d: %d of 1000 training samples, want 100", c, n)
		}
	}
	if env.Summary()["source"] != DebianFashionMNISTDir {
		t.Errorf("source %v", env.Summary()["source"])
	}
}
