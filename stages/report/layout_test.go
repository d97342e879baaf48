package report

import (
	"bytes"
	"encoding/csv"
	"reflect"
	"strings"
	"testing"

	"github.com/sglr-pipe/sglr-pipe/artifacts"
)

// evalRow is one row of an eval-like metrics table.
type evalRow struct {
	checkpoint, attack string
	accuracy           float64
}

// metricsTable builds an eval-style metrics table (checkpoint, attack, accuracy, n).
func metricsTable(rows ...evalRow) *artifacts.Table {
	t := &artifacts.Table{Columns: []artifacts.Column{
		{Name: "checkpoint", Strings: []string{}},
		{Name: "attack", Strings: []string{}},
		{Name: "accuracy", Floats: []float64{}},
		{Name: "n", Ints: []int64{}},
	}}
	for _, r := range rows {
		t.Columns[0].Strings = append(t.Columns[0].Strings, r.checkpoint)
		t.Columns[1].Strings = append(t.Columns[1].Strings, r.attack)
		t.Columns[2].Floats = append(t.Columns[2].Floats, r.accuracy)
		t.Columns[3].Ints = append(t.Columns[3].Ints, 1000)
	}
	return t
}

// paperTables are the AT and AT+SGLR rows of Table B.4 (natural and PGD-20).
func paperTables() ([]*artifacts.Table, []map[string]string) {
	return []*artifacts.Table{
			metricsTable(evalRow{"best", "clean", 0.807}, evalRow{"best", "pgd20", 0.507},
				evalRow{"final", "clean", 0.824}, evalRow{"final", "pgd20", 0.414}),
			metricsTable(evalRow{"best", "clean", 0.829}, evalRow{"best", "pgd20", 0.564},
				evalRow{"final", "clean", 0.830}, evalRow{"final", "pgd20", 0.559}),
		}, []map[string]string{
			{"method": "AT"}, {"method": "AT+SGLR"},
		}
}

// seedTables are accuracy-only tables over method × seed.
func seedTables() ([]*artifacts.Table, []map[string]string) {
	acc := func(v float64) *artifacts.Table {
		return &artifacts.Table{Columns: []artifacts.Column{{Name: "accuracy", Floats: []float64{v}}}}
	}
	return []*artifacts.Table{acc(0.50), acc(0.52), acc(0.60), acc(0.60)},
		[]map[string]string{
			{"method": "AT", "seed": "0"}, {"method": "AT", "seed": "1"},
			{"method": "SGLR", "seed": "0"}, {"method": "SGLR", "seed": "1"},
		}
}

func TestLayoutMarkdown(t *testing.T) {
	paper, paperTags := paperTables()
	seeds, seedTags := seedTables()
	calib := &artifacts.Table{Columns: []artifacts.Column{
		{Name: "checkpoint", Strings: []string{"best", "best", "final"}},
		{Name: "attack", Strings: []string{"clean", "pgd", "clean"}},
		{Name: "accuracy", Floats: []float64{0.5, 0.25, 0.75}},
	}}
	calibECE := &artifacts.Table{Columns: []artifacts.Column{
		{Name: "checkpoint", Strings: []string{"best", "final"}},
		{Name: "attack", Strings: []string{"clean", "clean"}},
		{Name: "ece", Floats: []float64{0.1234, 0.0456}},
	}}
	// eval labels the models it gathers "axis=value,.../checkpoint".
	gathered := metricsTable(evalRow{"method=AT/best", "clean", 0.807}, evalRow{"method=AT/final", "clean", 0.824},
		evalRow{"method=AT+SGLR/best", "clean", 0.829}, evalRow{"method=AT+SGLR/final", "clean", 0.830})
	// Table B.2's shape: train and test accuracy by noise rate, two seeds.
	split := func(name string, acc ...float64) *artifacts.Table {
		t := metricsTable(evalRow{"final", "pgd", acc[0]}, evalRow{"best", "pgd", acc[1]})
		t.Columns = append([]artifacts.Column{{Name: "split", Strings: []string{name, name}}}, t.Columns...)
		return t
	}
	gapTables := []*artifacts.Table{split("train", 0.9, 0.8), split("test", 0.5, 0.55), split("train", 0.7, 0.6), split("test", 0.4, 0.45),
		split("train", 0.92, 0.8), split("test", 0.48, 0.55)}
	gapTags := []map[string]string{{"noise": "0", "seed": "0"}, {"noise": "0", "seed": "0"}, {"noise": "0.6", "seed": "0"},
		{"noise": "0.6", "seed": "0"}, {"noise": "0", "seed": "1"}, {"noise": "0", "seed": "1"}}
	tests := []struct {
		name   string
		tables []*artifacts.Table
		tags   []map[string]string
		layout Layout
		title  string
		want   string
	}{
		{
			name: "counts print without decimals", tables: []*artifacts.Table{metricsTable(evalRow{"best", "clean", 0.5}, evalRow{"final", "clean", 0.25})},
			layout: Layout{Metrics: []string{"n", "accuracy"}, BestFinal: true, Digits: 1, Percent: true},
			want: "| attack | n Best | n Final | n Diff | accuracy Best | accuracy Final | accuracy Diff |\n" +
				"| ------ | -----: | ------: | -----: | ------------: | -------------: | ------------: |\n" +
				"| clean  |   1000 |    1000 |      0 |          50.0 |           25.0 |          25.0 |\n",
		},
		{
			name: "compare train and test: the gap, final checkpoint only", tables: gapTables, tags: gapTags,
			layout: Layout{Rows: []string{"checkpoint"}, Cols: []string{"noise"}, Metrics: []string{"accuracy"}, BestFinal: true,
				Compare: &Comparison{Col: "split", A: "train", B: "test"}, DiffName: "Gap", Aggregate: AggregateMean, Digits: 1, Percent: true},
			want: "| checkpoint | 0 Train | 0 Test | 0 Gap | 0.6 Train | 0.6 Test | 0.6 Gap |\n" +
				"| ---------- | ------: | -----: | ----: | --------: | -------: | ------: |\n" +
				"| final      |    91.0 |   49.0 |  42.0 |      70.0 |     40.0 |    30.0 |\n" +
				"| best       |    80.0 |   55.0 |  25.0 |      60.0 |     45.0 |    15.0 |\n",
		},
		{
			name: "diff only, seeds as mean ± std", tables: gapTables, tags: gapTags,
			layout: Layout{Rows: []string{"checkpoint"}, Cols: []string{"noise"}, Metrics: []string{"accuracy"},
				Compare: &Comparison{Col: "split", A: "train", B: "test"}, DiffOnly: true, Aggregate: AggregateMeanStd, Digits: 1, Percent: true},
			want: "| checkpoint |     0 Diff | 0.6 Diff |\n" +
				"| ---------- | ---------: | -------: |\n" +
				"| final      | 42.0 ± 2.8 |     30.0 |\n" +
				"| best       | 25.0 ± 0.0 |     15.0 |\n",
		},
		{
			name: "best final diff only", tables: paper, tags: paperTags,
			layout: Layout{Rows: []string{"method"}, Cols: []string{"attack"}, Metrics: []string{"accuracy"}, BestFinal: true, DiffOnly: true,
				Digits: 1, Percent: true},
			want: "| method  | clean Diff | pgd20 Diff |\n" +
				"| ------- | ---------: | ---------: |\n" +
				"| AT      |       -1.7 |        9.3 |\n" +
				"| AT+SGLR |       -0.1 |        0.5 |\n",
		},
		{
			name: "checkpoint labels of gathered models", tables: []*artifacts.Table{gathered},
			layout: Layout{Metrics: []string{"accuracy"}, BestFinal: true, Digits: 1, Percent: true},
			want: "| method  | attack | accuracy Best | accuracy Final | accuracy Diff |\n" +
				"| ------- | ------ | ------------: | -------------: | ------------: |\n" +
				"| AT      | clean  |          80.7 |           82.4 |          -1.7 |\n" +
				"| AT+SGLR | clean  |          82.9 |           83.0 |          -0.1 |\n",
		},
		{
			name: "best final diff per attack", tables: paper, tags: paperTags,
			layout: Layout{Rows: []string{"method"}, Cols: []string{"attack"}, Metrics: []string{"accuracy"},
				BestFinal: true, Aggregate: AggregateMeanStd, Digits: 1, Percent: true},
			title: "Table B.4",
			want: "### Table B.4\n\n" +
				"| method  | clean Best | clean Final | clean Diff | pgd20 Best | pgd20 Final | pgd20 Diff |\n" +
				"| ------- | ---------: | ----------: | ---------: | ---------: | ----------: | ---------: |\n" +
				"| AT      |       80.7 |        82.4 |       -1.7 |       50.7 |        41.4 |        9.3 |\n" +
				"| AT+SGLR |       82.9 |        83.0 |       -0.1 |       56.4 |        55.9 |        0.5 |\n",
		},
		{
			name: "col_values picks and orders", tables: paper, tags: paperTags,
			layout: Layout{Cols: []string{"attack"}, ColValues: []string{"pgd20"}, Metrics: []string{"accuracy"},
				BestFinal: true, Digits: 0, Percent: true},
			want: "| method  | pgd20 Best | pgd20 Final | pgd20 Diff |\n" +
				"| ------- | ---------: | ----------: | ---------: |\n" +
				"| AT      |         51 |          41 |          9 |\n" +
				"| AT+SGLR |         56 |          56 |          0 |\n",
		},
		{
			name: "best only: Final and Diff dropped", tables: []*artifacts.Table{metricsTable(evalRow{"best", "clean", 0.5})},
			layout: Layout{Metrics: []string{"accuracy"}, BestFinal: true, Digits: 1, Percent: true},
			want: "| attack | accuracy Best |\n" +
				"| ------ | ------------: |\n" +
				"| clean  |          50.0 |\n",
		},
		{
			name: "seeds as mean ± std", tables: seeds, tags: seedTags,
			layout: Layout{Rows: []string{"method"}, Metrics: []string{"accuracy"}, Aggregate: AggregateMeanStd, Digits: 2, Percent: true},
			want: "| method |     accuracy |\n" +
				"| ------ | -----------: |\n" +
				"| AT     | 51.00 ± 1.41 |\n" +
				"| SGLR   | 60.00 ± 0.00 |\n",
		},
		{
			name: "seeds as mean, no percent", tables: seeds, tags: seedTags,
			layout: Layout{Metrics: []string{"accuracy"}, Aggregate: AggregateMean, Digits: 3},
			want: "| method | accuracy |\n" +
				"| ------ | -------: |\n" +
				"| AT     |    0.510 |\n" +
				"| SGLR   |    0.600 |\n",
		},
		{
			name: "checkpoint as a row, two metrics, empty cells and columns", tables: []*artifacts.Table{calib, calibECE},
			layout: Layout{Cols: []string{"attack"}, Metrics: []string{"accuracy", "ece"}, BestFinal: false, Digits: 2, Percent: true},
			want: "| checkpoint | clean accuracy | clean ece | pgd accuracy |\n" +
				"| ---------- | -------------: | --------: | -----------: |\n" +
				"| best       |          50.00 |    0.1234 |        25.00 |\n" +
				"| final      |          75.00 |    0.0456 |            — |\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			records, err := Records(tt.tables, tt.tags)
			if err != nil {
				t.Fatal(err)
			}
			g, err := tt.layout.Build(records)
			if err != nil {
				t.Fatal(err)
			}
			if got := string(g.Markdown(tt.title, tt.layout.Digits)); got != tt.want {
				t.Errorf("got\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

func TestLayoutErrors(t *testing.T) {
	paper, paperTags := paperTables()
	noisy := []*artifacts.Table{metricsTable(evalRow{"best", "clean", 0.5}), metricsTable(evalRow{"best", "clean", 0.6})}
	noisyTags := []map[string]string{{"method": "AT", "noise": "0.2"}, {"method": "AT", "noise": "0.4"}}
	base := Layout{Rows: []string{"method"}, Cols: []string{"attack"}, Metrics: []string{"accuracy"}, BestFinal: true, Digits: 1}
	with := func(f func(*Layout)) Layout { l := base; f(&l); return l }
	tests := []struct {
		name   string
		tables []*artifacts.Table
		tags   []map[string]string
		layout Layout
		want   string
	}{
		{"unknown row", paper, paperTags, with(func(l *Layout) { l.Rows = []string{"model"} }), `rows names "model"`},
		{"unknown metric", paper, paperTags, with(func(l *Layout) { l.Metrics = []string{"ece"} }), `metrics names "ece"`},
		{"row and col", paper, paperTags, with(func(l *Layout) { l.Cols = []string{"method"} }), "both rows and cols"},
		{"unknown col value", paper, paperTags, with(func(l *Layout) { l.ColValues = []string{"cw"} }), `col_values names "cw"`},
		{"other checkpoint", []*artifacts.Table{metricsTable(evalRow{"last", "clean", 0.5})}, nil, with(func(l *Layout) { l.Rows = nil }), `checkpoint "last"`},
		{"differ in a tag", noisy, noisyTags, base, `differ in "noise"`},
		{"checkpoint label contradicts a tag", []*artifacts.Table{metricsTable(evalRow{"method=AT/best", "clean", 0.5})},
			[]map[string]string{{"method": "SGLR"}}, base, "says method=AT but the row has method=SGLR"},
		{"compare an unknown column", paper, paperTags, with(func(l *Layout) { l.Compare = &Comparison{"split", "train", "test"} }),
			`compare names "split"`},
		{"compare a placed column", paper, paperTags, with(func(l *Layout) { l.Compare = &Comparison{"attack", "clean", "pgd20"} }),
			`compare column "attack" is also in rows or cols`},
		{"no metrics", paper, paperTags, with(func(l *Layout) { l.Metrics = nil }), "no metrics"},
		{"two values", []*artifacts.Table{metricsTable(evalRow{"best", "clean", 0.5}, evalRow{"best", "clean", 0.6})}, nil,
			with(func(l *Layout) { l.Rows = nil }), "two different values"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			records, err := Records(tt.tables, tt.tags)
			if err == nil {
				_, err = tt.layout.Build(records)
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Build = %v, want an error containing %q", err, tt.want)
			}
		})
	}
	if _, err := Records(paper, []map[string]string{{"attack": "x"}, {}}); err == nil || !strings.Contains(err.Error(), "clashes") {
		t.Errorf("a tag naming a column: %v", err)
	}
}

func TestCSVAndLaTeXShapes(t *testing.T) {
	paper, paperTags := paperTables()
	records, err := Records(paper, paperTags)
	if err != nil {
		t.Fatal(err)
	}
	g, err := Layout{Rows: []string{"method"}, Cols: []string{"attack"}, Metrics: []string{"accuracy"},
		BestFinal: true, Digits: 1, Percent: true}.Build(records)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(bytes.NewReader(g.CSV())).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	wantRows := [][]string{
		{"method", "clean_best_mean", "clean_best_std", "clean_best_n", "clean_final_mean", "clean_final_std", "clean_final_n",
			"clean_diff_mean", "clean_diff_std", "clean_diff_n", "pgd20_best_mean", "pgd20_best_std", "pgd20_best_n",
			"pgd20_final_mean", "pgd20_final_std", "pgd20_final_n", "pgd20_diff_mean", "pgd20_diff_std", "pgd20_diff_n"},
		{"AT", "80.7", "", "1", "82.4", "", "1", "-1.7", "", "1", "50.7", "", "1", "41.4", "", "1", "9.3", "", "1"},
		{"AT+SGLR", "82.9", "", "1", "83", "", "1", "-0.1", "", "1", "56.4", "", "1", "55.9", "", "1", "0.5", "", "1"},
	}
	if !reflect.DeepEqual(rows, wantRows) {
		t.Errorf("CSV rows\n%q\nwant\n%q", rows, wantRows)
	}

	tex := string(g.LaTeX("Table B.4", 1))
	want := `% Table B.4
\begin{tabular}{lrrrrrr}
\toprule
 & \multicolumn{3}{c}{clean} & \multicolumn{3}{c}{pgd20} \\
\cmidrule(lr){2-4} \cmidrule(lr){5-7}
method & Best & Final & Diff & Best & Final & Diff \\
\midrule
AT & $80.7$ & $82.4$ & $-1.7$ & $50.7$ & $41.4$ & $9.3$ \\
AT+SGLR & $82.9$ & $83.0$ & $-0.1$ & $56.4$ & $55.9$ & $0.5$ \\
\bottomrule
\end{tabular}
`
	if tex != want {
		t.Errorf("LaTeX:\n%s\nwant\n%s", tex, want)
	}

	// One header row without leaves; escaping and ± in math mode.
	seeds, seedTags := seedTables()
	for i := range seedTags {
		seedTags[i]["method"] += "_50%"
	}
	records, err = Records(seeds, seedTags)
	if err != nil {
		t.Fatal(err)
	}
	g, err = Layout{Metrics: []string{"accuracy"}, Aggregate: AggregateMeanStd, Digits: 1, Percent: true}.Build(records)
	if err != nil {
		t.Fatal(err)
	}
	// Seeds: mean and sample std over 2 values as plain numbers, no "±".
	rows, err = csv.NewReader(bytes.NewReader(g.CSV())).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	wantRows = [][]string{{"method", "accuracy_mean", "accuracy_std", "accuracy_n"},
		{"AT_50%", "51", "1.414213562", "2"}, {"SGLR_50%", "60", "0", "2"}}
	if !reflect.DeepEqual(rows, wantRows) {
		t.Errorf("CSV rows with seeds\n%q\nwant\n%q", rows, wantRows)
	}
	tex = string(g.LaTeX("", 1))
	for _, frag := range []string{"method & accuracy \\\\\n\\midrule", `AT\_50\% & $51.0\pm1.4$ \\`, `\bottomrule`} {
		if !strings.Contains(tex, frag) {
			t.Errorf("LaTeX lacks %q:\n%s", frag, tex)
		}
	}
}

func TestIsRate(t *testing.T) {
	for name, want := range map[string]bool{
		"accuracy": true, "val_robust_acc": true, "train_clean_acc": true, "noise_rate": true, "error": true, "final_recovered": true,
		"ece": false, "nll": false, "brier": false, "seconds": false, "n": false, "temperature": false,
	} {
		if got := IsRate(name); got != want {
			t.Errorf("IsRate(%q) = %v, want %v", name, got, want)
		}
	}
}
