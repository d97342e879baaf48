package stages

import (
	"io"

	"github.com/sglr-pipe/sglr-pipe/artifacts"
)

// ReadFiles decodes the files artifact on the single-artifact input port.
func (e *Env) ReadFiles(port string) (*artifacts.Files, error) {
	return readInput(e, port, artifacts.KindFiles, artifacts.ReadFiles)
}

// ReadFileSets decodes every files artifact gathered on a Multi input port,
// in delivery order, with each one's matrix tags (axis -> value label).
func (e *Env) ReadFileSets(port string) ([]*artifacts.Files, []map[string]string, error) {
	return readGathered(e, port, artifacts.KindFiles, artifacts.ReadFiles)
}

// WriteFiles encodes the files f to the file of output port.
func (e *Env) WriteFiles(port string, f *artifacts.Files) error {
	return writeOutput(e, port, artifacts.KindFiles, func(w io.Writer) error { return artifacts.WriteFiles(w, f) })
}
