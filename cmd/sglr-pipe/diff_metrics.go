package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/sglr-pipe/sglr-pipe/artifacts"
	"github.com/sglr-pipe/sglr-pipe/stages"
)

// tableChange is how one table output (INSTANCE.PORT) differs between two
// runs: its rows joined on the key columns, each changed number a row.
type tableChange struct {
	Instance string         `json:"instance"`
	Port     string         `json:"port"`
	Keys     []string       `json:"keys"` // the key columns, in table order
	Rows     []metricChange `json:"rows"`
	Added    []string       `json:"columns_added,omitempty"`
	Removed  []string       `json:"columns_removed,omitempty"`
}

// metricChange is one number that changed, or one row only one run has.
type metricChange struct {
	Key    []string    `json:"key"` // the row's values in the key columns
	Change string      `json:"change"`
	Column string      `json:"column,omitempty"`
	Old    *diffNumber `json:"old,omitempty"`
	New    *diffNumber `json:"new,omitempty"`
	Delta  *diffNumber `json:"delta,omitempty"`
}

// diffNumber is a metric value in diff's JSON: a number, or the strings
// "NaN", "+Inf" and "-Inf", which JSON numbers cannot hold (a curve without
// flipped labels reports recovered = NaN).
type diffNumber float64

// MarshalJSON writes the number, or NaN and the infinities as strings.
func (n diffNumber) MarshalJSON() ([]byte, error) {
	f := float64(n)
	switch {
	case math.IsNaN(f):
		return []byte(`"NaN"`), nil
	case math.IsInf(f, 1):
		return []byte(`"+Inf"`), nil
	case math.IsInf(f, -1):
		return []byte(`"-Inf"`), nil
	}
	return json.Marshal(f)
}

// maxDiffTableBytes bounds the objects diff opens to learn whether an
// output of an unknown stage (a plugin) is a table: reading a dataset of
// hundreds of MB to find out would make diff slow for no answer.
const maxDiffTableBytes = 16 << 20

// diffTables compares the table outputs of one instance in two runs: only
// ports both runs produced, with different digests (equal digests are equal
// tables).
func (d *runDiff) diffTables(store *artifacts.DirStore, oldIn, newIn artifacts.RunInstance) []tableChange {
	var out []tableChange
	for _, port := range slices.Sorted(maps.Keys(newIn.Outputs)) {
		od, ok := oldIn.Outputs[port]
		nd := newIn.Outputs[port]
		if od == nd || !isTableOutput(store, newIn.Uses, port, nd) {
			continue
		}
		if !ok {
			d.Notes = append(d.Notes, fmt.Sprintf("%s.%s not compared: only the new run produced it (%s there)", newIn.ID, port, oldIn.Status))
			continue
		}
		oldT, errOld := readDiffTable(store, od)
		newT, errNew := readDiffTable(store, nd)
		if err := firstError(errOld, errNew); err != nil {
			d.Notes = append(d.Notes, fmt.Sprintf("%s.%s not compared: %v", newIn.ID, port, err))
			continue
		}
		tc := diffTable(oldT, newT)
		if len(tc.Rows) > 0 || len(tc.Added) > 0 || len(tc.Removed) > 0 {
			tc.Instance, tc.Port = newIn.ID, port
			out = append(out, tc)
		}
	}
	for _, port := range slices.Sorted(maps.Keys(oldIn.Outputs)) {
		if _, ok := newIn.Outputs[port]; !ok && isTableOutput(store, oldIn.Uses, port, oldIn.Outputs[port]) {
			d.Notes = append(d.Notes, fmt.Sprintf("%s.%s not compared: only the old run produced it (%s in the new one)", newIn.ID, port, newIn.Status))
		}
	}
	return out
}

// firstError returns the first non-nil error.
func firstError(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// isTableOutput reports whether port of a stage is a table: from a built-in
// stage's spec, or, for anything else, from the object's own kind when it
// is small enough to open.
func isTableOutput(store *artifacts.DirStore, uses, port string, d artifacts.Digest) bool {
	if s, ok := stages.Builtin.Lookup(uses); ok {
		for _, p := range s.Spec().Outputs {
			if p.Name == port {
				return p.Kind == artifacts.KindTable
			}
		}
		return false
	}
	path, err := store.Path(d)
	if err != nil {
		return false
	}
	if info, err := os.Stat(path); err != nil || info.Size() > maxDiffTableBytes {
		return false
	}
	f, err := store.Open(d)
	if err != nil {
		return false
	}
	defer f.Close()
	info, err := artifacts.Inspect(f, 0)
	return err == nil && info.Kind == artifacts.KindTable
}

// readDiffTable decodes a stored table, checked against its digest.
func readDiffTable(store *artifacts.DirStore, d artifacts.Digest) (*artifacts.Table, error) {
	path, err := store.Path(d)
	if err != nil {
		return nil, err
	}
	return artifacts.DecodeObject(path, d, artifacts.ReadTable)
}

// diffTable joins two versions of a table on their key columns (the text
// columns both have: matrix tags, checkpoint, attack, split; then integer
// columns while those repeat; a row number when there are none) and lists
// every number that changed, and the rows only one side has. A key that
// still repeats is told apart by its occurrence.
func diffTable(oldT, newT *artifacts.Table) tableChange {
	tc := tableChange{}
	oldCols, newCols := columnsByName(oldT), columnsByName(newT)
	for _, c := range newT.Columns {
		if _, ok := oldCols[c.Name]; !ok {
			tc.Added = append(tc.Added, c.Name)
		}
	}
	for _, c := range oldT.Columns {
		if _, ok := newCols[c.Name]; !ok {
			tc.Removed = append(tc.Removed, c.Name)
		}
	}
	var values, ints []string
	for _, c := range newT.Columns {
		oc, ok := oldCols[c.Name]
		switch {
		case !ok:
		case c.Strings != nil && oc.Strings != nil:
			tc.Keys = append(tc.Keys, c.Name)
		case c.Strings == nil && oc.Strings == nil:
			values = append(values, c.Name)
			if c.Ints != nil && oc.Ints != nil {
				ints = append(ints, c.Name)
			}
		}
	}
	// Text columns that repeat (calibrate's bins: one row per checkpoint,
	// attack and bin) take integer columns into the key, in table order,
	// until the rows are told apart ("bin") — only columns that hold the
	// same values under each key in both tables, as an index does and a
	// metric that changed does not.
	for _, name := range ints {
		if uniqueKeys(oldT, tc.Keys) && uniqueKeys(newT, tc.Keys) {
			break
		}
		if sameIndex(oldT, newT, tc.Keys, name) {
			tc.Keys = append(tc.Keys, name)
			values = slices.DeleteFunc(values, func(v string) bool { return v == name })
		}
	}
	oldRows, oldOrder := keyedRows(oldT, tc.Keys)
	newRows, newOrder := keyedRows(newT, tc.Keys)
	for _, k := range newOrder {
		nr := newRows[k]
		or, ok := oldRows[k]
		if !ok {
			tc.Rows = append(tc.Rows, metricChange{Key: nr.key, Change: changeAdded})
			continue
		}
		for _, name := range values {
			ov, nv := numberAt(oldCols[name], or.index), numberAt(newCols[name], nr.index)
			if sameNumber(ov, nv) {
				continue
			}
			delta := diffNumber(nv - ov)
			o, n := diffNumber(ov), diffNumber(nv)
			tc.Rows = append(tc.Rows, metricChange{Key: nr.key, Change: changeChanged, Column: name, Old: &o, New: &n, Delta: &delta})
		}
	}
	for _, k := range oldOrder {
		if _, ok := newRows[k]; !ok {
			tc.Rows = append(tc.Rows, metricChange{Key: oldRows[k].key, Change: changeRemoved})
		}
	}
	if tc.Keys == nil {
		tc.Keys = []string{}
	}
	return tc
}

// keyedRow is one table row under its join key.
type keyedRow struct {
	key   []string // the values in the key columns ("#N" without key columns)
	index int
}

// keyedRows indexes a table's rows by their values in the key columns, in
// row order; the second and later rows with one key get "#2", "#3", ... in
// the join key (so two rows with equal tags still pair in order).
func keyedRows(t *artifacts.Table, keys []string) (map[string]keyedRow, []string) {
	cols := columnsByName(t)
	rows := map[string]keyedRow{}
	var order []string
	seen := map[string]int{}
	for r := 0; r < t.Len(); r++ {
		key := rowKey(cols, keys, r)
		if len(keys) == 0 {
			key = append(key, "#"+strconv.Itoa(r+1))
		}
		join := strings.Join(key, "\x00")
		seen[join]++
		if n := seen[join]; n > 1 {
			key[len(key)-1] += " #" + strconv.Itoa(n)
			join += "\x00#" + strconv.Itoa(n)
		}
		rows[join] = keyedRow{key: key, index: r}
		order = append(order, join)
	}
	return rows, order
}

// uniqueKeys reports whether no two rows of t agree in every key column
// (with no key columns, whether t has at most one row).
func uniqueKeys(t *artifacts.Table, keys []string) bool {
	cols := columnsByName(t)
	seen := map[string]bool{}
	for r := 0; r < t.Len(); r++ {
		k := strings.Join(rowKey(cols, keys, r), "\x00")
		if seen[k] {
			return false
		}
		seen[k] = true
	}
	return true
}

// rowKey is row r's values in the key columns.
func rowKey(cols map[string]*artifacts.Column, keys []string, r int) []string {
	key := make([]string, 0, len(keys)+1)
	for _, k := range keys {
		key = append(key, columnCell(*cols[k], r))
	}
	return key
}

// sameIndex reports whether integer column name holds the same values (in
// any order) under every key that both tables have: the mark of an index
// column such as a bin number.
func sameIndex(oldT, newT *artifacts.Table, keys []string, name string) bool {
	group := func(t *artifacts.Table) map[string][]string {
		cols := columnsByName(t)
		g := map[string][]string{}
		for r := 0; r < t.Len(); r++ {
			k := strings.Join(rowKey(cols, keys, r), "\x00")
			g[k] = append(g[k], columnCell(*cols[name], r))
		}
		return g
	}
	oldG, newG := group(oldT), group(newT)
	for k, ov := range oldG {
		nv, ok := newG[k]
		if !ok {
			continue
		}
		slices.Sort(ov)
		slices.Sort(nv)
		if !slices.Equal(ov, nv) {
			return false
		}
	}
	return true
}

// columnsByName indexes a table's columns.
func columnsByName(t *artifacts.Table) map[string]*artifacts.Column {
	m := make(map[string]*artifacts.Column, len(t.Columns))
	for i := range t.Columns {
		m[t.Columns[i].Name] = &t.Columns[i]
	}
	return m
}

// numberAt is row r of a numeric column as a float64 (NaN past its end).
func numberAt(c *artifacts.Column, r int) float64 {
	switch {
	case c.Ints != nil && r < len(c.Ints):
		return float64(c.Ints[r])
	case c.Floats != nil && r < len(c.Floats):
		return c.Floats[r]
	}
	return math.NaN()
}

// sameNumber is equality in which NaN equals NaN: a metric that stays
// undefined has not changed.
func sameNumber(a, b float64) bool {
	return a == b || (math.IsNaN(a) && math.IsNaN(b))
}

// formatNumber renders a metric value: whole numbers as integers, others in
// six significant digits (as tables are printed after a run).
func formatNumber(n *diffNumber) string {
	if n == nil {
		return ""
	}
	f := float64(*n)
	if f == math.Trunc(f) && math.Abs(f) < 1e15 {
		return strconv.FormatFloat(f, 'f', -1, 64)
	}
	return strconv.FormatFloat(f, 'g', 6, 64)
}

// formatDelta is formatNumber with an explicit sign.
func formatDelta(n *diffNumber) string {
	s := formatNumber(n)
	if n != nil && *n > 0 {
		return "+" + s
	}
	return s
}

// printTableChange renders one table's changes: the key columns, then the
// column, old, new and delta of each changed number.
func printTableChange(w io.Writer, tc tableChange) {
	changed := 0
	for _, r := range tc.Rows {
		if r.Change == changeChanged {
			changed++
		}
	}
	fmt.Fprintf(w, "metrics: %s.%s: %d %s changed", tc.Instance, tc.Port, changed, plural(changed, "value"))
	if n := len(tc.Rows) - changed; n > 0 {
		fmt.Fprintf(w, ", %d %s added or removed", n, plural(n, "row"))
	}
	fmt.Fprintln(w)
	for _, c := range [][2]any{{"added", tc.Added}, {"removed", tc.Removed}} {
		if names := c[1].([]string); len(names) > 0 {
			fmt.Fprintf(w, "  columns %s: %s\n", c[0], strings.Join(names, ", "))
		}
	}
	if len(tc.Rows) == 0 {
		return
	}
	t := newTable()
	header := append(slices.Clone(tc.Keys), "column", "old", "new", "delta")
	if len(tc.Keys) == 0 {
		header = append([]string{"row"}, header...)
	}
	t.header(header...)
	for _, r := range tc.Rows {
		cells := make([]any, 0, len(header))
		for _, k := range r.Key { // one value per key column, or the row number
			cells = append(cells, k)
		}
		column := r.Column
		if r.Change != changeChanged {
			column = "(row " + r.Change + ")"
		}
		t.row(append(cells, column, formatNumber(r.Old), formatNumber(r.New), formatDelta(r.Delta))...)
	}
	t.render(w, "  ")
}
