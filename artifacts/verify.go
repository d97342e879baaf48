package artifacts

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// DigestError reports an object whose file no longer holds the bytes it was
// stored with: they hash to something else, or the file was replaced by a
// link or another kind of file. It wraps ErrCorrupt. The pipeline treats it as
// a cache miss of whatever produced Digest.
type DigestError struct {
	Digest  Digest // the name the bytes were read under
	Path    string // the file that was read
	Got     Digest // what the bytes hash to, if they were read
	Problem string // what is wrong instead, if they were not ("is a symbolic link")
}

func (e *DigestError) Error() string {
	if e.Problem != "" {
		return fmt.Sprintf("object %s: %s %s: the store holds only regular files", e.Digest, e.Path, e.Problem)
	}
	return fmt.Sprintf("object %s: %s hashes to %s, not to its name: the file was changed after it was stored",
		e.Digest, e.Path, e.Got)
}

// Unwrap makes errors.Is(err, ErrCorrupt) hold.
func (e *DigestError) Unwrap() error { return ErrCorrupt }

// CorruptObject returns the digest of the first *DigestError in err's chain.
func CorruptObject(err error) (Digest, bool) {
	var de *DigestError
	if errors.As(err, &de) {
		return de.Digest, true
	}
	return "", false
}

// ReadVerified reads the whole file at path, hashing it as it is read, and
// returns its bytes if they hash to want; otherwise a *DigestError. The
// bytes are read once: what the caller decodes is exactly what was hashed.
func ReadVerified(path string, want Digest) ([]byte, error) {
	f, info, err := openObject(path, want)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	buf := bytes.NewBuffer(make([]byte, 0, info.Size()+bytes.MinRead))
	h := sha256.New()
	if _, err := buf.ReadFrom(io.TeeReader(f, h)); err != nil {
		return nil, fmt.Errorf("object %s: read %s: %w", want, path, err)
	}
	if got := Digest(hex.EncodeToString(h.Sum(nil))); got != want {
		return nil, &DigestError{Digest: want, Path: path, Got: got}
	}
	return buf.Bytes(), nil
}

// DecodeObject reads the object stored at path under digest d, checks that
// its bytes hash to d (a *DigestError if not) and decodes exactly those bytes
// with decode, one of the package's Read functions (ReadDataset, ReadModel…).
// Every stage input is read this way, so a changed object can never be used
// under its old name.
func DecodeObject[T any](path string, d Digest, decode func(ReadAtSeeker) (T, error)) (T, error) {
	var zero T
	if !isHex64(string(d)) {
		return zero, fmt.Errorf("read %s: invalid digest %q", path, d)
	}
	f, info, err := openObject(path, d)
	if err != nil {
		return zero, err
	}
	defer f.Close()
	r := newCheckedReader(f, info.Size())
	v, decodeErr := decode(r)
	got, err := r.finish()
	switch {
	case err != nil:
		return zero, fmt.Errorf("object %s: read %s: %w", d, path, err)
	case got != d:
		return zero, &DigestError{Digest: d, Path: path, Got: got}
	case decodeErr != nil:
		return zero, fmt.Errorf("read %s: %w", path, decodeErr)
	}
	return v, nil
}

// verifiedObject is an object read whole and checked against its digest.
type verifiedObject struct{ *bytes.Reader }

func (verifiedObject) Close() error { return nil }

// FileDigest hashes the file at path (following links), refusing anything
// but a regular file so that a FIFO cannot block it.
func FileDigest(path string) (Digest, error) {
	info, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	if !info.Mode().IsRegular() {
		return "", fmt.Errorf("%s is %s, not a regular file", path, FileKind(info.Mode()))
	}
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("hash %s: %w", path, err)
	}
	return Digest(hex.EncodeToString(h.Sum(nil))), nil
}

// FileKind names what kind of file mode describes, for messages ("a named
// pipe (FIFO)", "a symbolic link", "a regular file").
func FileKind(mode fs.FileMode) string {
	switch t := mode.Type(); {
	case t == 0:
		return "a regular file"
	case t&fs.ModeSymlink != 0:
		return "a symbolic link"
	case t&fs.ModeDir != 0:
		return "a directory"
	case t&fs.ModeNamedPipe != 0:
		return "a named pipe (FIFO)"
	case t&fs.ModeSocket != 0:
		return "a socket"
	case t&fs.ModeCharDevice != 0:
		return "a character device"
	case t&fs.ModeDevice != 0:
		return "a device"
	default:
		return "an irregular file (" + t.String() + ")"
	}
}

// notRegularError is openRegular's refusal of a link, FIFO, device or directory.
type notRegularError struct{ path, problem string }

func (e *notRegularError) Error() string { return e.path + " " + e.problem }
func (e *notRegularError) Unwrap() error { return ErrCorrupt }

// openObject is openRegular for the object d: a refusal is a *DigestError,
// so that a replaced object is treated as the corrupt object it is.
func openObject(path string, d Digest) (*os.File, os.FileInfo, error) {
	f, info, err := openRegular(path)
	var nr *notRegularError
	switch {
	case errors.As(err, &nr):
		return nil, nil, &DigestError{Digest: d, Path: path, Problem: nr.problem}
	case err != nil:
		return nil, nil, objectError(d, err)
	}
	return f, info, nil
}
