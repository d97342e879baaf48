//go:build unix

package load

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sglr-pipe/sglr-pipe/stages/load/internal/datafile"
)

// TestFIFOInDatasetDirIsRefused replaces one file of a dataset directory
// by a FIFO: load must say so at once instead of blocking in open().
func TestFIFOInDatasetDirIsRefused(t *testing.T) {
	tests := []struct {
		name string
		dir  func(t *testing.T) string
		fifo string
		load func(dir string) error
		want string // after the directory
	}{
		{"idx images", func(t *testing.T) string { return writeMNISTDir(t, 30, 20) }, "t10k-images-idx3-ubyte",
			func(d string) error { _, err := loadIDXDir(MNIST, d, MNISTClasses, "hint"); return err },
			"t10k-images-idx3-ubyte is a named pipe (FIFO)"},
		{"gzipped idx labels", func(t *testing.T) string { return writeMNISTDir(t, 30, 20) }, "train-labels-idx1-ubyte.gz",
			func(d string) error { _, err := loadIDXDir(MNIST, d, MNISTClasses, "hint"); return err },
			"train-labels-idx1-ubyte.gz is a named pipe (FIFO)"},
		{"cifar batch", func(t *testing.T) string { return writeCIFARDir(t, datafile.CIFAR10, 2, "") }, "data_batch_3.bin",
			func(d string) error { _, err := loadCIFAR(d, datafile.CIFAR10); return err },
			"data_batch_3.bin is a named pipe (FIFO)"},
		{"cifar class names", func(t *testing.T) string { return writeCIFARDir(t, datafile.CIFAR100, 2, "") }, "fine_label_names.txt",
			func(d string) error { _, err := loadCIFAR(d, datafile.CIFAR100); return err },
			"fine_label_names.txt is a named pipe (FIFO)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := tt.dir(t)
			path := filepath.Join(dir, tt.fifo)
			os.Remove(path)
			if err := syscall.Mkfifo(path, 0o644); err != nil {
				t.Skipf("mkfifo: %v", err)
			}
			done := make(chan error, 1)
			go func() { done <- tt.load(dir) }()
			select {
			case err := <-done:
				if want := filepath.Join(dir, tt.want); err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("error %v, want it to say %q", err, want)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("load blocked for more than 5s on the FIFO %s", path)
			}
		})
	}
}
