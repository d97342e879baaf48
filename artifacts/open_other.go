//go:build !unix

package artifacts

import (
	"io/fs"
	"os"
)

// openRegular opens path for reading only if it is a regular file. Without
// O_NOFOLLOW the check is Lstat, then open: a link swapped in between is not
// caught here, but still fails the digest check of whoever reads it.
func openRegular(path string) (*os.File, os.FileInfo, error) {
	info, err := os.Lstat(path)
	if err != nil {
		return nil, nil, err
	}
	if info.Mode()&fs.ModeSymlink != 0 {
		return nil, nil, &notRegularError{path: path, problem: "is a symbolic link"}
	}
	if !info.Mode().IsRegular() {
		return nil, nil, &notRegularError{path: path, problem: "is " + FileKind(info.Mode()) + ", not a regular file"}
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	return f, info, nil
}

// hardLinks reports 1: link counts are not known here, so Ingest renames.
func hardLinks(fs.FileInfo) uint64 { return 1 }
