package datafile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/sglr-pipe/sglr-pipe/artifacts"
)

// OpenRegular opens path for reading if it is a regular file, or a symbolic
// link to one. Anything else is refused before it is opened, with an error
// naming the file and what it is: opening a FIFO blocks until something
// writes to it (forever, for a dataset directory), a device or a socket is
// no dataset, and a directory cannot be decoded. The file is checked again
// once open, so one swapped in between is refused too. A missing file is
// the plain *fs.PathError, so errors.Is(err, fs.ErrNotExist) holds.
func OpenRegular(path string) (*os.File, fs.FileInfo, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, nil, err
	}
	if !info.Mode().IsRegular() {
		return nil, nil, notRegular(path, info.Mode())
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	opened, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	if !opened.Mode().IsRegular() || !os.SameFile(info, opened) {
		f.Close()
		return nil, nil, fmt.Errorf("%s was replaced while it was opened: read it again", path)
	}
	return f, opened, nil
}

// ReadRegularFile reads the whole regular file at path (see OpenRegular),
// refusing one of more than max bytes.
func ReadRegularFile(path string, max int64) ([]byte, error) {
	f, info, err := OpenRegular(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if info.Size() > max {
		return nil, fmt.Errorf("%s is %d bytes, more than the %d this file may have", path, info.Size(), max)
	}
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("%s grew past %d bytes while it was read", path, max)
	}
	return data, nil
}

// ErrNotRegular is wrapped by the errors of OpenRegular for a file that is
// not a regular file.
var ErrNotRegular = errors.New("not a regular file")

func notRegular(path string, mode fs.FileMode) error {
	return fmt.Errorf("%s is %s: %w; refusing to read it", path, artifacts.FileKind(mode), ErrNotRegular)
}
