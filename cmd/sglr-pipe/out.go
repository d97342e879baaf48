package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"unicode"

	"github.com/sglr-pipe/sglr-pipe/artifacts"
	"github.com/sglr-pipe/sglr-pipe/pipeline"
)

// defaultOutDir is where `run` materialises report files unless --out says otherwise.
const defaultOutDir = "results"

// latestLink is the name of the link in results/<pipeline>/ that points at
// the newest run's report directory.
const latestLink = "latest"

// writtenFiles is one files artifact written out by `run --out`.
type writtenFiles struct {
	Instance string
	Port     string
	Dir      string // the directory its files went to
	Files    int
}

// outReport is what `run --out` wrote: the report directories, and the
// latest link when it now points at this run.
type outReport struct {
	Written []writtenFiles
	Latest  string // DIR/<pipeline>/latest, when this run set it
	RunDir  string // what Latest points at: the run's directory name
	// Warning says why the latest link could not be set: the files are
	// written, so that costs the run nothing but a note.
	Warning error
}

// writeOutFiles writes the files of every `files` artifact that an instance
// of the run produced or found cached to
// dir/<pipeline name>/<run id>/<instance id>/<name> (a further /<port>
// level when a stage has several files outputs), so that every run keeps
// its own reports, and then points dir/<pipeline name>/latest at the run's
// directory (see pointLatest). Each file is written to a temporary file
// beside it and renamed, so a reader never sees half a file. Errors name
// the instance and the file.
func writeOutFiles(dir string, p *pipeline.Pipeline, run *artifacts.Run, store artifacts.Store) (outReport, error) {
	var rep outReport
	if dir == "" || run == nil {
		return rep, nil
	}
	name := run.Name
	if name == "" {
		name = strings.TrimSuffix(filepath.Base(p.File), filepath.Ext(p.File))
	}
	base := filepath.Join(dir, pathElement(name))
	var errs []error
	for _, in := range run.Instances {
		if in.Status != pipeline.StatusRan && in.Status != pipeline.StatusCached {
			continue
		}
		n, ok := p.Node(in.ID)
		if !ok {
			continue
		}
		var ports []string
		for _, port := range n.Spec.Outputs {
			if _, ok := in.Outputs[port.Name]; ok && port.Kind == artifacts.KindFiles {
				ports = append(ports, port.Name)
			}
		}
		for _, port := range ports {
			target := filepath.Join(base, pathElement(run.ID), pathElement(in.ID))
			if len(ports) > 1 {
				target = filepath.Join(target, pathElement(port))
			}
			count, err := writeFilesArtifact(target, store, in.Outputs[port])
			if err != nil {
				errs = append(errs, fmt.Errorf("--out: %s.%s: %w", in.ID, port, err))
				continue
			}
			rep.Written = append(rep.Written, writtenFiles{Instance: in.ID, Port: port, Dir: target, Files: count})
		}
	}
	if len(rep.Written) > 0 {
		set, err := pointLatest(base, pathElement(run.ID))
		switch {
		case err != nil:
			rep.Warning = fmt.Errorf("--out: %w", err)
		case set:
			rep.Latest, rep.RunDir = filepath.Join(base, latestLink), pathElement(run.ID)
		}
	}
	return rep, errors.Join(errs...)
}

// pointLatest makes base/latest a relative link to base/runDir, replacing
// the old link atomically: the new link is made under a temporary name and
// renamed over it, so a reader always finds one run's complete directory.
// A link that already points at a run that started in a later second (a
// concurrent run that finished writing first) is left alone, and set
// reports false; within one second the last to finish wins. A latest that
// is not a link is not replaced.
func pointLatest(base, runDir string) (set bool, err error) {
	link := filepath.Join(base, latestLink)
	if info, err := os.Lstat(link); err == nil && info.Mode()&fs.ModeSymlink == 0 {
		return false, fmt.Errorf("%s is not a link (a directory of an older layout?): not pointing it at %s", link, runDir)
	}
	if cur, err := os.Readlink(link); err == nil && runIDSecond(cur) > runIDSecond(runDir) && isDirectory(filepath.Join(base, cur)) {
		return false, nil
	}
	tmp, err := os.MkdirTemp(base, ".latest-")
	if err != nil {
		return false, fmt.Errorf("point %s at %s: %w", link, runDir, err)
	}
	defer os.RemoveAll(tmp)
	next := filepath.Join(tmp, latestLink)
	if err := os.Symlink(runDir, next); err != nil {
		return false, fmt.Errorf("point %s at %s: %w", link, runDir, err)
	}
	if err := os.Rename(next, link); err != nil {
		return false, fmt.Errorf("point %s at %s: %w", link, runDir, err)
	}
	return true, nil
}

// printOutFiles tells where the files went, and where latest points.
func printOutFiles(w io.Writer, rep outReport) {
	if len(rep.Written) > 0 {
		fmt.Fprintln(w)
	}
	for _, wf := range rep.Written {
		fmt.Fprintf(w, "%s.%s: %d files in %s\n", wf.Instance, wf.Port, wf.Files, wf.Dir)
	}
	if rep.Latest != "" {
		fmt.Fprintf(w, "%s -> %s\n", rep.Latest, rep.RunDir)
	}
}

// writeFilesArtifact writes every file of the stored artifact d below dir.
func writeFilesArtifact(dir string, store artifacts.Store, d artifacts.Digest) (int, error) {
	path, err := store.Path(d)
	if err != nil {
		return 0, err
	}
	files, err := artifacts.DecodeObject(path, d, artifacts.ReadFiles) // validates the names: clean, relative, no ".."
	if err != nil {
		return 0, err
	}
	for i, name := range files.Names {
		if err := writeFile(filepath.Join(dir, filepath.FromSlash(name)), files.Data[i]); err != nil {
			return 0, err
		}
	}
	return files.Len(), nil
}

// writeFile writes data to path atomically, creating path's directory.
func writeFile(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	if err := artifacts.WriteFileAtomic(path, data, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// pathElement makes an instance id or pipeline name usable as one directory
// name: path separators, colons and control characters become "_", and "."
// or ".." become "_".
func pathElement(s string) string {
	out := strings.Map(func(r rune) rune {
		if r == '/' || r == '\\' || r == ':' || unicode.IsControl(r) {
			return '_'
		}
		return r
	}, s)
	if out == "" || out == "." || out == ".." {
		return "_"
	}
	return out
}

// runIDSecond is the time part of a run id (before the dash): ids made by
// artifacts.NewRunID sort by it.
func runIDSecond(id string) string {
	second, _, _ := strings.Cut(id, "-")
	return second
}
