package train

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/sglr-pipe/sglr-pipe/artifacts"
	"github.com/sglr-pipe/sglr-pipe/nn"
)

// ModelArtifact turns trained weights into a model artifact: the
// architecture as JSON (nn.Arch's field order, so equal weights give equal
// bytes) and one tensor per parameter, in state_dict order, with names,
// shapes and buffer flags unchanged. The tensors share w's data; meta (may be
// nil) becomes the artifact's provenance.
func ModelArtifact(w *nn.Weights, meta map[string]string) (*artifacts.Model, error) {
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
// can run: the architecture must be a known nn.Arch (unknown fields are an
// error, so an artifact from a newer build is not silently misread) and the
// tensors must be exactly the ones that architecture needs, in order. The
// weights share m's tensor data.
func WeightsFromArtifact(m *artifacts.Model) (*nn.Weights, error) {
	if m == nil {
		return nil, fmt.Errorf("weights from model: model is nil")
	}
	dec := json.NewDecoder(bytes.NewReader([]byte(m.Arch)))
	dec.DisallowUnknownFields()
	var arch nn.Arch
	if err := dec.Decode(&arch); err != nil {
		return nil, fmt.Errorf("weights from model: architecture %q: %w", abbreviate(m.Arch), err)
	}
	w := &nn.Weights{Arch: arch, Params: make([]*nn.Param, len(m.Tensors))}
	for i, t := range m.Tensors {
		w.Params[i] = &nn.Param{Name: t.Name, Shape: slices.Clone(t.Shape), Data: t.Data, Buffer: t.Buffer}
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
