package main

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/sglr-pipe/sglr-pipe/artifacts"
	"github.com/sglr-pipe/sglr-pipe/pipeline"
)

// newReplayCommand re-executes a recorded instance and compares its outputs
// with the recorded ones, bit for bit.
func newReplayCommand(g *globalFlags) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "replay RUN INSTANCE",
		Short: "Re-execute a recorded stage instance and check its outputs are bit-identical",
		Long: `replay runs INSTANCE of run RUN (a run id, a unique prefix of it or of its
random part, "latest" or "latest~N") again with the recorded parameters, seed
and inputs, and prints, per output, the recorded and the replayed digest with
IDENTICAL or DIFFERENT. It exits 1 if any output differs.
INSTANCE is an instance id ("noisy[noise=0.2]") or a stage id with one instance.

Bit-identity is what the CPU path promises. On a GPU (device: cuda, not usable
yet) it will hold only as far as cuDNN's deterministic algorithms allow, so a
replay of such an instance may differ without anything being wrong.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			runID, instance := args[0], args[1]
			if err := checkRunArg(runID); err != nil {
				return usageErrorf(cmd, "%v", err)
			}
			store, err := openExistingStore(cmd, g)
			if err != nil {
				return err
			}
			run, err := findRun(store, runID, runFilter{})
			if err != nil {
				return refUsage(cmd, err)
			}
			if err := checkReplayInstance(run, instance); err != nil {
				return usageErrorf(cmd, "%v", err)
			}
			// exec: stages are relative to the pipeline file the run used.
			resolve := newResolver(filepath.Dir(run.Pipeline))
			ctx, stop := interruptContext(cmd.Context(), cmd.ErrOrStderr())
			defer stop()
			res, err := pipeline.Replay(ctx, store, resolve, run.ID, instance, nil)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				if err := writeJSON(out, res); err != nil {
					return err
				}
			} else {
				fmt.Fprintf(out, "replayed %s of run %s (key %s)\n", res.Instance, run.ID, shortDigest(res.Key))
				t := newTable()
				t.header("output", "recorded", "replayed", "result")
				for _, o := range res.Outputs {
					verdict := "IDENTICAL"
					if !o.Identical {
						verdict = "DIFFERENT"
					}
					t.row(o.Port, string(o.Recorded), string(o.Replayed), verdict)
				}
				t.render(out, "  ")
			}
			if !res.Identical() {
				return silentExit(exitFailed, fmt.Errorf("replay of %s differs from the record", res.Instance))
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the comparison as JSON")
	return cmd
}

// checkRunArg refuses a RUN argument that cannot name a run: one that is
// empty, a path (runs are files named after their id, so "../x" or "a/b"
// would read outside the store's runs) or holds control characters. Like an
// unknown id, it is the user's mistake (exit 2), not a store problem.
func checkRunArg(id string) error {
	switch {
	case id == "":
		return errors.New(`empty run id: give a run id (as "run" prints it) or "latest"`)
	case id == "." || id == ".." || strings.ContainsAny(id, `/\`):
		return fmt.Errorf(`invalid run id %q: a run id is a name, not a path; give one as "run" prints it, or "latest"`, id)
	case strings.IndexFunc(id, func(r rune) bool { return r < ' ' || r == 0x7f }) >= 0:
		return fmt.Errorf(`invalid run id %q: it holds control characters`, id)
	}
	return nil
}

// checkReplayInstance accepts an instance id of the run, or a stage id that
// has exactly one instance in it (what pipeline.Replay looks up).
func checkReplayInstance(run *artifacts.Run, instance string) error {
	var byStage []string
	for _, ri := range run.Instances {
		if ri.ID == instance {
			return nil
		}
		if ri.Stage == instance {
			byStage = append(byStage, ri.ID)
		}
	}
	switch len(byStage) {
	case 1:
		return nil
	case 0:
		return fmt.Errorf("run %s has no instance %q (instances: %s)", run.ID, instance, instanceIDs(run))
	default:
		return fmt.Errorf("stage %q has %d instances in run %s; name one: %s", instance, len(byStage), run.ID, strings.Join(byStage, ", "))
	}
}
