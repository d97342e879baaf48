package artifacts

import (
	"archive/zip"
	"bufio"
	"fmt"
	"io"
	"math"
	"strings"
)

// NumBatchesTrackedName is the last component of the name of a BatchNorm
// step counter ("layer1.0.bn1.num_batches_tracked"). PyTorch keeps it as an
// int64 scalar; a model artifact stores it as a float32 scalar, and ExportNPZ
// turns it back into int64.
const NumBatchesTrackedName = "num_batches_tracked"

// ExportNPZ writes the model artifact read from r as a NumPy .npz archive (a
// zip of stored, uncompressed .npy files) holding one array per tensor,
// named "<tensor name>.npy", in the model's tensor order. Tensors keep their
// PyTorch shape and are float32, except the BatchNorm counters
// (NumBatchesTrackedName), which become int64 scalars as in a PyTorch
// state_dict. So a model loads into PyTorch without torch.load:
//
//	sd = {k: torch.from_numpy(v) for k, v in np.load(f).items()}
//	model.load_state_dict(sd)
//
// Equal models give equal bytes. An artifact of another kind is an error
// wrapping ErrCorrupt that names its kind.
func ExportNPZ(r ReadAtSeeker, w io.Writer) error {
	m, err := ReadModel(r)
	if err != nil {
		return fmt.Errorf("export npz: %w", err)
	}
	if err := writeNPZ(w, m); err != nil {
		return fmt.Errorf("export npz: %w", err)
	}
	return nil
}

// writeNPZ writes the tensors of the (valid) model m as an .npz archive.
func writeNPZ(w io.Writer, m *Model) error {
	bw := bufio.NewWriterSize(w, 1<<20)
	zw := zip.NewWriter(bw)
	for i := range m.Tensors {
		t := &m.Tensors[i]
		// A zero Modified time keeps the archive free of timestamps.
		entry, err := zw.CreateHeader(&zip.FileHeader{Name: t.Name + ".npy", Method: zip.Store})
		if err != nil {
			return fmt.Errorf("tensor %q: %w", t.Name, err)
		}
		if err := writeTensorNPY(entry, t); err != nil {
			return fmt.Errorf("tensor %q: %w", t.Name, err)
		}
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return bw.Flush()
}

// writeTensorNPY writes t as one .npy file: float32 in its shape, or an
// int64 scalar for a BatchNorm counter.
func writeTensorNPY(w io.Writer, t *Tensor) error {
	if !isBatchCounter(t.Name) {
		if err := writeNPYHeader(w, "<f4", t.Shape); err != nil {
			return err
		}
		return writeLE(w, t.Data)
	}
	shape := t.Shape
	if len(t.Data) == 1 {
		shape = []int{}
	}
	counts := make([]int64, len(t.Data))
	for i, v := range t.Data {
		// float32 holds every integer up to 2^24 exactly; beyond int64's
		// range (or fractional) the value cannot be a step count.
		if v != float32(math.Trunc(float64(v))) || v < 0 || v >= math.MaxInt64 {
			return fmt.Errorf("value %v is not a non-negative integer batch count", v)
		}
		counts[i] = int64(v)
	}
	if err := writeNPYHeader(w, "<i8", shape); err != nil {
		return err
	}
	return writeLE(w, counts)
}

// isBatchCounter reports whether the tensor name ends in the BatchNorm
// counter's name.
func isBatchCounter(name string) bool {
	return name == NumBatchesTrackedName || strings.HasSuffix(name, "."+NumBatchesTrackedName)
}
