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

// NPZArchKey is the key, in a model's .npz archive, of the architecture: the
// artifact's Arch JSON (MetaArch) as a 1-D uint8 array of its UTF-8 bytes,
// stored as the zip entry "__arch__.json.npy". A uint8 array, unlike a
// string array, reads back byte-exact in every NumPy without allow_pickle
// (np.load(f)["__arch__.json"].tobytes().decode()), and torch.from_numpy
// accepts it, so a loop over np.load(f).items() does not fail on it. Keys
// beginning with "__" are the archive's metadata, never state_dict entries:
// bench/torch_models.py (load_npz, read_npz) skips them.
const NPZArchKey = "__arch__.json"

// npzMetaPrefix starts every metadata key of a model .npz; no tensor name
// may begin with it.
const npzMetaPrefix = "__"

// ExportNPZ writes the model artifact read from r as a NumPy .npz archive (a
// zip of stored, uncompressed .npy files) holding one array per tensor,
// named "<tensor name>.npy", in the model's tensor order, then the
// architecture under NPZArchKey. Tensors keep their PyTorch shape and are
// float32, except the BatchNorm counters (NumBatchesTrackedName), which
// become int64 scalars as in a PyTorch state_dict. So a model loads into
// PyTorch without torch.load and without restating its architecture:
//
//	import torch_models                      # bench/torch_models.py
//	model = torch_models.load_npz(f)         # built from __arch__.json, eval mode
//
// Equal models give equal bytes. An artifact of another kind is an error
// wrapping ErrCorrupt that names its kind; a tensor whose name begins with
// "__" (reserved for metadata) is an error naming it.
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

// writeNPZ writes the tensors of the (valid) model m, then its
// architecture, as an .npz archive.
func writeNPZ(w io.Writer, m *Model) error {
	bw := bufio.NewWriterSize(w, 1<<20)
	zw := zip.NewWriter(bw)
	for i := range m.Tensors {
		t := &m.Tensors[i]
		if strings.HasPrefix(t.Name, npzMetaPrefix) {
			return fmt.Errorf("tensor %q: names beginning with %q are reserved for the archive's metadata", t.Name, npzMetaPrefix)
		}
		entry, err := createNPZEntry(zw, t.Name)
		if err != nil {
			return fmt.Errorf("tensor %q: %w", t.Name, err)
		}
		if err := writeTensorNPY(entry, t); err != nil {
			return fmt.Errorf("tensor %q: %w", t.Name, err)
		}
	}
	entry, err := createNPZEntry(zw, NPZArchKey)
	if err == nil {
		arch := []byte(m.Arch)
		if err = writeNPYHeader(entry, "|u1", []int{len(arch)}); err == nil {
			_, err = entry.Write(arch)
		}
	}
	if err != nil {
		return fmt.Errorf("architecture %s: %w", NPZArchKey, err)
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return bw.Flush()
}

// createNPZEntry starts the stored (uncompressed) entry "<key>.npy", which
// np.load lists as key. A zero Modified time keeps the archive free of
// timestamps.
func createNPZEntry(zw *zip.Writer, key string) (io.Writer, error) {
	return zw.CreateHeader(&zip.FileHeader{Name: key + ".npy", Method: zip.Store})
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
