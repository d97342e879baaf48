// Package bestfinal is the built-in `best-final` stage: it summarises
// gathered training curves into one row per curve, the paper's Best / Final /
// Diff reporting. The summary itself is stages.BestFinal, which the report
// stage also uses when it is given curves but no tables.
package bestfinal

import (
	"context"

	"github.com/sglr-pipe/sglr-pipe/artifacts"
	"github.com/sglr-pipe/sglr-pipe/stages"
)

// Stage is the `best-final` stage: one row per gathered training curve with
// the best and final validation accuracies and their difference.
type Stage struct{}

func init() { stages.Builtin.Register(Stage{}) }

// Spec declares the stage: gathered curves in, one table out.
func (Stage) Spec() stages.Spec {
	return stages.Spec{
		Name:    "best-final",
		Version: "2",
		Doc: "One row per training curve: its matrix tags, epochs, best_epoch (highest val_robust_acc, earlier on ties), " +
			"best and final val_robust_acc and val_clean_acc, diff = best − final robust accuracy, and " +
			"best and final recovered (share of flipped training labels whose target has the clean label as argmax; NaN if unknown).",
		Inputs: []stages.Port{{Name: "curves", Kind: artifacts.KindCurve, Multi: true,
			Doc: "training curves, usually gathered with train.curve[]"}},
		Outputs: []stages.Port{{Name: "table", Kind: artifacts.KindTable, Doc: "one row per curve"}},
	}
}

// Run reads the curves and writes the table.
func (Stage) Run(ctx context.Context, env *stages.Env) error {
	curves, tags, err := env.ReadCurves("curves")
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	table, err := stages.BestFinal(curves, tags)
	if err != nil {
		return err
	}
	if err := env.WriteTable("table", table); err != nil {
		return err
	}
	env.Report("rows", len(curves))
	return nil
}
