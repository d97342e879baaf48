//go:build unix

package datafile

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// specialFiles makes one of each kind of non-regular file a dataset
// directory could hold and says what the error must call it.
func specialFiles(t *testing.T) []struct{ name, path, kind string } {
	t.Helper()
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	sock := filepath.Join(dir, "sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Skipf("unix socket: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	sub := filepath.Join(dir, "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link-to-fifo")
	if err := os.Symlink(fifo, link); err != nil {
		t.Fatal(err)
	}
	files := []struct{ name, path, kind string }{
		{"fifo", fifo, "is a named pipe (FIFO)"},
		{"symlink to a fifo", link, "is a named pipe (FIFO)"},
		{"socket", sock, "is a socket"},
		{"directory", sub, "is a directory"},
	}
	if _, err := os.Stat("/dev/null"); err == nil {
		files = append(files, struct{ name, path, kind string }{"character device", "/dev/null", "is a character device"})
	}
	return files
}

// within fails the test if f blocks (opening a FIFO without a writer does).
func within(t *testing.T, f func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		return err
	case <-time.After(5 * time.Second):
		t.Fatal("blocked for more than 5s: it opened a FIFO")
		return nil
	}
}

func TestNonRegularFilesAreRefused(t *testing.T) {
	readers := []struct {
		name string
		read func(path string) error
	}{
		{"ReadIDXFile", func(p string) error { _, err := ReadIDXFile(p); return err }},
		{"ReadCIFARFile", func(p string) error { _, _, err := ReadCIFARFile(p, CIFAR10); return err }},
		{"ReadRegularFile", func(p string) error { _, err := ReadRegularFile(p, 1<<20); return err }},
	}
	for _, f := range specialFiles(t) {
		for _, r := range readers {
			t.Run(f.name+"/"+r.name, func(t *testing.T) {
				err := within(t, func() error { return r.read(f.path) })
				if err == nil || !strings.Contains(err.Error(), f.path+" "+f.kind) || !errors.Is(err, ErrNotRegular) {
					t.Errorf("error %v, want it to say %q and wrap ErrNotRegular", err, f.path+" "+f.kind)
				}
			})
		}
	}
}

func TestReadRegularFileCapsSize(t *testing.T) {
	path := writeFile(t, t.TempDir(), "meta", make([]byte, 2000))
	if _, err := ReadRegularFile(path, 1000); err == nil || !strings.Contains(err.Error(), "is 2000 bytes, more than the 1000") {
		t.Errorf("error %v", err)
	}
	if data, err := ReadRegularFile(path, 2000); err != nil || len(data) != 2000 {
		t.Errorf("%d bytes, %v", len(data), err)
	}
}
