package artifacts

import (
	"bytes"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
)

func sampleCurve() *Table {
	return &Table{
		Columns: []Column{
			{Name: ColEpoch, Ints: []int64{1, 2, 3}},
			{Name: "lr", Floats: []float64{0.1, 0.1, 0.01}},
			{Name: "val_robust_acc", Floats: []float64{0.2, math.NaN(), 0.3}},
		},
		Meta: map[string]string{"strategy": "sglr"},
	}
}

func TestCurveRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteCurve(&buf, sampleCurve()); err != nil {
		t.Fatal(err)
	}
	got, err := ReadCurve(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	want := sampleCurve()
	if !reflect.DeepEqual(got.Columns[:2], want.Columns[:2]) || !reflect.DeepEqual(got.Meta, want.Meta) {
		t.Errorf("round trip gave %+v, want %+v", got, want)
	}
	v := got.Column("val_robust_acc").Floats
	if v[0] != 0.2 || !math.IsNaN(v[1]) || v[2] != 0.3 {
		t.Errorf("val_robust_acc %v, want [0.2 NaN 0.3]", v)
	}
	var again bytes.Buffer
	if err := WriteCurve(&again, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), again.Bytes()) {
		t.Error("re-encoding a decoded curve changed its bytes")
	}
}

func TestCurveKindIsChecked(t *testing.T) {
	var table, curve bytes.Buffer
	if err := WriteTable(&table, sampleCurve()); err != nil {
		t.Fatal(err)
	}
	if err := WriteCurve(&curve, sampleCurve()); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		read func() error
	}{
		{"table read as curve", func() error { _, err := ReadCurve(bytes.NewReader(table.Bytes())); return err }},
		{"curve read as table", func() error { _, err := ReadTable(bytes.NewReader(curve.Bytes())); return err }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.read()
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "kind") {
				t.Errorf("got %v, want a kind mismatch wrapping ErrCorrupt", err)
			}
		})
	}
}

func TestCurveNeedsIntEpochColumn(t *testing.T) {
	for _, tc := range []struct {
		name  string
		curve *Table
	}{
		{"no epoch", &Table{Columns: []Column{{Name: "lr", Floats: []float64{0.1}}}}},
		{"float epoch", &Table{Columns: []Column{{Name: ColEpoch, Floats: []float64{1}}}}},
		{"ragged", &Table{Columns: []Column{{Name: ColEpoch, Ints: []int64{1}}, {Name: "lr", Floats: []float64{}}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := WriteCurve(&bytes.Buffer{}, tc.curve); err == nil {
				t.Error("WriteCurve accepted an invalid curve")
			}
		})
	}
}
