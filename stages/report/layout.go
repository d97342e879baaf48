package report

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/sglr-pipe/sglr-pipe/artifacts"
)

// Column and tag names the layout treats specially.
const (
	// ColCheckpoint holds "best" or "final" in eval and calibrate tables.
	ColCheckpoint = "checkpoint"
	// ColSeed is the matrix axis whose values are aggregated (mean ± std).
	ColSeed = "seed"
	// CheckpointBest and CheckpointFinal are the checkpoint values of the Best / Final layout.
	CheckpointBest  = "best"
	CheckpointFinal = "final"
)

// Aggregations of rows that differ only in their seed.
const (
	AggregateMean    = "mean"
	AggregateMeanStd = "mean±std"
)

// Layout says how a long table of records becomes a report table.
type Layout struct {
	Rows      []string // key columns whose values form the rows; empty: every key column not used otherwise
	Cols      []string // key columns whose values spread into columns
	ColValues []string // column groups to show, in order, by label (cols values joined by " "); empty: all
	Metrics   []string // numeric columns to show
	BestFinal bool     // lay out Best / Final / Diff when a checkpoint column holds best/final
	// Compare, when set, replaces Best / Final: the values A and B of key
	// column Col side by side with their difference A − B (e.g. the split
	// column's train and test, for the train–test gap).
	Compare   *Comparison
	DiffName  string // the difference's column label; "" = "Diff"
	DiffOnly  bool   // show only the difference column of each compared pair
	Aggregate string // AggregateMean or AggregateMeanStd
	Digits    int    // digits after the decimal point
	Percent   bool   // multiply rates (IsRate) by 100
}

// Comparison sets two values of one key column against each other.
type Comparison struct {
	Col, A, B string
}

// Record is one row of a gathered table with its matrix tags: Keys holds
// every column as text (and the tags), Nums the numeric columns, and
// Categorical the names of the tag and string columns, which must agree
// between records that fill the same cell.
type Record struct {
	Keys        map[string]string
	Nums        map[string]float64
	Categorical []string
	Counts      map[string]bool // numeric columns that hold integers (n, flipped)
}

// Grid is a laid-out report table: key columns then value columns, each
// value column under a group label (e.g. "pgd20") with a leaf label ("Best",
// "Final", "Diff", or "" when there is one column per group).
type Grid struct {
	KeyNames []string
	Groups   []string
	Leaves   []string
	Rows     []GridRow
}

// GridRow is one row of a Grid.
type GridRow struct {
	Keys  []string
	Cells []Cell
}

// Cell is one aggregated value: the mean of N values and their sample
// standard deviation (ShowStd says whether to print it). N = 0 is an empty cell.
type Cell struct {
	Mean, Std float64
	N         int
	ShowStd   bool
	// ExtraDigits widens the printed precision of a metric that is not shown
	// as a percentage beside ones that are (ECE 0.043 beside accuracy 51.2).
	ExtraDigits int
}

// Records turns gathered tables into records: every column of table i plus
// the tags of table i (a tag that names a column of its table is an error).
// A checkpoint value that is eval's label of a gathered model,
// "axis=value,…/best", is split: its axes become keys of their own and the
// checkpoint keeps the part after the last "/".
func Records(tables []*artifacts.Table, tags []map[string]string) ([]Record, error) {
	var out []Record
	for i, t := range tables {
		var tg map[string]string
		if i < len(tags) {
			tg = tags[i]
		}
		axes := sortedKeys(tg)
		for _, axis := range axes {
			if t.Column(axis) != nil {
				return nil, fmt.Errorf("table %d: matrix axis %q clashes with its column of that name: rename the axis", i+1, axis)
			}
		}
		for r := 0; r < t.Len(); r++ {
			rec := Record{Keys: map[string]string{}, Nums: map[string]float64{}}
			for _, axis := range axes {
				rec.Keys[axis] = tg[axis]
				rec.Categorical = append(rec.Categorical, axis)
			}
			for _, c := range t.Columns {
				switch {
				case c.Strings != nil:
					rec.Keys[c.Name] = c.Strings[r]
					rec.Categorical = append(rec.Categorical, c.Name)
				case c.Ints != nil:
					rec.Keys[c.Name] = strconv.FormatInt(c.Ints[r], 10)
					rec.Nums[c.Name] = float64(c.Ints[r])
					if rec.Counts == nil {
						rec.Counts = map[string]bool{}
					}
					rec.Counts[c.Name] = true
				default:
					rec.Keys[c.Name] = strconv.FormatFloat(c.Floats[r], 'g', -1, 64)
					rec.Nums[c.Name] = c.Floats[r]
				}
			}
			if err := rec.splitCheckpointLabel(); err != nil {
				return nil, fmt.Errorf("table %d row %d: %w", i+1, r+1, err)
			}
			out = append(out, rec)
		}
	}
	return out, nil
}

// splitCheckpointLabel splits a checkpoint "a=x,b=y/best" (or "a=x,b=y")
// into keys a and b and the checkpoint "best" (or ""). A value that is not
// of that form is left alone; an axis that contradicts a key already
// present is an error.
func (r *Record) splitCheckpointLabel() error {
	label, ok := r.Keys[ColCheckpoint]
	if !ok || !strings.Contains(label, "=") {
		return nil
	}
	pairs, checkpoint := label, ""
	if i := strings.LastIndex(label, "/"); i >= 0 {
		pairs, checkpoint = label[:i], label[i+1:]
	}
	keys := map[string]string{}
	var order []string
	for _, pair := range strings.Split(pairs, ",") {
		k, v, ok := strings.Cut(pair, "=")
		if !ok || k == "" {
			return nil // not a label of tags: keep the value as it is
		}
		keys[k] = v
		order = append(order, k)
	}
	var added []string // like tags, they come first
	for _, k := range order {
		if old, present := r.Keys[k]; present && old != keys[k] {
			return fmt.Errorf("checkpoint %q says %s=%s but the row has %s=%s", label, k, keys[k], k, old)
		} else if !present {
			added = append(added, k)
		}
		r.Keys[k] = keys[k]
	}
	r.Categorical = append(added, r.Categorical...)
	r.Keys[ColCheckpoint] = checkpoint
	return nil
}

// IsRate reports whether a metric is a rate in [0,1] that the Percent
// option shows as a percentage: accuracy, *_acc, *accuracy*, *rate*, *error*,
// *recovered* (the share of flipped labels recovered).
func IsRate(metric string) bool {
	m := strings.ToLower(metric)
	return strings.Contains(m, "accuracy") || m == "acc" || strings.HasSuffix(m, "_acc") ||
		strings.Contains(m, "rate") || strings.Contains(m, "error") || strings.Contains(m, "recovered")
}

// Build lays out records as l says. Errors name what is wrong: an unknown
// row, column or metric name, a checkpoint other than best/final in the
// Best / Final layout, or two records for one cell that differ in something
// other than the seed.
func (l Layout) Build(records []Record) (*Grid, error) {
	if len(records) == 0 {
		return nil, errors.New("no rows to report")
	}
	if len(l.Metrics) == 0 {
		return nil, errors.New("no metrics to report")
	}
	keyNames, catNames, numNames := namesOf(records)
	for _, list := range []struct {
		what  string
		names []string
		known []string
	}{{"rows", l.Rows, keyNames}, {"cols", l.Cols, keyNames}, {"metrics", l.Metrics, numNames}} {
		for _, n := range list.names {
			if !slices.Contains(list.known, n) {
				return nil, fmt.Errorf("%s names %q, which no input has (columns: %s)", list.what, n, strings.Join(list.known, ", "))
			}
		}
	}
	for _, n := range l.Rows {
		if slices.Contains(l.Cols, n) {
			return nil, fmt.Errorf("%q is in both rows and cols", n)
		}
	}
	placed := func(n string) bool { return slices.Contains(l.Rows, n) || slices.Contains(l.Cols, n) }
	cmp := l.Compare
	switch {
	case cmp != nil && !slices.Contains(catNames, cmp.Col):
		return nil, fmt.Errorf("compare names %q, which no input has as a text column (columns: %s)", cmp.Col, strings.Join(catNames, ", "))
	case cmp != nil && placed(cmp.Col):
		return nil, fmt.Errorf("compare column %q is also in rows or cols", cmp.Col)
	case cmp == nil && l.BestFinal && slices.Contains(catNames, ColCheckpoint) && !placed(ColCheckpoint):
		cmp = &Comparison{Col: ColCheckpoint, A: CheckpointBest, B: CheckpointFinal}
	}
	compared := func(n string) bool { return cmp != nil && n == cmp.Col }
	bySeed := slices.Contains(catNames, ColSeed) && !placed(ColSeed)
	rows := l.Rows
	if len(rows) == 0 {
		for _, n := range catNames {
			if !placed(n) && !compared(n) && !(bySeed && n == ColSeed) && !slices.Contains(l.Metrics, n) {
				rows = append(rows, n)
			}
		}
	}
	var free []string // categorical names that must agree within a cell
	for _, n := range catNames {
		if !slices.Contains(rows, n) && !slices.Contains(l.Cols, n) && !compared(n) && !(bySeed && n == ColSeed) {
			free = append(free, n)
		}
	}

	b := newBuilder()
	for _, rec := range records {
		rowKey, colKey := rec.tuple(rows), rec.tuple(l.Cols)
		part := ""
		if cmp != nil {
			switch v := rec.Keys[cmp.Col]; {
			case strings.EqualFold(v, cmp.A):
				part = cmp.A
			case strings.EqualFold(v, cmp.B):
				part = cmp.B
			case cmp.Col == ColCheckpoint && l.Compare == nil:
				return nil, fmt.Errorf("checkpoint %q: the Best / Final layout needs %q or %q (set best_final: false, or put checkpoint in rows or cols)",
					v, CheckpointBest, CheckpointFinal)
			default:
				continue // a value the comparison leaves out
			}
		}
		seed := ""
		if bySeed {
			seed = rec.Keys[ColSeed]
		}
		for _, m := range l.Metrics {
			v, ok := rec.Nums[m]
			if !ok {
				continue
			}
			if err := b.add(cellKey{row: rowKey, col: colKey, metric: m, part: part}, seed, v, rec.tuple(free), free); err != nil {
				return nil, err
			}
		}
	}
	counts := map[string]bool{} // metrics that are integer columns in every record
	for _, m := range l.Metrics {
		counts[m] = true
		for _, rec := range records {
			if _, ok := rec.Nums[m]; ok && !rec.Counts[m] {
				counts[m] = false
			}
		}
	}
	return l.grid(b, rows, cmp, bySeed, counts)
}

// grid assembles the laid-out table from the collected cells.
func (l Layout) grid(b *builder, rows []string, cmp *Comparison, bySeed bool, counts map[string]bool) (*Grid, error) {
	colOrder := b.colOrder
	if len(l.ColValues) > 0 {
		labels := map[string]string{}
		for _, c := range b.colOrder {
			labels[colLabel(c)] = c
		}
		colOrder = nil
		for _, want := range l.ColValues {
			c, ok := labels[want]
			if !ok {
				return nil, fmt.Errorf("col_values names %q, which is not a column (columns: %s)", want, strings.Join(sortedKeys(labels), ", "))
			}
			colOrder = append(colOrder, c)
		}
	}
	parts := []string{""}
	leaves := []string{""}
	if cmp != nil {
		diffName := l.DiffName
		if diffName == "" {
			diffName = "Diff"
		}
		parts = []string{cmp.A, cmp.B, partDiff}
		leaves = []string{titleCase(cmp.A), titleCase(cmp.B), diffName}
		if l.DiffOnly {
			parts, leaves = parts[2:], leaves[2:]
		}
	}
	g := &Grid{KeyNames: rows}
	type column struct{ col, metric string }
	var columns []column
	for _, c := range colOrder {
		for _, m := range l.Metrics {
			if !b.hasColumn[c+"\x00"+m] {
				continue // nothing to show: no such metric for this column group
			}
			label := colLabel(c)
			if len(l.Cols) == 0 || len(l.Metrics) > 1 {
				label = strings.TrimSpace(label + " " + m)
			}
			for _, leaf := range leaves {
				g.Groups = append(g.Groups, label)
				g.Leaves = append(g.Leaves, leaf)
			}
			columns = append(columns, column{c, m})
		}
	}
	if len(columns) == 0 {
		return nil, fmt.Errorf("no values for metrics %s", strings.Join(l.Metrics, ", "))
	}
	for _, r := range b.rowOrder {
		row := GridRow{Keys: splitTuple(r, len(rows))}
		for _, c := range columns {
			scale := 1.0
			if l.Percent && IsRate(c.metric) {
				scale = 100
			}
			for _, part := range parts {
				var values []float64
				if part == partDiff {
					a := b.cell(cellKey{r, c.col, c.metric, cmp.A})
					bc := b.cell(cellKey{r, c.col, c.metric, cmp.B})
					for _, seed := range a.seeds {
						if bv, ok := bc.values[seed]; ok {
							values = append(values, a.values[seed]-bv)
						}
					}
				} else {
					cs := b.cell(cellKey{r, c.col, c.metric, part})
					for _, seed := range cs.seeds {
						values = append(values, cs.values[seed])
					}
				}
				cell := aggregate(values, scale, bySeed && l.Aggregate == AggregateMeanStd)
				switch {
				case scale == 1 && counts[c.metric] && cell.Mean == math.Trunc(cell.Mean) && !cell.ShowStd:
					cell.ExtraDigits = -l.Digits // a count such as n or flipped: no decimals
				case l.Percent && scale == 1:
					cell.ExtraDigits = 2
				}
				row.Cells = append(row.Cells, cell)
			}
		}
		if slices.ContainsFunc(row.Cells, func(c Cell) bool { return c.N > 0 }) {
			g.Rows = append(g.Rows, row) // rows only in columns left out by col_values are dropped
		}
	}
	g.dropEmptyColumns() // e.g. Final and Diff when only best checkpoints were evaluated
	return g, nil
}

// dropEmptyColumns removes the value columns without a value in any row.
func (g *Grid) dropEmptyColumns() {
	keep := make([]bool, len(g.Groups))
	for _, r := range g.Rows {
		for j, c := range r.Cells {
			keep[j] = keep[j] || c.N > 0
		}
	}
	filter := func(n int, set func(to, from int)) int {
		k := 0
		for j := 0; j < n; j++ {
			if keep[j] {
				set(k, j)
				k++
			}
		}
		return k
	}
	n := filter(len(g.Groups), func(to, from int) { g.Groups[to], g.Leaves[to] = g.Groups[from], g.Leaves[from] })
	g.Groups, g.Leaves = g.Groups[:n], g.Leaves[:n]
	for i := range g.Rows {
		cells := g.Rows[i].Cells
		g.Rows[i].Cells = cells[:filter(len(cells), func(to, from int) { cells[to] = cells[from] })]
	}
}

// aggregate is the mean and sample standard deviation of values, scaled.
func aggregate(values []float64, scale float64, showStd bool) Cell {
	c := Cell{N: len(values), ShowStd: showStd && len(values) > 1}
	if c.N == 0 {
		return c
	}
	for _, v := range values {
		c.Mean += v
	}
	c.Mean /= float64(c.N)
	if c.N > 1 {
		ss := 0.0
		for _, v := range values {
			ss += (v - c.Mean) * (v - c.Mean)
		}
		c.Std = math.Sqrt(ss/float64(c.N-1)) * scale
	}
	c.Mean *= scale
	return c
}

// cellKey names one cell before aggregation: row and column tuples, the
// metric and the checkpoint part ("best", "final" or "").
type cellKey struct{ row, col, metric, part string }

// cellValues are the values of one cell by seed, with the free keys of the
// record each came from (to explain a clash).
type cellValues struct {
	seeds  []string
	values map[string]float64
	free   map[string]string
}

// builder collects cell values and the first-appearance order of rows and
// column groups.
type builder struct {
	cells     map[cellKey]*cellValues
	rowOrder  []string
	colOrder  []string
	seenRow   map[string]bool
	seenCol   map[string]bool
	hasColumn map[string]bool
}

func newBuilder() *builder {
	return &builder{cells: map[cellKey]*cellValues{}, seenRow: map[string]bool{}, seenCol: map[string]bool{}, hasColumn: map[string]bool{}}
}

// cell returns the values of k (empty when it has none).
func (b *builder) cell(k cellKey) *cellValues {
	if cv := b.cells[k]; cv != nil {
		return cv
	}
	return &cellValues{}
}

// add records value v of a cell for seed; a second value for the same cell
// and seed is an error unless it is equal.
func (b *builder) add(k cellKey, seed string, v float64, free string, freeNames []string) error {
	if !b.seenRow[k.row] {
		b.seenRow[k.row] = true
		b.rowOrder = append(b.rowOrder, k.row)
	}
	if !b.seenCol[k.col] {
		b.seenCol[k.col] = true
		b.colOrder = append(b.colOrder, k.col)
	}
	b.hasColumn[k.col+"\x00"+k.metric] = true
	cv := b.cells[k]
	if cv == nil {
		cv = &cellValues{values: map[string]float64{}, free: map[string]string{}}
		b.cells[k] = cv
	}
	old, dup := cv.values[seed]
	if !dup {
		cv.seeds = append(cv.seeds, seed)
		cv.values[seed], cv.free[seed] = v, free
		return nil
	}
	where := fmt.Sprintf("%s of row %q, column %q", k.metric, tupleLabel(k.row), colLabel(k.col))
	if k.part != "" {
		where += " (" + k.part + ")"
	}
	oldFree, newFree := splitTuple(cv.free[seed], len(freeNames)), splitTuple(free, len(freeNames))
	for i, n := range freeNames {
		if oldFree[i] != newFree[i] {
			return fmt.Errorf("%s has several values that differ in %q (%q, %q): add %q to rows or cols", where, n, oldFree[i], newFree[i], n)
		}
	}
	if old != v && !(math.IsNaN(old) && math.IsNaN(v)) {
		return fmt.Errorf("%s has two different values, %g and %g, from otherwise identical rows", where, old, v)
	}
	return nil
}

// namesOf lists every key name (first-appearance order), the categorical
// ones, and the numeric ones.
func namesOf(records []Record) (keys, categorical, numeric []string) {
	seen := map[string]bool{}
	for _, r := range records {
		for _, n := range r.Categorical {
			if !seen[n] {
				seen[n] = true
				categorical = append(categorical, n)
			}
		}
	}
	keys = append(keys, categorical...)
	for _, r := range records {
		for _, n := range sortedKeys(r.Nums) {
			if !seen[n] {
				seen[n] = true
				keys = append(keys, n)
				numeric = append(numeric, n)
			}
		}
	}
	return keys, categorical, numeric
}

// tuple joins the values of names (absent: "") with a separator no label holds.
func (r Record) tuple(names []string) string {
	vals := make([]string, len(names))
	for i, n := range names {
		vals[i] = r.Keys[n]
	}
	return strings.Join(vals, tupleSep)
}

const tupleSep = "\x1f"

func splitTuple(t string, n int) []string {
	if n == 0 {
		return nil
	}
	return strings.SplitN(t, tupleSep, n)
}

// colLabel is the label of a column tuple: its values joined by spaces.
func colLabel(t string) string { return strings.ReplaceAll(t, tupleSep, " ") }

// tupleLabel is a row tuple for messages.
func tupleLabel(t string) string { return strings.ReplaceAll(t, tupleSep, ", ") }

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// partDiff marks the difference column of a comparison; NUL keeps it apart
// from any value a key column can hold.
const partDiff = "\x00diff"

// titleCase capitalises the first letter of a compared value for its column
// label ("best" -> "Best").
func titleCase(v string) string {
	if v == "" {
		return v
	}
	r := []rune(v)
	return strings.ToUpper(string(r[0])) + string(r[1:])
}
