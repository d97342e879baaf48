package stages

import (
	"io"

	"github.com/sglr-pipe/sglr-pipe/artifacts"
)

// ReadCurve decodes the curve (a per-epoch table) on the single-artifact
// input port.
func (e *Env) ReadCurve(port string) (*artifacts.Table, error) {
	return readInput(e, port, artifacts.KindCurve, artifacts.ReadCurve)
}

// ReadCurves decodes every curve gathered on a Multi input port, in delivery
// order, with each one's matrix tags (axis -> value label).
func (e *Env) ReadCurves(port string) ([]*artifacts.Table, []map[string]string, error) {
	return readGathered(e, port, artifacts.KindCurve, artifacts.ReadCurve)
}

// WriteCurve encodes the curve c to the file of output port.
func (e *Env) WriteCurve(port string, c *artifacts.Table) error {
	return writeOutput(e, port, artifacts.KindCurve, func(w io.Writer) error { return artifacts.WriteCurve(w, c) })
}
