package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// skipIfStoreAbove skips a test whose temporary tree lies below a directory
// that holds a .sglr: the walk up would find that store instead.
func skipIfStoreAbove(t *testing.T, dir string) {
	t.Helper()
	for d := filepath.Dir(dir); ; d = filepath.Dir(d) {
		if isDirectory(filepath.Join(d, storeName)) {
			t.Skipf("%s holds a store; the walk up from a temporary directory would find it", d)
		}
		if filepath.Dir(d) == d {
			return
		}
	}
}

// mkdirs creates each path below root.
func mkdirs(t *testing.T, root string, paths ...string) {
	t.Helper()
	for _, p := range paths {
		if err := os.MkdirAll(filepath.Join(root, p), 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

func TestLocateStore(t *testing.T) {
	root := t.TempDir()
	skipIfStoreAbove(t, root)
	mkdirs(t, root, "proj/.sglr", "proj/a/b", "one/examples/.sglr", "one/docs", "two/x/.sglr", "two/y/.sglr",
		"empty", "deep/a/.sglr/x", "filestore/a")
	if err := os.WriteFile(filepath.Join(root, "filestore", "a", ".sglr"), []byte("not a store"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root, "filestore", ".sglr"), 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		cwd     string
		store   string // --store
		env     string // $SGLR_STORE
		want    string // the store found, relative to root
		below   bool
		wantErr []string
	}{
		{name: "in the current directory", cwd: "proj", want: "proj/.sglr"},
		{name: "two levels up", cwd: "proj/a/b", want: "proj/.sglr"},
		{name: "inside the store itself", cwd: "deep/a/.sglr/x", want: "deep/a/.sglr"},
		{name: "a file named .sglr is passed over", cwd: "filestore/a", want: "filestore/.sglr"},
		{name: "the only store one level below", cwd: "one", want: "one/examples/.sglr", below: true},
		{name: "--store wins", cwd: "proj", store: "elsewhere", want: "elsewhere"},
		{name: "$SGLR_STORE next", cwd: "proj", env: "fromenv", want: "fromenv"},
		{name: "several below", cwd: "two", wantErr: []string{"2 below it", "x/.sglr, y/.sglr", "--store"}},
		{name: "none", cwd: "empty", wantErr: []string{"no store", filepath.Join(root, "empty"), "any directory above it", "one level below", "--store DIR", "$SGLR_STORE"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(storeEnv, tc.env)
			found, err := locateStore(&globalFlags{store: tc.store}, filepath.Join(root, tc.cwd))
			if len(tc.wantErr) > 0 {
				if err == nil {
					t.Fatalf("found %+v, want an error", found)
				}
				var usage *usageError
				if !asUsage(err, &usage) {
					t.Errorf("error %v is not a usage error", err)
				}
				for _, w := range tc.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q lacks %q", err, w)
					}
				}
				return
			}
			want := tc.want
			if tc.store == "" && tc.env == "" {
				want = filepath.Join(root, tc.want)
			}
			if err != nil || found.dir != want || found.below != tc.below {
				t.Errorf("found %+v, %v; want %s (below %v)", found, err, want, tc.below)
			}
		})
	}
}

// asUsage reports whether err is a *usageError, setting target.
func asUsage(err error, target **usageError) bool {
	u, ok := err.(*usageError)
	*target = u
	return ok
}

// TestCommandsFindTheStoreAbove runs the commands without a pipeline file
// from a subdirectory of the pipeline's, from its parent (the store one
// level below), and from a directory without any store.
func TestCommandsFindTheStoreAbove(t *testing.T) {
	dir, file := writePipeline(t, smallPipeline)
	skipIfStoreAbove(t, dir)
	mustSucceed(t, dir, "run", file)
	deeper := filepath.Join(dir, "notes", "today")
	mkdirs(t, dir, "notes/today")
	for _, args := range [][]string{
		{"show", "latest"}, {"runs"}, {"show", "stats.table"}, {"export", "stats.table", "--format", "csv"},
		{"cache", "ls"}, {"replay", "latest", "data"},
	} {
		r := mustSucceed(t, deeper, args...)
		if r.stderr != "" {
			t.Errorf("%v from a subdirectory wrote to stderr: %s", args, r.stderr)
		}
	}

	// From the parent, the store is one level below: used, and named.
	r := mustSucceed(t, filepath.Dir(dir), "runs")
	if want := "using store " + filepath.Join(filepath.Base(dir), ".sglr"); !strings.Contains(r.stderr, want) {
		t.Errorf("runs from the parent: stderr %q lacks %q", r.stderr, want)
	}

	// A run with a pipeline file keeps its store beside the file, whatever the
	// current directory holds.
	other := t.TempDir()
	mkdirs(t, other, ".sglr")
	mustSucceed(t, other, "run", file)
	if entries, _ := os.ReadDir(filepath.Join(other, ".sglr")); len(entries) != 0 {
		t.Errorf("run FILE wrote into the current directory's store: %v", entries)
	}

	nowhere := t.TempDir()
	r = sglr(t, nowhere, "show", "latest")
	if r.code != exitUsage || !strings.Contains(r.stderr, "no store: no .sglr directory in "+nowhere) {
		t.Errorf("show latest without a store: exit %d\n%s", r.code, r.stderr)
	}
}
