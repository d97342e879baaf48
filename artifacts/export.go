package artifacts

import (
	"bufio"
	"encoding/binary"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
)

// ExportNPY writes one NumPy .npy file (format 1.0, little endian, C order)
// per column of the artifact into dir, named <column>.npy, and returns their
// paths in column order. Scalar columns become [N] arrays, fixed-size list
// columns [N, n] — except a dataset's image column, which becomes
// [N, C, H, W] from its sglr.shape, and a model's tensor columns, which
// become float32 arrays of the tensor's own shape (no row dimension) — and
// utf8 columns <U arrays. Int32 columns (the class indices label,
// clean_label and hard) become int64 arrays: PyTorch's F.cross_entropy and
// F.nll_loss take class indices only as int64, so the labels feed a loss
// without a cast. A column of any other type, or holding nulls, is an error
// naming it. (ExportNPZ is the PyTorch-ready form of a model.)
func ExportNPY(r ReadAtSeeker, dir string) ([]string, error) {
	var paths []string
	err := decodeIPC(r, "", func(f *ipcFile) error {
		plan, err := planExport(f)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		seen := map[string]string{}
		for _, col := range plan.columns {
			name := fileSafe(col.name) + ".npy"
			if other, dup := seen[name]; dup {
				return fmt.Errorf("columns %q and %q both export to %s", other, col.name, name)
			}
			seen[name] = col.name
			path := filepath.Join(dir, name)
			if err := writeNPY(path, plan, col); err != nil {
				os.Remove(path)
				return fmt.Errorf("column %q: %w", col.name, err)
			}
			paths = append(paths, path)
		}
		return nil
	})
	if err != nil {
		for _, p := range paths {
			os.Remove(p)
		}
		return nil, fmt.Errorf("export npy to %s: %w", dir, err)
	}
	return paths, nil
}

// ExportCSV writes the artifact as CSV: a header, then one row per record.
// A fixed-size list column `x` of n values becomes columns x_0 … x_{n-1};
// floats use the shortest text that reads back to the same value, nulls are
// empty cells. A model, one row of possibly millions of values, is written
// long instead: columns tensor, index, value, one row per value, the index
// counting in C order over the tensor's shape.
func ExportCSV(r ReadAtSeeker, w io.Writer) error {
	err := decodeIPC(r, "", func(f *ipcFile) error {
		plan, err := planExport(f)
		if err != nil {
			return err
		}
		cw := csv.NewWriter(w)
		if plan.rowless {
			return writeModelCSV(cw, plan)
		}
		var header []string
		for _, col := range plan.columns {
			if col.listSize == 0 {
				header = append(header, col.name)
				continue
			}
			for j := 0; j < col.listSize; j++ {
				header = append(header, col.name+"_"+strconv.Itoa(j))
			}
		}
		if err := cw.Write(header); err != nil {
			return err
		}
		row := make([]string, len(header))
		for _, rec := range plan.records {
			for i := 0; i < int(rec.NumRows()); i++ {
				cell := 0
				for c, col := range plan.columns {
					arr := rec.Column(c)
					if col.listSize == 0 {
						row[cell] = csvValue(arr, i)
						cell++
						continue
					}
					fsl := arr.(*array.FixedSizeList)
					start := (fsl.Data().Offset() + i) * col.listSize
					for j := 0; j < col.listSize; j++ {
						if fsl.IsNull(i) {
							row[cell] = ""
						} else {
							row[cell] = csvValue(fsl.ListValues(), start+j)
						}
						cell++
					}
				}
				if err := cw.Write(row); err != nil {
					return err
				}
			}
		}
		cw.Flush()
		return cw.Error()
	})
	if err != nil {
		return fmt.Errorf("export csv: %w", err)
	}
	return nil
}

// exportPlan is an artifact's records, all loaded, and how each column exports.
type exportPlan struct {
	records []arrow.Record
	rows    int
	columns []exportColumn
	// rowless is set for a model (one row of tensors): each column exports
	// as its rowShape alone, without the leading row dimension.
	rowless bool
}

// exportColumn is one column's element type and per-row shape.
type exportColumn struct {
	name     string
	index    int            // position in the schema
	elem     arrow.DataType // the scalar type (the element type for lists)
	listSize int            // 0 for scalar columns
	rowShape []int          // numpy shape of one row ([] for scalars)
}

// planExport loads every record of f and checks that each column exports:
// scalars of a supported type, or fixed-size lists of them.
func planExport(f *ipcFile) (*exportPlan, error) {
	plan := &exportPlan{}
	for i, field := range f.schema.Fields() {
		col := exportColumn{name: field.Name, index: i, elem: field.Type}
		if fsl, ok := field.Type.(*arrow.FixedSizeListType); ok {
			col.elem, col.listSize = fsl.Elem(), int(fsl.Len())
			col.rowShape = []int{col.listSize}
			if f.meta[MetaKind] == KindDataset && field.Name == ColImage {
				if shape, err := parseShape(f.meta[MetaShape]); err == nil && product(shape) == col.listSize {
					col.rowShape = shape
				}
			}
			if f.meta[MetaKind] == KindModel {
				if t, err := tensorOfField(field); err == nil {
					col.rowShape = t.Shape
				}
			}
		}
		if _, ok := npyDescr(col.elem); !ok {
			return nil, fmt.Errorf("column %q has type %s, which has no NumPy/CSV form", field.Name, field.Type)
		}
		plan.columns = append(plan.columns, col)
	}
	err := f.eachRecord(func(rec arrow.Record) error {
		for c, col := range plan.columns {
			if n := rec.Column(c).NullN(); n > 0 && col.listSize > 0 {
				return fmt.Errorf("column %q has %d null lists", col.name, n)
			}
		}
		rec.Retain()
		plan.records = append(plan.records, rec)
		plan.rows += int(rec.NumRows())
		return nil
	})
	if err != nil {
		return nil, err
	}
	plan.rowless = f.meta[MetaKind] == KindModel && plan.rows == 1
	return plan, nil
}

// writeModelCSV writes the one-row plan of a model long: tensor, index, value.
func writeModelCSV(cw *csv.Writer, plan *exportPlan) error {
	if err := cw.Write([]string{"tensor", "index", "value"}); err != nil {
		return err
	}
	rec := plan.records[0]
	row := make([]string, 3)
	for _, col := range plan.columns {
		vals := columnValues(rec, col)
		start, end := valueRange(rec, col)
		row[0] = col.name
		for j := start; j < end; j++ {
			row[1], row[2] = strconv.Itoa(j-start), csvValue(vals, j)
			if err := cw.Write(row); err != nil {
				return err
			}
		}
	}
	cw.Flush()
	return cw.Error()
}

// npyDescr is the NumPy dtype a scalar Arrow type exports as (strings: "<U",
// completed with the longest length when writing). Int32 widens to int64
// ("<i8"), the dtype PyTorch wants for class indices (see ExportNPY).
func npyDescr(dt arrow.DataType) (string, bool) {
	switch dt.ID() {
	case arrow.INT8:
		return "|i1", true
	case arrow.INT16:
		return "<i2", true
	case arrow.INT32, arrow.INT64:
		return "<i8", true
	case arrow.UINT8:
		return "|u1", true
	case arrow.UINT16:
		return "<u2", true
	case arrow.UINT32:
		return "<u4", true
	case arrow.UINT64:
		return "<u8", true
	case arrow.FLOAT32:
		return "<f4", true
	case arrow.FLOAT64:
		return "<f8", true
	case arrow.BOOL:
		return "|b1", true
	case arrow.STRING, arrow.LARGE_STRING:
		return "<U", true
	}
	return "", false
}

// writeNPY writes column col of plan as the .npy file path.
func writeNPY(path string, plan *exportPlan, col exportColumn) error {
	descr, _ := npyDescr(col.elem)
	isString := descr == "<U"
	width := 0
	if isString {
		width = 1 // numpy has no <U0
		for _, rec := range plan.records {
			vals := columnValues(rec, col)
			for i := 0; i < vals.Len(); i++ {
				if vals.IsNull(i) {
					return errors.New("has nulls")
				}
				width = max(width, utf8.RuneCountInString(vals.ValueStr(i)))
			}
		}
		descr += strconv.Itoa(width)
	}

	file, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(file, 1<<20)
	shape := append([]int{plan.rows}, col.rowShape...)
	if plan.rowless {
		shape = col.rowShape
	}
	err = writeNPYHeader(w, descr, shape)
	for _, rec := range plan.records {
		if err != nil {
			break
		}
		vals := columnValues(rec, col)
		if vals.NullN() > 0 {
			err = errors.New("has nulls")
			break
		}
		start, end := valueRange(rec, col)
		err = writeNPYValues(w, vals, start, end, width)
	}
	if err == nil {
		err = w.Flush()
	}
	if cerr := file.Close(); err == nil {
		err = cerr
	}
	return err
}

// columnValues returns the array holding col's scalar values in rec (the
// child array for lists).
func columnValues(rec arrow.Record, col exportColumn) arrow.Array {
	arr := rec.Column(col.index)
	if col.listSize > 0 {
		return arr.(*array.FixedSizeList).ListValues()
	}
	return arr
}

// valueRange is the range of columnValues that belongs to rec's rows.
func valueRange(rec arrow.Record, col exportColumn) (int, int) {
	arr := rec.Column(col.index)
	if col.listSize == 0 {
		return 0, arr.Len()
	}
	off := arr.Data().Offset()
	return off * col.listSize, (off + arr.Len()) * col.listSize
}

// writeNPYHeader writes the NumPy 1.0 magic, version and header dict,
// padded with spaces so the data starts at a multiple of 64 bytes.
func writeNPYHeader(w io.Writer, descr string, shape []int) error {
	dims := make([]string, len(shape))
	for i, s := range shape {
		dims[i] = strconv.Itoa(s)
	}
	tuple := "(" + strings.Join(dims, ", ") + ")"
	if len(shape) == 1 {
		tuple = "(" + dims[0] + ",)"
	}
	dict := fmt.Sprintf("{'descr': '%s', 'fortran_order': False, 'shape': %s, }", descr, tuple)
	const preamble = 10 // magic (6) + version (2) + header length (2)
	pad := (64 - (preamble+len(dict)+1)%64) % 64
	header := dict + strings.Repeat(" ", pad) + "\n"
	if len(header) > 0xffff {
		return fmt.Errorf("npy header of %d bytes is too long for format 1.0", len(header))
	}
	buf := make([]byte, 0, preamble+len(header))
	buf = append(buf, "\x93NUMPY\x01\x00"...)
	buf = binary.LittleEndian.AppendUint16(buf, uint16(len(header)))
	buf = append(buf, header...)
	_, err := w.Write(buf)
	return err
}

// writeNPYValues writes values [start,end) of arr in little-endian order;
// strings as width UTF-32 code points, zero padded.
func writeNPYValues(w io.Writer, arr arrow.Array, start, end, width int) error {
	switch a := arr.(type) {
	case *array.Int8:
		return writeLE(w, a.Int8Values()[start:end])
	case *array.Int16:
		return writeLE(w, a.Int16Values()[start:end])
	case *array.Int32:
		return writeInt64s(w, a.Int32Values()[start:end])
	case *array.Int64:
		return writeLE(w, a.Int64Values()[start:end])
	case *array.Uint8:
		return writeLE(w, a.Uint8Values()[start:end])
	case *array.Uint16:
		return writeLE(w, a.Uint16Values()[start:end])
	case *array.Uint32:
		return writeLE(w, a.Uint32Values()[start:end])
	case *array.Uint64:
		return writeLE(w, a.Uint64Values()[start:end])
	case *array.Float32:
		return writeLE(w, a.Float32Values()[start:end])
	case *array.Float64:
		return writeLE(w, a.Float64Values()[start:end])
	case *array.Boolean:
		b := make([]byte, 0, end-start)
		for i := start; i < end; i++ {
			if a.Value(i) {
				b = append(b, 1)
			} else {
				b = append(b, 0)
			}
		}
		_, err := w.Write(b)
		return err
	case *array.String, *array.LargeString:
		cell := make([]byte, 4*width)
		for i := start; i < end; i++ {
			clear(cell)
			j := 0
			for _, r := range arr.ValueStr(i) {
				binary.LittleEndian.PutUint32(cell[j:], uint32(r))
				j += 4
			}
			if _, err := w.Write(cell); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("type %s has no NumPy form", arr.DataType())
}

// writeLE writes vals little endian, in chunks to bound the scratch memory.
func writeLE[T int8 | int16 | int32 | int64 | uint8 | uint16 | uint32 | uint64 | float32 | float64](w io.Writer, vals []T) error {
	const chunk = 1 << 16
	for len(vals) > 0 {
		n := min(chunk, len(vals))
		if err := binary.Write(w, binary.LittleEndian, vals[:n]); err != nil {
			return err
		}
		vals = vals[n:]
	}
	return nil
}

// writeInt64s writes int32 values widened to int64 little endian (see
// npyDescr), in chunks to bound the scratch memory.
func writeInt64s(w io.Writer, vals []int32) error {
	const chunk = 1 << 16
	buf := make([]int64, min(chunk, len(vals)))
	for len(vals) > 0 {
		n := min(chunk, len(vals))
		for i, v := range vals[:n] {
			buf[i] = int64(v)
		}
		if err := writeLE(w, buf[:n]); err != nil {
			return err
		}
		vals = vals[n:]
	}
	return nil
}

// csvValue renders element i of a scalar array for CSV.
func csvValue(arr arrow.Array, i int) string {
	if arr.IsNull(i) {
		return ""
	}
	switch a := arr.(type) {
	case *array.Float32:
		return strconv.FormatFloat(float64(a.Value(i)), 'g', -1, 32)
	case *array.Float64:
		return strconv.FormatFloat(a.Value(i), 'g', -1, 64)
	case *array.Boolean:
		return strconv.FormatBool(a.Value(i))
	}
	return arr.ValueStr(i)
}

// fileSafe replaces characters that do not belong in a file name.
func fileSafe(name string) string {
	if name == "" {
		return "_"
	}
	return strings.Map(func(r rune) rune {
		if r == '-' || r == '_' || r == '.' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' {
			return r
		}
		return '_'
	}, name)
}

func product(shape []int) int {
	p := 1
	for _, s := range shape {
		p *= s
	}
	return p
}
