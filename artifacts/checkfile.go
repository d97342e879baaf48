package artifacts

import (
	"errors"
	"fmt"

	"github.com/apache/arrow/go/v15/arrow"
)

// CheckFile decodes the file at path as an artifact of kind, the kind of the
// port it was written for, and returns the digest of the bytes it decoded.
// It refuses anything but a regular file (a symbolic link is refused, not
// followed), an empty file, a file of another kind or format version, and
// one that does not decode; each error wraps ErrCorrupt. Outputs are checked
// this way before they enter the store, so a bad output fails the stage that
// wrote it instead of every stage that reads it.
func CheckFile(path, kind string) (Digest, error) {
	f, info, err := openRegular(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	if info.Size() == 0 {
		return "", fmt.Errorf("%s is empty: %w", path, ErrCorrupt)
	}
	r := newCheckedReader(f, info.Size())
	decodeErr := CheckArtifact(kind, r)
	d, err := r.finish()
	if err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	if decodeErr != nil {
		return "", decodeErr
	}
	return d, nil
}

// CheckArtifact decodes r as an artifact of kind and discards the value. A
// kind this package does not know (a plugin's own) must still be an Arrow IPC
// file whose metadata names that kind and this format version, with record
// batches that decode.
func CheckArtifact(kind string, r ReadAtSeeker) error {
	if kind == "" {
		return errors.New("check artifact: no kind")
	}
	var err error
	switch kind {
	case KindDataset:
		_, err = ReadDataset(r)
	case KindLabels:
		_, err = ReadLabels(r)
	case KindTable:
		_, err = ReadTable(r)
	case KindCurve:
		_, err = ReadCurve(r)
	case KindModel:
		_, err = ReadModel(r)
	case KindPredictions:
		_, err = ReadPredictions(r)
	case KindFiles:
		_, err = ReadFiles(r)
	default:
		err = decodeIPC(r, kind, func(f *ipcFile) error {
			return f.eachRecord(func(arrow.Record) error { return nil })
		})
	}
	return err
}
