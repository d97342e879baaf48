package exec

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDescribeOutputIsCapped runs plugins whose describe prints far more
// than any spec: each is stopped and refused, by name, without its output
// being buffered whole.
func TestDescribeOutputIsCapped(t *testing.T) {
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("no /bin/sh")
	}
	tests := []struct {
		name     string
		describe string
	}{
		{"6 MB on one line", `head -c 6000000 /dev/zero | tr '\0' 'x'`},
		{"6 MB of lines", `head -c 6000000 /dev/zero | tr '\0' '\n'`},
		{"endless", `exec yes '{"name": "spam", "version": "1"}'`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "verbose")
			script := fmt.Sprintf("#!/bin/sh\ncase \"$1\" in\ndescribe)\necho 'about to talk' >&2\n%s\n;;\nesac\n", tt.describe)
			if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			_, err := Open(path)
			if took := time.Since(start); took > DescribeTimeout/2 {
				t.Errorf("Open took %s: the plugin was not stopped at the cap", took)
			}
			want := fmt.Sprintf("exec:%s: describe printed more than %d bytes", path, MaxDescribeBytes)
			if err == nil || !strings.HasPrefix(err.Error(), want) || !strings.Contains(err.Error(), "about to talk") {
				t.Errorf("Open error = %v, want it to start with %q and quote the stderr", err, want)
			}
		})
	}
}

// TestLineWriterCutsLongLines feeds plugin output whose lines are too long
// for memory: each such line is handed over cut to maxLineBytes, the rest of
// it dropped, and the writer never holds more than about one line.
func TestLineWriterCutsLongLines(t *testing.T) {
	long := strings.Repeat("x", 10<<20)
	chunks := func(s string, n int) []string {
		var out []string
		for len(s) > n {
			out = append(out, s[:n])
			s = s[n:]
		}
		return append(out, s)
	}
	max := strings.Repeat("x", maxLineBytes)
	tests := []struct {
		name   string
		writes []string
		want   []string
	}{
		{"short lines", []string{"a\nb", "c\n", "d"}, []string{"a", "bc", "d"}},
		{"10 MB in one write, no newline", []string{long}, []string{max}},
		{"10 MB in 32 KB writes, then more lines", append(chunks(long, 32<<10), "\nnext\n", "last"), []string{max, "next", "last"}},
		{"exactly the limit", []string{max + "\n" + "y"}, []string{max, "y"}},
		{"one over the limit", []string{max + "z\nafter\n"}, []string{max, "after"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			w := &lineWriter{line: func(s string) { got = append(got, s) }}
			for i, s := range tt.writes {
				if n, err := w.Write([]byte(s)); n != len(s) || err != nil {
					t.Fatalf("write %d: %d, %v", i, n, err)
				}
				if c := cap(w.pending); c > 2*maxLineBytes {
					t.Fatalf("after write %d the writer holds a %d-byte buffer, want at most %d", i, c, 2*maxLineBytes)
				}
			}
			w.flush()
			if len(got) != len(tt.want) {
				t.Fatalf("%d lines (lengths %v), want %d (lengths %v)", len(got), lengths(got), len(tt.want), lengths(tt.want))
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("line %d: %d bytes %.20q, want %d bytes %.20q", i, len(got[i]), got[i], len(tt.want[i]), tt.want[i])
				}
			}
		})
	}
}

func lengths(lines []string) []int {
	out := make([]int, len(lines))
	for i, l := range lines {
		out[i] = len(l)
	}
	return out
}
