package train

import (
	"math"
	"strconv"

	"github.com/sglr-pipe/sglr-pipe/artifacts"
)

// curveBuilder collects the rows of a training curve.
type curveBuilder struct {
	rows []epochRow
}

func (c *curveBuilder) append(r epochRow) { c.rows = append(c.rows, r) }

// table is the curve artifact: epoch, lr, train_loss, train_clean_acc,
// train_robust_acc (NaN for standard training), val_clean_acc,
// val_robust_acc (NaN on epochs not validated), recovered (NaN
// when the flipped labels are unknown); the metadata names
// the method, the label strategy and the best epoch.
func (c *curveBuilder) table(cfg Config) *artifacts.Table {
	n := len(c.rows)
	epoch := make([]int64, n)
	cols := map[string][]float64{}
	names := []string{artifacts.ColLR, artifacts.ColTrainLoss, artifacts.ColTrainCleanAcc, artifacts.ColTrainRobustAcc, artifacts.ColValCleanAcc, artifacts.ColValRobustAcc, artifacts.ColRecovered}
	for _, name := range names {
		cols[name] = make([]float64, n)
	}
	best, bestEpoch := math.Inf(-1), 0
	for i, r := range c.rows {
		epoch[i] = int64(r.epoch)
		for name, v := range map[string]float64{
			artifacts.ColLR: r.lr, artifacts.ColTrainLoss: r.trainLoss, artifacts.ColTrainCleanAcc: r.trainClean, artifacts.ColTrainRobustAcc: r.trainRobust,
			artifacts.ColValCleanAcc: r.valClean, artifacts.ColValRobustAcc: r.valRobust, artifacts.ColRecovered: r.recovered,
		} {
			cols[name][i] = v
		}
		if r.valRobust > best {
			best, bestEpoch = r.valRobust, r.epoch
		}
	}
	t := &artifacts.Table{
		Columns: []artifacts.Column{{Name: artifacts.ColEpoch, Ints: epoch}},
		Meta: map[string]string{
			"method": cfg.Method, "labels": cfg.Labels, "model": cfg.Arch.Kind,
			"best_epoch": strconv.Itoa(bestEpoch),
		},
	}
	for _, name := range names {
		t.Columns = append(t.Columns, artifacts.Column{Name: name, Floats: cols[name]})
	}
	return t
}

// seconds is the wall time of each epoch, for the run record.
func (c *curveBuilder) seconds() []float64 {
	out := make([]float64, len(c.rows))
	for i, r := range c.rows {
		out[i] = r.seconds
	}
	return out
}
