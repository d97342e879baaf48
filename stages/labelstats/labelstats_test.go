package labelstats

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sglr-pipe/sglr-pipe/artifacts"
	"github.com/sglr-pipe/sglr-pipe/stages"
	"github.com/sglr-pipe/sglr-pipe/stages/stagetest"
)

// dataset builds a dataset with the given labels over names; flipped marks
// samples whose label is changed (clean label = (label+1) mod K) when non-nil.
func dataset(names []string, labels []int32, flipped []bool) *artifacts.Dataset {
	ds := &artifacts.Dataset{Shape: []int{1}, ClassNames: names, Labels: labels}
	for i := range labels {
		ds.IDs = append(ds.IDs, int64(i))
		ds.Images = append(ds.Images, 0.5)
	}
	if flipped != nil {
		ds.Flipped = flipped
		for i, l := range labels {
			clean := l
			if flipped[i] {
				clean = (l + 1) % int32(len(names))
			}
			ds.CleanLabels = append(ds.CleanLabels, clean)
		}
	}
	return ds
}

func TestTable(t *testing.T) {
	names := []string{"cat", "dog", "T-shirt/top"}
	datasets := []*artifacts.Dataset{
		dataset(names, []int32{0, 0, 1, 2}, []bool{true, false, false, false}),
		dataset(names, []int32{1, 1}, nil),
		dataset([]string{"dog", "cat", "bird"}, []int32{2, 0, 0}, []bool{false, false, false}),
		dataset(names, nil, []bool{}),
	}
	tags := []map[string]string{{"noise": "0.2", "method": "at"}, {"noise": "0.0"}, {"method": "sglr"}, nil}
	table, err := Table(datasets, tags)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range table.Columns {
		got = append(got, c.Name)
	}
	wantCols := []string{"method", "noise", "n", "classes", "flipped", "noise_rate", "n_cat", "n_dog", "n_T-shirt/top", "n_bird"}
	if !slices.Equal(got, wantCols) {
		t.Fatalf("columns %v, want %v", got, wantCols)
	}
	col := func(name string) artifacts.Column { return table.Columns[slices.Index(got, name)] }
	checks := []struct {
		name string
		got  any
		want any
	}{
		{"method", col("method").Strings, []string{"at", "", "sglr", ""}},
		{"noise", col("noise").Strings, []string{"0.2", "0.0", "", ""}},
		{"n", col("n").Ints, []int64{4, 2, 3, 0}},
		{"classes", col("classes").Ints, []int64{3, 3, 3, 3}},
		{"flipped", col("flipped").Ints, []int64{1, -1, 0, 0}},
		{"n_cat", col("n_cat").Ints, []int64{2, 0, 0, 0}},
		{"n_dog", col("n_dog").Ints, []int64{1, 2, 2, 0}}, // dataset 2 names class 0 "dog"
		{"n_T-shirt/top", col("n_T-shirt/top").Ints, []int64{1, 0, 0, 0}},
		{"n_bird", col("n_bird").Ints, []int64{0, 0, 1, 0}},
	}
	for _, c := range checks {
		if fmt.Sprint(c.got) != fmt.Sprint(c.want) {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	rates := col("noise_rate").Floats
	if rates[0] != 0.25 || !math.IsNaN(rates[1]) || rates[2] != 0 || rates[3] != 0 {
		t.Errorf("noise_rate %v", rates)
	}
}

func TestTableErrors(t *testing.T) {
	names := []string{"a", "b"}
	cases := []struct {
		name     string
		datasets []*artifacts.Dataset
		tags     []map[string]string
		want     string
	}{
		{"tag count", []*artifacts.Dataset{dataset(names, []int32{0}, nil)}, []map[string]string{nil, nil}, "1 datasets but 2 tag sets"},
		{"axis clash", []*artifacts.Dataset{dataset(names, []int32{0}, nil)}, []map[string]string{{"n": "1"}}, `axis "n" clashes`},
		{"bad label", []*artifacts.Dataset{dataset(names, []int32{5}, nil)}, nil, "label 5"},
		{"flipped length", []*artifacts.Dataset{{Shape: []int{1}, ClassNames: names, Labels: []int32{0}, Flipped: []bool{}}}, nil, "0 flipped flags"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Table(tc.datasets, tc.tags); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
}

func TestStageRun(t *testing.T) {
	dir := t.TempDir()
	names := []string{"x", "y"}
	var inputs []stages.Input
	for i, ds := range []*artifacts.Dataset{
		dataset(names, []int32{0, 1, 1}, []bool{false, true, false}),
		dataset(names, []int32{0, 0}, []bool{false, false}),
	} {
		var buf bytes.Buffer
		if err := artifacts.WriteDataset(&buf, ds); err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, fmt.Sprintf("in%d", i))
		if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		inputs = append(inputs, stagetest.Input(t, p, map[string]string{"noise": fmt.Sprint(i)}))
	}
	out := filepath.Join(dir, "out")
	if err := os.Mkdir(out, 0o755); err != nil {
		t.Fatal(err)
	}
	env := &stages.Env{Instance: "stats", Params: stages.Params{}, Progress: stages.NopProgress{}, OutDir: out,
		Inputs: map[string][]stages.Input{"datasets": inputs}}
	if err := (Stage{}).Run(context.Background(), env); err != nil {
		t.Fatal(err)
	}
	table, err := artifacts.ReadTableFile(env.OutputPath("table"))
	if err != nil {
		t.Fatal(err)
	}
	if c := table.Column("noise"); c == nil || !slices.Equal(c.Strings, []string{"0", "1"}) {
		t.Errorf("noise column %+v", c)
	}
	if c := table.Column("flipped"); c == nil || !slices.Equal(c.Ints, []int64{1, 0}) {
		t.Errorf("flipped column %+v", c)
	}
	if c := table.Column("n_x"); c == nil || !slices.Equal(c.Ints, []int64{1, 2}) {
		t.Errorf("n_x column %+v", c)
	}
}
