package eval

import (
	"fmt"
	"math"
	"strings"

	nnattack "github.com/sglr-pipe/sglr-pipe/nn/attack"
	"github.com/sglr-pipe/sglr-pipe/nn/optim"
)

// The checks AutoAttack runs before and after attacking (Croce & Hein's
// checks.py), which reviewers expect next to robust accuracies: a model
// whose logits change between two passes on the same inputs (a randomised
// defence, for which fixed-model attacks overstate robustness: use EOT), one
// whose input gradients are exactly zero (gradient masking or obfuscation),
// and a black-box attack that finds adversarial examples the white-box ones
// missed (a sign that the gradients mislead them). Each finding is a warning
// in the metrics' metadata and the run summary; none changes a number.

// sanitySamples is how many samples the pre-attack checks look at.
const sanitySamples = 100

// modelWarnings runs the pre-attack checks on model m, labelled label, on
// the first samples of the evaluation.
func (e *evaluation) modelWarnings(m nnattack.Model, label string) ([]string, error) {
	n := min(e.n, sanitySamples, e.block)
	x, y := e.x[:n*e.d], e.y[:n]
	var warnings []string
	first, second := make([]float32, n*e.k), make([]float32, n*e.k)
	if err := m.Logits(x, n, first); err != nil {
		return nil, fmt.Errorf("sanity check of %q: %w", label, err)
	}
	if err := m.Logits(x, n, second); err != nil {
		return nil, fmt.Errorf("sanity check of %q: %w", label, err)
	}
	for i := range first {
		if math.Float32bits(first[i]) != math.Float32bits(second[i]) {
			warnings = append(warnings, fmt.Sprintf("%s: two passes on the same inputs give different logits: a randomised "+
				"model, which attacks on a fixed model overstate; evaluate it with EOT", label))
			break
		}
	}
	target := make([]float32, n*e.k)
	optim.OneHot(y, e.k, target)
	grad := make([]float32, n*e.d)
	if _, err := m.InputGrad(x, n, target, grad); err != nil {
		return nil, fmt.Errorf("sanity check of %q: %w", label, err)
	}
	zero := 0
	for i := range n {
		if allZero(grad[i*e.d : (i+1)*e.d]) {
			zero++
		}
	}
	if zero > 0 {
		warnings = append(warnings, fmt.Sprintf("%s: %d of %d samples have an input gradient of exactly zero: gradient "+
			"masking, under which gradient attacks overstate robustness", label, zero, n))
	}
	return warnings, nil
}

// attackWarnings compares a model's rows (in its attacks' order): a
// black-box Square below every white-box attack run beside it, or
// AutoAttack's Square lowering the accuracy its white-box attacks left.
func attackWarnings(label string, rows []metricRow) []string {
	whiteBox, square := math.Inf(1), math.NaN()
	var warnings []string
	prev := math.NaN()
	for _, r := range rows {
		name, _, _ := strings.Cut(r.attack, "-l") // pgd-l2 → pgd
		if base, comp, ok := strings.Cut(r.attack, "/"); ok && strings.HasPrefix(base, nnattack.NameAutoAttack) {
			if strings.HasPrefix(comp, nnattack.NameSquare) && !math.IsNaN(prev) && r.accuracy < prev {
				warnings = append(warnings, fmt.Sprintf("%s: in %s, the black-box Square lowered robust accuracy from %.1f%% "+
					"to %.1f%% after the white-box attacks: a sign of gradient masking", label, base, 100*prev, 100*r.accuracy))
			}
			prev = r.accuracy
			continue
		}
		switch name {
		case nnattack.NameSquare:
			square = r.accuracy
		case nnattack.NameFGSM, nnattack.NamePGD, nnattack.NameCW, nnattack.NameAPGDCE, nnattack.NameAPGDT, nnattack.NameFABT:
			whiteBox = min(whiteBox, r.accuracy)
		}
	}
	if !math.IsNaN(square) && !math.IsInf(whiteBox, 1) && square < whiteBox {
		warnings = append(warnings, fmt.Sprintf("%s: the black-box Square (%.1f%%) is stronger than every white-box attack "+
			"(best %.1f%%): a sign of gradient masking", label, 100*square, 100*whiteBox))
	}
	return warnings
}

func allZero(v []float32) bool {
	for _, x := range v {
		if x != 0 {
			return false
		}
	}
	return true
}
