package main

import (
	"bytes"
	"fmt"
	"image"
	_ "image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// reportPipeline trains two tiny models for one epoch each and reports
// their curves: a best/final table of validation accuracies and a plot.
const reportPipeline = `name: tiny-report
seed: 3
matrix:
  labels: [hard, smooth]
stages:
  data:
    uses: load
    with:
      dataset: synthetic
      train: 64
      val: 32
      test: 16
      classes: 3
      shape: [1, 4, 4]
  train:
    uses: train
    inputs:
      train: data.train
      val: data.val
    with:
      hidden: [8]
      epochs: 1
      batch: 32
      steps: 1
      val_steps: 1
      workers: 1
      labels: ${{ matrix.labels }}
  report:
    uses: report
    inputs:
      curves: train.curve[]
    with:
      title: Tiny
      cols: [attack]
`

func TestRunOutWritesReportFiles(t *testing.T) {
	dir, file := writePipeline(t, reportPipeline)
	first := mustSucceed(t, dir, "run", file, "--out", "out")
	firstID := runIDIn(t, first.stdout)
	base := filepath.Join(dir, "out", "tiny-report")
	md := checkOutFiles(t, filepath.Join(base, firstID, "report"))
	files := fileCount(t, filepath.Join(base, firstID, "report"))
	for _, want := range []string{"report.report (", "### Tiny", "| labels | clean Best |", "| smooth |", md,
		fmt.Sprintf("report.report: %d files in %s", files, filepath.Join("out", "tiny-report", firstID, "report"))} {
		if !strings.Contains(first.stdout, want) {
			t.Errorf("first run output lacks %q:\n%s", want, first.stdout)
		}
	}
	checkLatest(t, base, firstID)

	// A cached run writes its own directory (here under a fresh --out), prints
	// where, and does not print the unchanged table again.
	second := mustSucceed(t, dir, "run", file, "--out", "out")
	id := runIDIn(t, second.stdout)
	for _, want := range []string{"0 ran, 4 cached", "report.report (", "unchanged since a run printed it",
		fmt.Sprintf("report.report: %d files in %s", files, filepath.Join("out", "tiny-report", id, "report")),
		filepath.Join("out", "tiny-report", "latest") + " -> " + id} {
		if !strings.Contains(second.stdout, want) {
			t.Errorf("second run output lacks %q:\n%s", want, second.stdout)
		}
	}
	if again := checkOutFiles(t, filepath.Join(base, id, "report")); again != md {
		t.Error("the cached run wrote a different table.md")
	}
	checkLatest(t, base, id)
	checkOutFiles(t, filepath.Join(base, firstID, "report")) // the first run's reports stay

	// The table is printed when asked for, and its text is table.md's.
	always := mustSucceed(t, dir, "run", file, "--out", "", "--tables", "always")
	if !strings.Contains(always.stdout, md) {
		t.Errorf("--tables always did not print table.md:\n%s\nwant:\n%s", always.stdout, md)
	}
	never := mustSucceed(t, dir, "run", file, "--out", "", "--tables", "never")
	if strings.Contains(never.stdout, "report.report (") {
		t.Errorf("--tables never printed a table:\n%s", never.stdout)
	}
	if r := sglr(t, dir, "run", file, "--tables", "sometimes"); r.code != exitUsage || !strings.Contains(r.stderr, "changed, always or never") {
		t.Errorf("--tables sometimes: exit %d\n%s", r.code, r.stderr)
	}

	// --out "" writes nothing; the default is results/.
	if _, err := os.Stat(filepath.Join(dir, "results")); !os.IsNotExist(err) {
		t.Errorf("--out \"\" wrote results/: %v", err)
	}
	third := mustSucceed(t, dir, "run", file)
	checkOutFiles(t, filepath.Join(dir, "results", "tiny-report", "latest", "report"))
	checkLatest(t, filepath.Join(dir, "results", "tiny-report"), runIDIn(t, third.stdout))
}

// fileCount counts the entries of dir.
func fileCount(t *testing.T, dir string) int {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}

// runIDIn finds the run id in run's human summary ("(run ID, store ...)").
func runIDIn(t *testing.T, stdout string) string {
	t.Helper()
	_, rest, ok := strings.Cut(stdout, "(run ")
	id, _, ok2 := strings.Cut(rest, ",")
	if !ok || !ok2 || id == "" {
		t.Fatalf("no run id in:\n%s", stdout)
	}
	return id
}

// checkLatest checks that base/latest is a relative link to the run's
// directory, and that no temporary link is left beside it.
func checkLatest(t *testing.T, base, runID string) {
	t.Helper()
	target, err := os.Readlink(filepath.Join(base, "latest"))
	if err != nil || target != runID {
		t.Errorf("%s/latest -> %q (%v), want %q", base, target, err, runID)
	}
	entries, err := os.ReadDir(base)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("%s holds a leftover %s", base, e.Name())
		}
	}
}

func TestPointLatest(t *testing.T) {
	tests := []struct {
		name    string
		before  string // where latest points first ("" none, "dir" a real directory)
		run     string
		want    string // where it points after
		set     bool
		wantErr string
	}{
		{name: "first run", run: "20260101T000000Z-aaaaaa", want: "20260101T000000Z-aaaaaa", set: true},
		{name: "newer run replaces", before: "20260101T000000Z-aaaaaa", run: "20260102T000000Z-bbbbbb", want: "20260102T000000Z-bbbbbb", set: true},
		{name: "older run leaves a newer link", before: "20260102T000000Z-bbbbbb", run: "20260101T000000Z-aaaaaa", want: "20260102T000000Z-bbbbbb"},
		{name: "same second: the last to finish wins", before: "20260101T000000Z-ffffff", run: "20260101T000000Z-aaaaaa", want: "20260101T000000Z-aaaaaa", set: true},
		{name: "link to a removed newer run is replaced", before: "20991231T000000Z-gone", run: "20260101T000000Z-aaaaaa", want: "20260101T000000Z-aaaaaa", set: true},
		{name: "a real directory is kept", before: "dir", run: "20260101T000000Z-aaaaaa", wantErr: "is not a link"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			base := t.TempDir()
			for _, d := range []string{"20260101T000000Z-aaaaaa", "20260101T000000Z-ffffff", "20260102T000000Z-bbbbbb"} {
				if err := os.Mkdir(filepath.Join(base, d), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			switch tc.before {
			case "":
			case "dir":
				if err := os.Mkdir(filepath.Join(base, "latest"), 0o755); err != nil {
					t.Fatal(err)
				}
			default:
				if err := os.Symlink(tc.before, filepath.Join(base, "latest")); err != nil {
					t.Fatal(err)
				}
			}
			set, err := pointLatest(base, tc.run)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || set != tc.set {
				t.Fatalf("pointLatest = %v, %v; want set %v", set, err, tc.set)
			}
			checkLatest(t, base, tc.want)
		})
	}
}

// checkOutFiles checks the report files in dir (and that no temporary file
// is left) and returns table.md.
func checkOutFiles(t *testing.T, dir string) string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, e := range entries {
		if !e.Type().IsRegular() || strings.HasPrefix(e.Name(), ".") {
			t.Errorf("%s holds %s, which is no report file", dir, e.Name())
		}
		have[e.Name()] = true
	}
	for _, want := range []string{"curves.png", "curves.svg", "table.csv", "table.md", "table.tex"} {
		if !have[want] {
			t.Errorf("%s lacks %s (holds %v)", dir, want, have)
		}
	}
	png, err := os.ReadFile(filepath.Join(dir, "curves.png"))
	if err != nil {
		t.Fatal(err)
	}
	if _, format, err := image.DecodeConfig(bytes.NewReader(png)); err != nil || format != "png" {
		t.Errorf("curves.png: %v (%s)", err, format)
	}
	md, err := os.ReadFile(filepath.Join(dir, "table.md"))
	if err != nil {
		t.Fatal(err)
	}
	return string(md)
}

func TestPathElement(t *testing.T) {
	for in, want := range map[string]string{
		"report[noise=0.2]": "report[noise=0.2]", "a/b": "a_b", `a\b`: "a_b", "..": "_", "": "_", "x:y\n": "x_y_",
	} {
		if got := pathElement(in); got != want {
			t.Errorf("pathElement(%q) = %q, want %q", in, got, want)
		}
	}
}
