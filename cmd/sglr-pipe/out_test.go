package main

import (
	"bytes"
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
	base := filepath.Join(dir, "out", "tiny-report", "report")
	for _, want := range []string{"report.report (", "### Tiny", "| labels | clean Best |", "| smooth |",
		"report.report: 5 files in " + filepath.Join("out", "tiny-report", "report")} {
		if !strings.Contains(first.stdout, want) {
			t.Errorf("run output lacks %q:\n%s", want, first.stdout)
		}
	}
	md := checkOutFiles(t, base)
	if !strings.Contains(first.stdout, md) {
		t.Errorf("printed table differs from table.md:\n%s", md)
	}

	// A cached run writes the files again (here into a fresh directory).
	second := mustSucceed(t, dir, "run", file, "--out", filepath.Join(dir, "again"))
	if !strings.Contains(second.stdout, "0 ran, 4 cached") {
		t.Errorf("second run is not cached:\n%s", second.stdout)
	}
	if again := checkOutFiles(t, filepath.Join(dir, "again", "tiny-report", "report")); again != md {
		t.Error("the cached run wrote a different table.md")
	}
	// --out "" writes nothing; the default is results/.
	mustSucceed(t, dir, "run", file, "--out", "")
	if _, err := os.Stat(filepath.Join(dir, "results")); !os.IsNotExist(err) {
		t.Errorf("--out \"\" wrote results/: %v", err)
	}
	mustSucceed(t, dir, "run", file)
	checkOutFiles(t, filepath.Join(dir, "results", "tiny-report", "report"))
}

// checkOutFiles checks the report files in dir (and that no temporary file
// is left) and returns table.md.
func checkOutFiles(t *testing.T, dir string) string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	want := []string{"curves.png", "curves.svg", "table.csv", "table.md", "table.tex"}
	if strings.Join(names, " ") != strings.Join(want, " ") {
		t.Errorf("%s holds %q, want %q", dir, names, want)
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
