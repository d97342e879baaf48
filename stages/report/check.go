package report

import (
	"fmt"
	"slices"
	"strings"

	"github.com/sglr-pipe/sglr-pipe/stages"
	"github.com/sglr-pipe/sglr-pipe/stages/param"
)

// maxColLabels bounds the column-group labels Check enumerates to check
// col_values; beyond it col_values is left to the run.
const maxColLabels = 10000

// Check implements stages.Checker: the shape of compare, and, when every
// table the report reads declares its columns (stages.ColumnDeclarer), that
// rows, cols, metrics, compare and x name columns or matrix tags the tables
// will have and that col_values names column groups they will have. A name
// that no input declares is reported with the closest one.
func (Stage) Check(ps stages.Params, inputs map[string][]stages.Upstream) []stages.Problem {
	var problems []stages.Problem
	cmp, p := comparisonFrom(stringList(ps.List("compare")))
	if p != nil {
		problems = append(problems, *p)
	}
	cols, known := recordColumns(inputs)
	if !known {
		return problems
	}
	for _, list := range []struct {
		param string
		names []string
		among []string
		what  string
	}{
		{"rows", stringList(ps.List("rows")), cols.keys, "a column or matrix tag"},
		{"cols", stringList(ps.List("cols")), cols.keys, "a column or matrix tag"},
		{"metrics", stringList(ps.List("metrics")), cols.numeric, "a number column"},
	} {
		for i, name := range list.names {
			if !slices.Contains(list.among, name) {
				problems = append(problems, unknownName(list.param, i+1, name, list.what, list.among))
			}
		}
	}
	if cmp != nil && !slices.Contains(cols.text, cmp.Col) {
		problems = append(problems, unknownName("compare", 1, cmp.Col, "a text column or matrix tag", cols.text))
	}
	if x := ps.String("x"); x != "" && !slices.Contains(cols.keys, x) {
		problems = append(problems, unknownName("x", 0, x, "a column or matrix tag", cols.keys))
	}
	return append(problems, cols.checkColValues(stringList(ps.List("cols")), stringList(ps.List("col_values")))...)
}

// unknownName is the problem of a name, given to parameter of, that none of
// the tables has.
func unknownName(of string, elem int, name, what string, among []string) stages.Problem {
	hint := param.Suggest(name, among)
	if hint == "" {
		hint = "the tables have: " + strings.Join(among, ", ")
	}
	return stages.Problem{Param: of, Elem: elem, Msg: fmt.Sprintf("%q is not %s of the tables", name, what), Hint: hint}
}

// comparisonFrom reads the compare parameter: nil when it is empty, else
// [column, a, b] with a and b different.
func comparisonFrom(cmp []string) (*Comparison, *stages.Problem) {
	if len(cmp) == 0 {
		return nil, nil
	}
	if len(cmp) != 3 || cmp[0] == "" || cmp[1] == "" || cmp[2] == "" || strings.EqualFold(cmp[1], cmp[2]) {
		return nil, &stages.Problem{Param: "compare", Msg: fmt.Sprintf("compare is %q: want [column, a, b], e.g. [split, train, test], with a and b different", cmp)}
	}
	return &Comparison{Col: cmp[0], A: cmp[1], B: cmp[2]}, nil
}

// columnSet is what the records of a report will hold, as its inputs
// declare it: every key (text and number columns, matrix tags), the text
// keys, the number columns, and the values of the text keys whose values
// every input declares.
type columnSet struct {
	keys, text, numeric []string
	values              map[string][]string // text key -> its values; absent when not known
}

// recordColumns is what the records of a report with these inputs will
// hold (see Records and curveRecords); known is false when an input does
// not declare its columns, so nothing can be concluded.
func recordColumns(inputs map[string][]stages.Upstream) (columnSet, bool) {
	set := columnSet{values: map[string][]string{}}
	unknownValues := map[string]bool{}
	addText := func(name string, values []string) {
		if !slices.Contains(set.text, name) {
			set.text = append(set.text, name)
		}
		if values == nil || unknownValues[name] {
			unknownValues[name] = true
			delete(set.values, name)
			return
		}
		for _, v := range values {
			if !slices.Contains(set.values[name], v) {
				set.values[name] = append(set.values[name], v)
			}
		}
	}
	tables := inputs[PortTables]
	if len(tables) == 0 {
		// Without tables the records are the curves' best and final accuracies.
		if len(inputs[PortCurves]) == 0 {
			return set, false
		}
		for _, c := range inputs[PortCurves] {
			for axis, v := range c.Tags {
				addText(axis, []string{v})
			}
		}
		addText(ColCheckpoint, []string{CheckpointBest, CheckpointFinal})
		addText("attack", []string{"clean", "robust"})
		set.numeric = []string{"accuracy", "epoch"}
	}
	for _, t := range tables {
		if t.Columns == nil {
			return set, false
		}
		for axis, v := range t.Tags {
			addText(axis, []string{v})
		}
		for _, c := range t.Columns {
			if c.Numeric {
				if !slices.Contains(set.numeric, c.Name) {
					set.numeric = append(set.numeric, c.Name)
				}
				continue
			}
			addText(c.Name, c.Values)
		}
	}
	set.keys = append(slices.Clone(set.text), set.numeric...)
	slices.Sort(set.keys)
	slices.Sort(set.text)
	slices.Sort(set.numeric)
	return set, true
}

// checkColValues checks that each of colValues is the label of a column
// group the cols can make: their values joined by a space. It says nothing
// when a col's values are not all declared, or there are too many labels.
func (s columnSet) checkColValues(cols, colValues []string) []stages.Problem {
	if len(cols) == 0 || len(colValues) == 0 {
		return nil
	}
	labels := []string{""}
	for _, c := range cols {
		values, known := s.values[c]
		if !known || len(labels)*len(values) > maxColLabels {
			return nil
		}
		var next []string
		for _, l := range labels {
			for _, v := range values {
				next = append(next, strings.TrimSpace(l+" "+v))
			}
		}
		labels = next
	}
	var problems []stages.Problem
	for i, want := range colValues {
		if slices.Contains(labels, want) {
			continue
		}
		hint := param.Suggest(want, labels)
		if hint == "" {
			hint = "the column groups are: " + strings.Join(labels, ", ")
		}
		problems = append(problems, stages.Problem{Param: "col_values", Elem: i + 1,
			Msg:  fmt.Sprintf("%q is not a value of %s in the tables", want, strings.Join(cols, " ")),
			Hint: hint})
	}
	return problems
}
