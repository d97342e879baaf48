package artifacts

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
)

// Info describes an artifact for `sglr-pipe show`: its kind, size, columns,
// metadata and first rows rendered as text. It works for every kind,
// including kinds added after this package, and for plain Arrow IPC files
// (Kind and Version are then empty).
type Info struct {
	Kind    string            `json:"kind"`
	Version string            `json:"version"`
	Rows    int64             `json:"rows"`
	Columns []ColumnInfo      `json:"columns"`
	Meta    map[string]string `json:"meta"` // the whole schema metadata, sglr.* keys included
	Head    [][]string        `json:"head"` // the first rows, one string per column
}

// ColumnInfo is one column's name and Arrow type (e.g. "fixed_size_list<item: float32>[784]"),
// and its field metadata when it has any (a model's tensor columns carry
// their shape and buffer flag there: MetaTensorShape, MetaTensorBuffer).
type ColumnInfo struct {
	Name string            `json:"name"`
	Type string            `json:"type"`
	Meta map[string]string `json:"meta,omitempty"`
}

// Inspect reads the schema, metadata and row count of an Arrow IPC artifact
// and renders its first head rows. Long lists and strings are abbreviated.
func Inspect(r ReadAtSeeker, head int) (*Info, error) {
	info := &Info{}
	err := decodeIPC(r, "", func(f *ipcFile) error {
		info.Kind, info.Version, info.Meta = f.meta[MetaKind], f.meta[MetaVersion], f.meta
		for _, field := range f.schema.Fields() {
			col := ColumnInfo{Name: field.Name, Type: field.Type.String()}
			if field.HasMetadata() {
				col.Meta = field.Metadata.ToMap()
			}
			info.Columns = append(info.Columns, col)
		}
		return f.eachRecord(func(rec arrow.Record) error {
			n := int(rec.NumRows())
			for i := 0; i < n && len(info.Head) < head; i++ {
				row := make([]string, rec.NumCols())
				for c := range row {
					row[c] = renderValue(rec.Column(c), i)
				}
				info.Head = append(info.Head, row)
			}
			info.Rows += int64(n)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("inspect: %w", err)
	}
	return info, nil
}

// Rendering limits for Inspect.
const (
	headListValues = 4  // list elements shown before "…"
	headStringLen  = 48 // runes of a string shown before "…"
)

// renderValue renders row i of arr as short text.
func renderValue(arr arrow.Array, i int) string {
	if arr.IsNull(i) {
		return "null"
	}
	switch a := arr.(type) {
	case *array.FixedSizeList:
		size := int(a.DataType().(*arrow.FixedSizeListType).Len())
		start := (a.Data().Offset() + i) * size
		return renderList(a.ListValues(), start, start+size)
	case array.ListLike:
		start, end := a.ValueOffsets(i)
		return renderList(a.ListValues(), int(start), int(end))
	case *array.String:
		return abbreviate(a.Value(i))
	case *array.LargeString:
		return abbreviate(a.Value(i))
	case *array.Float32:
		return strconv.FormatFloat(float64(a.Value(i)), 'g', -1, 32)
	case *array.Float64:
		return strconv.FormatFloat(a.Value(i), 'g', -1, 64)
	default:
		return abbreviate(arr.ValueStr(i))
	}
}

func renderList(values arrow.Array, start, end int) string {
	var b strings.Builder
	b.WriteByte('[')
	for j := start; j < end && j < start+headListValues; j++ {
		if j > start {
			b.WriteByte(' ')
		}
		b.WriteString(renderValue(values, j))
	}
	if n := end - start; n > headListValues {
		fmt.Fprintf(&b, " … (%d values)", n)
	}
	b.WriteByte(']')
	return b.String()
}

func abbreviate(s string) string {
	if utf8.RuneCountInString(s) <= headStringLen {
		return s
	}
	r := []rune(s)
	return string(r[:headStringLen]) + "…"
}
