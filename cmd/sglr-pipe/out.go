package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"unicode"

	"github.com/sglr-pipe/sglr-pipe/artifacts"
	"github.com/sglr-pipe/sglr-pipe/pipeline"
)

// defaultOutDir is where `run` materialises report files unless --out says otherwise.
const defaultOutDir = "results"

// writtenFiles is one files artifact written out by `run --out`.
type writtenFiles struct {
	Instance string
	Port     string
	Dir      string // the directory its files went to
	Files    int
}

// writeOutFiles writes the files of every `files` artifact that an instance
// of the run produced or found cached to
// dir/<pipeline name>/<instance id>/<name> (a further /<port> level when a
// stage has several files outputs). Each file is written to a temporary file
// beside it and renamed, so a reader never sees half a file. It returns what
// it wrote; errors name the instance and the file.
func writeOutFiles(dir string, p *pipeline.Pipeline, run *artifacts.Run, store artifacts.Store) ([]writtenFiles, error) {
	if dir == "" || run == nil {
		return nil, nil
	}
	name := run.Name
	if name == "" {
		name = strings.TrimSuffix(filepath.Base(p.File), filepath.Ext(p.File))
	}
	var written []writtenFiles
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
			target := filepath.Join(dir, pathElement(name), pathElement(in.ID))
			if len(ports) > 1 {
				target = filepath.Join(target, pathElement(port))
			}
			count, err := writeFilesArtifact(target, store, in.Outputs[port])
			if err != nil {
				errs = append(errs, fmt.Errorf("--out: %s.%s: %w", in.ID, port, err))
				continue
			}
			written = append(written, writtenFiles{Instance: in.ID, Port: port, Dir: target, Files: count})
		}
	}
	return written, errors.Join(errs...)
}

// printOutFiles tells where the files went.
func printOutFiles(w io.Writer, written []writtenFiles) {
	if len(written) > 0 {
		fmt.Fprintln(w)
	}
	for _, wf := range written {
		fmt.Fprintf(w, "%s.%s: %d files in %s\n", wf.Instance, wf.Port, wf.Files, wf.Dir)
	}
}

// printFilesTable prints the table.md of a stored files artifact, if it has one.
func printFilesTable(w io.Writer, store artifacts.Store, d artifacts.Digest) error {
	path, err := store.Path(d)
	if err != nil {
		return err
	}
	files, err := artifacts.DecodeObject(path, d, artifacts.ReadFiles)
	if err != nil {
		return err
	}
	if md, ok := files.File("table.md"); ok {
		fmt.Fprint(w, ensureNewline(string(md)))
	}
	return nil
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
