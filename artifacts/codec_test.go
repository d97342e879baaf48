package artifacts

import (
	"bytes"
	"encoding/binary"
	"errors"
	"maps"
	"math"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/ipc"
)

// sampleDataset builds a small deterministic dataset of n samples of shape
// [1,2,3] with 3 classes; clean adds clean labels and flipped flags.
func sampleDataset(n int, clean bool) *Dataset {
	d := &Dataset{
		Shape:      []int{1, 2, 3},
		ClassNames: []string{"cat", "dog", "émeu"},
		Meta:       map[string]string{"source": "test", "seed": "7"},
	}
	for i := 0; i < n; i++ {
		d.IDs = append(d.IDs, int64(100+i))
		d.Labels = append(d.Labels, int32(i%3))
		for j := 0; j < 6; j++ {
			d.Images = append(d.Images, float32((i*6+j)%11)/10)
		}
	}
	if clean {
		for i := 0; i < n; i++ {
			c := int32(i % 3)
			if i%4 == 1 {
				c = int32((i + 1) % 3)
			}
			d.CleanLabels = append(d.CleanLabels, c)
			d.Flipped = append(d.Flipped, c != d.Labels[i])
		}
	}
	return d
}

func sampleLabels(n int, hard, soft bool) *Labels {
	l := &Labels{K: 4, Meta: map[string]string{"strategy": "sglr"}}
	for i := 0; i < n; i++ {
		l.IDs = append(l.IDs, int64(i*3))
		if hard {
			l.Hard = append(l.Hard, int32(i%4))
		}
		if soft {
			for k := 0; k < 4; k++ {
				l.Soft = append(l.Soft, float32(k+i)/float32(4*(i+2)))
			}
		}
	}
	return l
}

func sampleTable() *Table {
	return &Table{
		Columns: []Column{
			{Name: "method", Strings: []string{"AT", "AT+SGLR", ""}},
			{Name: "epochs", Ints: []int64{60, 80, -1}},
			{Name: "robust_acc", Floats: []float64{0.321, math.NaN(), math.Inf(1)}},
		},
		Meta: map[string]string{"rows": "method"},
	}
}

func encodeDataset(t testing.TB, d *Dataset) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := WriteDataset(&buf, d); err != nil {
		t.Fatalf("WriteDataset: %v", err)
	}
	return buf.Bytes()
}

func encodeLabels(t testing.TB, l *Labels) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := WriteLabels(&buf, l); err != nil {
		t.Fatalf("WriteLabels: %v", err)
	}
	return buf.Bytes()
}

func encodeTable(t testing.TB, tb *Table) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := WriteTable(&buf, tb); err != nil {
		t.Fatalf("WriteTable: %v", err)
	}
	return buf.Bytes()
}

func TestDatasetRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		d    *Dataset
	}{
		{"hard labels only", sampleDataset(5, false)},
		{"with clean labels and flipped", sampleDataset(9, true)},
		{"empty", &Dataset{Shape: []int{3}, ClassNames: []string{"a"}, IDs: []int64{}, Labels: []int32{}, Images: []float32{}}},
		{"flipped without clean labels", func() *Dataset {
			d := sampleDataset(3, false)
			d.Flipped = []bool{true, false, true}
			return d
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ReadDataset(bytes.NewReader(encodeDataset(t, tt.d)))
			if err != nil {
				t.Fatalf("ReadDataset: %v", err)
			}
			want := *tt.d
			if len(want.Meta) == 0 {
				want.Meta = nil
			}
			if !reflect.DeepEqual(got, &want) {
				t.Errorf("round trip changed the dataset\n got %+v\nwant %+v", got, &want)
			}
		})
	}
}

func TestLabelsRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		l    *Labels
	}{
		{"hard", sampleLabels(4, true, false)},
		{"soft", sampleLabels(4, false, true)},
		{"hard and soft", sampleLabels(6, true, true)},
		{"empty soft", &Labels{K: 2, IDs: []int64{}, Soft: []float32{}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ReadLabels(bytes.NewReader(encodeLabels(t, tt.l)))
			if err != nil {
				t.Fatalf("ReadLabels: %v", err)
			}
			want := *tt.l
			if len(want.Meta) == 0 {
				want.Meta = nil
			}
			if !reflect.DeepEqual(got, &want) {
				t.Errorf("round trip changed the labels\n got %+v\nwant %+v", got, &want)
			}
		})
	}
}

func TestTableRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		tb   *Table
	}{
		{"mixed columns", sampleTable()},
		{"no columns", &Table{}},
		{"empty columns", &Table{Columns: []Column{{Name: "a", Strings: []string{}}, {Name: "b", Floats: []float64{}}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ReadTable(bytes.NewReader(encodeTable(t, tt.tb)))
			if err != nil {
				t.Fatalf("ReadTable: %v", err)
			}
			if len(got.Columns) != len(tt.tb.Columns) {
				t.Fatalf("got %d columns, want %d", len(got.Columns), len(tt.tb.Columns))
			}
			for i, c := range got.Columns {
				w := tt.tb.Columns[i]
				// Compare floats by bits so NaN round trips count as equal.
				if c.Name != w.Name || !reflect.DeepEqual(c.Strings, w.Strings) || !reflect.DeepEqual(c.Ints, w.Ints) ||
					!sameFloatBits(c.Floats, w.Floats) {
					t.Errorf("column %d: got %+v, want %+v", i, c, w)
				}
			}
			if !reflect.DeepEqual(got.Meta, tt.tb.Meta) && (len(got.Meta) != 0 || len(tt.tb.Meta) != 0) {
				t.Errorf("meta: got %v, want %v", got.Meta, tt.tb.Meta)
			}
		})
	}
}

func sameFloatBits(a, b []float64) bool {
	if (a == nil) != (b == nil) || len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float64bits(a[i]) != math.Float64bits(b[i]) {
			return false
		}
	}
	return true
}

func TestEncodingIsDeterministic(t *testing.T) {
	// Meta maps built in different insertion orders; Go also randomises
	// map iteration, so repeated writes exercise the sorting.
	metaA := map[string]string{}
	metaB := map[string]string{}
	keys := []string{"zeta", "alpha", "mid", "beta", "omega", "k1", "k2", "k3"}
	for i, k := range keys {
		metaA[k] = strings.Repeat("v", i)
	}
	for i := len(keys) - 1; i >= 0; i-- {
		metaB[keys[i]] = strings.Repeat("v", i)
	}
	a, b := sampleDataset(7, true), sampleDataset(7, true)
	a.Meta, b.Meta = metaA, metaB
	first := encodeDataset(t, a)
	for i := 0; i < 20; i++ {
		d := b
		if i%2 == 0 {
			d = a
		}
		if got := encodeDataset(t, d); !bytes.Equal(got, first) {
			t.Fatalf("write %d differs from the first write", i)
		}
	}
	if !bytes.Equal(encodeLabels(t, sampleLabels(5, true, true)), encodeLabels(t, sampleLabels(5, true, true))) {
		t.Error("equal labels encode to different bytes")
	}
	if !bytes.Equal(encodeTable(t, sampleTable()), encodeTable(t, sampleTable())) {
		t.Error("equal tables encode to different bytes")
	}
	c := sampleDataset(7, true)
	c.Images[3] = 0.5001
	if bytes.Equal(encodeDataset(t, c), first) {
		t.Error("different datasets encode to the same bytes")
	}

	// The schema metadata in the file is sorted.
	fr, err := ipc.NewFileReader(bytes.NewReader(first))
	if err != nil {
		t.Fatal(err)
	}
	md := fr.Schema().Metadata()
	gotKeys := md.Keys()
	for i := 1; i < len(gotKeys); i++ {
		if gotKeys[i-1] >= gotKeys[i] {
			t.Fatalf("schema metadata keys not sorted: %v", gotKeys)
		}
	}
	for _, want := range []string{MetaKind, MetaVersion, MetaShape, MetaClasses, "meta.zeta"} {
		if md.FindKey(want) < 0 {
			t.Errorf("schema metadata lacks %q: %v", want, gotKeys)
		}
	}
	if v, _ := md.GetValue(MetaShape); v != "1,2,3" {
		t.Errorf("%s = %q, want 1,2,3", MetaShape, v)
	}
	if v, _ := md.GetValue(MetaClasses); v != `["cat","dog","émeu"]` {
		t.Errorf("%s = %q", MetaClasses, v)
	}
	names := []string{}
	for _, f := range fr.Schema().Fields() {
		names = append(names, f.Name)
	}
	if want := []string{"id", "image", "label", "clean_label", "flipped"}; !reflect.DeepEqual(names, want) {
		t.Errorf("columns %v, want %v", names, want)
	}
}

func TestWriteRejectsInvalidValues(t *testing.T) {
	mutate := func(f func(d *Dataset)) *Dataset {
		d := sampleDataset(4, true)
		f(d)
		return d
	}
	datasets := []struct {
		name string
		d    *Dataset
		want string
	}{
		{"nil", nil, "nil"},
		{"no shape", mutate(func(d *Dataset) { d.Shape = nil }), "shape"},
		{"zero dimension", mutate(func(d *Dataset) { d.Shape = []int{1, 0, 6} }), "shape"},
		{"no classes", mutate(func(d *Dataset) { d.ClassNames = nil }), "class"},
		{"label too large", mutate(func(d *Dataset) { d.Labels[2], d.CleanLabels[2], d.Flipped[2] = 3, 3, false }), "outside [0,3)"},
		{"negative label", mutate(func(d *Dataset) { d.Labels[0] = -1 }), "outside"},
		{"short ids", mutate(func(d *Dataset) { d.IDs = d.IDs[:3] }), "ids"},
		{"short images", mutate(func(d *Dataset) { d.Images = d.Images[:5] }), "image values"},
		{"short clean labels", mutate(func(d *Dataset) { d.CleanLabels = d.CleanLabels[:1] }), "clean labels"},
		{"duplicate id", mutate(func(d *Dataset) { d.IDs[3] = d.IDs[0] }), "share id"},
		{"pixel above 1", mutate(func(d *Dataset) { d.Images[7] = 1.5 }), "outside [0,1]"},
		{"NaN pixel", mutate(func(d *Dataset) { d.Images[7] = float32(math.NaN()) }), "outside [0,1]"},
		{"flipped disagrees", mutate(func(d *Dataset) { d.Flipped[0] = !d.Flipped[0] }), "flipped"},
		{"empty meta key", mutate(func(d *Dataset) { d.Meta[""] = "x" }), "empty key"},
	}
	for _, tt := range datasets {
		t.Run("dataset/"+tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			err := WriteDataset(&buf, tt.d)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("WriteDataset error %v, want one containing %q", err, tt.want)
			}
		})
	}
	labels := []struct {
		name string
		l    *Labels
		want string
	}{
		{"no K", &Labels{IDs: []int64{1}, Hard: []int32{0}}, "K=0"},
		{"neither", &Labels{K: 2, IDs: []int64{1}}, "neither"},
		{"hard out of range", &Labels{K: 2, IDs: []int64{1}, Hard: []int32{2}}, "outside"},
		{"soft wrong length", &Labels{K: 2, IDs: []int64{1}, Soft: []float32{1}}, "soft values"},
		{"soft NaN", &Labels{K: 1, IDs: []int64{1}, Soft: []float32{float32(math.NaN())}}, "not finite"},
	}
	for _, tt := range labels {
		t.Run("labels/"+tt.name, func(t *testing.T) {
			err := WriteLabels(&bytes.Buffer{}, tt.l)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("WriteLabels error %v, want one containing %q", err, tt.want)
			}
		})
	}
	tables := []struct {
		name string
		tb   *Table
		want string
	}{
		{"unnamed", &Table{Columns: []Column{{Ints: []int64{1}}}}, "no name"},
		{"duplicate", &Table{Columns: []Column{{Name: "a", Ints: []int64{1}}, {Name: "a", Ints: []int64{2}}}}, "two columns"},
		{"two slices", &Table{Columns: []Column{{Name: "a", Ints: []int64{1}, Floats: []float64{1}}}}, "exactly one"},
		{"no slice", &Table{Columns: []Column{{Name: "a"}}}, "exactly one"},
		{"ragged", &Table{Columns: []Column{{Name: "a", Ints: []int64{1}}, {Name: "b", Strings: []string{}}}}, "rows"},
	}
	for _, tt := range tables {
		t.Run("table/"+tt.name, func(t *testing.T) {
			err := WriteTable(&bytes.Buffer{}, tt.tb)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("WriteTable error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// decoders are the three readers, for tests that run over every kind.
var decoders = []struct {
	name   string
	decode func(ReadAtSeeker) error
}{
	{"dataset", func(r ReadAtSeeker) error { _, err := ReadDataset(r); return err }},
	{"labels", func(r ReadAtSeeker) error { _, err := ReadLabels(r); return err }},
	{"table", func(r ReadAtSeeker) error { _, err := ReadTable(r); return err }},
}

func validFiles(t testing.TB) map[string][]byte {
	return map[string][]byte{
		"dataset": encodeDataset(t, sampleDataset(3, true)),
		"labels":  encodeLabels(t, sampleLabels(3, true, true)),
		"table":   encodeTable(t, sampleTable()),
	}
}

func TestReadRejectsForeignFiles(t *testing.T) {
	files := validFiles(t)
	// A valid Arrow file that is not an sglr artifact.
	var plain bytes.Buffer
	fields := []arrow.Field{{Name: "x", Type: arrow.PrimitiveTypes.Int64}}
	cols := []arrow.Array{int64Array([]int64{1, 2})}
	if err := writeIPCWithMeta(&plain, fields, cols, 2, nil); err != nil {
		t.Fatal(err)
	}
	inputs := map[string][]byte{
		"empty":       {},
		"text":        []byte("id,label\n1,2\n"),
		"plain arrow": plain.Bytes(),
	}
	for _, dec := range decoders {
		for name, data := range inputs {
			t.Run(dec.name+"/"+name, func(t *testing.T) {
				if err := dec.decode(bytes.NewReader(data)); !errors.Is(err, ErrCorrupt) {
					t.Errorf("error %v, want ErrCorrupt", err)
				}
			})
		}
		for kind, data := range files {
			if kind == dec.name {
				continue
			}
			t.Run(dec.name+"/a "+kind, func(t *testing.T) {
				err := dec.decode(bytes.NewReader(data))
				if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "kind") {
					t.Errorf("error %v, want ErrCorrupt naming the kind", err)
				}
			})
		}
	}
}

func TestReadRejectsInconsistentFiles(t *testing.T) {
	// Files written by hand with bad values the writer would refuse.
	img := float32ListArray(make([]float32, 12), 2, 6)
	tests := []struct {
		name   string
		meta   map[string]string
		fields []arrow.Field
		cols   []arrow.Array
		want   string
	}{
		{
			name:   "label out of range",
			meta:   map[string]string{MetaKind: KindDataset, MetaVersion: "1", MetaShape: "1,2,3", MetaClasses: `["a","b"]`},
			fields: datasetFields(6),
			cols:   []arrow.Array{int64Array([]int64{1, 2}), img, int32Array([]int32{0, 5})},
			want:   "outside",
		},
		{
			name:   "bad shape",
			meta:   map[string]string{MetaKind: KindDataset, MetaVersion: "1", MetaShape: "1,x", MetaClasses: `["a"]`},
			fields: datasetFields(6),
			cols:   []arrow.Array{int64Array([]int64{1, 2}), img, int32Array([]int32{0, 0})},
			want:   MetaShape,
		},
		{
			name:   "shape disagrees with list size",
			meta:   map[string]string{MetaKind: KindDataset, MetaVersion: "1", MetaShape: "1,28,28", MetaClasses: `["a"]`},
			fields: datasetFields(6),
			cols:   []arrow.Array{int64Array([]int64{1, 2}), img, int32Array([]int32{0, 0})},
			want:   "image",
		},
		{
			name:   "future version",
			meta:   map[string]string{MetaKind: KindDataset, MetaVersion: "2", MetaShape: "1,2,3", MetaClasses: `["a"]`},
			fields: datasetFields(6),
			cols:   []arrow.Array{int64Array([]int64{1, 2}), img, int32Array([]int32{0, 0})},
			want:   "version",
		},
		{
			name:   "classes not JSON",
			meta:   map[string]string{MetaKind: KindDataset, MetaVersion: "1", MetaShape: "1,2,3", MetaClasses: `[a`},
			fields: datasetFields(6),
			cols:   []arrow.Array{int64Array([]int64{1, 2}), img, int32Array([]int32{0, 0})},
			want:   MetaClasses,
		},
		{
			name:   "missing label column",
			meta:   map[string]string{MetaKind: KindDataset, MetaVersion: "1", MetaShape: "1,2,3", MetaClasses: `["a"]`},
			fields: datasetFields(6)[:2],
			cols:   []arrow.Array{int64Array([]int64{1, 2}), img},
			want:   `no "label" column`,
		},
		{
			name:   "label column of wrong type",
			meta:   map[string]string{MetaKind: KindDataset, MetaVersion: "1", MetaShape: "1,2,3", MetaClasses: `["a"]`},
			fields: append(datasetFields(6)[:2], arrow.Field{Name: ColLabel, Type: arrow.PrimitiveTypes.Int64}),
			cols:   []arrow.Array{int64Array([]int64{1, 2}), img, int64Array([]int64{0, 0})},
			want:   "type int64",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := writeIPCWithMeta(&buf, tt.fields, tt.cols, 2, tt.meta); err != nil {
				t.Fatal(err)
			}
			_, err := ReadDataset(bytes.NewReader(buf.Bytes()))
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want ErrCorrupt containing %q", err, tt.want)
			}
		})
	}
}

func datasetFields(size int) []arrow.Field {
	return []arrow.Field{
		{Name: ColID, Type: arrow.PrimitiveTypes.Int64},
		{Name: ColImage, Type: arrow.FixedSizeListOfNonNullable(int32(size), arrow.PrimitiveTypes.Float32)},
		{Name: ColLabel, Type: arrow.PrimitiveTypes.Int32},
	}
}

// writeIPCWithMeta writes an Arrow file with exactly the given schema metadata.
func writeIPCWithMeta(buf *bytes.Buffer, fields []arrow.Field, cols []arrow.Array, rows int, meta map[string]string) error {
	keys := slices.Sorted(maps.Keys(meta))
	values := make([]string, len(keys))
	for i, k := range keys {
		values[i] = meta[k]
	}
	md := arrow.NewMetadata(keys, values)
	schema := arrow.NewSchema(fields, &md)
	pw := &positionWriter{w: buf}
	fw, err := ipc.NewFileWriter(pw, ipc.WithSchema(schema))
	if err != nil {
		return err
	}
	rec := arrowRecord(schema, cols, rows)
	if err := fw.Write(rec); err != nil {
		return err
	}
	return fw.Close()
}

func TestTruncatedFilesAreCorrupt(t *testing.T) {
	for kind, data := range validFiles(t) {
		dec := decoderFor(kind)
		t.Run(kind, func(t *testing.T) {
			for n := 0; n < len(data); n++ {
				err := decodeNoPanic(t, dec, data[:n])
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("prefix of %d/%d bytes: error %v, want ErrCorrupt", n, len(data), err)
				}
			}
		})
	}
}

func TestDamagedFilesNeverPanic(t *testing.T) {
	// Flip every byte, and overwrite every aligned 8-byte word with a huge
	// value (which is how a corrupt length reaches the decoder). Reading must
	// give ErrCorrupt or a valid value, never a panic and never an
	// allocation far beyond the file's size.
	for kind, data := range validFiles(t) {
		dec := decoderFor(kind)
		t.Run(kind, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			damaged := make([]byte, len(data))
			for i := 0; i < len(data); i++ {
				copy(damaged, data)
				damaged[i] ^= 0xff
				if err := decodeNoPanic(t, dec, damaged); err != nil && !errors.Is(err, ErrCorrupt) {
					t.Fatalf("byte %d flipped: error %v, want ErrCorrupt", i, err)
				}
			}
			for i := 0; i+8 <= len(data); i += 4 {
				copy(damaged, data)
				binary.LittleEndian.PutUint64(damaged[i:], 1<<40)
				if err := decodeNoPanic(t, dec, damaged); err != nil && !errors.Is(err, ErrCorrupt) {
					t.Fatalf("word at %d set huge: error %v, want ErrCorrupt", i, err)
				}
			}
			runtime.ReadMemStats(&after)
			if grew := after.TotalAlloc - before.TotalAlloc; grew > 1<<30 {
				t.Errorf("decoding damaged %d-byte files allocated %d MiB in total", len(data), grew>>20)
			}
		})
	}
}

func TestLimitedAllocatorRefusesHugeBuffers(t *testing.T) {
	a := &limitedAllocator{limit: 1000}
	b := a.Allocate(600)
	a.Free(b)
	b = a.Allocate(900) // fits again after Free
	defer func() {
		if _, ok := recover().(errAllocationLimit); !ok {
			t.Error("allocating past the limit did not panic with errAllocationLimit")
		}
	}()
	a.Reallocate(2000, b)
}

func decoderFor(kind string) func(ReadAtSeeker) error {
	for _, d := range decoders {
		if d.name == kind {
			return d.decode
		}
	}
	panic("no decoder for " + kind)
}

func decodeNoPanic(t *testing.T, dec func(ReadAtSeeker) error, data []byte) (err error) {
	t.Helper()
	defer func() {
		if p := recover(); p != nil {
			t.Fatalf("decoder panicked on %d bytes: %v", len(data), p)
		}
	}()
	return dec(bytes.NewReader(data))
}

func FuzzReadDataset(f *testing.F) {
	f.Add(encodeDataset(f, sampleDataset(3, true)))
	f.Add(encodeDataset(f, sampleDataset(2, false)))
	f.Add(encodeLabels(f, sampleLabels(2, true, false)))
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := ReadDataset(bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		// A file that reads must re-encode and read back to the same value.
		again, err := ReadDataset(bytes.NewReader(encodeDataset(t, d)))
		if err != nil || !reflect.DeepEqual(again, d) {
			t.Fatalf("re-encoded dataset differs: %v", err)
		}
	})
}

func FuzzReadLabels(f *testing.F) {
	f.Add(encodeLabels(f, sampleLabels(3, true, true)))
	f.Add(encodeLabels(f, sampleLabels(2, false, true)))
	f.Add(encodeDataset(f, sampleDataset(2, false)))
	f.Fuzz(func(t *testing.T, data []byte) {
		l, err := ReadLabels(bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		if _, err := ReadLabels(bytes.NewReader(encodeLabels(t, l))); err != nil {
			t.Fatalf("re-encoded labels do not read: %v", err)
		}
	})
}

func FuzzReadTable(f *testing.F) {
	f.Add(encodeTable(f, sampleTable()))
	f.Add(encodeTable(f, &Table{}))
	f.Add(encodeLabels(f, sampleLabels(2, true, false)))
	f.Fuzz(func(t *testing.T, data []byte) {
		tb, err := ReadTable(bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		if _, err := ReadTable(bytes.NewReader(encodeTable(t, tb))); err != nil {
			t.Fatalf("re-encoded table does not read: %v", err)
		}
	})
}

func arrowRecord(schema *arrow.Schema, cols []arrow.Array, rows int) arrow.Record {
	return array.NewRecord(schema, cols, int64(rows))
}
