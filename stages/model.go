package stages

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"slices"

	"github.com/sglr-pipe/sglr-pipe/artifacts"
	"github.com/sglr-pipe/sglr-pipe/nn/model"
)

// ReadModel decodes the model on the single-artifact input port.
func (e *Env) ReadModel(port string) (*artifacts.Model, error) {
	return readInput(e, port, "model", artifacts.ReadModel)
}

// ReadModels decodes every model gathered on a Multi input port, in delivery
// order, with each one's matrix tags.
func (e *Env) ReadModels(port string) ([]*artifacts.Model, []map[string]string, error) {
	return readGathered(e, port, "model", artifacts.ReadModel)
}

// WriteModel encodes m to the file of output port.
func (e *Env) WriteModel(port string, m *artifacts.Model) error {
	return writeOutput(e, port, "model", func(w io.Writer) error { return artifacts.WriteModel(w, m) })
}

// ModelArtifact turns trained weights into a model artifact: the
// architecture as JSON (model.Arch's field order, so equal weights give equal
// bytes) and one tensor per parameter, in state_dict order, with names,
// shapes and buffer flags unchanged. The tensors share w's data; meta (may be
// nil) becomes the artifact's provenance.
func ModelArtifact(w *model.Weights, meta map[string]string) (*artifacts.Model, error) {
	if err := w.Validate(); err != nil {
		return nil, fmt.Errorf("model artifact: %w", err)
	}
	arch, err := json.Marshal(w.Arch)
	if err != nil {
		return nil, fmt.Errorf("model artifact: encode architecture: %w", err)
	}
	m := &artifacts.Model{Arch: string(arch), Tensors: make([]artifacts.Tensor, len(w.Params))}
	if len(meta) > 0 {
		m.Meta = meta
	}
	for i, p := range w.Params {
		m.Tensors[i] = artifacts.Tensor{Name: p.Name, Shape: slices.Clone(p.Shape), Data: p.Data, Buffer: p.Buffer}
	}
	return m, nil
}

// WeightsFromArtifact decodes a model artifact into weights the nn package
// can run: the architecture must be a known model.Arch (unknown fields are an
// error, so an artifact from a newer build is not silently misread) and the
// tensors must be exactly the ones that architecture needs, in order. The
// weights share m's tensor data.
func WeightsFromArtifact(m *artifacts.Model) (*model.Weights, error) {
	if m == nil {
		return nil, fmt.Errorf("weights from model: model is nil")
	}
	dec := json.NewDecoder(bytes.NewReader([]byte(m.Arch)))
	dec.DisallowUnknownFields()
	var arch model.Arch
	if err := dec.Decode(&arch); err != nil {
		return nil, fmt.Errorf("weights from model: architecture %q: %w", abbreviate(m.Arch), err)
	}
	w := &model.Weights{Arch: arch, Params: make([]*model.Param, len(m.Tensors))}
	for i, t := range m.Tensors {
		w.Params[i] = &model.Param{Name: t.Name, Shape: slices.Clone(t.Shape), Data: t.Data, Buffer: t.Buffer}
	}
	if err := w.Validate(); err != nil {
		return nil, fmt.Errorf("weights from model (%s): %w", arch.Kind, err)
	}
	return w, nil
}

// abbreviate shortens s for an error message.
func abbreviate(s string) string {
	const limit = 120
	if len(s) <= limit {
		return s
	}
	return s[:limit] + "…"
}
