package artifacts

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Arrow's Go reader sizes some slices straight from counts in the file
// footer (schema fields, children, metadata entries) before checking them
// against the bytes that hold them, so a corrupt count is a multi-gigabyte
// allocation that no recover can catch. checkFooter walks the footer's
// flatbuffer first and rejects any vector that does not fit in the footer,
// as well as column types this package never reads (unions, views,
// dictionaries) whose loaders also trust counts from the file.

// Type union tags from Arrow's Schema.fbs that checkFooter rejects.
const (
	fbTypeUnion         = 14
	fbTypeBinaryView    = 23
	fbTypeUtf8View      = 24
	fbTypeListView      = 25
	fbTypeLargeListView = 26
)

// maxFieldDepth bounds the nesting of columns (Arrow itself allows 64).
const maxFieldDepth = 64

var arrowMagic = []byte("ARROW1")

// checkFooter reads the footer of the Arrow IPC file r of the given size and
// verifies its structure.
func checkFooter(r io.ReaderAt, size int64) error {
	const tail = 4 + 6 // footer length + magic
	if size < int64(len(arrowMagic))*2+4 {
		return corruptf("not an Arrow IPC file: %d bytes", size)
	}
	buf := make([]byte, tail)
	if _, err := r.ReadAt(buf, size-tail); err != nil {
		return corruptf("read Arrow footer: %v", err)
	}
	if !bytes.Equal(buf[4:], arrowMagic) {
		return corruptf("not an Arrow IPC file (no trailing magic)")
	}
	n := int64(binary.LittleEndian.Uint32(buf))
	if n <= 0 || n+tail+int64(len(arrowMagic)) > size {
		return corruptf("Arrow footer length %d does not fit a %d-byte file", n, size)
	}
	footer := make([]byte, n)
	if _, err := r.ReadAt(footer, size-tail-n); err != nil {
		return corruptf("read Arrow footer: %v", err)
	}
	if err := verifyFooter(flatBuf(footer)); err != nil {
		return corruptf("Arrow footer: %v", err)
	}
	return nil
}

func verifyFooter(b flatBuf) error {
	root, err := b.indirect(0)
	if err != nil {
		return err
	}
	footer, err := b.table(root)
	if err != nil {
		return err
	}
	if at := footer.field(1); at != 0 { // schema
		pos, err := b.indirect(at)
		if err != nil {
			return err
		}
		schema, err := b.table(pos)
		if err != nil {
			return err
		}
		if err := verifySchema(b, schema); err != nil {
			return err
		}
	}
	for _, i := range []int{2, 3} { // dictionaries, recordBatches: vectors of 24-byte Blocks
		if at := footer.field(i); at != 0 {
			if _, _, err := b.vector(at, 24); err != nil {
				return err
			}
		}
	}
	return verifyKeyValues(b, footer.field(4))
}

func verifySchema(b flatBuf, schema flatTable) error {
	if err := verifyFields(b, schema.field(1), 0); err != nil {
		return err
	}
	if err := verifyKeyValues(b, schema.field(2)); err != nil {
		return err
	}
	if at := schema.field(3); at != 0 { // features: [long]
		if _, _, err := b.vector(at, 8); err != nil {
			return err
		}
	}
	return nil
}

// verifyFields checks a vector of Field tables at field position at.
func verifyFields(b flatBuf, at, depth int) error {
	if at == 0 {
		return nil
	}
	if depth > maxFieldDepth {
		return fmt.Errorf("columns nested deeper than %d", maxFieldDepth)
	}
	start, n, err := b.vector(at, 4)
	if err != nil {
		return err
	}
	for i := 0; i < n; i++ {
		pos, err := b.indirect(start + 4*i)
		if err != nil {
			return err
		}
		field, err := b.table(pos)
		if err != nil {
			return err
		}
		if err := b.verifyString(field.field(0)); err != nil { // name
			return err
		}
		if at := field.field(2); at != 0 { // type_type
			if at >= len(b) {
				return errors.New("field type out of bounds")
			}
			switch tag := b[at]; tag {
			case fbTypeUnion, fbTypeBinaryView, fbTypeUtf8View, fbTypeListView, fbTypeLargeListView:
				return fmt.Errorf("column type tag %d (union or view) is not supported", tag)
			}
		}
		if field.field(4) != 0 {
			return errors.New("dictionary-encoded columns are not supported")
		}
		if err := verifyFields(b, field.field(5), depth+1); err != nil { // children
			return err
		}
		if err := verifyKeyValues(b, field.field(6)); err != nil {
			return err
		}
	}
	return nil
}

// verifyKeyValues checks a vector of KeyValue tables at field position at.
func verifyKeyValues(b flatBuf, at int) error {
	if at == 0 {
		return nil
	}
	start, n, err := b.vector(at, 4)
	if err != nil {
		return err
	}
	for i := 0; i < n; i++ {
		pos, err := b.indirect(start + 4*i)
		if err != nil {
			return err
		}
		kv, err := b.table(pos)
		if err != nil {
			return err
		}
		if err := b.verifyString(kv.field(0)); err != nil {
			return err
		}
		if err := b.verifyString(kv.field(1)); err != nil {
			return err
		}
	}
	return nil
}

// flatBuf is a flatbuffer with bounds-checked accessors.
type flatBuf []byte

// flatTable is a table at pos with its vtable at vtable.
type flatTable struct {
	b      flatBuf
	pos    int
	vtable int
	vtSize int
}

var errOutOfBounds = errors.New("flatbuffer offset out of bounds")

func (b flatBuf) u32(at int) (uint32, error) {
	if at < 0 || at+4 > len(b) {
		return 0, errOutOfBounds
	}
	return binary.LittleEndian.Uint32(b[at:]), nil
}

func (b flatBuf) u16(at int) (int, error) {
	if at < 0 || at+2 > len(b) {
		return 0, errOutOfBounds
	}
	return int(binary.LittleEndian.Uint16(b[at:])), nil
}

// indirect follows the uoffset stored at at.
func (b flatBuf) indirect(at int) (int, error) {
	off, err := b.u32(at)
	if err != nil {
		return 0, err
	}
	pos := int64(at) + int64(off)
	if pos >= int64(len(b)) {
		return 0, errOutOfBounds
	}
	return int(pos), nil
}

func (b flatBuf) table(pos int) (flatTable, error) {
	soff, err := b.u32(pos)
	if err != nil {
		return flatTable{}, err
	}
	vt := int64(pos) - int64(int32(soff))
	if vt < 0 || vt+4 > int64(len(b)) {
		return flatTable{}, errOutOfBounds
	}
	size, _ := b.u16(int(vt))
	if size < 4 || vt+int64(size) > int64(len(b)) {
		return flatTable{}, errOutOfBounds
	}
	return flatTable{b: b, pos: pos, vtable: int(vt), vtSize: size}, nil
}

// field returns the position of field i of t, or 0 when it is absent.
func (t flatTable) field(i int) int {
	slot := 4 + 2*i
	if slot >= t.vtSize { // the same test as the flatbuffers runtime, which reads an odd last slot
		return 0
	}
	off, _ := t.b.u16(t.vtable + slot)
	if off == 0 || t.pos+off >= len(t.b) {
		return 0
	}
	return t.pos + off
}

// vector checks the vector referenced at at, whose elements are elemSize
// bytes, and returns the position of its first element and its length.
func (b flatBuf) vector(at, elemSize int) (start, n int, err error) {
	pos, err := b.indirect(at)
	if err != nil {
		return 0, 0, err
	}
	count, err := b.u32(pos)
	if err != nil {
		return 0, 0, err
	}
	if int64(pos)+4+int64(count)*int64(elemSize) > int64(len(b)) {
		return 0, 0, fmt.Errorf("vector of %d elements does not fit the footer", count)
	}
	return pos + 4, int(count), nil
}

func (b flatBuf) verifyString(at int) error {
	if at == 0 {
		return nil
	}
	_, _, err := b.vector(at, 1)
	return err
}
