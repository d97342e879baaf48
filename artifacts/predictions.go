package artifacts

import (
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"

	"github.com/apache/arrow/go/v15/arrow"
)

// KindPredictions is the kind of a predictions artifact: a model's logits for
// every sample of a dataset under one or more attacks, for one or more
// checkpoints (the eval stage writes it, calibrate reads it).
const KindPredictions = "predictions"

// Column names of a predictions artifact, in file order after ColID and
// ColLabel (shared with datasets). K sits in the MetaNumClasses metadata.
const (
	ColLogits     = "logits"
	ColAttack     = "attack"
	ColCheckpoint = "checkpoint"
)

// Predictions are per-sample logits: row i is sample IDs[i] with its label
// Labels[i], evaluated by the checkpoint Checkpoint[i] on the input made by
// the attack Attack[i] ("clean" for the clean input). A sample id appears at
// most once per (checkpoint, attack) group.
type Predictions struct {
	IDs        []int64
	Labels     []int32   // the dataset's labels, in [0,K)
	Logits     []float32 // len = N*K, row-major, finite
	K          int
	Attack     []string
	Checkpoint []string
	Meta       map[string]string // free-form provenance, stored as sorted schema metadata
}

// WritePredictions encodes p as an Arrow IPC file: id int64, label int32,
// logits FixedSizeList<float32>(K), attack utf8, checkpoint utf8, in that
// order, with K in the metadata. Equal predictions give equal bytes. p is
// validated first (see Predictions.Validate).
func WritePredictions(w io.Writer, p *Predictions) error {
	if err := p.Validate(); err != nil {
		return fmt.Errorf("write predictions: %w", err)
	}
	n := p.Len()
	meta := map[string]string{MetaNumClasses: strconv.Itoa(p.K)}
	userMeta(p.Meta, meta)
	fields := []arrow.Field{
		{Name: ColID, Type: arrow.PrimitiveTypes.Int64},
		{Name: ColLabel, Type: arrow.PrimitiveTypes.Int32},
		{Name: ColLogits, Type: arrow.FixedSizeListOfNonNullable(int32(p.K), arrow.PrimitiveTypes.Float32)},
		{Name: ColAttack, Type: arrow.BinaryTypes.String},
		{Name: ColCheckpoint, Type: arrow.BinaryTypes.String},
	}
	cols := []arrow.Array{
		int64Array(p.IDs),
		int32Array(p.Labels),
		float32ListArray(p.Logits, n, p.K),
		stringArray(p.Attack),
		stringArray(p.Checkpoint),
	}
	defer releaseAll(cols)
	return writeIPC(w, KindPredictions, fields, cols, n, meta)
}

// ReadPredictions decodes a predictions artifact and validates it; a bad
// file (foreign, truncated, of another kind, inconsistent) gives an error
// wrapping ErrCorrupt.
func ReadPredictions(r ReadAtSeeker) (*Predictions, error) {
	var p Predictions
	err := decodeIPC(r, KindPredictions, func(f *ipcFile) error {
		k, err := strconv.Atoi(f.meta[MetaNumClasses])
		if err != nil || k <= 0 || k > math.MaxInt32 {
			return corruptf("%s %q: want a positive integer", MetaNumClasses, f.meta[MetaNumClasses])
		}
		p.K = k
		idCol, err := f.field(ColID, true, "int64", typeIs(arrow.PrimitiveTypes.Int64))
		if err != nil {
			return err
		}
		labelCol, err := f.field(ColLabel, true, "int32", typeIs(arrow.PrimitiveTypes.Int32))
		if err != nil {
			return err
		}
		logitsCol, err := f.field(ColLogits, true, fmt.Sprintf("fixed_size_list<float32>[%d]", k), float32ListOf(k))
		if err != nil {
			return err
		}
		attackCol, err := f.field(ColAttack, true, "utf8", typeIs(arrow.BinaryTypes.String))
		if err != nil {
			return err
		}
		checkpointCol, err := f.field(ColCheckpoint, true, "utf8", typeIs(arrow.BinaryTypes.String))
		if err != nil {
			return err
		}
		p.IDs, p.Labels, p.Logits, p.Attack, p.Checkpoint = []int64{}, []int32{}, []float32{}, []string{}, []string{}
		err = f.eachRecord(func(rec arrow.Record) error {
			var err error
			if p.IDs, err = appendInt64s(p.IDs, rec.Column(idCol), ColID); err != nil {
				return err
			}
			if p.Labels, err = appendInt32s(p.Labels, rec.Column(labelCol), ColLabel); err != nil {
				return err
			}
			if p.Logits, err = appendFloat32Lists(p.Logits, rec.Column(logitsCol), ColLogits, k); err != nil {
				return err
			}
			if p.Attack, err = appendStrings(p.Attack, rec.Column(attackCol), ColAttack); err != nil {
				return err
			}
			p.Checkpoint, err = appendStrings(p.Checkpoint, rec.Column(checkpointCol), ColCheckpoint)
			return err
		})
		if err != nil {
			return err
		}
		p.Meta = f.userMeta()
		if err := p.Validate(); err != nil {
			return corruptf("%v", err)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read predictions: %w", err)
	}
	return &p, nil
}

// ReadPredictionsFile reads the predictions artifact at path.
func ReadPredictionsFile(path string) (*Predictions, error) { return readFile(path, ReadPredictions) }

// Len is the number of rows.
func (p *Predictions) Len() int { return len(p.IDs) }

// Validate checks that p is self-consistent: K ≥ 1, one label, K logits, an
// attack and a checkpoint per id, labels in [0,K), finite logits, and no id
// twice within a (checkpoint, attack) group.
func (p *Predictions) Validate() error {
	if p == nil {
		return errors.New("predictions are nil")
	}
	if p.K <= 0 || p.K > math.MaxInt32 {
		return fmt.Errorf("predictions have K=%d classes, want at least 1", p.K)
	}
	n := len(p.IDs)
	for _, c := range []struct {
		what string
		got  int
	}{{"labels", len(p.Labels)}, {"attacks", len(p.Attack)}, {"checkpoints", len(p.Checkpoint)}} {
		if c.got != n {
			return fmt.Errorf("predictions have %d %s for %d ids", c.got, c.what, n)
		}
	}
	if n > math.MaxInt32/p.K || len(p.Logits) != n*p.K {
		return fmt.Errorf("predictions have %d logits, want %d ids × K=%d", len(p.Logits), n, p.K)
	}
	if err := checkLabels("label", p.Labels, p.K); err != nil {
		return err
	}
	for i, v := range p.Logits {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			r := i / p.K
			return fmt.Errorf("row %d (id %d, %s, %s): logit %v is not finite", r, p.IDs[r], p.Checkpoint[r], p.Attack[r], v)
		}
	}
	if err := checkMeta(p.Meta); err != nil {
		return err
	}
	type rowKey struct {
		checkpoint, attack string
		id                 int64
	}
	seen := make(map[rowKey]int, n)
	for i, id := range p.IDs {
		key := rowKey{p.Checkpoint[i], p.Attack[i], id}
		if j, dup := seen[key]; dup {
			return fmt.Errorf("rows %d and %d both hold id %d for checkpoint %q, attack %q", j, i, id, key.checkpoint, key.attack)
		}
		seen[key] = i
	}
	return nil
}
