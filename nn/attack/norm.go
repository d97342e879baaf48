package attack

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// Norm is the threat model: the ℓp norm that bounds a perturbation
// ‖x' − x‖_p ≤ eps (with x' in [0,1] always). The zero value is L∞, the
// threat model every attack had before the others existed, so a
// configuration that does not name a norm computes what it always did.
type Norm int

const (
	// Linf bounds every coordinate: max_j |x'_j − x_j| ≤ eps.
	Linf Norm = iota
	// L2 bounds the Euclidean length: sqrt(Σ_j (x'_j − x_j)²) ≤ eps.
	L2
	// L1 bounds the total change: Σ_j |x'_j − x_j| ≤ eps.
	L1
)

// NormNames lists the names ParseNorm accepts, in the order of Norm.
var NormNames = []string{"linf", "l2", "l1"}

// String is the norm's name as the pipeline spells it: linf, l2 or l1.
func (p Norm) String() string {
	if p >= 0 && int(p) < len(NormNames) {
		return NormNames[p]
	}
	return fmt.Sprintf("norm(%d)", int(p))
}

// ParseNorm reads a norm name: linf, l2 or l1 (case-insensitive; AutoAttack's
// Linf, L2 and L1 are accepted too).
func ParseNorm(s string) (Norm, error) {
	if i := slices.Index(NormNames, strings.ToLower(s)); i >= 0 {
		return Norm(i), nil
	}
	return 0, fmt.Errorf("norm %q unknown: want one of %s", s, strings.Join(NormNames, ", "))
}

// valid reports whether p is one of the three norms.
func (p Norm) valid() bool { return p >= Linf && p <= L1 }

// Distance is ‖a − b‖_p, computed in float64 from the float32 values. a and
// b must have the same length.
func Distance(p Norm, a, b []float32) float64 {
	s := 0.0
	for j, v := range a {
		t := math.Abs(float64(v) - float64(b[j]))
		switch p {
		case L2:
			s += t * t
		case L1:
			s += t
		default:
			s = max(s, t)
		}
	}
	if p == L2 {
		return math.Sqrt(s)
	}
	return s
}

// normOf is ‖v‖_p of a float64 vector.
func normOf(p Norm, v []float64) float64 {
	s := 0.0
	for _, t := range v {
		switch p {
		case L2:
			s += t * t
		case L1:
			s += math.Abs(t)
		default:
			s = max(s, math.Abs(t))
		}
	}
	if p == L2 {
		return math.Sqrt(s)
	}
	return s
}

// attackNorms are the norms each attack of Names supports: the L∞-only CW
// loop has no L2/L1 form here, and PGD/FGSM have no L1 form (plain
// ℓ1-steepest ascent moves one coordinate a step; l1-APGD is the L1 attack).
var attackNorms = map[string][]Norm{
	NameClean:      {Linf, L2, L1},
	NameFGSM:       {Linf, L2},
	NamePGD:        {Linf, L2},
	NameCW:         {Linf},
	NameAPGDCE:     {Linf, L2, L1},
	NameAPGDT:      {Linf, L2, L1},
	NameFABT:       {Linf, L2, L1},
	NameSquare:     {Linf, L2, L1},
	NameAutoAttack: {Linf, L2, L1},
}

// Supports reports whether the attack named name (one of Names) has a
// version for norm p.
func Supports(name string, p Norm) bool { return slices.Contains(attackNorms[name], p) }

// SupportedNorms lists the norms the attack named name supports.
func SupportedNorms(name string) []Norm { return slices.Clone(attackNorms[name]) }

// checkNorm rejects an unknown norm and one that the attack (named in
// errors as name) lists no version for in allowed.
func checkNorm(name string, p Norm, allowed ...Norm) error {
	if !p.valid() {
		return fmt.Errorf("%s: unknown norm %d: want linf, l2 or l1", name, int(p))
	}
	if !slices.Contains(allowed, p) {
		names := make([]string, len(allowed))
		for i, a := range allowed {
			names[i] = a.String()
		}
		return fmt.Errorf("%s: norm %s is not supported (supported: %s)", name, p, strings.Join(names, ", "))
	}
	return nil
}
