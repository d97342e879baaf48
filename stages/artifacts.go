package stages

import (
	"fmt"
	"io"
	"os"

	"github.com/sglr-pipe/sglr-pipe/artifacts"
)

// Typed readers and writers of artifacts on an Env's ports, so that a stage
// deals in artifacts.Dataset, Labels and Table values instead of files. Every
// error names the port (and, for a gathered input, which artifact); the
// executor adds the stage and the run the instance.

// ReadDataset decodes the dataset on the single-artifact input port.
func (e *Env) ReadDataset(port string) (*artifacts.Dataset, error) {
	return readInput(e, port, "dataset", artifacts.ReadDataset)
}

// ReadLabels decodes the labels on the single-artifact input port.
func (e *Env) ReadLabels(port string) (*artifacts.Labels, error) {
	return readInput(e, port, "labels", artifacts.ReadLabels)
}

// ReadTable decodes the table on the single-artifact input port.
func (e *Env) ReadTable(port string) (*artifacts.Table, error) {
	return readInput(e, port, "table", artifacts.ReadTable)
}

// ReadDatasets decodes every dataset gathered on a Multi input port, in
// delivery order, with each one's matrix tags (axis -> value label).
func (e *Env) ReadDatasets(port string) ([]*artifacts.Dataset, []map[string]string, error) {
	return readGathered(e, port, "dataset", artifacts.ReadDataset)
}

// ReadTables decodes every table gathered on a Multi input port, in delivery
// order, with each one's matrix tags.
func (e *Env) ReadTables(port string) ([]*artifacts.Table, []map[string]string, error) {
	return readGathered(e, port, "table", artifacts.ReadTable)
}

// WriteDataset encodes d to the file of output port.
func (e *Env) WriteDataset(port string, d *artifacts.Dataset) error {
	return writeOutput(e, port, "dataset", func(w io.Writer) error { return artifacts.WriteDataset(w, d) })
}

// WriteLabels encodes l to the file of output port.
func (e *Env) WriteLabels(port string, l *artifacts.Labels) error {
	return writeOutput(e, port, "labels", func(w io.Writer) error { return artifacts.WriteLabels(w, l) })
}

// WriteTable encodes t to the file of output port.
func (e *Env) WriteTable(port string, t *artifacts.Table) error {
	return writeOutput(e, port, "table", func(w io.Writer) error { return artifacts.WriteTable(w, t) })
}

// readInput decodes the single artifact on port with decode, after checking
// its bytes against the digest it was delivered under (see ReadInput).
func readInput[T any](e *Env, port, kind string, decode func(artifacts.ReadAtSeeker) (T, error)) (T, error) {
	in, err := e.Input(port)
	if err != nil {
		var zero T
		return zero, err
	}
	v, err := ReadInput(in, decode)
	if err != nil {
		var zero T
		return zero, fmt.Errorf("input %q (%s %s): %w", port, kind, in.Digest, err)
	}
	return v, nil
}

func readGathered[T any](e *Env, port, kind string, decode func(artifacts.ReadAtSeeker) (T, error)) ([]T, []map[string]string, error) {
	ins := e.Inputs[port]
	if len(ins) == 0 {
		return nil, nil, fmt.Errorf("input %q is not connected", port)
	}
	values := make([]T, len(ins))
	tags := make([]map[string]string, len(ins))
	for i, in := range ins {
		v, err := ReadInput(in, decode)
		if err != nil {
			return nil, nil, fmt.Errorf("input %q, %s %d of %d (%s, tags %v): %w",
				port, kind, i+1, len(ins), in.Digest, in.Tags, err)
		}
		values[i], tags[i] = v, in.Tags
	}
	return values, tags, nil
}

// ReadInput decodes one delivered artifact with decode (artifacts.ReadDataset,
// ReadModel, …). The file is hashed as it is read and must match in.Digest:
// a changed object gives an error wrapping *artifacts.DigestError, which the
// pipeline answers by rebuilding the object's producer.
func ReadInput[T any](in Input, decode func(artifacts.ReadAtSeeker) (T, error)) (T, error) {
	if in.Digest == "" {
		var zero T
		return zero, fmt.Errorf("%s: delivered without a digest, so it cannot be checked", in.Path)
	}
	return artifacts.DecodeObject(in.Path, in.Digest, decode)
}

// InputFile hashes the file at path and returns it as an Input, for running
// a stage outside a pipeline (tests, tools) on a file that is not in a store.
func InputFile(path string, tags map[string]string) (Input, error) {
	d, err := artifacts.FileDigest(path)
	if err != nil {
		return Input{}, err
	}
	return Input{Digest: d, Path: path, Tags: tags}, nil
}

func writeOutput(e *Env, port, kind string, encode func(io.Writer) error) error {
	f, err := e.CreateOutput(port)
	if err != nil {
		return err
	}
	err = encode(f) // the encoders buffer their writes
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name()) // no half output for the pipeline to ingest
		return fmt.Errorf("output %q (%s): %w", port, kind, err)
	}
	return nil
}
