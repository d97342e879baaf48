package artifacts

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/apache/arrow/go/v15/arrow"
)

// Schema metadata keys of a dataset artifact.
const (
	MetaShape   = "sglr.shape"   // per-sample shape, e.g. "1,28,28"
	MetaClasses = "sglr.classes" // JSON array of class names
)

// Column names of a dataset artifact, in file order.
const (
	ColID         = "id"
	ColImage      = "image"
	ColLabel      = "label"
	ColCleanLabel = "clean_label"
	ColFlipped    = "flipped"
)

// maxSampleSize bounds prod(Shape), so that sizes fit Arrow's int32 list length.
const maxSampleSize = 1<<31 - 1

// WriteDataset encodes d as an Arrow IPC file: columns id int64, image
// FixedSizeList<float32>(prod(shape)), label int32, then clean_label int32 and
// flipped bool when present. Equal datasets give equal bytes. d is validated
// first (see Dataset.Validate).
func WriteDataset(w io.Writer, d *Dataset) error {
	if err := d.Validate(); err != nil {
		return fmt.Errorf("write dataset: %w", err)
	}
	n, size := len(d.Labels), d.SampleSize()
	classes, err := json.Marshal(d.ClassNames)
	if err != nil {
		return fmt.Errorf("write dataset: class names: %w", err)
	}
	meta := map[string]string{MetaShape: formatShape(d.Shape), MetaClasses: string(classes)}
	userMeta(d.Meta, meta)
	fields := []arrow.Field{
		{Name: ColID, Type: arrow.PrimitiveTypes.Int64},
		{Name: ColImage, Type: arrow.FixedSizeListOfNonNullable(int32(size), arrow.PrimitiveTypes.Float32)},
		{Name: ColLabel, Type: arrow.PrimitiveTypes.Int32},
	}
	cols := []arrow.Array{int64Array(d.IDs), float32ListArray(d.Images, n, size), int32Array(d.Labels)}
	if d.CleanLabels != nil {
		fields = append(fields, arrow.Field{Name: ColCleanLabel, Type: arrow.PrimitiveTypes.Int32})
		cols = append(cols, int32Array(d.CleanLabels))
	}
	if d.Flipped != nil {
		fields = append(fields, arrow.Field{Name: ColFlipped, Type: arrow.FixedWidthTypes.Boolean})
		cols = append(cols, boolArray(d.Flipped))
	}
	defer releaseAll(cols)
	return writeIPC(w, KindDataset, fields, cols, n, meta)
}

// ReadDataset decodes a dataset artifact and validates it. A file that is not
// a valid dataset (foreign, truncated, inconsistent) gives an error wrapping
// ErrCorrupt.
func ReadDataset(r ReadAtSeeker) (*Dataset, error) {
	var d Dataset
	err := decodeIPC(r, KindDataset, func(f *ipcFile) error {
		shape, err := parseShape(f.meta[MetaShape])
		if err != nil {
			return corruptf("%s: %v", MetaShape, err)
		}
		d.Shape = shape
		if err := json.Unmarshal([]byte(f.meta[MetaClasses]), &d.ClassNames); err != nil {
			return corruptf("%s: %v", MetaClasses, err)
		}
		size := d.SampleSize()
		if size == 0 {
			return corruptf("%s %v: product too large", MetaShape, d.Shape)
		}
		idCol, err := f.field(ColID, true, "int64", typeIs(arrow.PrimitiveTypes.Int64))
		if err != nil {
			return err
		}
		imgCol, err := f.field(ColImage, true, fmt.Sprintf("fixed_size_list<float32>[%d]", size), float32ListOf(size))
		if err != nil {
			return err
		}
		labelCol, err := f.field(ColLabel, true, "int32", typeIs(arrow.PrimitiveTypes.Int32))
		if err != nil {
			return err
		}
		cleanCol, err := f.field(ColCleanLabel, false, "int32", typeIs(arrow.PrimitiveTypes.Int32))
		if err != nil {
			return err
		}
		flipCol, err := f.field(ColFlipped, false, "bool", typeIs(arrow.FixedWidthTypes.Boolean))
		if err != nil {
			return err
		}
		d.IDs, d.Labels, d.Images = []int64{}, []int32{}, []float32{}
		if cleanCol >= 0 {
			d.CleanLabels = []int32{}
		}
		if flipCol >= 0 {
			d.Flipped = []bool{}
		}
		err = f.eachRecord(func(rec arrow.Record) error {
			var err error
			if d.IDs, err = appendInt64s(d.IDs, rec.Column(idCol), ColID); err != nil {
				return err
			}
			if d.Images, err = appendFloat32Lists(d.Images, rec.Column(imgCol), ColImage, size); err != nil {
				return err
			}
			if d.Labels, err = appendInt32s(d.Labels, rec.Column(labelCol), ColLabel); err != nil {
				return err
			}
			if cleanCol >= 0 {
				if d.CleanLabels, err = appendInt32s(d.CleanLabels, rec.Column(cleanCol), ColCleanLabel); err != nil {
					return err
				}
			}
			if flipCol >= 0 {
				if d.Flipped, err = appendBools(d.Flipped, rec.Column(flipCol), ColFlipped); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		d.Meta = f.userMeta()
		if err := d.Validate(); err != nil {
			return corruptf("%v", err)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read dataset: %w", err)
	}
	return &d, nil
}

// ReadDatasetFile reads the dataset artifact at path.
func ReadDatasetFile(path string) (*Dataset, error) { return readFile(path, ReadDataset) }

// SampleSize is prod(Shape), the number of floats per image (0 if Shape is
// empty or has a non-positive or too large dimension).
func (d *Dataset) SampleSize() int {
	if len(d.Shape) == 0 {
		return 0
	}
	size := 1
	for _, s := range d.Shape {
		if s <= 0 || size > maxSampleSize/s {
			return 0
		}
		size *= s
	}
	return size
}

// Len is the number of samples.
func (d *Dataset) Len() int { return len(d.Labels) }

// NumClasses is K, the number of class names.
func (d *Dataset) NumClasses() int { return len(d.ClassNames) }

// Validate checks that d is self-consistent: a positive shape, at least one
// class, equal lengths of every per-sample column, labels in [0,K), unique
// ids, images in [0,1], and Flipped agreeing with Labels != CleanLabels.
func (d *Dataset) Validate() error {
	if d == nil {
		return errors.New("dataset is nil")
	}
	size := d.SampleSize()
	if size == 0 {
		return fmt.Errorf("dataset shape %v: want positive dimensions with a product below 2^31", d.Shape)
	}
	k := len(d.ClassNames)
	if k == 0 {
		return errors.New("dataset has no class names")
	}
	n := len(d.Labels)
	if len(d.IDs) != n {
		return fmt.Errorf("dataset has %d ids for %d labels", len(d.IDs), n)
	}
	if len(d.Images) != n*size {
		return fmt.Errorf("dataset has %d image values, want %d samples × %d = %d", len(d.Images), n, size, n*size)
	}
	if err := checkLabels("label", d.Labels, k); err != nil {
		return err
	}
	if d.CleanLabels != nil {
		if len(d.CleanLabels) != n {
			return fmt.Errorf("dataset has %d clean labels for %d samples", len(d.CleanLabels), n)
		}
		if err := checkLabels("clean label", d.CleanLabels, k); err != nil {
			return err
		}
	}
	if d.Flipped != nil {
		if len(d.Flipped) != n {
			return fmt.Errorf("dataset has %d flipped flags for %d samples", len(d.Flipped), n)
		}
		if d.CleanLabels != nil {
			for i, f := range d.Flipped {
				if f != (d.Labels[i] != d.CleanLabels[i]) {
					return fmt.Errorf("sample %d (id %d): flipped=%v but label %d, clean label %d",
						i, d.IDs[i], f, d.Labels[i], d.CleanLabels[i])
				}
			}
		}
	}
	if err := checkUniqueIDs(d.IDs); err != nil {
		return err
	}
	if err := checkMeta(d.Meta); err != nil {
		return err
	}
	if i := firstOutsideUnit(d.Images); i >= 0 {
		return fmt.Errorf("sample %d (id %d): image value %v outside [0,1]", i/size, d.IDs[i/size], d.Images[i])
	}
	return nil
}

// firstOutsideUnit returns the index of the first value that is not in
// [0,1] (NaN included), or -1. It scans blocks by their largest bit pattern:
// for float32, the values in [+0, 1] are exactly the bit patterns up to
// 0x3F800000, so a block whose maximum is no larger is valid as a whole and
// needs no per-value branch (the loop compiles to branch-free max
// instructions); only a block that fails is rescanned exactly, which also
// accepts -0.
func firstOutsideUnit(values []float32) int {
	const one = 0x3F800000 // math.Float32bits(1)
	const block = 256
	for start := 0; start < len(values); start += block {
		chunk := values[start:min(start+block, len(values))]
		var m0, m1, m2, m3 uint32
		i := 0
		for ; i+4 <= len(chunk); i += 4 {
			m0 = max(m0, math.Float32bits(chunk[i]))
			m1 = max(m1, math.Float32bits(chunk[i+1]))
			m2 = max(m2, math.Float32bits(chunk[i+2]))
			m3 = max(m3, math.Float32bits(chunk[i+3]))
		}
		for ; i < len(chunk); i++ {
			m0 = max(m0, math.Float32bits(chunk[i]))
		}
		if max(m0, m1, m2, m3) <= one {
			continue
		}
		for j, v := range chunk {
			if !(v >= 0 && v <= 1) {
				return start + j
			}
		}
	}
	return -1
}

func checkLabels(what string, labels []int32, k int) error {
	for i, l := range labels {
		if l < 0 || int(l) >= k {
			return fmt.Errorf("sample %d: %s %d outside [0,%d)", i, what, l, k)
		}
	}
	return nil
}

// checkMeta rejects an empty Meta key, which has no place in the schema metadata.
func checkMeta(meta map[string]string) error {
	if _, ok := meta[""]; ok {
		return errors.New("meta has an empty key")
	}
	return nil
}

func checkUniqueIDs(ids []int64) error {
	seen := make(map[int64]int, len(ids))
	for i, id := range ids {
		if j, dup := seen[id]; dup {
			return fmt.Errorf("samples %d and %d share id %d", j, i, id)
		}
		seen[id] = i
	}
	return nil
}

func formatShape(shape []int) string {
	parts := make([]string, len(shape))
	for i, s := range shape {
		parts[i] = strconv.Itoa(s)
	}
	return strings.Join(parts, ",")
}

func parseShape(s string) ([]int, error) {
	if s == "" {
		return nil, errors.New("missing")
	}
	parts := strings.Split(s, ",")
	shape := make([]int, len(parts))
	for i, p := range parts {
		v, err := strconv.Atoi(p)
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("%q: want comma-separated positive integers", s)
		}
		shape[i] = v
	}
	return shape, nil
}

func releaseAll(cols []arrow.Array) {
	for _, c := range cols {
		c.Release()
	}
}
