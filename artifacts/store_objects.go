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
	"path/filepath"
	"syscall"
)

// The DirStore's objects: immutable files named by the sha256 of their bytes,
// written through leased files in tmp/ and renamed into place.

// Put streams r into a new object and returns its digest.
func (s *DirStore) Put(r io.Reader) (Digest, error) {
	f, release, err := s.createLeasedTemp("put-*") // leased: gc spares a slow Put
	if err != nil {
		return "", fmt.Errorf("put object: %w", err)
	}
	defer release()
	tmp := f.Name()
	h := sha256.New()
	_, err = io.Copy(io.MultiWriter(f, h), r)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("put object: %w", err)
	}
	d := Digest(hex.EncodeToString(h.Sum(nil)))
	if err := s.placeObject(tmp, d); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("put object %s: %w", d, err)
	}
	return d, nil
}

// Ingest hashes a finished file (normally one made by CreateTemp or inside a
// Scratch directory) and moves it into the store. The file must not be written
// afterwards. Only a regular file is taken: a symbolic link is refused, never
// followed, and a file with other hard links (which could change under its
// digest through another name) is copied into the store by content rather
// than renamed.
func (s *DirStore) Ingest(tempPath string) (Digest, error) {
	f, info, err := openRegular(tempPath)
	if err != nil {
		return "", fmt.Errorf("ingest %s: %w", tempPath, err)
	}
	h := sha256.New()
	_, err = io.Copy(h, f)
	if err == nil {
		err = f.Sync()
	}
	f.Close()
	if err != nil {
		return "", fmt.Errorf("ingest %s: %w", tempPath, err)
	}
	d := Digest(hex.EncodeToString(h.Sum(nil)))
	if hardLinks(info) == 1 {
		err := s.placeObject(tempPath, d)
		if err == nil {
			return d, nil
		}
		if !errors.Is(err, errCrossDevice) {
			return "", fmt.Errorf("ingest %s: %w", tempPath, err)
		}
	}
	// Another file system or another name for the same file: copy the bytes
	// through Put, which writes a file of the store's own.
	src, _, err := openRegular(tempPath)
	if err != nil {
		return "", fmt.Errorf("ingest %s: %w", tempPath, err)
	}
	defer src.Close()
	got, err := s.Put(src)
	if err != nil {
		return "", fmt.Errorf("ingest %s: %w", tempPath, err)
	}
	if got != d {
		return "", fmt.Errorf("ingest %s: file changed while it was ingested", tempPath)
	}
	os.Remove(tempPath)
	return d, nil
}

// CreateTemp creates an empty file in the store's tmp/ directory and returns its path.
// The file is not leased (the store keeps nothing open once it returns): gc
// spares it by age alone, and every write refreshes its mtime, so a file
// written steadily is safe under any grace; a caller that may pause for longer
// than gc's grace writes inside a Scratch instead.
func (s *DirStore) CreateTemp(pattern string) (string, error) {
	f, err := os.CreateTemp(s.tmpDir(), pattern)
	if err != nil {
		return "", fmt.Errorf("create temp file: %w", err)
	}
	name := f.Name()
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("create temp file %s: %w", name, err)
	}
	return name, nil
}

// Has reports whether the object exists as a regular file (a link in its
// place does not count), without re-hashing it.
func (s *DirStore) Has(d Digest) bool {
	if !isHex64(string(d)) {
		return false
	}
	info, err := os.Lstat(s.objectPath(d))
	return err == nil && info.Mode().IsRegular()
}

// Path returns the file path of an existing object; callers must not write to it.
func (s *DirStore) Path(d Digest) (string, error) {
	if !isHex64(string(d)) {
		return "", fmt.Errorf("object %q: invalid digest", d)
	}
	p := s.objectPath(d)
	if _, err := os.Stat(p); err != nil {
		return "", objectError(d, err)
	}
	return p, nil
}

// Open reads an object whole, hashing it as it is read, and returns its
// bytes for reading; bytes that no longer hash to d give a *DigestError.
func (s *DirStore) Open(d Digest) (ReadAtSeekCloser, error) {
	if !isHex64(string(d)) {
		return nil, fmt.Errorf("object %q: invalid digest", d)
	}
	data, err := ReadVerified(s.objectPath(d), d)
	if err != nil {
		return nil, err
	}
	return verifiedObject{bytes.NewReader(data)}, nil
}

// Verify re-hashes an object; a mismatch is an error wrapping ErrCorrupt.
func (s *DirStore) Verify(d Digest) error {
	if !isHex64(string(d)) {
		return fmt.Errorf("object %q: invalid digest", d)
	}
	_, err := hashFile(s.objectPath(d), d)
	return err
}

// RemoveObject deletes an object; a missing one is ErrNotFound.
func (s *DirStore) RemoveObject(d Digest) error {
	if !isHex64(string(d)) {
		return fmt.Errorf("object %q: invalid digest", d)
	}
	if err := os.Remove(s.objectPath(d)); err != nil {
		return objectError(d, err)
	}
	return nil
}

// ListObjects returns the digests of all objects, sorted.
func (s *DirStore) ListObjects() ([]Digest, error) {
	var out []Digest
	err := s.walkObjects(func(d Digest, path string, info fs.FileInfo) error {
		out = append(out, d)
		return nil
	}, nil)
	if err != nil {
		return nil, err
	}
	return out, nil
}

// errCrossDevice marks a rename that failed because source and target are on
// different file systems.
var errCrossDevice = errors.New("cross-device rename")

func (s *DirStore) objectPath(d Digest) string {
	return filepath.Join(s.objectsDir(), string(d[:2]), string(d[2:]))
}

// placeObject makes tmp read-only and renames it over the object's final name.
// Renaming over an existing object replaces it with equal (or, if the old one
// was corrupt, correct) bytes.
func (s *DirStore) placeObject(tmp string, d Digest) error {
	if err := os.Chmod(tmp, 0o444); err != nil {
		return err
	}
	final := s.objectPath(d)
	dir := filepath.Dir(final)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.Rename(tmp, final); err != nil {
		var linkErr *os.LinkError
		if errors.As(err, &linkErr) && isCrossDevice(linkErr.Err) {
			return fmt.Errorf("%w: %v", errCrossDevice, err)
		}
		return err
	}
	return syncDir(dir)
}

// walkObjects calls fn for every well-named object file and bad for any other
// entry under objects/ (bad may be nil to ignore them).
func (s *DirStore) walkObjects(fn func(d Digest, path string, info fs.FileInfo) error, bad func(path, why string)) error {
	fans, err := os.ReadDir(s.objectsDir())
	if err != nil {
		return fmt.Errorf("list objects: %w", err)
	}
	for _, fan := range fans {
		fanPath := filepath.Join(s.objectsDir(), fan.Name())
		if !fan.IsDir() || len(fan.Name()) != 2 || !isHex(fan.Name()) {
			if bad != nil {
				bad(fanPath, "unexpected entry in objects/sha256")
			}
			continue
		}
		entries, err := os.ReadDir(fanPath)
		if err != nil {
			return fmt.Errorf("list objects: %w", err)
		}
		for _, e := range entries {
			p := filepath.Join(fanPath, e.Name())
			name := fan.Name() + e.Name()
			if !e.Type().IsRegular() || !isHex64(name) {
				if bad != nil {
					bad(p, "unexpected entry in objects/sha256")
				}
				continue
			}
			info, err := e.Info()
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					continue // removed meanwhile
				}
				return fmt.Errorf("list objects: %w", err)
			}
			if err := fn(Digest(name), p, info); err != nil {
				return err
			}
		}
	}
	return nil
}

// hashFile re-hashes path, returning its size; a digest other than want is ErrCorrupt.
func hashFile(path string, want Digest) (int64, error) {
	f, _, err := openObject(path, want)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return n, fmt.Errorf("object %s: read: %w", want, err)
	}
	if got := Digest(hex.EncodeToString(h.Sum(nil))); got != want {
		return n, &DigestError{Digest: want, Path: path, Got: got}
	}
	return n, nil
}

func objectError(d Digest, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("object %s: %w", d, ErrNotFound)
	}
	return fmt.Errorf("object %s: %w", d, err)
}

func isCrossDevice(err error) bool { return errors.Is(err, syscall.EXDEV) }
