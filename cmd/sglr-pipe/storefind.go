package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/sglr-pipe/sglr-pipe/artifacts"
)

// storeName is the directory name of a store beside its pipeline file.
const storeName = ".sglr"

// foundStore is where a command without a pipeline file found its store, and
// how (for the one case that deserves a note on stderr).
type foundStore struct {
	dir   string
	below bool // found one level below the current directory, not above it
}

// locateStore picks the store of a command that takes no pipeline file
// (show, runs, diff, export, replay, cache): --store, then $SGLR_STORE, then
// the nearest .sglr in the current directory or one above it, as git finds
// .git; failing that, the only .sglr one level below the current directory
// (from a repository's root, the quickstart's examples/.sglr). It returns a
// usage error naming where it looked when there is none, or when several lie
// below and none above.
func locateStore(g *globalFlags, cwd string) (foundStore, error) {
	if g.store != "" {
		return foundStore{dir: g.store}, nil
	}
	if env := os.Getenv(storeEnv); env != "" {
		return foundStore{dir: env}, nil
	}
	abs, err := filepath.Abs(cwd)
	if err != nil {
		return foundStore{}, fmt.Errorf("find store: %w", err)
	}
	for d := abs; ; d = filepath.Dir(d) {
		if isDirectory(filepath.Join(d, storeName)) {
			return foundStore{dir: filepath.Join(d, storeName)}, nil
		}
		if filepath.Dir(d) == d {
			break
		}
	}
	below, err := storesBelow(abs)
	if err != nil {
		return foundStore{}, err
	}
	switch len(below) {
	case 1:
		return foundStore{dir: below[0], below: true}, nil
	case 0:
		return foundStore{}, &usageError{command: "sglr-pipe", msg: fmt.Sprintf(
			"no store: no %s directory in %s, in any directory above it, or one level below it "+
				"(pass --store DIR or set $%s; 'sglr-pipe run FILE' makes one beside FILE)", storeName, abs, storeEnv)}
	default:
		rel := make([]string, len(below))
		for i, b := range below {
			rel[i] = relativeTo(abs, b)
		}
		return foundStore{}, &usageError{command: "sglr-pipe", msg: fmt.Sprintf(
			"no %s directory in %s or above it, and %d below it (%s): pass --store DIR or run from the one you mean",
			storeName, abs, len(below), strings.Join(rel, ", "))}
	}
}

// storesBelow lists the stores one level below dir (dir/*/.sglr), sorted.
func storesBelow(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("find store below %s: %w", dir, err)
	}
	var found []string
	for _, e := range entries {
		if !e.IsDir() || e.Name() == storeName {
			continue
		}
		if p := filepath.Join(dir, e.Name(), storeName); isDirectory(p) {
			found = append(found, p)
		}
	}
	sort.Strings(found)
	return found, nil
}

// isDirectory reports whether path is a directory (following a link, as a
// store given by --store would be).
func isDirectory(path string) bool {
	info, err := os.Stat(path)
	return err == nil && info.IsDir()
}

// relativeTo shows path relative to base when it lies below it.
func relativeTo(base, path string) string {
	if rel, err := filepath.Rel(base, path); err == nil && !strings.HasPrefix(rel, "..") {
		return rel
	}
	return path
}

// openExistingStore opens the store for a command that takes no pipeline
// file (see locateStore), and refuses a directory that does not exist rather
// than creating an empty store. A store found below the current directory is
// named on stderr, since nothing on the command line pointed at it.
func openExistingStore(cmd *cobra.Command, g *globalFlags) (*artifacts.DirStore, error) {
	cwd, err := os.Getwd()
	if err != nil {
		return nil, fmt.Errorf("find store: %w", err)
	}
	found, err := locateStore(g, cwd)
	if err != nil {
		return nil, err
	}
	info, err := os.Stat(found.dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, &usageError{command: "sglr-pipe", msg: fmt.Sprintf("no store at %s (pass --store DIR or set $%s)", found.dir, storeEnv)}
		}
		return nil, fmt.Errorf("store %s: %w", found.dir, err)
	}
	if !info.IsDir() {
		return nil, &usageError{command: "sglr-pipe", msg: fmt.Sprintf("store %s is not a directory", found.dir)}
	}
	if found.below {
		fmt.Fprintf(cmd.ErrOrStderr(), "sglr-pipe: using store %s (none in %s or above it)\n", relativeTo(cwd, found.dir), cwd)
	}
	return artifacts.OpenDir(found.dir)
}
