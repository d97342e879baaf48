package dsl

import (
	"fmt"
	"math/bits"
	"sort"
	"strconv"
	"strings"
)

// Counting the expansion before it is made. A matrix of 10^6 combinations
// took minutes and gigabytes to expand, so Expand first counts what it would
// make — from the axis sizes, never by enumerating — and refuses more than
// the limit.

// countCap is where counts saturate: far above any limit, and low enough that
// sums of a few thousand counts cannot overflow.
const countCap = 1 << 50

// maxExcludeTerms bounds the exclude entries whose overlap is counted exactly
// (by inclusion–exclusion, 2^n terms); with more, they are not subtracted and
// the count is an upper bound.
const maxExcludeTerms = 10

// projectionCount is how many distinct projections of the matrix
// combinations onto some axes there are; exact is false when n is an upper
// bound (exclude entries the count cannot account for).
type projectionCount struct {
	n     int64
	exact bool
}

// checkSize counts the matrix combinations and every declaration's
// instances; when either is over limit it reports the counts at the matrix
// and returns false.
func (x *expander) checkSize(order []*StageDecl, limit int) bool {
	if len(x.axes) == 0 {
		return true // one instance per declaration, and there are at most maxKeys of them
	}
	cache := map[string]projectionCount{}
	count := func(axes []int) projectionCount {
		key := fmt.Sprint(axes)
		if c, ok := cache[key]; ok {
			return c
		}
		c := x.countProjections(axes)
		cache[key] = c
		return c
	}
	all := make([]int, len(x.axes))
	for i := range all {
		all[i] = i
	}
	combos := count(all)
	type declCount struct {
		id string
		n  int64
	}
	var per []declCount
	total := projectionCount{exact: true}
	for _, d := range order {
		c := count(x.axesOf[d.ID])
		per = append(per, declCount{d.ID, c.n})
		total.n = min(total.n+c.n, countCap)
		total.exact = total.exact && c.exact
	}
	if total.n <= int64(limit) && combos.n <= int64(limit) {
		return true
	}
	sort.SliceStable(per, func(i, j int) bool { return per[i].n > per[j].n })
	var parts []string
	for _, p := range per[:min(len(per), 5)] {
		parts = append(parts, fmt.Sprintf("%s %s", p.id, formatCount(p.n)))
	}
	more := ""
	if len(per) > 5 {
		more = fmt.Sprintf(" and %d more", len(per)-5)
	}
	detail := fmt.Sprintf("instances per stage: %s%s\nraise the limit (sglr-pipe --max-instances N) if this is meant, or shrink the axes", strings.Join(parts, ", "), more)
	at := x.spec.Matrix.Axes[0]
	if total.n > int64(limit) {
		x.diags.add(at.Pos, len([]rune(at.Name)), detail, "the matrix would make %s%s stage instances, more than the limit of %d",
			upTo(total.exact), formatCount(total.n), limit)
	} else {
		x.diags.add(at.Pos, len([]rune(at.Name)), detail, "the matrix has %s%s combinations, more than the limit of %d",
			upTo(combos.exact), formatCount(combos.n), limit)
	}
	return false
}

func upTo(exact bool) string {
	if exact {
		return ""
	}
	return "up to "
}

// formatCount renders a count, saying so when it saturated.
func formatCount(n int64) string {
	if n >= countCap {
		return "more than " + strconv.FormatInt(countCap, 10)
	}
	return strconv.FormatInt(n, 10)
}

// countProjections counts the distinct projections of the matrix
// combinations onto axes: the product of the axes' own sizes, minus the
// combinations of exclude entries that name only these axes (their union,
// by inclusion–exclusion), plus the include entries that add a projection.
// Exclude entries that also name other axes may or may not remove a
// projection; they make the count an upper bound.
func (x *expander) countProjections(axes []int) projectionCount {
	if len(axes) == 0 {
		return projectionCount{n: 1, exact: true}
	}
	in := map[int]bool{}
	product := int64(1)
	for _, a := range axes {
		in[a] = true
		if size := int64(x.ownValues[a]); size > 0 && product > countCap/size {
			product = countCap
		} else {
			product *= size
		}
	}
	exact := true
	var boxes []map[int]int // per relevant exclude entry: axis -> own value index
	for _, labels := range x.excludes {
		box, within, matches := map[int]int{}, true, true
		for name, label := range labels {
			a := x.axisIndex[name]
			v := x.ownIndex(a, label)
			if v < 0 {
				matches = false // a value no combination of the product has
			}
			if !in[a] {
				within = false
			}
			box[a] = v
		}
		switch {
		case !matches:
		case !within:
			exact = false
		default:
			boxes = append(boxes, box)
		}
	}
	n := product
	subtracted := product < countCap && len(boxes) <= maxExcludeTerms
	if subtracted {
		n -= unionSize(boxes, axes, x.ownValues)
	} else if len(boxes) > 0 {
		exact = false
	}
	seen := map[string]bool{}
	for _, c := range x.includes {
		key := projectionKey(c, axes)
		if seen[key] {
			continue
		}
		seen[key] = true
		own := true
		for _, a := range axes {
			own = own && c[a] < x.ownValues[a]
		}
		if !own || (subtracted && inAnyBox(c, boxes)) {
			n = min(n+1, countCap)
		}
	}
	return projectionCount{n: n, exact: exact}
}

// ownIndex is the index of the axis value labelled label among the axis's
// own values, or -1.
func (x *expander) ownIndex(axis int, label string) int {
	for i, v := range x.values[axis][:x.ownValues[axis]] {
		if v.Label == label {
			return i
		}
	}
	return -1
}

// unionSize counts the points of the product of axes (sizes by axis) that
// lie in at least one box (fixed value indexes on some of the axes).
func unionSize(boxes []map[int]int, axes []int, sizes []int) int64 {
	var total int64
	for mask := 1; mask < 1<<len(boxes); mask++ {
		merged, disjoint := map[int]int{}, false
		for i, b := range boxes {
			if mask&(1<<i) == 0 {
				continue
			}
			for a, v := range b {
				if w, fixed := merged[a]; fixed && w != v {
					disjoint = true
				}
				merged[a] = v
			}
		}
		if disjoint {
			continue
		}
		size := int64(1)
		for _, a := range axes {
			if _, fixed := merged[a]; !fixed {
				size *= int64(sizes[a])
			}
		}
		if bits.OnesCount(uint(mask))%2 == 1 {
			total += size
		} else {
			total -= size
		}
	}
	return total
}

// inAnyBox reports whether combination c lies in one of the boxes.
func inAnyBox(c []int, boxes []map[int]int) bool {
	for _, b := range boxes {
		match := true
		for a, v := range b {
			match = match && c[a] == v
		}
		if match {
			return true
		}
	}
	return false
}
