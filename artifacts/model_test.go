package artifacts

import (
	"bytes"
	"encoding/csv"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/ipc"
)

// sampleModel is a small model with weights, a bias, BatchNorm buffers
// (including the scalar step counter) and provenance.
func sampleModel() *Model {
	ramp := func(n int, scale float32) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = scale * float32(i-n/2)
		}
		return v
	}
	return &Model{
		Arch: `{"kind":"mlp","input":[1,2,2],"classes":2,"hidden":[3]}`,
		Tensors: []Tensor{
			{Name: "layers.0.weight", Shape: []int{3, 4}, Data: ramp(12, 0.125)},
			{Name: "layers.0.bias", Shape: []int{3}, Data: []float32{0.5, -1, 2}},
			{Name: "bn.running_mean", Shape: []int{3}, Data: []float32{0.1, 0.2, 0.3}, Buffer: true},
			{Name: "bn.num_batches_tracked", Shape: []int{}, Data: []float32{7}, Buffer: true},
			{Name: "head.weight", Shape: []int{2, 3}, Data: ramp(6, -0.25)},
			{Name: "head.bias", Shape: []int{2}, Data: []float32{0, 1e-30}},
		},
		Meta: map[string]string{"epoch": "12", "stage": "train"},
	}
}

func encodeModel(t testing.TB, m *Model) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := WriteModel(&buf, m); err != nil {
		t.Fatalf("WriteModel: %v", err)
	}
	return buf.Bytes()
}

func readModelBytes(data []byte) error {
	_, err := ReadModel(bytes.NewReader(data))
	return err
}

func TestModelRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		m    *Model
	}{
		{"mlp with buffers", sampleModel()},
		{"one scalar, no meta", &Model{Arch: `{}`, Tensors: []Tensor{{Name: "s", Shape: []int{}, Data: []float32{-3}}}}},
		{"4-d conv weight", &Model{Arch: `{"kind":"cnn"}`, Tensors: []Tensor{
			{Name: "convs.0.weight", Shape: []int{2, 1, 3, 3}, Data: make([]float32, 18)},
		}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "model.arrow")
			if err := os.WriteFile(path, encodeModel(t, tt.m), 0o644); err != nil {
				t.Fatal(err)
			}
			got, err := ReadModelFile(path)
			if err != nil {
				t.Fatalf("ReadModelFile: %v", err)
			}
			want := *tt.m
			if len(want.Meta) == 0 {
				want.Meta = nil
			}
			if !reflect.DeepEqual(got, &want) {
				t.Errorf("round trip changed the model\n got %+v\nwant %+v", got, &want)
			}
		})
	}
}

func TestModelEncoding(t *testing.T) {
	first := encodeModel(t, sampleModel())
	for i := 0; i < 10; i++ { // Go randomises map order: the metadata must be sorted
		m := sampleModel()
		m.Meta = map[string]string{"stage": "train", "epoch": "12"}
		if !bytes.Equal(encodeModel(t, m), first) {
			t.Fatalf("write %d differs from the first write", i)
		}
	}
	changed := sampleModel()
	changed.Tensors[1].Data[2] = 2.0000002
	if bytes.Equal(encodeModel(t, changed), first) {
		t.Error("different weights encode to the same bytes")
	}

	fr, err := ipc.NewFileReader(bytes.NewReader(first))
	if err != nil {
		t.Fatal(err)
	}
	defer fr.Close()
	if fr.NumRecords() != 1 {
		t.Errorf("%d record batches, want 1", fr.NumRecords())
	}
	md := fr.Schema().Metadata()
	if kind, _ := md.GetValue(MetaKind); kind != KindModel {
		t.Errorf("kind %q", kind)
	}
	if arch, _ := md.GetValue(MetaArch); arch != sampleModel().Arch {
		t.Errorf("arch %q", arch)
	}
	wantFields := []struct {
		name          string
		size          int
		shape, buffer string
	}{
		{"layers.0.weight", 12, "3,4", "false"},
		{"layers.0.bias", 3, "3", "false"},
		{"bn.running_mean", 3, "3", "true"},
		{"bn.num_batches_tracked", 1, "", "true"},
		{"head.weight", 6, "2,3", "false"},
		{"head.bias", 2, "2", "false"},
	}
	fields := fr.Schema().Fields()
	if len(fields) != len(wantFields) {
		t.Fatalf("%d columns, want %d", len(fields), len(wantFields))
	}
	for i, w := range wantFields {
		f := fields[i]
		shape, _ := f.Metadata.GetValue(MetaTensorShape)
		buffer, _ := f.Metadata.GetValue(MetaTensorBuffer)
		if size, ok := isFloat32List(f.Type); f.Name != w.name || !ok || size != w.size || shape != w.shape || buffer != w.buffer {
			t.Errorf("column %d: %s %s shape %q buffer %q, want %+v", i, f.Name, f.Type, shape, buffer, w)
		}
		if keys := f.Metadata.Keys(); !reflect.DeepEqual(keys, []string{MetaTensorBuffer, MetaTensorShape}) {
			t.Errorf("column %d: field metadata keys %v, want sorted", i, keys)
		}
	}
}

func TestWriteModelRejectsInvalidModels(t *testing.T) {
	mutate := func(f func(m *Model)) *Model {
		m := sampleModel()
		f(m)
		return m
	}
	tests := []struct {
		name string
		m    *Model
		want string
	}{
		{"nil", nil, "nil"},
		{"no arch", mutate(func(m *Model) { m.Arch = "" }), "no architecture"},
		{"arch not JSON", mutate(func(m *Model) { m.Arch = `{"kind":` }), "not valid JSON"},
		{"no tensors", mutate(func(m *Model) { m.Tensors = nil }), "no tensors"},
		{"unnamed tensor", mutate(func(m *Model) { m.Tensors[2].Name = "" }), "tensor 2 has no name"},
		{"duplicate name", mutate(func(m *Model) { m.Tensors[4].Name = "layers.0.bias" }), "both named"},
		{"short data", mutate(func(m *Model) { m.Tensors[0].Data = m.Tensors[0].Data[:11] }), "11 values"},
		{"scalar without value", mutate(func(m *Model) { m.Tensors[3].Data = nil }), "0 values"},
		{"zero dimension", mutate(func(m *Model) { m.Tensors[1].Shape = []int{0} }), "positive dimensions"},
		{"negative dimension", mutate(func(m *Model) { m.Tensors[1].Shape = []int{-3} }), "positive dimensions"},
		{"huge shape", mutate(func(m *Model) { m.Tensors[1].Shape = []int{1 << 20, 1 << 20} }), "below 2^31"},
		{"NaN", mutate(func(m *Model) { m.Tensors[0].Data[5] = float32(math.NaN()) }), "value 5 is NaN"},
		{"infinity", mutate(func(m *Model) { m.Tensors[5].Data[0] = float32(math.Inf(-1)) }), "not finite"},
		{"empty meta key", mutate(func(m *Model) { m.Meta[""] = "x" }), "empty key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := WriteModel(&bytes.Buffer{}, tt.m)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("WriteModel error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestReadModelRejectsInconsistentFiles(t *testing.T) {
	modelMeta := map[string]string{MetaKind: KindModel, MetaVersion: FormatVersion, MetaArch: `{}`}
	without := func(key string) map[string]string {
		m := map[string]string{}
		for k, v := range modelMeta {
			if k != key {
				m[k] = v
			}
		}
		return m
	}
	tensorField := func(name string, size int, meta ...string) arrow.Field {
		var keys, values []string
		for i := 0; i+1 < len(meta); i += 2 {
			keys, values = append(keys, meta[i]), append(values, meta[i+1])
		}
		return arrow.Field{
			Name:     name,
			Type:     arrow.FixedSizeListOfNonNullable(int32(size), arrow.PrimitiveTypes.Float32),
			Metadata: arrow.NewMetadata(keys, values),
		}
	}
	good := func(name string) arrow.Field {
		return tensorField(name, 2, MetaTensorShape, "2", MetaTensorBuffer, "false")
	}
	list := func(v ...float32) arrow.Array { return float32ListArray(v, 1, len(v)) }
	tests := []struct {
		name   string
		meta   map[string]string
		fields []arrow.Field
		cols   []arrow.Array
		rows   int
		want   string
	}{
		{"no arch", without(MetaArch), []arrow.Field{good("a")}, []arrow.Array{list(1, 2)}, 1, "no sglr.arch"},
		{"arch not JSON", map[string]string{MetaKind: KindModel, MetaVersion: FormatVersion, MetaArch: "{"},
			[]arrow.Field{good("a")}, []arrow.Array{list(1, 2)}, 1, "not valid JSON"},
		{"no field metadata", modelMeta,
			[]arrow.Field{{Name: "a", Type: arrow.FixedSizeListOfNonNullable(2, arrow.PrimitiveTypes.Float32)}},
			[]arrow.Array{list(1, 2)}, 1, "no field metadata"},
		{"no shape", modelMeta, []arrow.Field{tensorField("a", 2, MetaTensorBuffer, "false")},
			[]arrow.Array{list(1, 2)}, 1, "no sglr.shape"},
		{"bad shape", modelMeta, []arrow.Field{tensorField("a", 2, MetaTensorShape, "2,x", MetaTensorBuffer, "false")},
			[]arrow.Array{list(1, 2)}, 1, "sglr.shape"},
		{"no buffer flag", modelMeta, []arrow.Field{tensorField("a", 2, MetaTensorShape, "2")},
			[]arrow.Array{list(1, 2)}, 1, "no sglr.buffer"},
		{"bad buffer flag", modelMeta, []arrow.Field{tensorField("a", 2, MetaTensorShape, "2", MetaTensorBuffer, "yes")},
			[]arrow.Array{list(1, 2)}, 1, "want true or false"},
		{"shape disagrees with list size", modelMeta,
			[]arrow.Field{tensorField("a", 2, MetaTensorShape, "3", MetaTensorBuffer, "false")},
			[]arrow.Array{list(1, 2)}, 1, "fixed_size_list<float32>[3] for shape [3]"},
		{"not float32", modelMeta,
			[]arrow.Field{{Name: "a", Type: arrow.PrimitiveTypes.Int64,
				Metadata: arrow.NewMetadata([]string{MetaTensorBuffer, MetaTensorShape}, []string{"false", ""})}},
			[]arrow.Array{int64Array([]int64{1})}, 1, "type int64"},
		{"two rows", modelMeta, []arrow.Field{good("a")}, []arrow.Array{float32ListArray([]float32{1, 2, 3, 4}, 2, 2)}, 2, "2 rows"},
		{"duplicate names", modelMeta, []arrow.Field{good("a"), good("a")},
			[]arrow.Array{list(1, 2), list(3, 4)}, 1, "both named"},
		{"NaN", modelMeta, []arrow.Field{good("a")}, []arrow.Array{list(1, float32(math.NaN()))}, 1, "not finite"},
		{"no tensors", modelMeta, nil, nil, 1, "no tensors"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := writeIPCWithMeta(&buf, tt.fields, tt.cols, tt.rows, tt.meta); err != nil {
				t.Fatal(err)
			}
			err := readModelBytes(buf.Bytes())
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want ErrCorrupt containing %q", err, tt.want)
			}
		})
	}

	t.Run("two record batches", func(t *testing.T) {
		md := sortedMetadata(modelMeta)
		schema := arrow.NewSchema([]arrow.Field{good("a")}, &md)
		var buf bytes.Buffer
		fw, err := ipc.NewFileWriter(&positionWriter{w: &buf}, ipc.WithSchema(schema))
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 2; i++ {
			if err := fw.Write(arrowRecord(schema, []arrow.Array{list(1, 2)}, 1)); err != nil {
				t.Fatal(err)
			}
		}
		if err := fw.Close(); err != nil {
			t.Fatal(err)
		}
		if err := readModelBytes(buf.Bytes()); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "2 record batches") {
			t.Errorf("error %v, want ErrCorrupt naming 2 record batches", err)
		}
	})

	t.Run("other kinds", func(t *testing.T) {
		for kind, data := range validFiles(t) {
			err := readModelBytes(data)
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), `kind is "`+kind+`", want "model"`) {
				t.Errorf("%s: error %v, want ErrCorrupt naming the kind", kind, err)
			}
		}
		if err := readModelBytes([]byte("not arrow")); !errors.Is(err, ErrCorrupt) {
			t.Errorf("garbage: error %v, want ErrCorrupt", err)
		}
	})
}

func TestDamagedModelFilesNeverPanic(t *testing.T) {
	data := encodeModel(t, sampleModel())
	readModel := func(r ReadAtSeeker) error { _, err := ReadModel(r); return err }
	for n := 0; n < len(data); n++ {
		if err := decodeNoPanic(t, readModel, data[:n]); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("prefix of %d/%d bytes: error %v, want ErrCorrupt", n, len(data), err)
		}
	}
	damaged := make([]byte, len(data))
	for i := range data {
		copy(damaged, data)
		damaged[i] ^= 0xff
		if err := decodeNoPanic(t, readModel, damaged); err != nil && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("byte %d flipped: error %v, want ErrCorrupt", i, err)
		}
	}
	for i := 0; i+8 <= len(data); i += 4 {
		copy(damaged, data)
		damaged[i+7] = 0x7f // a huge length or offset
		if err := decodeNoPanic(t, readModel, damaged); err != nil && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("word at %d set huge: error %v, want ErrCorrupt", i, err)
		}
	}
}

func TestInspectAndExportModel(t *testing.T) {
	m := sampleModel()
	data := encodeModel(t, m)

	info, err := Inspect(bytes.NewReader(data), 5)
	if err != nil {
		t.Fatal(err)
	}
	if info.Kind != KindModel || info.Rows != 1 || len(info.Columns) != len(m.Tensors) || info.Meta[MetaArch] != m.Arch {
		t.Errorf("Inspect: %+v", info)
	}
	if c := info.Columns[0]; c.Name != "layers.0.weight" || c.Meta[MetaTensorShape] != "3,4" || c.Meta[MetaTensorBuffer] != "false" {
		t.Errorf("Inspect column 0: %+v", c)
	}
	if got := info.Head[0][3]; got != "[7]" {
		t.Errorf("Inspect head of the counter: %q", got)
	}

	dir := t.TempDir()
	paths, err := ExportNPY(bytes.NewReader(data), dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) != len(m.Tensors) {
		t.Fatalf("ExportNPY wrote %v", paths)
	}
	want := map[string]npyArray{}
	for i, tensor := range m.Tensors {
		want[tensor.Name+".npy"] = npyArray{descr: "<f4", shape: tensor.Shape, values: toFloat64s(tensor.Data)}
		if filepath.Base(paths[i]) != tensor.Name+".npy" {
			t.Errorf("file %d is %s, want %s.npy", i, paths[i], tensor.Name)
		}
	}
	for _, p := range paths {
		raw, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		got, err := parseNPY(raw)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		w := want[filepath.Base(p)]
		if got.descr != w.descr || len(got.shape) != len(w.shape) || (len(w.shape) > 0 && !reflect.DeepEqual(got.shape, w.shape)) ||
			!reflect.DeepEqual(got.values, w.values) {
			t.Errorf("%s:\n got %+v\nwant %+v", filepath.Base(p), got, w)
		}
	}
	checkWithNumpy(t, paths, want)

	var out bytes.Buffer
	if err := ExportCSV(bytes.NewReader(data), &out); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&out).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, tensor := range m.Tensors {
		total += len(tensor.Data)
	}
	if len(rows) != 1+total {
		t.Fatalf("csv has %d rows, want a header and %d values", len(rows), total)
	}
	checks := map[int][]string{
		0:     {"tensor", "index", "value"},
		1:     {"layers.0.weight", "0", "-0.75"},
		12:    {"layers.0.weight", "11", "0.625"},
		13:    {"layers.0.bias", "0", "0.5"},
		19:    {"bn.num_batches_tracked", "0", "7"},
		total: {"head.bias", "1", "1e-30"},
	}
	for i, w := range checks {
		if !reflect.DeepEqual(rows[i], w) {
			t.Errorf("csv row %d: %q, want %q", i, rows[i], w)
		}
	}
}

func FuzzReadModel(f *testing.F) {
	f.Add(encodeModel(f, sampleModel()))
	f.Add(encodeModel(f, &Model{Arch: `{}`, Tensors: []Tensor{{Name: "s", Shape: []int{}, Data: []float32{1}}}}))
	f.Add(encodeLabels(f, sampleLabels(2, false, true)))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ReadModel(bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		// A file that reads must re-encode and read back to the same value.
		again, err := ReadModel(bytes.NewReader(encodeModel(t, m)))
		if err != nil || !reflect.DeepEqual(again, m) {
			t.Fatalf("re-encoded model differs: %v", err)
		}
	})
}
