package artifacts

import (
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/memory"
)

// KindFiles is the kind of a set of named files (a report's Markdown, CSV,
// LaTeX and plots): stages produce them as cached artifacts like any other,
// and `sglr-pipe run --out` materialises them on disk.
const KindFiles = "files"

// Column names of a files artifact.
const (
	ColFileName = "name"
	ColFileData = "data"
)

// MaxFileNameLen bounds the length in bytes of a file name in a files artifact.
const MaxFileNameLen = 1024

// Files is a set of files: Names[i] is a clean relative slash-separated path
// ("table.md", "plots/curves.png") and Data[i] its bytes.
type Files struct {
	Names []string
	Data  [][]byte
	Meta  map[string]string
}

// WriteFiles encodes f as an Arrow IPC file with columns name utf8 and data
// binary, one row per file, sorted by name: the same set of files gives the
// same bytes whatever order it was built in. f is validated first.
func WriteFiles(w io.Writer, f *Files) error {
	if err := f.Validate(); err != nil {
		return fmt.Errorf("write files: %w", err)
	}
	order := make([]int, len(f.Names))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return strings.Compare(f.Names[a], f.Names[b]) })
	names := make([]string, len(order))
	data := make([][]byte, len(order))
	for i, j := range order {
		names[i], data[i] = f.Names[j], f.Data[j]
	}
	meta := map[string]string{}
	userMeta(f.Meta, meta)
	cols := filesColumns(names, data)
	defer releaseAll(cols)
	return writeIPC(w, KindFiles, filesFields(), cols, len(names), meta)
}

// ReadFiles decodes a files artifact and validates it (names clean and
// unique); a bad file gives an error wrapping ErrCorrupt.
func ReadFiles(r ReadAtSeeker) (*Files, error) {
	var f Files
	err := decodeIPC(r, KindFiles, func(file *ipcFile) error {
		nameCol, err := file.field(ColFileName, true, "utf8", typeIs(arrow.BinaryTypes.String))
		if err != nil {
			return err
		}
		dataCol, err := file.field(ColFileData, true, "binary", typeIs(arrow.BinaryTypes.Binary))
		if err != nil {
			return err
		}
		f.Names, f.Data = []string{}, [][]byte{}
		err = file.eachRecord(func(rec arrow.Record) error {
			var err error
			if f.Names, err = appendStrings(f.Names, rec.Column(nameCol), ColFileName); err != nil {
				return err
			}
			f.Data, err = appendBinaries(f.Data, rec.Column(dataCol), ColFileData)
			return err
		})
		if err != nil {
			return err
		}
		f.Meta = file.userMeta()
		if err := f.Validate(); err != nil {
			return corruptf("%v", err)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read files: %w", err)
	}
	return &f, nil
}

// ReadFilesFile reads the files artifact at path.
func ReadFilesFile(path string) (*Files, error) { return readFile(path, ReadFiles) }

// Len is the number of files.
func (f *Files) Len() int { return len(f.Names) }

// Add appends a file; Validate (or WriteFiles) checks its name.
func (f *Files) Add(name string, data []byte) {
	f.Names = append(f.Names, name)
	f.Data = append(f.Data, data)
}

// File returns the bytes of the file called name.
func (f *Files) File(name string) ([]byte, bool) {
	for i, n := range f.Names {
		if n == name {
			return f.Data[i], true
		}
	}
	return nil, false
}

// Validate checks that there is one data slice per name, that every name is
// a clean relative path (CheckFileName), that names are unique and that no
// name is a directory of another ("a" and "a/b" cannot both be written).
func (f *Files) Validate() error {
	if f == nil {
		return errors.New("files are nil")
	}
	if len(f.Names) != len(f.Data) {
		return fmt.Errorf("files have %d names but %d data values", len(f.Names), len(f.Data))
	}
	if err := checkMeta(f.Meta); err != nil {
		return err
	}
	seen := make(map[string]bool, len(f.Names))
	for _, name := range f.Names {
		if err := CheckFileName(name); err != nil {
			return err
		}
		if seen[name] {
			return fmt.Errorf("file %q appears twice", name)
		}
		seen[name] = true
	}
	for _, name := range f.Names {
		for dir := path.Dir(name); dir != "."; dir = path.Dir(dir) {
			if seen[dir] {
				return fmt.Errorf("file %q is also a directory of file %q", dir, name)
			}
		}
	}
	return nil
}

// CheckFileName checks that name can be written safely below any directory:
// a non-empty, clean, relative, slash-separated path of valid UTF-8 without
// ".." elements, backslashes, colons or control characters, at most
// MaxFileNameLen bytes.
func CheckFileName(name string) error {
	switch {
	case name == "":
		return errors.New("file name is empty")
	case len(name) > MaxFileNameLen:
		return fmt.Errorf("file name %.40q... is %d bytes, more than %d", name, len(name), MaxFileNameLen)
	case !utf8.ValidString(name):
		return fmt.Errorf("file name %q is not valid UTF-8", name)
	case strings.HasPrefix(name, "/"):
		return fmt.Errorf("file name %q is absolute, want a relative path", name)
	case strings.ContainsAny(name, `\:`):
		return fmt.Errorf("file name %q contains a backslash or colon, want a slash-separated relative path", name)
	case strings.ContainsFunc(name, unicode.IsControl):
		return fmt.Errorf("file name %q contains a control character", name)
	}
	for _, elem := range strings.Split(name, "/") {
		if elem == ".." {
			return fmt.Errorf("file name %q climbs out of its directory with \"..\"", name)
		}
	}
	if path.Clean(name) != name || name == "." {
		return fmt.Errorf("file name %q is not a clean path (want %q)", name, path.Clean(name))
	}
	return nil
}

// filesFields is the schema of a files artifact.
func filesFields() []arrow.Field {
	return []arrow.Field{
		{Name: ColFileName, Type: arrow.BinaryTypes.String},
		{Name: ColFileData, Type: arrow.BinaryTypes.Binary},
	}
}

// filesColumns builds the name and data columns.
func filesColumns(names []string, data [][]byte) []arrow.Array {
	return []arrow.Array{stringArray(names), binaryArray(data)}
}

// binaryArray builds an Arrow binary array holding v.
func binaryArray(v [][]byte) arrow.Array {
	b := array.NewBinaryBuilder(memory.DefaultAllocator, arrow.BinaryTypes.Binary)
	defer b.Release()
	for _, d := range v {
		b.Append(d)
	}
	return b.NewArray()
}

// appendBinaries appends copies of the values of a binary column (never nil,
// so an empty file reads back as an empty, non-nil slice).
func appendBinaries(dst [][]byte, col arrow.Array, name string) ([][]byte, error) {
	a, ok := col.(*array.Binary)
	if !ok {
		return dst, corruptf("column %q is %s, want binary", name, col.DataType())
	}
	if a.NullN() != 0 {
		return dst, corruptf("column %q has %d nulls", name, a.NullN())
	}
	for i := 0; i < a.Len(); i++ {
		dst = append(dst, append([]byte{}, a.Value(i)...))
	}
	return dst, nil
}
