package artifacts

import (
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"

	"github.com/apache/arrow/go/v15/arrow"
)

// MetaNumClasses is the schema metadata key holding K for a labels artifact.
const MetaNumClasses = "sglr.k"

// Column names of a labels artifact (the id column is ColID).
const (
	ColHard = "hard"
	ColSoft = "soft"
)

// WriteLabels encodes l as an Arrow IPC file: id int64, then hard int32 and
// soft FixedSizeList<float32>(K) when present; K goes to the metadata.
func WriteLabels(w io.Writer, l *Labels) error {
	if err := l.Validate(); err != nil {
		return fmt.Errorf("write labels: %w", err)
	}
	n := len(l.IDs)
	meta := map[string]string{MetaNumClasses: strconv.Itoa(l.K)}
	userMeta(l.Meta, meta)
	fields := []arrow.Field{{Name: ColID, Type: arrow.PrimitiveTypes.Int64}}
	cols := []arrow.Array{int64Array(l.IDs)}
	if l.Hard != nil {
		fields = append(fields, arrow.Field{Name: ColHard, Type: arrow.PrimitiveTypes.Int32})
		cols = append(cols, int32Array(l.Hard))
	}
	if l.Soft != nil {
		fields = append(fields, arrow.Field{Name: ColSoft, Type: arrow.FixedSizeListOfNonNullable(int32(l.K), arrow.PrimitiveTypes.Float32)})
		cols = append(cols, float32ListArray(l.Soft, n, l.K))
	}
	defer releaseAll(cols)
	return writeIPC(w, KindLabels, fields, cols, n, meta)
}

// ReadLabels decodes a labels artifact and validates it; a bad file gives an
// error wrapping ErrCorrupt.
func ReadLabels(r ReadAtSeeker) (*Labels, error) {
	var l Labels
	err := decodeIPC(r, KindLabels, func(f *ipcFile) error {
		k, err := strconv.Atoi(f.meta[MetaNumClasses])
		if err != nil || k <= 0 || k > math.MaxInt32 {
			return corruptf("%s %q: want a positive integer", MetaNumClasses, f.meta[MetaNumClasses])
		}
		l.K = k
		idCol, err := f.field(ColID, true, "int64", typeIs(arrow.PrimitiveTypes.Int64))
		if err != nil {
			return err
		}
		hardCol, err := f.field(ColHard, false, "int32", typeIs(arrow.PrimitiveTypes.Int32))
		if err != nil {
			return err
		}
		softCol, err := f.field(ColSoft, false, fmt.Sprintf("fixed_size_list<float32>[%d]", k), float32ListOf(k))
		if err != nil {
			return err
		}
		l.IDs = []int64{}
		if hardCol >= 0 {
			l.Hard = []int32{}
		}
		if softCol >= 0 {
			l.Soft = []float32{}
		}
		err = f.eachRecord(func(rec arrow.Record) error {
			var err error
			if l.IDs, err = appendInt64s(l.IDs, rec.Column(idCol), ColID); err != nil {
				return err
			}
			if hardCol >= 0 {
				if l.Hard, err = appendInt32s(l.Hard, rec.Column(hardCol), ColHard); err != nil {
					return err
				}
			}
			if softCol >= 0 {
				if l.Soft, err = appendFloat32Lists(l.Soft, rec.Column(softCol), ColSoft, k); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		l.Meta = f.userMeta()
		if err := l.Validate(); err != nil {
			return corruptf("%v", err)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read labels: %w", err)
	}
	return &l, nil
}

// ReadLabelsFile reads the labels artifact at path.
func ReadLabelsFile(path string) (*Labels, error) { return readFile(path, ReadLabels) }

// Len is the number of samples.
func (l *Labels) Len() int { return len(l.IDs) }

// Validate checks that l is self-consistent: K ≥ 1, hard and/or soft labels
// present, one hard label in [0,K) and/or K finite soft values per id, and
// unique ids.
func (l *Labels) Validate() error {
	if l == nil {
		return errors.New("labels are nil")
	}
	if l.K <= 0 || l.K > math.MaxInt32 {
		return fmt.Errorf("labels have K=%d classes, want at least 1", l.K)
	}
	if l.Hard == nil && l.Soft == nil {
		return errors.New("labels carry neither hard nor soft labels")
	}
	n := len(l.IDs)
	if l.Hard != nil {
		if len(l.Hard) != n {
			return fmt.Errorf("labels have %d hard labels for %d ids", len(l.Hard), n)
		}
		if err := checkLabels("hard label", l.Hard, l.K); err != nil {
			return err
		}
	}
	if l.Soft != nil {
		if len(l.Soft) != n*l.K {
			return fmt.Errorf("labels have %d soft values, want %d ids × K=%d = %d", len(l.Soft), n, l.K, n*l.K)
		}
		for i, v := range l.Soft {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return fmt.Errorf("sample %d (id %d): soft label value %v is not finite", i/l.K, l.IDs[i/l.K], v)
			}
		}
	}
	if err := checkMeta(l.Meta); err != nil {
		return err
	}
	return checkUniqueIDs(l.IDs)
}
