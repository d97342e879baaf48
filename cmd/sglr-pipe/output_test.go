package main

import (
	"bytes"
	"testing"

	"github.com/sglr-pipe/sglr-pipe/artifacts"
)

func TestRenderTableMarkdown(t *testing.T) {
	tests := []struct {
		name  string
		table *artifacts.Table
		limit int
		want  string
	}{
		{
			name: "mixed columns",
			table: &artifacts.Table{Columns: []artifacts.Column{
				{Name: "method", Strings: []string{"AT", "AT+SGLR"}},
				{Name: "n", Ints: []int64{10, 200}},
				{Name: "acc", Floats: []float64{0.5, 0.123456789}},
			}},
			limit: -1,
			want: "| method  |   n |      acc |\n" +
				"| ------- | --: | -------: |\n" +
				"| AT      |  10 |      0.5 |\n" +
				"| AT+SGLR | 200 | 0.123457 |\n",
		},
		{
			name: "limit and pipe escaping",
			table: &artifacts.Table{Columns: []artifacts.Column{
				{Name: "a|b", Strings: []string{"x", "y", "z"}},
			}},
			limit: 1,
			want:  "| a\\|b |\n| ---- |\n| x    |\n", // padded to the width as written, escape included
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := renderTable(tc.table, tc.limit); got != tc.want {
				t.Errorf("got\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
}

func TestTextTableAlignsColumns(t *testing.T) {
	tb := newTable()
	tb.header("name", "n")
	tb.row("noisy[noise=0.2]", 3)
	tb.row("ü", 12)
	var b bytes.Buffer
	tb.render(&b, "> ")
	want := "> name              n\n" +
		"> ────────────────  ──\n" +
		"> noisy[noise=0.2]  3\n" +
		"> ü                 12\n"
	if b.String() != want {
		t.Errorf("got\n%q\nwant\n%q", b.String(), want)
	}
}

func TestFormatting(t *testing.T) {
	tests := []struct {
		got, want string
	}{
		{formatSeconds(0.4234), "0.42s"},
		{formatSeconds(12.34), "12.3s"},
		{formatSeconds(245), "4m05s"},
		{humanBytes(512), "512 B"},
		{humanBytes(3 << 20), "3.0 MiB"},
		{progressCount(3, 10, "epochs"), "3/10 epochs"},
		{progressCount(3, 0, ""), "3"},
		{formatValue([]any{int64(1), int64(28)}), "[1,28]"},
		{formatValue(""), `""`},
		{formatValue(0.1), "0.1"},
	}
	for _, tc := range tests {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}
