package artifacts

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/ipc"
	"github.com/apache/arrow/go/v15/arrow/memory"
)

// FormatVersion is the value of the "sglr.version" schema metadata key that
// this package writes and reads.
const FormatVersion = "1"

// Schema metadata keys shared by every artifact kind.
const (
	MetaKind    = "sglr.kind"
	MetaVersion = "sglr.version"
	// MetaUserPrefix prefixes the free-form Meta entries of an artifact.
	MetaUserPrefix = "meta."
)

// ReadAtSeeker is what the Arrow IPC file reader needs: the footer is read
// from the end of the file and record batches at their offsets.
type ReadAtSeeker interface {
	io.Reader
	io.ReaderAt
	io.Seeker
}

// readFile opens path and runs decode on it, naming the path in any error.
func readFile[T any](path string, decode func(ReadAtSeeker) (T, error)) (T, error) {
	f, err := os.Open(path)
	if err != nil {
		var zero T
		return zero, fmt.Errorf("read %s: %w", path, err)
	}
	defer f.Close()
	v, err := decode(f)
	if err != nil {
		var zero T
		return zero, fmt.Errorf("read %s: %w", path, err)
	}
	return v, nil
}

// writeIPC writes one record batch made of cols as an Arrow IPC file. The
// schema metadata is kind, version and meta, with keys sorted, so equal values
// always give equal bytes.
func writeIPC(w io.Writer, kind string, fields []arrow.Field, cols []arrow.Array, rows int, meta map[string]string) error {
	all := map[string]string{MetaKind: kind, MetaVersion: FormatVersion}
	for k, v := range meta {
		all[k] = v
	}
	keys := slices.Sorted(maps.Keys(all))
	values := make([]string, len(keys))
	for i, k := range keys {
		values[i] = all[k]
	}
	md := arrow.NewMetadata(keys, values)
	schema := arrow.NewSchema(fields, &md)
	rec := array.NewRecord(schema, cols, int64(rows))
	defer rec.Release()

	bw := bufio.NewWriterSize(w, 1<<20)
	cw := &positionWriter{w: bw}
	fw, err := ipc.NewFileWriter(cw, ipc.WithSchema(schema), ipc.WithAllocator(memory.DefaultAllocator))
	if err != nil {
		return fmt.Errorf("write %s: %w", kind, err)
	}
	if err := fw.Write(rec); err != nil {
		return fmt.Errorf("write %s: %w", kind, err)
	}
	if err := fw.Close(); err != nil {
		return fmt.Errorf("write %s: %w", kind, err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write %s: %w", kind, err)
	}
	return nil
}

// userMeta prefixes the keys of a (validated) Meta map with MetaUserPrefix.
func userMeta(meta map[string]string, into map[string]string) {
	for k, v := range meta {
		into[MetaUserPrefix+k] = v
	}
}

// ipcFile is an opened, not yet decoded artifact: its schema and metadata.
type ipcFile struct {
	reader *ipc.FileReader
	schema *arrow.Schema
	meta   map[string]string
}

// userMeta returns the free-form entries of the schema metadata, unprefixed
// (nil when there are none).
func (f *ipcFile) userMeta() map[string]string {
	var out map[string]string
	for k, v := range f.meta {
		if rest, ok := strings.CutPrefix(k, MetaUserPrefix); ok {
			if out == nil {
				out = map[string]string{}
			}
			out[rest] = v
		}
	}
	return out
}

// field returns the index of column name, whose type must satisfy matches
// (want describes it for the error). An absent column gives -1, an error only
// when required.
func (f *ipcFile) field(name string, required bool, want string, matches func(arrow.DataType) bool) (int, error) {
	idx := f.schema.FieldIndices(name)
	switch {
	case len(idx) == 0 && required:
		return -1, corruptf("no %q column", name)
	case len(idx) == 0:
		return -1, nil
	case len(idx) > 1:
		return -1, corruptf("%d columns named %q", len(idx), name)
	}
	if got := f.schema.Field(idx[0]).Type; !matches(got) {
		return -1, corruptf("column %q has type %s, want %s", name, got, want)
	}
	return idx[0], nil
}

// typeIs matches exactly the type t.
func typeIs(t arrow.DataType) func(arrow.DataType) bool {
	return func(dt arrow.DataType) bool { return arrow.TypeEqual(dt, t) }
}

// float32ListOf matches FixedSizeList<float32>(size) whatever its element field's name.
func float32ListOf(size int) func(arrow.DataType) bool {
	return func(dt arrow.DataType) bool {
		n, ok := isFloat32List(dt)
		return ok && n == size
	}
}

// eachRecord calls fn for every record batch in order.
func (f *ipcFile) eachRecord(fn func(rec arrow.Record) error) error {
	n := f.reader.NumRecords()
	for i := 0; i < n; i++ {
		rec, err := f.reader.RecordAt(i)
		if err != nil {
			return corruptf("record batch %d: %v", i, err)
		}
		err = fn(rec)
		rec.Release()
		if err != nil {
			return err
		}
	}
	return nil
}

// decodeIPC opens r as an Arrow IPC file and runs decode on it. Everything
// happens under a recover, because Arrow's decoder panics on some malformed
// input, and under an allocator that refuses to allocate far more than the
// file's size, because a corrupt header can claim any buffer size. Both
// become errors wrapping ErrCorrupt. wantKind "" accepts any sglr kind and
// also plain Arrow files (for Inspect and Export).
func decodeIPC(r ReadAtSeeker, wantKind string, decode func(f *ipcFile) error) (err error) {
	size, err := r.Seek(0, io.SeekEnd)
	if err != nil {
		return fmt.Errorf("size of artifact: %w", err)
	}
	if _, err := r.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("rewind artifact: %w", err)
	}
	if err := checkFooter(r, size); err != nil {
		return err
	}
	alloc := &limitedAllocator{limit: 3*size + 16<<20}
	defer func() {
		if p := recover(); p != nil {
			err = corruptf("arrow decoder: %v", p)
		}
	}()
	fr, err := ipc.NewFileReader(r, ipc.WithAllocator(alloc))
	if err != nil {
		return corruptf("not an Arrow IPC file: %v", err)
	}
	defer fr.Close()
	f := &ipcFile{reader: fr, schema: fr.Schema(), meta: map[string]string{}}
	if md := f.schema.Metadata(); md.Len() > 0 {
		for i, k := range md.Keys() {
			f.meta[k] = md.Values()[i]
		}
	}
	if wantKind != "" {
		kind, ok := f.meta[MetaKind]
		switch {
		case !ok:
			return corruptf("not an sglr artifact (no %s metadata)", MetaKind)
		case kind != wantKind:
			return corruptf("artifact kind is %q, want %q", kind, wantKind)
		}
		if v := f.meta[MetaVersion]; v != FormatVersion {
			return corruptf("%s artifact has format version %q, this build reads %q", kind, v, FormatVersion)
		}
	}
	return decode(f)
}

// corruptf returns an error wrapping ErrCorrupt.
func corruptf(format string, args ...any) error {
	return fmt.Errorf("%w artifact: %s", ErrCorrupt, fmt.Sprintf(format, args...))
}

// positionWriter gives an io.Writer the Seek(0, io.SeekCurrent) that Arrow's
// file writer uses to learn its position.
type positionWriter struct {
	w   io.Writer
	pos int64
}

func (p *positionWriter) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	p.pos += int64(n)
	return n, err
}

func (p *positionWriter) Seek(offset int64, whence int) (int64, error) {
	if offset != 0 || whence != io.SeekCurrent {
		return p.pos, errors.New("artifact writer: only the current position can be queried")
	}
	return p.pos, nil
}

// limitedAllocator is a Go allocator that panics (inside decodeIPC's recover)
// when the live bytes would exceed limit.
type limitedAllocator struct {
	limit int64
	live  int64
}

// errAllocationLimit is the panic value of limitedAllocator.
type errAllocationLimit struct{ want, limit int64 }

func (e errAllocationLimit) Error() string {
	return fmt.Sprintf("file claims %d bytes of buffers, more than its size allows (%d)", e.want, e.limit)
}

func (a *limitedAllocator) Allocate(size int) []byte {
	a.reserve(int64(size))
	return make([]byte, size)
}

func (a *limitedAllocator) Reallocate(size int, b []byte) []byte {
	if size <= cap(b) {
		a.live += int64(size - len(b))
		return b[:size]
	}
	a.reserve(int64(size - len(b)))
	nb := make([]byte, size)
	copy(nb, b)
	return nb
}

func (a *limitedAllocator) Free(b []byte) { a.live -= int64(len(b)) }

func (a *limitedAllocator) reserve(n int64) {
	if n < 0 || a.live+n > a.limit {
		panic(errAllocationLimit{want: a.live + n, limit: a.limit})
	}
	a.live += n
}
