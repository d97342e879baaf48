package artifacts

import (
	"bytes"
	"encoding/binary"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v15/arrow"
)

func TestInspect(t *testing.T) {
	tests := []struct {
		name     string
		data     []byte
		kind     string
		rows     int64
		columns  []string
		firstRow []string
	}{
		{
			name: "dataset", data: encodeDataset(t, sampleDataset(5, true)), kind: KindDataset, rows: 5,
			columns:  []string{"id int64", "image fixed_size_list<item: float32>[6]", "label int32", "clean_label int32", "flipped bool"},
			firstRow: []string{"100", "[0 0.1 0.2 0.3 … (6 values)]", "0", "0", "false"},
		},
		{
			name: "labels", data: encodeLabels(t, sampleLabels(3, true, true)), kind: KindLabels, rows: 3,
			columns:  []string{"id int64", "hard int32", "soft fixed_size_list<item: float32>[4]"},
			firstRow: []string{"0", "0", "[0 0.125 0.25 0.375]"},
		},
		{
			name: "table", data: encodeTable(t, sampleTable()), kind: KindTable, rows: 3,
			columns:  []string{"method utf8", "epochs int64", "robust_acc float64"},
			firstRow: []string{"AT", "60", "0.321"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			info, err := Inspect(bytes.NewReader(tt.data), 2)
			if err != nil {
				t.Fatal(err)
			}
			if info.Kind != tt.kind || info.Version != FormatVersion || info.Rows != tt.rows {
				t.Errorf("kind %q version %q rows %d", info.Kind, info.Version, info.Rows)
			}
			var cols []string
			for _, c := range info.Columns {
				cols = append(cols, c.Name+" "+c.Type)
			}
			if !reflect.DeepEqual(cols, tt.columns) {
				t.Errorf("columns %q, want %q", cols, tt.columns)
			}
			if len(info.Head) != 2 || !reflect.DeepEqual(info.Head[0], tt.firstRow) {
				t.Errorf("head %q, want first row %q", info.Head, tt.firstRow)
			}
			if info.Meta[MetaKind] != tt.kind {
				t.Errorf("meta %v lacks the kind", info.Meta)
			}
		})
	}
	// A kind this package does not know yet still inspects.
	var buf bytes.Buffer
	fields := datasetFields(6)[:1]
	if err := writeIPCWithMeta(&buf, fields, []arrow.Array{int64Array([]int64{7})}, 1,
		map[string]string{MetaKind: "curve", MetaVersion: "1"}); err != nil {
		t.Fatal(err)
	}
	info, err := Inspect(bytes.NewReader(buf.Bytes()), 10)
	if err != nil || info.Kind != "curve" || info.Rows != 1 || info.Head[0][0] != "7" {
		t.Errorf("Inspect of a new kind: %+v, %v", info, err)
	}
	if _, err := Inspect(bytes.NewReader([]byte("nope")), 1); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Inspect of garbage: %v", err)
	}
}

func TestExportNPY(t *testing.T) {
	d := sampleDataset(4, true)
	tb := &Table{Columns: []Column{
		{Name: "method", Strings: []string{"AT", "SGLR+é", ""}},
		{Name: "acc", Floats: []float64{0.5, 0.25, math.Inf(-1)}},
	}}
	tests := []struct {
		name string
		data []byte
		want map[string]npyArray
	}{
		{"dataset", encodeDataset(t, d), map[string]npyArray{
			"id.npy":          {descr: "<i8", shape: []int{4}, values: toFloat64s(d.IDs)},
			"image.npy":       {descr: "<f4", shape: []int{4, 1, 2, 3}, values: toFloat64s(d.Images)},
			"label.npy":       {descr: "<i8", shape: []int{4}, values: toFloat64s(d.Labels)}, // int32 widens to int64 for PyTorch's losses
			"clean_label.npy": {descr: "<i8", shape: []int{4}, values: toFloat64s(d.CleanLabels)},
			"flipped.npy":     {descr: "|b1", shape: []int{4}, values: []float64{0, 1, 0, 0}},
		}},
		{"hard labels", encodeLabels(t, sampleLabels(3, true, false)), map[string]npyArray{
			"id.npy":   {descr: "<i8", shape: []int{3}, values: []float64{0, 3, 6}},
			"hard.npy": {descr: "<i8", shape: []int{3}, values: []float64{0, 1, 2}},
		}},
		{"soft labels", encodeLabels(t, sampleLabels(3, false, true)), map[string]npyArray{
			"id.npy":   {descr: "<i8", shape: []int{3}, values: []float64{0, 3, 6}},
			"soft.npy": {descr: "<f4", shape: []int{3, 4}, values: toFloat64s(sampleLabels(3, false, true).Soft)},
		}},
		{"table", encodeTable(t, tb), map[string]npyArray{
			"method.npy": {descr: "<U6", shape: []int{3}, strings: []string{"AT", "SGLR+é", ""}},
			"acc.npy":    {descr: "<f8", shape: []int{3}, values: []float64{0.5, 0.25, math.Inf(-1)}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			paths, err := ExportNPY(bytes.NewReader(tt.data), dir)
			if err != nil {
				t.Fatal(err)
			}
			if len(paths) != len(tt.want) {
				t.Errorf("wrote %v, want %d files", paths, len(tt.want))
			}
			for _, p := range paths {
				want, ok := tt.want[filepath.Base(p)]
				if !ok {
					t.Errorf("unexpected file %s", p)
					continue
				}
				raw, err := os.ReadFile(p)
				if err != nil {
					t.Fatal(err)
				}
				if len(raw) < 10 || (10+int(binary.LittleEndian.Uint16(raw[8:])))%64 != 0 {
					t.Errorf("%s: data does not start at a multiple of 64", p)
				}
				got, err := parseNPY(raw)
				if err != nil {
					t.Fatalf("%s: %v", p, err)
				}
				if got.descr != want.descr || !reflect.DeepEqual(got.shape, want.shape) ||
					!reflect.DeepEqual(got.values, want.values) || !reflect.DeepEqual(got.strings, want.strings) {
					t.Errorf("%s:\n got %+v\nwant %+v", filepath.Base(p), got, want)
				}
			}
			checkWithNumpy(t, paths, tt.want)
			if tt.name == "dataset" {
				checkLabelsFeedCrossEntropy(t, filepath.Join(dir, "label.npy"))
			}
		})
	}
}

// checkLabelsFeedCrossEntropy passes the exported labels to PyTorch's
// F.cross_entropy as np.load returns them, without a cast (PyTorch rejects
// int32 class indices), when /usr/bin/python3 has torch.
func checkLabelsFeedCrossEntropy(t *testing.T, labelPath string) {
	t.Run("torch cross_entropy", func(t *testing.T) {
		python := pythonWith(t, "numpy", "torch")
		script := `import sys, numpy as np, torch, torch.nn.functional as F
y = torch.from_numpy(np.load(sys.argv[1], allow_pickle=False))
loss = F.cross_entropy(torch.zeros(y.shape[0], int(y.max()) + 1), y)
print(y.dtype, round(loss.item(), 4))`
		out, err := exec.Command(python, "-c", script, labelPath).CombinedOutput()
		if err != nil {
			t.Fatalf("F.cross_entropy on the exported labels: %v\n%s", err, out)
		}
		if got := strings.TrimSpace(string(out)); !strings.HasPrefix(got, "torch.int64 ") {
			t.Errorf("PyTorch reads the labels as %q, want torch.int64", got)
		}
	})
}

func TestExportCSV(t *testing.T) {
	var out bytes.Buffer
	if err := ExportCSV(bytes.NewReader(encodeLabels(t, sampleLabels(2, true, true))), &out); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&out).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{
		{"id", "hard", "soft_0", "soft_1", "soft_2", "soft_3"},
		{"0", "0", "0", "0.125", "0.25", "0.375"},
		{"3", "1", "0.083333336", "0.16666667", "0.25", "0.33333334"},
	}
	if !reflect.DeepEqual(rows, want) {
		t.Errorf("csv\n got %q\nwant %q", rows, want)
	}

	out.Reset()
	if err := ExportCSV(bytes.NewReader(encodeTable(t, sampleTable())), &out); err != nil {
		t.Fatal(err)
	}
	if want := "method,epochs,robust_acc\nAT,60,0.321\nAT+SGLR,80,NaN\n,-1,+Inf\n"; out.String() != want {
		t.Errorf("table csv %q, want %q", out.String(), want)
	}
	if err := ExportCSV(bytes.NewReader([]byte("junk")), &out); !errors.Is(err, ErrCorrupt) {
		t.Errorf("ExportCSV of junk: %v", err)
	}
}

// npyArray is a parsed .npy file: floats for numeric and bool data, strings for <U.
type npyArray struct {
	descr   string
	shape   []int
	values  []float64
	strings []string
}

var npyHeaderRE = regexp.MustCompile(`^\{'descr': '([<|][a-zA-Z]\d+)', 'fortran_order': False, 'shape': \(([\d, ]*)\), \} *\n$`)

// parseNPY is a small independent reader of NumPy 1.0 files, for the tests.
func parseNPY(raw []byte) (npyArray, error) {
	var a npyArray
	if len(raw) < 10 || string(raw[:8]) != "\x93NUMPY\x01\x00" {
		return a, errors.New("bad magic or version")
	}
	hlen := int(binary.LittleEndian.Uint16(raw[8:10]))
	if 10+hlen > len(raw) {
		return a, errors.New("header past end")
	}
	m := npyHeaderRE.FindStringSubmatch(string(raw[10 : 10+hlen]))
	if m == nil {
		return a, fmt.Errorf("bad header %q", raw[10:10+hlen])
	}
	a.descr = m[1]
	count := 1
	for _, s := range strings.Split(m[2], ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		n, _ := strconv.Atoi(s)
		a.shape = append(a.shape, n)
		count *= n
	}
	data := raw[10+hlen:]
	itemSize, _ := strconv.Atoi(a.descr[2:])
	if a.descr[1] == 'U' {
		itemSize *= 4
	}
	if len(data) != count*itemSize {
		return a, fmt.Errorf("%d data bytes, want %d × %d", len(data), count, itemSize)
	}
	for i := 0; i < count; i++ {
		cell := data[i*itemSize : (i+1)*itemSize]
		switch a.descr {
		case "<i8":
			a.values = append(a.values, float64(int64(binary.LittleEndian.Uint64(cell))))
		case "<i4":
			a.values = append(a.values, float64(int32(binary.LittleEndian.Uint32(cell))))
		case "<f4":
			a.values = append(a.values, float64(math.Float32frombits(binary.LittleEndian.Uint32(cell))))
		case "<f8":
			a.values = append(a.values, math.Float64frombits(binary.LittleEndian.Uint64(cell)))
		case "|b1", "|u1":
			a.values = append(a.values, float64(cell[0]))
		default:
			if a.descr[1] != 'U' {
				return a, fmt.Errorf("descr %s not handled by the test parser", a.descr)
			}
			var rs []rune
			for j := 0; j < len(cell); j += 4 {
				if r := rune(binary.LittleEndian.Uint32(cell[j:])); r != 0 {
					rs = append(rs, r)
				}
			}
			a.strings = append(a.strings, string(rs))
		}
	}
	return a, nil
}

// checkWithNumpy loads the files with numpy, when /usr/bin/python3 has it,
// and compares dtype, shape and values.
func checkWithNumpy(t *testing.T, paths []string, want map[string]npyArray) {
	t.Run("numpy", func(t *testing.T) {
		if err := exec.Command("/usr/bin/python3", "-c", "import numpy").Run(); err != nil {
			t.Skip("python3 with numpy is not available")
		}
		script := `import json, sys, numpy as np
out = {}
for p in sys.argv[1:]:
    a = np.load(p, allow_pickle=False)
    vals = [str(v) if a.dtype.kind == 'U' else repr(float(v)) for v in a.ravel()]
    out[p] = {"descr": a.dtype.str, "shape": list(a.shape), "c": bool(a.flags.c_contiguous), "values": vals}
print(json.dumps(out))`
		raw, err := exec.Command("/usr/bin/python3", append([]string{"-c", script}, paths...)...).Output()
		if err != nil {
			t.Fatalf("numpy could not load the files: %v", err)
		}
		var got map[string]struct {
			Descr  string
			Shape  []int
			C      bool
			Values []string
		}
		if err := json.Unmarshal(raw, &got); err != nil {
			t.Fatal(err)
		}
		for _, p := range paths {
			g, w := got[p], want[filepath.Base(p)]
			if g.Descr != w.descr || !reflect.DeepEqual(g.Shape, w.shape) || !g.C {
				t.Errorf("%s: numpy sees %s %v (C order %v), want %s %v", p, g.Descr, g.Shape, g.C, w.descr, w.shape)
			}
			for i, v := range g.Values {
				ok := i < len(w.strings) && v == w.strings[i]
				if f, err := strconv.ParseFloat(v, 64); err == nil && w.strings == nil {
					ok = i < len(w.values) && f == w.values[i]
				}
				if !ok {
					t.Errorf("%s: value %d is %v", p, i, v)
					break
				}
			}
		}
	})
}

func toFloat64s[T uint8 | int32 | int64 | float32](v []T) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}
