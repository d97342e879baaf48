package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/jedib0t/go-pretty/v6/text"
)

// reportTable is a report's table.md in the shape of the quickstart's: one
// key column, then groups of Best / Final / Diff.
const reportTable = `### Title

| labels | clean accuracy Best | clean accuracy Final | clean accuracy Diff | pgd accuracy Best | pgd accuracy Final | pgd accuracy Diff |
| ------ | ------------------: | -------------------: | ------------------: | ----------------: | -----------------: | ----------------: |
| hard   |                62.7 |                 63.3 |                -0.7 |              46.7 |               45.3 |               1.3 |
| sglr   |                56.3 |                 57.3 |                -1.0 |              44.3 |               43.7 |               0.7 |
`

func TestFitMarkdown(t *testing.T) {
	tests := []struct {
		name  string
		md    string
		width int
		want  string
	}{
		{name: "fits: unchanged", md: reportTable, width: 200, want: reportTable},
		{name: "no width: unchanged", md: reportTable, width: 0, want: reportTable},
		{name: "split between groups, the key column repeated", md: reportTable, width: 80, want: `### Title

| labels | clean accuracy Best | clean accuracy Final | clean accuracy Diff |
| ------ | ------------------: | -------------------: | ------------------: |
| hard   |                62.7 |                 63.3 |                -0.7 |
| sglr   |                56.3 |                 57.3 |                -1.0 |

| labels | pgd accuracy Best | pgd accuracy Final | pgd accuracy Diff |
| ------ | ----------------: | -----------------: | ----------------: |
| hard   |              46.7 |               45.3 |               1.3 |
| sglr   |              44.3 |               43.7 |               0.7 |
`},
		{name: "narrower than a group: split inside it", md: reportTable, width: 60, want: `### Title

| labels | clean accuracy Best | clean accuracy Final |
| ------ | ------------------: | -------------------: |
| hard   |                62.7 |                 63.3 |
| sglr   |                56.3 |                 57.3 |

| labels | clean accuracy Diff | pgd accuracy Best |
| ------ | ------------------: | ----------------: |
| hard   |                -0.7 |              46.7 |
| sglr   |                -1.0 |              44.3 |

| labels | pgd accuracy Final | pgd accuracy Diff |
| ------ | -----------------: | ----------------: |
| hard   |               45.3 |               1.3 |
| sglr   |               43.7 |               0.7 |
`},
		{name: "several key columns and escaped pipes", width: 40,
			md: "| a\\|x | b | n1 | n2 |\n| --- | --- | --: | --: |\n| p | q | 100000000000 | 200000000000 |\n",
			want: "| a\\|x | b   |           n1 |\n| ---- | --- | -----------: |\n| p    | q   | 100000000000 |\n\n" +
				"| a\\|x | b   |           n2 |\n| ---- | --- | -----------: |\n| p    | q   | 200000000000 |\n"},
		{name: "not a table: unchanged", width: 40,
			md: "| only a header line that is far too wide for forty columns |\n"},
		{name: "ragged rows: unchanged", width: 40,
			md: "| a | b |\n| --- | --- |\n| 1 | 2 | 3 this row has a cell too many, so it is no table |\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			want := tc.want
			if want == "" {
				want = tc.md
			}
			got := fitMarkdown(tc.md, tc.width)
			if got != want {
				t.Errorf("width %d: got\n%s\nwant\n%s", tc.width, got, want)
			}
			if tc.width >= minFitWidth && got != tc.md {
				for _, line := range strings.Split(got, "\n") {
					if w := text.StringWidthWithoutEscSequences(line); w > tc.width {
						t.Errorf("line of width %d > %d: %q", w, tc.width, line)
					}
				}
			}
		})
	}
}

func TestSplitColumns(t *testing.T) {
	tests := []struct {
		name   string
		widths []int
		keys   int
		groups []string
		width  int
		want   string
	}{
		{name: "all fit", widths: []int{5, 5, 5}, keys: 1, groups: []string{"a", "b", "c"}, width: 100, want: "[[0 1 2]]"},
		{name: "greedy", widths: []int{5, 10, 10, 10}, keys: 1, groups: []string{"k", "a", "b", "c"}, width: 35,
			want: "[[0 1 2] [0 3]]"},
		{name: "a column wider than the width gets a part of its own", widths: []int{5, 80, 5}, keys: 1,
			groups: []string{"k", "a", "b"}, width: 40, want: "[[0 1] [0 2]]"},
		{name: "keys wider than two thirds: only the first repeated", widths: []int{20, 20, 5, 5}, keys: 2,
			groups: []string{"k", "l", "a", "b"}, width: 50, want: "[[0 1] [0 2 3]]"},
		{name: "a group moves whole to the next part", widths: []int{4, 6, 6, 6, 6}, keys: 1,
			groups: []string{"k", "x", "y", "y", "y"}, width: 35, want: "[[0 1] [0 2 3 4]]"},
		{name: "groups of two and three, three columns a part", widths: []int{4, 6, 6, 6, 6, 6}, keys: 1,
			groups: []string{"k", "x", "x", "y", "y", "y"}, width: 35, want: "[[0 1 2] [0 3 4 5]]"},
		{name: "no key columns", widths: []int{10, 10, 10}, keys: 0, groups: []string{"a", "b", "c"}, width: 30,
			want: "[[0 1] [2]]"},
		{name: "only keys", widths: []int{30, 30}, keys: 2, groups: []string{"a", "b"}, width: 40, want: "[[0 1]]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := fmt.Sprint(splitColumns(tc.widths, tc.keys, tc.groups, tc.width)); got != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
}
