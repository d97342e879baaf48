package stages

import (
	"io"

	"github.com/sglr-pipe/sglr-pipe/artifacts"
)

// ReadModel decodes the model on the single-artifact input port.
func (e *Env) ReadModel(port string) (*artifacts.Model, error) {
	return readInput(e, port, "model", artifacts.ReadModel)
}

// WriteModel encodes m to the file of output port.
func (e *Env) WriteModel(port string, m *artifacts.Model) error {
	return writeOutput(e, port, "model", func(w io.Writer) error { return artifacts.WriteModel(w, m) })
}
