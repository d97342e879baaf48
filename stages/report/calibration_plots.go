package report

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/sglr-pipe/sglr-pipe/artifacts"
)

// ReliabilityFigures draws one reliability diagram per gathered bins table,
// checkpoint and attack: the accuracy of each non-empty confidence bin as a
// bar over [lo, hi], the diagonal of perfect calibration, and the ECE the
// bins imply in the title. The axes are [0, 1] with room above 1.
func ReliabilityFigures(tables []*artifacts.Table, tags []map[string]string) ([]*Figure, error) {
	groups, err := binGroups(tables, tags)
	if err != nil {
		return nil, fmt.Errorf("bins: %w", err)
	}
	var out []*Figure
	for _, g := range groups {
		total := 0.0
		for _, b := range g.bins {
			total += b.count
		}
		ece := 0.0
		bars := Bars{Style: Style{Marker: -1}}
		for _, b := range g.bins {
			bin := Bin{Lo: b.lo, Hi: b.hi, Mean: math.NaN(), Count: b.count, Extra: math.NaN()}
			if b.count > 0 {
				ece += b.count / total * math.Abs(b.accuracy-b.confidence)
				bin.Mean, bin.N, bin.Extra = b.accuracy, 1, b.confidence
			}
			bars.Bins = append(bars.Bins, bin)
		}
		panel := &Panel{XLabel: "confidence", YLabel: "accuracy", Bars: []Bars{bars}, Diagonal: true,
			X: Range{0, 1}, Y: Range{0, 1.04}}
		out = append(out, &Figure{
			Name: "reliability-" + g.slug, Title: fmt.Sprintf("Reliability: %s (ECE %.3f)", g.label, ece),
			BarValue: "accuracy", BarExtra: "confidence", Panels: []*Panel{panel},
			Legend: []LegendGroup{{Entries: []LegendEntry{
				{Label: "accuracy", Kind: entryBar, Style: Style{Marker: -1}},
				{Label: "perfect calibration", Style: Style{Color: -1, Dash: 1, Marker: -1}},
			}}},
		})
	}
	return out, nil
}

// histSeries is one histogram of the confidence on the labelled class,
// bins keyed by their lower edge, with the fraction of samples in each bin
// for every replicate.
type histSeries struct {
	keys       []string
	checkpoint string
	lo         []float64
	hi, count  map[float64]float64
	fractions  map[float64][]float64
}

// ConfidenceFigures draws, per attack, the histograms of the confidence on
// the labelled class of every gathered hist table (the paper's Fig. B.3);
// bar heights are fractions of the samples. A checkpoint label of eval's
// form ("method=AT/best") is split into its tags and the checkpoint. When
// the tables differ in a tag other than `seed` — several methods — there is
// a panel per checkpoint and a colour per method; otherwise one panel, a
// colour per checkpoint; bars of one bin stand side by side. Seeds are
// replicates: the mean fraction, with ±std error bars.
func ConfidenceFigures(tables []*artifacts.Table, tags []map[string]string) ([]*Figure, error) {
	byAttack, attacks, names, err := histograms(tables, tags)
	if err != nil {
		return nil, fmt.Errorf("hist: %w", err)
	}
	var out []*Figure
	for _, attack := range attacks {
		out = append(out, confidenceFigure(attack, byAttack[attack], names))
	}
	return out, nil
}

// confidenceFigure is the confidence figure of one attack.
func confidenceFigure(attack string, series []*histSeries, names []string) *Figure {
	var checkpoints []string
	varies := false
	for _, s := range series {
		if !slices.Contains(checkpoints, s.checkpoint) {
			checkpoints = append(checkpoints, s.checkpoint)
		}
		varies = varies || !slices.Equal(s.keys, series[0].keys)
	}
	panelled := varies && len(checkpoints) > 1
	styleNames := names
	styleKeys := make([][]string, len(series))
	for i, s := range series {
		styleKeys[i] = s.keys
		if !panelled {
			styleKeys[i] = append(slices.Clone(s.keys), s.checkpoint)
		}
	}
	if !panelled {
		styleNames = append(slices.Clone(names), ColCheckpoint)
	}
	styling := styleSeries(styleNames, styleKeys, entryBar)
	name, title := "confidence", "Confidence on the labelled class"
	if attack != "" {
		name, title = "confidence-"+slug(attack), title+", "+attack
	}
	f := &Figure{Name: name, KeyNames: append(slices.Clone(names), ColCheckpoint), BarValue: "fraction", Legend: styling.Legend}
	panelOf := map[string]*Panel{}
	var ys extent
	maxN := 0
	for i, s := range series {
		p := panelOf[s.checkpoint]
		if !panelled {
			p = panelOf[""]
		}
		if p == nil {
			p = &Panel{XLabel: "confidence on the labelled class", X: Range{0, 1}, Bounds: &Range{0, 1}}
			if panelled {
				p.Title = "all"
				if s.checkpoint != "" {
					p.Title = s.checkpoint + " checkpoint"
				}
				panelOf[s.checkpoint] = p
			} else {
				panelOf[""] = p
			}
			f.Panels = append(f.Panels, p)
		}
		bars := Bars{Keys: append(slices.Clone(s.keys), s.checkpoint), Style: styling.Styles[i]}
		for _, lo := range s.lo {
			mean, std, n := meanStd(s.fractions[lo])
			maxN = max(maxN, n)
			bars.Bins = append(bars.Bins, Bin{Lo: lo, Hi: s.hi[lo], Mean: mean, Std: std, N: n, Count: s.count[lo]})
			_, top := p.spread(mean, std)
			ys.add(0, top)
			p.X.Min, p.X.Max = math.Min(p.X.Min, lo), math.Max(p.X.Max, s.hi[lo])
		}
		p.Bars = append(p.Bars, bars)
	}
	top := Range{0, 1}
	if ys.any && ys.hi > 0 {
		top = Range{0, ys.hi * 1.08}
	}
	for _, p := range f.Panels {
		p.Y = top
	}
	f.Panels[0].YLabel = "fraction of samples"
	f.Title = title + replicateNote(maxN)
	return f
}

// histRow is one bin of a hist table with the keys of its table's tags
// and checkpoint label (seed included).
type histRow struct {
	keys               map[string]string
	table              int
	checkpoint, attack string
	lo, hi, count      float64
}

// histograms reads hist tables into series by attack (attacks in
// first-appearance order), with the names of their key columns: the tags
// and checkpoint-label axes but `seed`, sorted.
func histograms(tables []*artifacts.Table, tags []map[string]string) (map[string][]*histSeries, []string, []string, error) {
	rows, err := histRows(tables, tags)
	if err != nil {
		return nil, nil, nil, err
	}
	nameSet := map[string]bool{}
	for _, r := range rows {
		for k := range r.keys {
			if k != ColSeed {
				nameSet[k] = true
			}
		}
	}
	names := sortedKeys(nameSet)
	// A replicate is one table's rows of one checkpoint label and attack.
	replicate := func(r histRow) string {
		parts := []string{strconv.Itoa(r.table), r.checkpoint, r.attack}
		for _, k := range sortedKeys(r.keys) {
			parts = append(parts, k+"="+r.keys[k])
		}
		return strings.Join(parts, tupleSep)
	}
	totals := map[string]float64{}
	for _, r := range rows {
		totals[replicate(r)] += r.count
	}
	byAttack := map[string][]*histSeries{}
	var attacks []string
	index := map[string]*histSeries{}
	for _, r := range rows {
		keys := make([]string, len(names))
		for j, n := range names {
			keys[j] = r.keys[n]
		}
		id := strings.Join(append(slices.Clone(keys), r.checkpoint, r.attack), tupleSep)
		s := index[id]
		if s == nil {
			s = &histSeries{keys: keys, checkpoint: r.checkpoint, hi: map[float64]float64{}, count: map[float64]float64{}, fractions: map[float64][]float64{}}
			index[id] = s
			if _, ok := byAttack[r.attack]; !ok {
				attacks = append(attacks, r.attack)
			}
			byAttack[r.attack] = append(byAttack[r.attack], s)
		}
		if _, ok := s.hi[r.lo]; !ok {
			s.lo = append(s.lo, r.lo)
		}
		s.hi[r.lo] = r.hi
		s.count[r.lo] += r.count
		frac := 0.0
		if total := totals[replicate(r)]; total > 0 {
			frac = r.count / total
		}
		s.fractions[r.lo] = append(s.fractions[r.lo], frac)
	}
	for _, list := range byAttack {
		for _, s := range list {
			slices.Sort(s.lo)
		}
	}
	return byAttack, attacks, names, nil
}

// histRows reads the bins of hist tables, splitting eval's checkpoint
// labels ("method=AT/best") into keys and the checkpoint.
func histRows(tables []*artifacts.Table, tags []map[string]string) ([]histRow, error) {
	var rows []histRow
	for i, t := range tables {
		if err := t.Validate(); err != nil {
			return nil, fmt.Errorf("table %d: %w", i+1, err)
		}
		cols := map[string][]float64{}
		for _, name := range []string{"lo", "hi", "count"} {
			v, err := numericColumn(t, name)
			if err != nil {
				return nil, fmt.Errorf("table %d: %w", i+1, err)
			}
			cols[name] = v
		}
		ckCol, atCol := stringColumn(t, ColCheckpoint), stringColumn(t, "attack")
		for r := 0; r < t.Len(); r++ {
			rec := Record{Keys: map[string]string{ColCheckpoint: ckCol(r)}}
			if i < len(tags) {
				for k, v := range tags[i] {
					rec.Keys[k] = v
				}
			}
			if err := rec.splitCheckpointLabel(); err != nil {
				return nil, fmt.Errorf("table %d row %d: %w", i+1, r+1, err)
			}
			lo, hi, count := cols["lo"][r], cols["hi"][r], cols["count"][r]
			if !finiteAll(lo, hi, count) || count < 0 || hi < lo {
				return nil, fmt.Errorf("table %d row %d: a bin holds lo %v, hi %v, count %v: want finite values, count ≥ 0, lo ≤ hi", i+1, r+1, lo, hi, count)
			}
			ck := rec.Keys[ColCheckpoint]
			delete(rec.Keys, ColCheckpoint)
			rows = append(rows, histRow{keys: rec.Keys, table: i, checkpoint: ck, attack: atCol(r), lo: lo, hi: hi, count: count})
		}
	}
	return rows, nil
}

// binGroup is the bins of one (table, checkpoint, attack) of a reliability table.
type binGroup struct {
	label, slug string
	bins        []bin
}

type bin struct{ lo, hi, count, accuracy, confidence float64 }

// binGroups splits reliability bins tables into groups by table,
// checkpoint and attack, labelled by the table's tag values, the checkpoint
// and the attack (the label's slug names the figure's files).
func binGroups(tables []*artifacts.Table, tags []map[string]string) ([]*binGroup, error) {
	var groups []*binGroup
	byKey := map[string]*binGroup{}
	used := map[string]int{}
	for i, t := range tables {
		if err := t.Validate(); err != nil {
			return nil, fmt.Errorf("table %d: %w", i+1, err)
		}
		var tg map[string]string
		if i < len(tags) {
			tg = tags[i]
		}
		cols := map[string][]float64{}
		for _, name := range []string{"lo", "hi", "count", "accuracy", "confidence"} {
			v, err := numericColumn(t, name)
			if err != nil {
				return nil, fmt.Errorf("table %d: %w", i+1, err)
			}
			cols[name] = v
		}
		ckCol, atCol := stringColumn(t, ColCheckpoint), stringColumn(t, "attack")
		for r := 0; r < t.Len(); r++ {
			ck, attack := ckCol(r), atCol(r)
			parts := tagValues(tg)
			if ck != "" {
				parts = append(parts, ck)
			}
			if attack != "" {
				parts = append(parts, attack)
			}
			key := fmt.Sprint(i, "\x00", strings.Join(parts, "\x00"))
			g := byKey[key]
			if g == nil {
				label := strings.Join(parts, " ")
				if label == "" {
					label = fmt.Sprintf("table %d", i+1)
				}
				s := slug(label)
				if used[s]++; used[s] > 1 {
					s += "-" + strconv.Itoa(used[s])
				}
				g = &binGroup{label: label, slug: s}
				byKey[key] = g
				groups = append(groups, g)
			}
			b := bin{lo: cols["lo"][r], hi: cols["hi"][r], count: cols["count"][r], accuracy: cols["accuracy"][r], confidence: cols["confidence"][r]}
			values := []float64{b.lo, b.hi, b.count}
			if b.count > 0 { // an empty bin has no accuracy or confidence (NaN)
				values = append(values, b.accuracy, b.confidence)
			}
			for _, v := range values {
				if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
					return nil, fmt.Errorf("table %d row %d: a bin holds %v, want a finite value ≥ 0", i+1, r+1, v)
				}
			}
			g.bins = append(g.bins, b)
		}
	}
	return groups, nil
}

// numericColumn returns an int or float column as floats.
func numericColumn(t *artifacts.Table, name string) ([]float64, error) {
	c := t.Column(name)
	switch {
	case c == nil || c.Strings != nil:
		return nil, fmt.Errorf("no numeric column %q", name)
	case c.Floats != nil:
		return c.Floats, nil
	}
	out := make([]float64, len(c.Ints))
	for i, v := range c.Ints {
		out[i] = float64(v)
	}
	return out, nil
}

// stringColumn returns an accessor of a string column ("" when absent).
func stringColumn(t *artifacts.Table, name string) func(int) string {
	c := t.Column(name)
	if c == nil || c.Strings == nil {
		return func(int) string { return "" }
	}
	return func(r int) string { return c.Strings[r] }
}

// tagValues lists the values of tags in the order of their sorted axes.
func tagValues(tags map[string]string) []string {
	var out []string
	for _, k := range sortedKeys(tags) {
		out = append(out, tags[k])
	}
	return out
}
