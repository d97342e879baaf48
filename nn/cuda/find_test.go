package cuda

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// tree creates empty files (and, for entries ending in "/", directories)
// under root. Discovery only looks at names, so empty files stand in for
// libraries; they are never opened.
func tree(t *testing.T, root string, files ...string) {
	t.Helper()
	for _, f := range files {
		p := filepath.Join(root, f)
		if strings.HasSuffix(f, "/") {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// envOf is a Getenv over m, with "$ROOT" in values replaced by root.
func envOf(root string, m map[string]string) func(string) string {
	return func(k string) string { return strings.ReplaceAll(m[k], "$ROOT", root) }
}

func TestFind(t *testing.T) {
	multiarch, _ := triplet()
	sys := "/usr/lib/" + multiarch
	cases := []struct {
		name  string
		files []string
		env   map[string]string
		lib   Lib
		want  string // path under the fake root; "" means not found
	}{
		{name: "empty tree", lib: Driver},
		{name: "driver in the multiarch dir", files: []string{sys + "/libcuda.so.1", sys + "/libcuda.so.580.65.06"}, lib: Driver, want: sys + "/libcuda.so.1"},
		{name: "unversioned driver link", files: []string{"/usr/lib64/libcuda.so"}, lib: Driver, want: "/usr/lib64/libcuda.so"},
		{name: "WSL driver", files: []string{"/usr/lib/wsl/lib/libcuda.so.1"}, lib: Driver, want: "/usr/lib/wsl/lib/libcuda.so.1"},
		{
			name:  "SGLR_CUDA_LIBS first",
			files: []string{"/a/libcuda.so.1", "/b/libcuda.so.1", sys + "/libcuda.so.1"},
			env:   map[string]string{"SGLR_CUDA_LIBS": "$ROOT/missing:$ROOT/a/", "LD_LIBRARY_PATH": "$ROOT/b"},
			lib:   Driver, want: "/a/libcuda.so.1",
		},
		{
			name:  "LD_LIBRARY_PATH before system dirs",
			files: []string{"/b/libcuda.so.1", sys + "/libcuda.so.1"},
			env:   map[string]string{"LD_LIBRARY_PATH": "$ROOT/b"},
			lib:   Driver, want: "/b/libcuda.so.1",
		},
		{
			name:  "toolkit stub is skipped",
			files: []string{"/usr/local/cuda/lib64/stubs/libcuda.so"},
			env:   map[string]string{"LD_LIBRARY_PATH": "$ROOT/usr/local/cuda/lib64/stubs"},
			lib:   Driver,
		},
		{
			name:  "highest cuBLAS major, SONAME link first",
			files: []string{"/usr/local/cuda/lib64/libcublas.so.11", "/usr/local/cuda/lib64/libcublas.so.12.8.4.1", "/usr/local/cuda/lib64/libcublas.so.12", "/usr/local/cuda/lib64/libcublas.so"},
			lib:   CUBLAS, want: "/usr/local/cuda/lib64/libcublas.so.12",
		},
		{
			name:  "cuBLAS is not cuBLASLt",
			files: []string{"/usr/local/cuda/lib64/libcublasLt.so.12"},
			lib:   CUBLAS,
		},
		{
			name:  "cuBLASLt",
			files: []string{"/usr/local/cuda/lib64/libcublasLt.so.12", "/usr/local/cuda/lib64/libcublas.so.12"},
			lib:   CUBLASLt, want: "/usr/local/cuda/lib64/libcublasLt.so.12",
		},
		{
			name:  "newest versioned toolkit first",
			files: []string{"/usr/local/cuda-11.8/lib64/libnvrtc.so.11.2", "/usr/local/cuda-12.10/lib64/libnvrtc.so.12", "/usr/local/cuda-12.8/lib64/libnvrtc.so.12"},
			lib:   NVRTC, want: "/usr/local/cuda-12.10/lib64/libnvrtc.so.12",
		},
		{
			name:  "NVRTC builtins are not NVRTC",
			files: []string{"/usr/local/cuda/lib64/libnvrtc-builtins.so.12.8"},
			lib:   NVRTC,
		},
		{
			name:  "cuDNN 8 is not cuDNN 9",
			files: []string{sys + "/libcudnn.so.8", sys + "/libcudnn.so.8.9.7"},
			lib:   CUDNN,
		},
		{
			name:  "cuDNN 9 full version only",
			files: []string{sys + "/libcudnn.so.9.10.2"},
			lib:   CUDNN, want: sys + "/libcudnn.so.9.10.2",
		},
		{
			name:  "PyTorch wheel in system dist-packages",
			files: []string{"/usr/local/lib/python3.12/dist-packages/nvidia/cudnn/lib/libcudnn.so.9"},
			lib:   CUDNN, want: "/usr/local/lib/python3.12/dist-packages/nvidia/cudnn/lib/libcudnn.so.9",
		},
		{
			name:  "CUDA 13 wheel layout nvidia/cu13/lib",
			files: []string{"/usr/lib/python3.13/site-packages/nvidia/cu13/lib/libcublas.so.13"},
			lib:   CUBLAS, want: "/usr/lib/python3.13/site-packages/nvidia/cu13/lib/libcublas.so.13",
		},
		{
			name:  "virtualenv before the user's and the system's site",
			files: []string{"/venv/lib/python3.11/site-packages/nvidia/cublas/lib/libcublas.so.12", "/home/u/.local/lib/python3.11/site-packages/nvidia/cublas/lib/libcublas.so.12", "/usr/lib/python3/dist-packages/nvidia/cublas/lib/libcublas.so.12"},
			env:   map[string]string{"VIRTUAL_ENV": "$ROOT/venv", "HOME": "$ROOT/home/u"},
			lib:   CUBLAS, want: "/venv/lib/python3.11/site-packages/nvidia/cublas/lib/libcublas.so.12",
		},
		{
			name:  "user site",
			files: []string{"/home/u/.local/lib/python3.11/site-packages/torch/lib/libnvrtc.so.12"},
			env:   map[string]string{"HOME": "$ROOT/home/u"},
			lib:   NVRTC, want: "/home/u/.local/lib/python3.11/site-packages/torch/lib/libnvrtc.so.12",
		},
		{
			name:  "conda lib",
			files: []string{"/conda/lib/libcublas.so.12"},
			env:   map[string]string{"CONDA_PREFIX": "$ROOT/conda"},
			lib:   CUBLAS, want: "/conda/lib/libcublas.so.12",
		},
		{
			name:  "a directory named like the library is not it",
			files: []string{sys + "/libcuda.so.1/"},
			lib:   Driver,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root := t.TempDir()
			tree(t, root, c.files...)
			s := Search{Getenv: envOf(root, c.env), Root: root}
			got, err := s.Find(c.lib)
			if c.want == "" {
				var le *LibraryError
				if !errors.As(err, &le) {
					t.Fatalf("Find(%v) = %q, %v; want a *LibraryError", c.lib, got, err)
				}
				if le.Lib != c.lib || len(le.Tried) == 0 {
					t.Fatalf("LibraryError %+v: want Lib %v and the paths tried", le, c.lib)
				}
				return
			}
			if err != nil {
				t.Fatalf("Find(%v): %v", c.lib, err)
			}
			if want := filepath.Join(root, c.want); got != want {
				t.Fatalf("Find(%v) = %s, want %s", c.lib, got, want)
			}
		})
	}
}

// TestFindDanglingLink: a SONAME link to a removed file is no library.
func TestFindDanglingLink(t *testing.T) {
	root := t.TempDir()
	tree(t, root, "/usr/lib64/")
	if err := os.Symlink("libcuda.so.999", filepath.Join(root, "/usr/lib64/libcuda.so.1")); err != nil {
		t.Skip("no symlinks here:", err)
	}
	if p, err := (Search{Root: root}).Find(Driver); err == nil {
		t.Fatalf("Find(Driver) = %s, want not found", p)
	}
}

// TestLibraryErrorTriedOrder: the error lists every directory in search
// order, with the library's file names, and says how to fix it.
func TestLibraryErrorTriedOrder(t *testing.T) {
	root := t.TempDir()
	multiarch, _ := triplet()
	tree(t, root, "/usr/local/cuda-12.4/lib64/", "/usr/lib/python3.12/dist-packages/nvidia/cudnn/lib/")
	s := Search{Getenv: envOf(root, map[string]string{"SGLR_CUDA_LIBS": "/opt/x", "LD_LIBRARY_PATH": "/opt/y:/opt/x"}), Root: root}
	_, err := s.Find(Driver)
	var le *LibraryError
	if !errors.As(err, &le) {
		t.Fatalf("Find(Driver): %v, want a *LibraryError", err)
	}
	want := []string{
		"/opt/x/libcuda.so.1", "/opt/x/libcuda.so", "/opt/y/libcuda.so.1", "/opt/y/libcuda.so",
		root + "/usr/lib/" + multiarch + "/libcuda.so.1",
	}
	if !slices.Equal(le.Tried[:len(want)], want) {
		t.Fatalf("Tried starts %q, want %q", le.Tried[:len(want)], want)
	}
	for _, p := range []string{root + "/usr/local/cuda-12.4/lib64/libcuda.so.1", root + "/usr/lib/python3.12/dist-packages/nvidia/cudnn/lib/libcuda.so.1"} {
		if !slices.Contains(le.Tried, p) {
			t.Errorf("Tried lacks %s: %q", p, le.Tried)
		}
	}
	msg := err.Error()
	for _, s := range []string{"libcuda.so.1 (CUDA driver) not found", "/opt/y/libcuda.so.1", "SGLR_CUDA_LIBS"} {
		if !strings.Contains(msg, s) {
			t.Errorf("error %q lacks %q", msg, s)
		}
	}
}

// TestSearchZero: the zero Search looks nowhere (Root "" means the real
// system directories, which is what it tries) and never panics.
func TestSearchZero(t *testing.T) {
	var s Search
	for _, f := range s.FindAll() {
		if f.Err == nil && f.Path == "" {
			t.Errorf("%v: no path and no error", f.Lib)
		}
	}
	if _, err := s.Find(Lib(42)); err == nil {
		t.Error("Find(Lib(42)): want an error")
	}
	empty := (&LibraryError{Lib: NVRTC}).Error()
	if !strings.Contains(empty, "NVRTC") || !strings.Contains(empty, "no directories") {
		t.Errorf("empty LibraryError reads %q", empty)
	}
}

func TestVersionOrder(t *testing.T) {
	for _, c := range []struct {
		name string
		want []int
	}{
		{"libcuda.so", nil}, {"libcuda.so.1", []int{1}}, {"libcublas.so.12.8.4.1", []int{12, 8, 4, 1}},
		{"cuda-12.10", []int{12, 10}}, {"libcudnn.so.9.x", []int{9}},
	} {
		if got := version(c.name); !slices.Equal(got, c.want) {
			t.Errorf("version(%q) = %v, want %v", c.name, got, c.want)
		}
	}
	p := []string{"/l/libx.so", "/l/libx.so.11.8", "/l/libx.so.12.1.0", "/l/libx.so.12", "/l/libx.so.9"}
	sortVersionsDesc(p)
	want := []string{"/l/libx.so.12", "/l/libx.so.12.1.0", "/l/libx.so.11.8", "/l/libx.so.9", "/l/libx.so"}
	if !slices.Equal(p, want) {
		t.Errorf("sorted %q, want %q", p, want)
	}
}

// TestFindReport logs what this machine has, for bench/gpu/check.sh's
// output; it never fails.
func TestFindReport(t *testing.T) {
	for _, f := range DefaultSearch().FindAll() {
		if f.Err != nil {
			var le *LibraryError
			if errors.As(f.Err, &le) {
				t.Logf("%-28v not found (%d paths tried)", f.Lib, len(le.Tried))
				continue
			}
			t.Logf("%-28v %v", f.Lib, f.Err)
			continue
		}
		t.Logf("%-28v %s", f.Lib, f.Path)
	}
}
