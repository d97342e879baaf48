package main

import (
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/sglr-pipe/sglr-pipe/artifacts"
)

// describeChange renders a tableChange compactly for comparisons.
func describeChange(tc tableChange) string {
	var b strings.Builder
	fmt.Fprintf(&b, "keys %v", tc.Keys)
	if len(tc.Added) > 0 {
		fmt.Fprintf(&b, " +cols %v", tc.Added)
	}
	if len(tc.Removed) > 0 {
		fmt.Fprintf(&b, " -cols %v", tc.Removed)
	}
	for _, r := range tc.Rows {
		fmt.Fprintf(&b, "; %s %v", r.Change, r.Key)
		if r.Change == changeChanged {
			fmt.Fprintf(&b, " %s %s→%s (%s)", r.Column, formatNumber(r.Old), formatNumber(r.New), formatDelta(r.Delta))
		}
	}
	return b.String()
}

func TestDiffTable(t *testing.T) {
	nan := math.NaN()
	tests := []struct {
		name     string
		old, new *artifacts.Table
		want     string
	}{
		{
			name: "rows joined on text columns, in any order",
			old: &artifacts.Table{Columns: []artifacts.Column{
				{Name: "checkpoint", Strings: []string{"best", "final"}},
				{Name: "accuracy", Floats: []float64{0.5, 0.4}},
				{Name: "n", Ints: []int64{300, 300}},
			}},
			new: &artifacts.Table{Columns: []artifacts.Column{
				{Name: "checkpoint", Strings: []string{"final", "best"}},
				{Name: "accuracy", Floats: []float64{0.45, 0.5}},
				{Name: "n", Ints: []int64{300, 300}},
			}},
			want: "keys [checkpoint]; changed [final] accuracy 0.4→0.45 (+0.05)",
		},
		{
			name: "NaN that stays NaN is unchanged; NaN to a number is a change",
			old:  &artifacts.Table{Columns: []artifacts.Column{{Name: "k", Strings: []string{"a", "b"}}, {Name: "v", Floats: []float64{nan, nan}}}},
			new:  &artifacts.Table{Columns: []artifacts.Column{{Name: "k", Strings: []string{"a", "b"}}, {Name: "v", Floats: []float64{nan, 1}}}},
			want: "keys [k]; changed [b] v NaN→1 (NaN)",
		},
		{
			name: "rows added and removed",
			old:  &artifacts.Table{Columns: []artifacts.Column{{Name: "k", Strings: []string{"a", "b"}}, {Name: "v", Ints: []int64{1, 2}}}},
			new:  &artifacts.Table{Columns: []artifacts.Column{{Name: "k", Strings: []string{"a", "c"}}, {Name: "v", Ints: []int64{1, 3}}}},
			want: "keys [k]; added [c]; removed [b]",
		},
		{
			name: "repeated keys pair in order",
			old:  &artifacts.Table{Columns: []artifacts.Column{{Name: "k", Strings: []string{"a", "a"}}, {Name: "v", Ints: []int64{1, 2}}}},
			new:  &artifacts.Table{Columns: []artifacts.Column{{Name: "k", Strings: []string{"a", "a"}}, {Name: "v", Ints: []int64{1, 5}}}},
			want: "keys [k]; changed [a #2] v 2→5 (+3)",
		},
		{
			name: "repeating text keys take an integer column into the key",
			old: &artifacts.Table{Columns: []artifacts.Column{
				{Name: "attack", Strings: []string{"pgd", "pgd", "clean"}},
				{Name: "bin", Ints: []int64{0, 1, 0}},
				{Name: "count", Ints: []int64{5, 6, 7}},
			}},
			new: &artifacts.Table{Columns: []artifacts.Column{
				{Name: "attack", Strings: []string{"pgd", "pgd", "clean"}},
				{Name: "bin", Ints: []int64{1, 0, 0}},
				{Name: "count", Ints: []int64{6, 4, 7}},
			}},
			want: "keys [attack bin]; changed [pgd 0] count 5→4 (-1)",
		},
		{
			name: "no text columns: joined by row number",
			old:  &artifacts.Table{Columns: []artifacts.Column{{Name: "v", Floats: []float64{1, 2}}}},
			new:  &artifacts.Table{Columns: []artifacts.Column{{Name: "v", Floats: []float64{1, 1.5}}}},
			want: "keys []; changed [#2] v 2→1.5 (-0.5)",
		},
		{
			name: "columns added and removed are named, not compared",
			old:  &artifacts.Table{Columns: []artifacts.Column{{Name: "k", Strings: []string{"a"}}, {Name: "gone", Ints: []int64{1}}}},
			new:  &artifacts.Table{Columns: []artifacts.Column{{Name: "k", Strings: []string{"a"}}, {Name: "fresh", Ints: []int64{2}}}},
			want: "keys [k] +cols [fresh] -cols [gone]",
		},
		{
			name: "a column that changed type is neither key nor value",
			old:  &artifacts.Table{Columns: []artifacts.Column{{Name: "k", Strings: []string{"a"}}, {Name: "x", Strings: []string{"1"}}}},
			new:  &artifacts.Table{Columns: []artifacts.Column{{Name: "k", Strings: []string{"a"}}, {Name: "x", Ints: []int64{1}}}},
			want: "keys [k]",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := describeChange(diffTable(tc.old, tc.new)); got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

func TestFormatValues(t *testing.T) {
	num := func(f float64) *diffNumber { n := diffNumber(f); return &n }
	tests := []struct {
		got, want string
	}{
		{formatNumber(num(300)), "300"},
		{formatNumber(num(0.123456789)), "0.123457"},
		{formatNumber(num(1e20)), "1e+20"},
		{formatNumber(nil), ""},
		{formatDelta(num(0.006000000000000005)), "+0.006"},
		{formatDelta(num(-2)), "-2"},
		{formatDelta(num(0)), "0"},
		{formatParam("sglr"), "sglr"},
		{formatParam(0.2), "0.2"},
		{formatParam([]any{256.0, 256.0}), "[256,256]"},
		{formatParam(map[string]any{"b": 1.0, "a": "x"}), `{"a":"x","b":1}`},
		{formatParam(nil), ""},
	}
	for i, tc := range tests {
		if tc.got != tc.want {
			t.Errorf("case %d: got %q, want %q", i, tc.got, tc.want)
		}
	}
	for _, c := range []struct {
		n    diffNumber
		want string
	}{{diffNumber(math.NaN()), `"NaN"`}, {diffNumber(math.Inf(-1)), `"-Inf"`}, {1.5, `1.5`}} {
		if b, err := c.n.MarshalJSON(); err != nil || string(b) != c.want {
			t.Errorf("MarshalJSON(%v) = %s, %v; want %s", float64(c.n), b, err, c.want)
		}
	}
}
