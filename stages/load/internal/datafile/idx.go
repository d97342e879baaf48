// Package datafile decodes the raw file formats image datasets ship in: IDX
// (MNIST, Fashion-MNIST; plain or gzip) and the CIFAR-10/100 binary batches.
//
// Every decoder validates a header against the bytes actually present before
// it allocates anything sized by the header, so a truncated, foreign or
// hostile file yields an error, never a panic or a huge allocation.
package datafile

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// MaxIDXBytes bounds the payload an IDX header may announce (1 GiB). The
// largest real IDX file (MNIST/Fashion-MNIST train images) is 47 MB.
const MaxIDXBytes = 1 << 30

// IDXUnsignedByte is the IDX element-type code for unsigned bytes, the only
// type image and label files use.
const IDXUnsignedByte = 0x08

// IDXArray is a decoded IDX file of unsigned bytes: Dims[0] is the item count.
type IDXArray struct {
	Dims []int
	Data []byte // len = product of Dims
}

// DecodeIDX reads one IDX array of unsigned bytes from r. size is the total
// number of bytes r holds, or -1 when unknown (e.g. a gzip stream); when known
// the header is checked against it before the payload is allocated, and when
// unknown the payload is read incrementally so a header claiming more data
// than exists costs no more memory than the data present.
func DecodeIDX(r io.Reader, size int64) (*IDXArray, error) {
	var magic [4]byte
	if _, err := io.ReadFull(r, magic[:]); err != nil {
		return nil, fmt.Errorf("idx header: %w", truncated(err))
	}
	if magic[0] != 0 || magic[1] != 0 {
		return nil, fmt.Errorf("not an IDX file: magic %02x%02x%02x%02x does not start with 0000", magic[0], magic[1], magic[2], magic[3])
	}
	if magic[2] != IDXUnsignedByte {
		return nil, fmt.Errorf("idx element type 0x%02x unsupported: want 0x08 (unsigned byte)", magic[2])
	}
	ndim := int(magic[3])
	if ndim < 1 || ndim > 4 {
		return nil, fmt.Errorf("idx has %d dimensions: want 1 to 4", ndim)
	}
	dimBytes := make([]byte, 4*ndim)
	if _, err := io.ReadFull(r, dimBytes); err != nil {
		return nil, fmt.Errorf("idx dimensions: %w", truncated(err))
	}
	dims := make([]int, ndim)
	want := int64(1)
	for i := range dims {
		d := int64(binary.BigEndian.Uint32(dimBytes[4*i:]))
		dims[i] = int(d)
		want *= d // each d < 2^32 and want stays <= MaxIDXBytes before the next multiply
		if want > MaxIDXBytes {
			return nil, fmt.Errorf("idx dimensions %v announce more than %d bytes", dims[:i+1], MaxIDXBytes)
		}
	}
	header := int64(4 + 4*ndim)
	if size >= 0 && header+want != size {
		return nil, fmt.Errorf("idx dimensions %v need %d bytes after the %d-byte header, file has %d", dims, want, header, size-header)
	}
	var data []byte
	if size >= 0 {
		data = make([]byte, want)
		if _, err := io.ReadFull(r, data); err != nil {
			return nil, fmt.Errorf("idx payload: %w", truncated(err))
		}
	} else {
		var err error
		data, err = io.ReadAll(io.LimitReader(r, want+1))
		if err != nil {
			return nil, fmt.Errorf("idx payload: %w", err)
		}
		switch {
		case int64(len(data)) < want:
			return nil, fmt.Errorf("idx dimensions %v need %d bytes, stream has only %d: truncated", dims, want, len(data))
		case int64(len(data)) > want:
			return nil, fmt.Errorf("idx dimensions %v need %d bytes, stream has more: trailing data", dims, want)
		}
	}
	return &IDXArray{Dims: dims, Data: data}, nil
}

// ReadIDXFile decodes the IDX file at path, gunzipping it when it starts with
// the gzip magic. Only a regular file is read (see OpenRegular). Errors name
// the path.
func ReadIDXFile(path string) (*IDXArray, error) {
	f, st, err := OpenRegular(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	arr, err := DecodeIDXBytesOrGzip(bufio.NewReader(f), st.Size())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return arr, nil
}

// DecodeIDXBytesOrGzip decodes an IDX array from r, which holds size bytes of
// either a plain IDX file or a gzip-compressed one (detected by its magic).
func DecodeIDXBytesOrGzip(r *bufio.Reader, size int64) (*IDXArray, error) {
	head, _ := r.Peek(2)
	if len(head) == 2 && head[0] == 0x1f && head[1] == 0x8b {
		zr, err := gzip.NewReader(r)
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		zr.Multistream(false)
		arr, err := DecodeIDX(zr, -1)
		if err != nil {
			return nil, err
		}
		// Drain to the gzip trailer so a corrupt checksum is reported.
		if _, err := io.Copy(io.Discard, zr); err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		return arr, nil
	}
	return DecodeIDX(r, size)
}

// IDXImages checks that arr holds images (3 dimensions: count, rows, cols) and
// returns them as float32 in [0,1] (byte/255), sample-major, with the
// per-sample shape [1, rows, cols].
func IDXImages(arr *IDXArray) (images []float32, shape []int, err error) {
	if len(arr.Dims) != 3 {
		return nil, nil, fmt.Errorf("idx images need 3 dimensions (count, rows, cols), file has %d", len(arr.Dims))
	}
	return BytesToUnit(arr.Data), []int{1, arr.Dims[1], arr.Dims[2]}, nil
}

// IDXLabels checks that arr holds labels (1 dimension) all below classes and
// returns them as int32.
func IDXLabels(arr *IDXArray, classes int) ([]int32, error) {
	if len(arr.Dims) != 1 {
		return nil, fmt.Errorf("idx labels need 1 dimension, file has %d", len(arr.Dims))
	}
	labels := make([]int32, len(arr.Data))
	for i, b := range arr.Data {
		if int(b) >= classes {
			return nil, fmt.Errorf("label %d of sample %d is not below %d classes", b, i, classes)
		}
		labels[i] = int32(b)
	}
	return labels, nil
}

// EncodeIDX writes arr as an IDX file of unsigned bytes, gzip-compressed when
// compress is set. The gzip header carries no name or time, so the output is
// a function of arr alone.
func EncodeIDX(w io.Writer, arr *IDXArray, compress bool) error {
	n := 1
	for _, d := range arr.Dims {
		n *= d
	}
	if len(arr.Dims) < 1 || len(arr.Dims) > 4 || n != len(arr.Data) {
		return fmt.Errorf("encode idx: dims %v do not match %d bytes", arr.Dims, len(arr.Data))
	}
	var buf bytes.Buffer
	buf.Write([]byte{0, 0, IDXUnsignedByte, byte(len(arr.Dims))})
	for _, d := range arr.Dims {
		_ = binary.Write(&buf, binary.BigEndian, uint32(d))
	}
	buf.Write(arr.Data)
	if !compress {
		_, err := w.Write(buf.Bytes())
		return err
	}
	zw, err := gzip.NewWriterLevel(w, gzip.BestCompression)
	if err != nil {
		return err
	}
	if _, err := zw.Write(buf.Bytes()); err != nil {
		return err
	}
	return zw.Close()
}

// BytesToUnit maps bytes to float32 in [0,1] by dividing by 255.
func BytesToUnit(b []byte) []float32 {
	out := make([]float32, len(b))
	for i, v := range b {
		out[i] = float32(v) / 255
	}
	return out
}

func truncated(err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return errors.New("file ends early: truncated")
	}
	return err
}
