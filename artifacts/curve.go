package artifacts

import (
	"fmt"
	"io"
)

// KindCurve is the kind of a per-epoch training curve: a table with one row
// per epoch. It is encoded exactly as a table but carries its own kind, so
// that a pipeline cannot feed a curve where a metrics table is expected (or
// the reverse) and stages that summarise training can ask for curves by kind.
const KindCurve = "curve"

// ColEpoch is the column every curve carries: the 1-based epoch of each row.
const ColEpoch = "epoch"

// The value columns of a training curve (the train stage's curve output), in
// order; the stages that read curves (best-final, report) find them by these
// names.
const (
	ColLR             = "lr"
	ColTrainLoss      = "train_loss"
	ColTrainCleanAcc  = "train_clean_acc"
	ColTrainRobustAcc = "train_robust_acc"
	ColValCleanAcc    = "val_clean_acc"
	ColValRobustAcc   = "val_robust_acc"
	// ColRecovered is the share of flipped training labels whose current
	// target (the SGLR bank, or the fixed targets) has its argmax at the clean
	// label; NaN when the training set does not record which labels are flipped.
	ColRecovered = "recovered"
)

// WriteCurve encodes the curve c (a Table whose rows are epochs) as an Arrow
// IPC file of kind "curve", with the same column encoding as WriteTable. c
// must validate as a table and hold an int64 "epoch" column.
func WriteCurve(w io.Writer, c *Table) error {
	if err := ValidateCurve(c); err != nil {
		return fmt.Errorf("write curve: %w", err)
	}
	return writeColumnTable(w, KindCurve, c)
}

// ReadCurve decodes a curve artifact; a bad file, a file of another kind or a
// curve without an int64 "epoch" column gives an error wrapping ErrCorrupt.
func ReadCurve(r ReadAtSeeker) (*Table, error) {
	c, err := readColumnTable(r, KindCurve, ValidateCurve)
	if err != nil {
		return nil, fmt.Errorf("read curve: %w", err)
	}
	return c, nil
}

// ReadCurveFile reads the curve artifact at path.
func ReadCurveFile(path string) (*Table, error) { return readFile(path, ReadCurve) }

// ValidateCurve checks that c is a valid table with an int64 "epoch" column.
func ValidateCurve(c *Table) error {
	if err := c.Validate(); err != nil {
		return err
	}
	col := c.Column(ColEpoch)
	if col == nil || col.Ints == nil {
		return fmt.Errorf("curve has no int64 %q column", ColEpoch)
	}
	return nil
}
