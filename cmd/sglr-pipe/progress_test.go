package main

import "testing"

func TestProgressCountIsCompact(t *testing.T) {
	for _, tc := range []struct {
		done, total int64
		unit, want  string
	}{
		{3, 10, "epochs", "3/10 epochs"},
		{9999, 0, "", "9999"},
		{12345, 20000, "images", "12.3k/20.0k images"},
		{1694700, 6699600, "passes", "1.69M/6.70M passes"},
		{2500000000, 0, "passes", "2.50G passes"},
	} {
		if got := progressCount(tc.done, tc.total, tc.unit); got != tc.want {
			t.Errorf("progressCount(%d, %d, %q) = %q, want %q", tc.done, tc.total, tc.unit, got, tc.want)
		}
	}
}
