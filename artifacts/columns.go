package artifacts

import (
	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/memory"
)

// Builders of Arrow arrays that share memory with Go slices (no copy), and
// extractors that copy a record's columns back into Go slices, checking that
// the column has the expected type, no nulls and consistent lengths.

func int64Array(v []int64) arrow.Array {
	return primitiveArray(arrow.PrimitiveTypes.Int64, len(v), arrow.Int64Traits.CastToBytes(v))
}

func int32Array(v []int32) arrow.Array {
	return primitiveArray(arrow.PrimitiveTypes.Int32, len(v), arrow.Int32Traits.CastToBytes(v))
}

func float64Array(v []float64) arrow.Array {
	return primitiveArray(arrow.PrimitiveTypes.Float64, len(v), arrow.Float64Traits.CastToBytes(v))
}

func primitiveArray(dt arrow.DataType, n int, values []byte) arrow.Array {
	data := array.NewData(dt, n, []*memory.Buffer{nil, memory.NewBufferBytes(values)}, nil, 0, 0)
	defer data.Release()
	return array.MakeFromData(data)
}

// float32ListArray views v as n fixed-size lists of size floats each.
func float32ListArray(v []float32, n, size int) arrow.Array {
	child := array.NewData(arrow.PrimitiveTypes.Float32, len(v),
		[]*memory.Buffer{nil, memory.NewBufferBytes(arrow.Float32Traits.CastToBytes(v))}, nil, 0, 0)
	defer child.Release()
	data := array.NewData(arrow.FixedSizeListOfNonNullable(int32(size), arrow.PrimitiveTypes.Float32), n,
		[]*memory.Buffer{nil}, []arrow.ArrayData{child}, 0, 0)
	defer data.Release()
	return array.MakeFromData(data)
}

func boolArray(v []bool) arrow.Array {
	b := array.NewBooleanBuilder(memory.DefaultAllocator)
	defer b.Release()
	b.AppendValues(v, nil)
	return b.NewArray()
}

func stringArray(v []string) arrow.Array {
	b := array.NewStringBuilder(memory.DefaultAllocator)
	defer b.Release()
	b.AppendValues(v, nil)
	return b.NewArray()
}

func appendInt64s(dst []int64, col arrow.Array, name string) ([]int64, error) {
	a, ok := col.(*array.Int64)
	if !ok {
		return dst, corruptf("column %q is %s, want int64", name, col.DataType())
	}
	if a.NullN() != 0 {
		return dst, corruptf("column %q has %d nulls", name, a.NullN())
	}
	return appendOrAdopt(dst, a.Int64Values()), nil
}

func appendInt32s(dst []int32, col arrow.Array, name string) ([]int32, error) {
	a, ok := col.(*array.Int32)
	if !ok {
		return dst, corruptf("column %q is %s, want int32", name, col.DataType())
	}
	if a.NullN() != 0 {
		return dst, corruptf("column %q has %d nulls", name, a.NullN())
	}
	return appendOrAdopt(dst, a.Int32Values()), nil
}

func appendFloat64s(dst []float64, col arrow.Array, name string) ([]float64, error) {
	a, ok := col.(*array.Float64)
	if !ok {
		return dst, corruptf("column %q is %s, want float64", name, col.DataType())
	}
	if a.NullN() != 0 {
		return dst, corruptf("column %q has %d nulls", name, a.NullN())
	}
	return appendOrAdopt(dst, a.Float64Values()), nil
}

func appendBools(dst []bool, col arrow.Array, name string) ([]bool, error) {
	a, ok := col.(*array.Boolean)
	if !ok {
		return dst, corruptf("column %q is %s, want bool", name, col.DataType())
	}
	if a.NullN() != 0 {
		return dst, corruptf("column %q has %d nulls", name, a.NullN())
	}
	for i := 0; i < a.Len(); i++ {
		dst = append(dst, a.Value(i))
	}
	return dst, nil
}

func appendStrings(dst []string, col arrow.Array, name string) ([]string, error) {
	a, ok := col.(*array.String)
	if !ok {
		return dst, corruptf("column %q is %s, want utf8", name, col.DataType())
	}
	if a.NullN() != 0 {
		return dst, corruptf("column %q has %d nulls", name, a.NullN())
	}
	for i := 0; i < a.Len(); i++ {
		dst = append(dst, a.Value(i))
	}
	return dst, nil
}

// appendFloat32Lists appends the values of a FixedSizeList<float32>(size) column.
func appendFloat32Lists(dst []float32, col arrow.Array, name string, size int) ([]float32, error) {
	a, ok := col.(*array.FixedSizeList)
	if !ok {
		return dst, corruptf("column %q is %s, want fixed_size_list<float32>[%d]", name, col.DataType(), size)
	}
	if got := int(a.DataType().(*arrow.FixedSizeListType).Len()); got != size {
		return dst, corruptf("column %q has lists of %d values, want %d", name, got, size)
	}
	if a.NullN() != 0 {
		return dst, corruptf("column %q has %d nulls", name, a.NullN())
	}
	child, ok := a.ListValues().(*array.Float32)
	if !ok {
		return dst, corruptf("column %q holds %s values, want float32", name, a.ListValues().DataType())
	}
	off, n := a.Data().Offset(), a.Len()
	end := (int64(off) + int64(n)) * int64(size)
	if end > int64(child.Len()) {
		return dst, corruptf("column %q: %d lists of %d need %d values, file holds %d", name, n, size, end, child.Len())
	}
	if child.NullN() != 0 {
		return dst, corruptf("column %q has %d null values", name, child.NullN())
	}
	return appendOrAdopt(dst, child.Float32Values()[off*size:int(end)]), nil
}

// isFloat32List reports whether dt is FixedSizeList<float32>, whatever the
// name and nullability of its element field, and returns its list size.
func isFloat32List(dt arrow.DataType) (int, bool) {
	fsl, ok := dt.(*arrow.FixedSizeListType)
	if !ok || fsl.Elem().ID() != arrow.FLOAT32 {
		return 0, false
	}
	return int(fsl.Len()), true
}

// appendOrAdopt appends vals to dst; when dst is empty it returns vals itself
// (capacity clipped, so a later append copies). The values then share the
// record's buffers, which the decoder allocated as ordinary Go memory that
// nothing reuses, so the common one-batch file is decoded without a copy.
func appendOrAdopt[T any](dst, vals []T) []T {
	if len(vals) == 0 {
		return dst // keeps a present-but-empty column non-nil
	}
	if len(dst) == 0 {
		return vals[:len(vals):len(vals)]
	}
	return append(dst, vals...)
}
