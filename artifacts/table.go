package artifacts

import (
	"errors"
	"fmt"
	"io"

	"github.com/apache/arrow/go/v15/arrow"
)

// WriteTable encodes t as an Arrow IPC file with its columns in order:
// Strings as utf8, Ints as int64, Floats as float64.
func WriteTable(w io.Writer, t *Table) error {
	if err := t.Validate(); err != nil {
		return fmt.Errorf("write table: %w", err)
	}
	return writeColumnTable(w, KindTable, t)
}

// ReadTable decodes a table artifact; a bad file, or a column of a type other
// than utf8, int64 or float64, gives an error wrapping ErrCorrupt.
func ReadTable(r ReadAtSeeker) (*Table, error) {
	t, err := readColumnTable(r, KindTable, (*Table).Validate)
	if err != nil {
		return nil, fmt.Errorf("read table: %w", err)
	}
	return t, nil
}

// ReadTableFile reads the table artifact at path.
func ReadTableFile(path string) (*Table, error) { return readFile(path, ReadTable) }

// Len is the number of rows (0 for a table without columns).
func (t *Table) Len() int {
	if len(t.Columns) == 0 {
		return 0
	}
	return t.Columns[0].Len()
}

// Column returns the column called name, or nil.
func (t *Table) Column(name string) *Column {
	for i := range t.Columns {
		if t.Columns[i].Name == name {
			return &t.Columns[i]
		}
	}
	return nil
}

// Len is the number of values in the column.
func (c *Column) Len() int { return len(c.Strings) + len(c.Ints) + len(c.Floats) }

// Validate checks that every column has a unique non-empty name, sets
// exactly one of its slices (non-nil, even when empty) and that all columns
// have the same length.
func (t *Table) Validate() error {
	if t == nil {
		return errors.New("table is nil")
	}
	if err := checkMeta(t.Meta); err != nil {
		return err
	}
	seen := map[string]bool{}
	for i, c := range t.Columns {
		if c.Name == "" {
			return fmt.Errorf("table column %d has no name", i)
		}
		if seen[c.Name] {
			return fmt.Errorf("table has two columns named %q", c.Name)
		}
		seen[c.Name] = true
		set := 0
		for _, isSet := range []bool{c.Strings != nil, c.Ints != nil, c.Floats != nil} {
			if isSet {
				set++
			}
		}
		if set != 1 {
			return fmt.Errorf("table column %q sets %d of Strings, Ints, Floats; want exactly one", c.Name, set)
		}
		if c.Len() != t.Columns[0].Len() {
			return fmt.Errorf("table column %q has %d rows, column %q has %d",
				c.Name, c.Len(), t.Columns[0].Name, t.Columns[0].Len())
		}
	}
	return nil
}

// writeColumnTable encodes t as an Arrow IPC file of the given kind with its
// columns in order: Strings as utf8, Ints as int64, Floats as float64 (the
// table encoding, shared by every table-shaped kind). t must be valid.
func writeColumnTable(w io.Writer, kind string, t *Table) error {
	meta := map[string]string{}
	userMeta(t.Meta, meta)
	fields := make([]arrow.Field, len(t.Columns))
	cols := make([]arrow.Array, len(t.Columns))
	for i, c := range t.Columns {
		switch {
		case c.Strings != nil:
			fields[i] = arrow.Field{Name: c.Name, Type: arrow.BinaryTypes.String}
			cols[i] = stringArray(c.Strings)
		case c.Ints != nil:
			fields[i] = arrow.Field{Name: c.Name, Type: arrow.PrimitiveTypes.Int64}
			cols[i] = int64Array(c.Ints)
		default:
			fields[i] = arrow.Field{Name: c.Name, Type: arrow.PrimitiveTypes.Float64}
			cols[i] = float64Array(c.Floats)
		}
	}
	defer releaseAll(cols)
	return writeIPC(w, kind, fields, cols, t.Len(), meta)
}

// readColumnTable decodes a table-shaped artifact of the given kind and
// checks it with validate; any failure wraps ErrCorrupt.
func readColumnTable(r ReadAtSeeker, kind string, validate func(*Table) error) (*Table, error) {
	var t Table
	err := decodeIPC(r, kind, func(f *ipcFile) error {
		t.Columns = make([]Column, f.schema.NumFields())
		for i, field := range f.schema.Fields() {
			c := &t.Columns[i]
			c.Name = field.Name
			switch field.Type.ID() {
			case arrow.STRING:
				c.Strings = []string{}
			case arrow.INT64:
				c.Ints = []int64{}
			case arrow.FLOAT64:
				c.Floats = []float64{}
			default:
				return corruptf("%s column %q has type %s, want utf8, int64 or float64", kind, field.Name, field.Type)
			}
		}
		err := f.eachRecord(func(rec arrow.Record) error {
			for i := range t.Columns {
				c := &t.Columns[i]
				var err error
				switch {
				case c.Strings != nil:
					c.Strings, err = appendStrings(c.Strings, rec.Column(i), c.Name)
				case c.Ints != nil:
					c.Ints, err = appendInt64s(c.Ints, rec.Column(i), c.Name)
				default:
					c.Floats, err = appendFloat64s(c.Floats, rec.Column(i), c.Name)
				}
				if err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		t.Meta = f.userMeta()
		if err := validate(&t); err != nil {
			return corruptf("%v", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &t, nil
}
