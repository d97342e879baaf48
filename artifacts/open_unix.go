//go:build unix

package artifacts

import (
	"errors"
	"io/fs"
	"os"
	"syscall"
)

// openRegular opens path for reading only if it is a regular file: never
// through a symbolic link (O_NOFOLLOW), and without blocking on a FIFO
// (O_NONBLOCK, which changes nothing for regular files). Anything else is a
// *notRegularError, which wraps ErrCorrupt: no such entry belongs in a store.
func openRegular(path string) (*os.File, os.FileInfo, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		if errors.Is(err, syscall.ELOOP) {
			return nil, nil, &notRegularError{path: path, problem: "is a symbolic link"}
		}
		return nil, nil, err
	}
	info, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	if !info.Mode().IsRegular() {
		f.Close()
		return nil, nil, &notRegularError{path: path, problem: "is " + FileKind(info.Mode()) + ", not a regular file"}
	}
	return f, info, nil
}

// hardLinks is the number of names the file has.
func hardLinks(info fs.FileInfo) uint64 {
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Nlink)
	}
	return 1
}
