package artifacts

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strconv"

	"github.com/apache/arrow/go/v15/arrow"
)

// KindModel is the kind of a trained-model artifact.
const KindModel = "model"

// Metadata keys of a model artifact. MetaArch sits in the schema metadata;
// the tensor keys sit in each column's field metadata.
const (
	MetaArch = "sglr.arch" // the architecture spec, JSON
	// MetaTensorShape is a tensor's shape as comma-separated dimensions
	// ("64,3,3,3"); it is empty for a scalar (shape []).
	MetaTensorShape = "sglr.shape"
	// MetaTensorBuffer is "true" for a buffer (state not trained by gradient
	// descent, e.g. BatchNorm running statistics) and "false" otherwise.
	MetaTensorBuffer = "sglr.buffer"
)

// Model is a network's architecture and full state. Its tensors are named
// and laid out as in the equivalent PyTorch module's state_dict, in
// state_dict order, so that the model exports to PyTorch without renaming
// (see ExportNPZ and bench/torch_models.py).
type Model struct {
	Arch    string            // the architecture spec as JSON (e.g. {"kind":"mlp",...})
	Tensors []Tensor          // at least one, names unique
	Meta    map[string]string // free-form provenance, stored as sorted schema metadata
}

// Tensor is one named weight or buffer tensor of a Model.
type Tensor struct {
	Name   string    // the state_dict key, e.g. "layer1.0.bn1.running_mean"
	Shape  []int     // PyTorch layout; [] for a scalar
	Data   []float32 // row-major (C order), len = prod(Shape) (1 for a scalar)
	Buffer bool      // true for state that gradient descent does not train
}

// WriteModel encodes m as an Arrow IPC file of one record batch with one
// row: one FixedSizeList<float32>(numel) column per tensor, in order, named
// by the tensor name, with the shape and buffer flag in the field metadata;
// the architecture and Meta go to the schema metadata. Equal models give
// equal bytes. m is validated first (see Model.Validate).
func WriteModel(w io.Writer, m *Model) error {
	if err := m.Validate(); err != nil {
		return fmt.Errorf("write model: %w", err)
	}
	meta := map[string]string{MetaArch: m.Arch}
	userMeta(m.Meta, meta)
	fields := make([]arrow.Field, len(m.Tensors))
	cols := make([]arrow.Array, len(m.Tensors))
	for i, t := range m.Tensors {
		numel := t.Numel()
		fieldMeta := sortedMetadata(map[string]string{
			MetaTensorShape:  formatShape(t.Shape),
			MetaTensorBuffer: strconv.FormatBool(t.Buffer),
		})
		fields[i] = arrow.Field{
			Name:     t.Name,
			Type:     arrow.FixedSizeListOfNonNullable(int32(numel), arrow.PrimitiveTypes.Float32),
			Metadata: fieldMeta,
		}
		cols[i] = float32ListArray(t.Data, 1, numel)
	}
	defer releaseAll(cols)
	return writeIPC(w, KindModel, fields, cols, 1, meta)
}

// ReadModel decodes a model artifact and validates it. A file that is not a
// valid model (foreign, truncated, inconsistent) gives an error wrapping
// ErrCorrupt.
func ReadModel(r ReadAtSeeker) (*Model, error) {
	var m Model
	err := decodeIPC(r, KindModel, func(f *ipcFile) error {
		arch, ok := f.meta[MetaArch]
		if !ok {
			return corruptf("no %s metadata", MetaArch)
		}
		m.Arch = arch
		m.Tensors = make([]Tensor, f.schema.NumFields())
		sizes := make([]int, len(m.Tensors))
		for i, field := range f.schema.Fields() {
			t, err := tensorOfField(field)
			if err != nil {
				return err
			}
			m.Tensors[i], sizes[i] = t, t.Numel()
		}
		if n := f.reader.NumRecords(); n != 1 {
			return corruptf("model has %d record batches, want 1", n)
		}
		err := f.eachRecord(func(rec arrow.Record) error {
			if rows := rec.NumRows(); rows != 1 {
				return corruptf("model record batch has %d rows, want 1", rows)
			}
			for i := range m.Tensors {
				t := &m.Tensors[i]
				data, err := appendFloat32Lists(nil, rec.Column(i), t.Name, sizes[i])
				if err != nil {
					return err
				}
				t.Data = data
			}
			return nil
		})
		if err != nil {
			return err
		}
		m.Meta = f.userMeta()
		if err := m.Validate(); err != nil {
			return corruptf("%v", err)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read model: %w", err)
	}
	return &m, nil
}

// ReadModelFile reads the model artifact at path.
func ReadModelFile(path string) (*Model, error) { return readFile(path, ReadModel) }

// Numel is the number of values of t: prod(Shape), 1 for a scalar, and 0
// when a dimension is not positive or the product exceeds 2^31-1.
func (t *Tensor) Numel() int {
	n := 1
	for _, s := range t.Shape {
		if s <= 0 || n > maxSampleSize/s {
			return 0
		}
		n *= s
	}
	return n
}

// Tensor returns the tensor called name, or nil when m has none.
func (m *Model) Tensor(name string) *Tensor {
	for i := range m.Tensors {
		if m.Tensors[i].Name == name {
			return &m.Tensors[i]
		}
	}
	return nil
}

// Validate checks that m is self-consistent: an architecture that is valid
// JSON, at least one tensor, unique non-empty names, positive dimensions,
// len(Data) = prod(Shape), and only finite values.
func (m *Model) Validate() error {
	if m == nil {
		return errors.New("model is nil")
	}
	if m.Arch == "" {
		return errors.New("model has no architecture")
	}
	if !json.Valid([]byte(m.Arch)) {
		return fmt.Errorf("model architecture %q is not valid JSON", abbreviate(m.Arch))
	}
	if len(m.Tensors) == 0 {
		return errors.New("model has no tensors")
	}
	seen := make(map[string]int, len(m.Tensors))
	for i := range m.Tensors {
		t := &m.Tensors[i]
		if t.Name == "" {
			return fmt.Errorf("tensor %d has no name", i)
		}
		if j, dup := seen[t.Name]; dup {
			return fmt.Errorf("tensors %d and %d are both named %q", j, i, t.Name)
		}
		seen[t.Name] = i
		numel := t.Numel()
		if numel == 0 {
			return fmt.Errorf("tensor %q has shape %v: want positive dimensions with a product below 2^31", t.Name, t.Shape)
		}
		if len(t.Data) != numel {
			return fmt.Errorf("tensor %q has %d values, shape %v needs %d", t.Name, len(t.Data), t.Shape, numel)
		}
		for j, v := range t.Data {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return fmt.Errorf("tensor %q: value %d is %v, not finite", t.Name, j, v)
			}
		}
	}
	return checkMeta(m.Meta)
}

// tensorOfField reads a tensor's name, shape and buffer flag from its column
// (the data is filled in later) and checks the column type agrees.
func tensorOfField(field arrow.Field) (Tensor, error) {
	t := Tensor{Name: field.Name}
	if !field.HasMetadata() {
		return t, corruptf("tensor %q has no field metadata", field.Name)
	}
	shapeText, ok := field.Metadata.GetValue(MetaTensorShape)
	if !ok {
		return t, corruptf("tensor %q has no %s metadata", field.Name, MetaTensorShape)
	}
	t.Shape = []int{}
	if shapeText != "" {
		shape, err := parseShape(shapeText)
		if err != nil {
			return t, corruptf("tensor %q: %s %v", field.Name, MetaTensorShape, err)
		}
		t.Shape = shape
	}
	buffer, ok := field.Metadata.GetValue(MetaTensorBuffer)
	if !ok {
		return t, corruptf("tensor %q has no %s metadata", field.Name, MetaTensorBuffer)
	}
	switch buffer {
	case "true":
		t.Buffer = true
	case "false":
	default:
		return t, corruptf("tensor %q: %s is %q, want true or false", field.Name, MetaTensorBuffer, buffer)
	}
	numel := t.Numel()
	if numel == 0 {
		return t, corruptf("tensor %q: shape %v is too large", field.Name, t.Shape)
	}
	if size, ok := isFloat32List(field.Type); !ok || size != numel {
		return t, corruptf("tensor %q has type %s, want fixed_size_list<float32>[%d] for shape %v",
			field.Name, field.Type, numel, t.Shape)
	}
	return t, nil
}

// sortedMetadata turns m into Arrow metadata with sorted keys, so that equal
// maps always encode to equal bytes.
func sortedMetadata(m map[string]string) arrow.Metadata {
	keys := slices.Sorted(maps.Keys(m))
	values := make([]string, len(keys))
	for i, k := range keys {
		values[i] = m[k]
	}
	return arrow.NewMetadata(keys, values)
}
