package artifacts

import (
	"bufio"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// WriteFileAtomic writes data to path so that a reader sees either the old
// file or the whole new one, never a part: see WriteAtomic.
func WriteFileAtomic(path string, data []byte, perm fs.FileMode) error {
	return WriteAtomic(path, perm, writeBytes(data))
}

// WriteAtomic streams what write writes (through a buffer) into a temporary
// file beside path, syncs it, gives it perm and renames it over path, then
// syncs path's directory so the rename survives a crash. On any error the
// temporary file is removed and path is left as it was. path's directory
// must exist. Errors are not wrapped: callers name the file they meant.
func WriteAtomic(path string, perm fs.FileMode, write func(io.Writer) error) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	return replaceWith(f, path, perm, write)
}

// replaceWith fills the new, empty temporary file f with write's output and
// renames it over path, as WriteAtomic describes. It closes f, and removes it
// on failure.
func replaceWith(f *os.File, path string, perm fs.FileMode, write func(io.Writer) error) error {
	tmp := f.Name()
	w := bufio.NewWriter(f)
	err := write(w)
	if err == nil {
		err = w.Flush()
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp, perm) // CreateTemp makes files private
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return syncDir(filepath.Dir(path))
}

// writeBytes is a write function for WriteAtomic that writes data.
func writeBytes(data []byte) func(io.Writer) error {
	return func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	}
}
