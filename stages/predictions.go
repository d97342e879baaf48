package stages

import (
	"io"

	"github.com/sglr-pipe/sglr-pipe/artifacts"
)

// ReadPredictions decodes the predictions on the single-artifact input port.
func (e *Env) ReadPredictions(port string) (*artifacts.Predictions, error) {
	return readInput(e, port, artifacts.KindPredictions, artifacts.ReadPredictions)
}

// ReadPredictionsAll decodes every predictions artifact gathered on a Multi
// input port, in delivery order, with each one's matrix tags (axis -> value
// label).
func (e *Env) ReadPredictionsAll(port string) ([]*artifacts.Predictions, []map[string]string, error) {
	return readGathered(e, port, artifacts.KindPredictions, artifacts.ReadPredictions)
}

// WritePredictions encodes p to the file of output port.
func (e *Env) WritePredictions(port string, p *artifacts.Predictions) error {
	return writeOutput(e, port, artifacts.KindPredictions, func(w io.Writer) error { return artifacts.WritePredictions(w, p) })
}
