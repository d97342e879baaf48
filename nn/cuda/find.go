package cuda

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
)

// Lib names one of the NVIDIA shared libraries the backend can use.
type Lib int

const (
	Driver   Lib = iota // libcuda.so.1, the CUDA driver API (comes with the kernel driver)
	CUBLAS              // libcublas.so.N
	CUBLASLt            // libcublasLt.so.N, which libcublas needs
	CUDNN               // libcudnn.so.9 (cuDNN 9 only)
	NVRTC               // libnvrtc.so.N, the run-time CUDA C compiler
)

// Libs lists every Lib, in the order Search.FindAll reports them.
var Libs = []Lib{Driver, CUBLAS, CUBLASLt, CUDNN, NVRTC}

// libPatterns are the file names (globs) each library is found by, in
// preference order within one directory.
var libPatterns = map[Lib][]string{
	Driver:   {"libcuda.so.1", "libcuda.so"},
	CUBLAS:   {"libcublas.so.[0-9]*", "libcublas.so"},
	CUBLASLt: {"libcublasLt.so.[0-9]*", "libcublasLt.so"},
	CUDNN:    {"libcudnn.so.9", "libcudnn.so.9.*"},
	NVRTC:    {"libnvrtc.so.[0-9]*", "libnvrtc.so"},
}

// String is the library's usual file name and what it is.
func (l Lib) String() string {
	switch l {
	case Driver:
		return "libcuda.so.1 (CUDA driver)"
	case CUBLAS:
		return "libcublas.so (cuBLAS)"
	case CUBLASLt:
		return "libcublasLt.so (cuBLASLt)"
	case CUDNN:
		return "libcudnn.so.9 (cuDNN 9)"
	case NVRTC:
		return "libnvrtc.so (NVRTC)"
	}
	return fmt.Sprintf("cuda.Lib(%d)", int(l))
}

// LibraryError reports a library that was not found: Tried holds every
// path pattern looked at, in search order.
type LibraryError struct {
	Lib   Lib
	Tried []string
}

func (e *LibraryError) Error() string {
	tried := "no directories (SGLR_CUDA_LIBS, LD_LIBRARY_PATH and the built-in list are all empty)"
	if len(e.Tried) > 0 {
		tried = strings.Join(e.Tried, ", ")
	}
	return fmt.Sprintf("cuda: %v not found; tried %s; set SGLR_CUDA_LIBS to the directory that holds it", e.Lib, tried)
}

// Search says where libraries are looked for. The zero value searches
// nothing; DefaultSearch reads the process environment.
//
// Directories are searched in this order, the first holding a match wins
// (as with the dynamic loader):
//
//  1. SGLR_CUDA_LIBS: a list of directories separated by ':'.
//  2. LD_LIBRARY_PATH.
//  3. System and toolkit directories: /usr/lib/<triplet>-linux-gnu,
//     /usr/lib/wsl/lib (WSL's driver), /usr/local/cuda/lib64,
//     /usr/local/cuda/targets/<arch>-linux/lib, /usr/local/cuda-*/lib64
//     (newest version first), /opt/cuda/lib64, /usr/lib64, /usr/lib,
//     /run/opengl-driver/lib (NixOS).
//  4. Python environments, for PyTorch's wheels: in each site directory of
//     $VIRTUAL_ENV, $CONDA_PREFIX, ~/.local, /usr/local and /usr
//     (lib/python3*/site-packages and dist-packages, and Debian's
//     lib/python3/dist-packages), the directories nvidia/*/lib and
//     torch/lib; and $CONDA_PREFIX/lib.
//
// Directories named "stubs" are skipped: the toolkit's stub libcuda.so
// links but fails every call with CUDA_ERROR_STUB_LIBRARY.
type Search struct {
	// Getenv reads SGLR_CUDA_LIBS, LD_LIBRARY_PATH, HOME, VIRTUAL_ENV and
	// CONDA_PREFIX; nil reads nothing.
	Getenv func(string) string
	// Root is prefixed to the built-in absolute directories of steps 3
	// and 4 (not to those taken from the environment): "" on a real
	// system, a fake tree in tests.
	Root string
}

// DefaultSearch searches the process environment and the real file system.
func DefaultSearch() Search { return Search{Getenv: os.Getenv} }

// Find returns the path of lib found by DefaultSearch.
func Find(lib Lib) (string, error) { return DefaultSearch().Find(lib) }

func (s Search) env(k string) string {
	if s.Getenv == nil {
		return ""
	}
	return s.Getenv(k)
}

// triplet is the multiarch directory name of this architecture.
func triplet() (multiarch, cudaTarget string) {
	switch runtime.GOARCH {
	case "arm64":
		return "aarch64-linux-gnu", "sbsa-linux"
	case "ppc64le":
		return "powerpc64le-linux-gnu", "ppc64le-linux"
	}
	return "x86_64-linux-gnu", "x86_64-linux"
}

// Dirs returns the directories s searches, in order, without duplicates.
// Globs are expanded, so built-in directories that do not exist are left
// out; directories from the environment are kept as given.
func (s Search) Dirs() []string {
	var dirs []string
	seen := map[string]bool{}
	add := func(d string) {
		if d == "" || seen[d] || filepath.Base(d) == "stubs" {
			return
		}
		seen[d] = true
		dirs = append(dirs, d)
	}
	for _, v := range []string{"SGLR_CUDA_LIBS", "LD_LIBRARY_PATH"} {
		for _, d := range filepath.SplitList(s.env(v)) {
			add(filepath.Clean(d))
		}
	}
	root := func(p string) string { return filepath.Join(s.Root, p) }
	glob := func(pattern string) []string {
		m, _ := filepath.Glob(pattern) // only ErrBadPattern, not for these patterns
		sortVersionsDesc(m)
		return m
	}
	multiarch, target := triplet()
	for _, d := range []string{
		"/usr/lib/" + multiarch, "/usr/lib/wsl/lib", "/usr/local/cuda/lib64",
		"/usr/local/cuda/targets/" + target + "/lib",
	} {
		add(root(d))
	}
	for _, d := range glob(root("/usr/local/cuda-*/lib64")) {
		add(d)
	}
	for _, d := range []string{"/opt/cuda/lib64", "/usr/lib64", "/usr/lib", "/run/opengl-driver/lib"} {
		add(root(d))
	}
	// Python prefixes: the environment's first, then the user's, then the
	// system's.
	var prefixes []string
	for _, v := range []string{"VIRTUAL_ENV", "CONDA_PREFIX"} {
		if p := s.env(v); p != "" {
			prefixes = append(prefixes, filepath.Clean(p))
		}
	}
	if h := s.env("HOME"); h != "" {
		prefixes = append(prefixes, filepath.Join(h, ".local"))
	}
	prefixes = append(prefixes, root("/usr/local"), root("/usr"))
	for _, p := range prefixes {
		var sites []string
		for _, pat := range []string{"lib/python3*/site-packages", "lib/python3*/dist-packages", "lib/python3/dist-packages"} {
			sites = append(sites, glob(filepath.Join(p, pat))...)
		}
		for _, site := range sites {
			for _, pat := range []string{"nvidia/*/lib", "nvidia/*/lib64", "torch/lib"} {
				for _, d := range glob(filepath.Join(site, pat)) {
					add(d)
				}
			}
		}
	}
	if p := s.env("CONDA_PREFIX"); p != "" {
		add(filepath.Join(filepath.Clean(p), "lib"))
	}
	return dirs
}

// Find returns the path of lib in the first directory of s.Dirs() that
// holds a file matching one of its names, or a *LibraryError listing every
// pattern tried. Within a directory the highest major version wins, and
// for one version the shortest name (the SONAME link, libcublas.so.12,
// before libcublas.so.12.8.4.1). Nothing is opened: a file that matches is
// taken to be the library.
func (s Search) Find(lib Lib) (string, error) {
	if _, ok := libPatterns[lib]; !ok {
		return "", fmt.Errorf("cuda: find: unknown library %v", lib)
	}
	return findIn(s.Dirs(), lib)
}

// findIn is Find over the directories dirs.
func findIn(dirs []string, lib Lib) (string, error) {
	pats := libPatterns[lib]
	var tried []string
	for _, d := range dirs {
		for _, pat := range pats {
			tried = append(tried, filepath.Join(d, pat))
			m, _ := filepath.Glob(filepath.Join(d, pat))
			m = slices.DeleteFunc(m, func(p string) bool {
				fi, err := os.Stat(p) // follows links: a dangling link is no library
				return err != nil || fi.IsDir()
			})
			if len(m) > 0 {
				sortVersionsDesc(m)
				return m[0], nil
			}
		}
	}
	return "", &LibraryError{Lib: lib, Tried: tried}
}

// Found is the outcome of looking for one library.
type Found struct {
	Lib  Lib
	Path string // "" when not found
	Err  error  // a *LibraryError when not found
}

// FindAll looks for every library in Libs, for reports.
func (s Search) FindAll() []Found {
	out := make([]Found, 0, len(Libs))
	for _, l := range Libs {
		p, err := s.Find(l)
		out = append(out, Found{Lib: l, Path: p, Err: err})
	}
	return out
}

// sortVersionsDesc orders paths by version, highest first: the digits
// after ".so." in the file name, or else after the last "cuda-" in the
// path (/usr/local/cuda-12.8/lib64). Of one version the shorter (fewer
// components: the SONAME link) comes first; unversioned names come last;
// ties go by name.
func sortVersionsDesc(paths []string) {
	slices.SortStableFunc(paths, func(a, b string) int {
		va, vb := version(a), version(b)
		if len(va) == 0 && len(vb) > 0 {
			return 1 // unversioned after versioned
		}
		if len(vb) == 0 && len(va) > 0 {
			return -1
		}
		for i := 0; i < min(len(va), len(vb)); i++ {
			if va[i] != vb[i] {
				return vb[i] - va[i]
			}
		}
		if len(va) != len(vb) {
			return len(va) - len(vb)
		}
		return strings.Compare(a, b)
	})
}

// version returns the dot-separated numbers after ".so." in path's last
// element, or else after the last "cuda-" in path: [12 8 4 1] for
// libcublas.so.12.8.4.1, [12 4] for /usr/local/cuda-12.4/lib64, nil for
// libcuda.so. Parsing stops at the first part that is not a number.
func version(path string) []int {
	var rest string
	if base := filepath.Base(path); strings.Contains(base, ".so.") {
		rest = base[strings.Index(base, ".so.")+4:]
	} else if i := strings.LastIndex(path, "cuda-"); i >= 0 {
		rest = path[i+5:]
	}
	var v []int
	for part := range strings.SplitSeq(rest, ".") {
		if j := strings.IndexByte(part, '/'); j >= 0 {
			part = part[:j]
		}
		n, err := strconv.Atoi(part)
		if err != nil {
			break
		}
		v = append(v, n)
	}
	return v
}
