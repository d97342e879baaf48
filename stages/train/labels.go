package train

import (
	"fmt"
	"strings"

	"github.com/sglr-pipe/sglr-pipe/artifacts"
	"github.com/sglr-pipe/sglr-pipe/nn/optim"
)

// MatchLabels returns the soft labels of l for the samples of ds, in ds's
// order, matched by sample id: an [N,K] row-major slice. Labels without soft
// rows give the one-hot of their hard labels, unless soft is required (the
// teacher probabilities of distillation). Every sample of ds must have a row
// (extra rows in l are ignored), l must have ds's K classes, and every row
// must be a probability vector.
func MatchLabels(l *artifacts.Labels, ds *artifacts.Dataset, soft bool) ([]float32, error) {
	if l == nil {
		return nil, fmt.Errorf("labels input is not connected")
	}
	k := len(ds.ClassNames)
	if l.K != k {
		return nil, fmt.Errorf("labels input has K=%d classes, the training set %d", l.K, k)
	}
	if l.Soft == nil && soft {
		return nil, fmt.Errorf("labels input has no soft labels: distillation needs the teacher's probabilities")
	}
	row := make(map[int64]int, len(l.IDs))
	for i, id := range l.IDs {
		row[id] = i
	}
	out := make([]float32, len(ds.IDs)*k)
	var missing []string
	nMissing := 0
	for i, id := range ds.IDs {
		j, ok := row[id]
		if !ok {
			nMissing++
			if len(missing) < 5 {
				missing = append(missing, fmt.Sprint(id))
			}
			continue
		}
		dst := out[i*k : (i+1)*k]
		if l.Soft != nil {
			copy(dst, l.Soft[j*k:(j+1)*k])
		} else {
			dst[l.Hard[j]] = 1
		}
	}
	if nMissing > 0 {
		more := ""
		if nMissing > len(missing) {
			more = ", …"
		}
		return nil, fmt.Errorf("labels input has no row for %d of the %d training samples (ids %s%s): "+
			"the labels must come from the same training set (same sample ids)",
			nMissing, len(ds.IDs), strings.Join(missing, ", "), more)
	}
	if err := optim.Given(out, len(ds.IDs), k); err != nil {
		return nil, fmt.Errorf("labels input: %w", err)
	}
	return out, nil
}
