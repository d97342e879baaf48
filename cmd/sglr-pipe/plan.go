package main

import (
	"github.com/spf13/cobra"

	"github.com/sglr-pipe/sglr-pipe/artifacts"
)

// newPlanCommand says, per instance, what run would do and why.
func newPlanCommand(g *globalFlags) *cobra.Command {
	f := &selectionFlags{}
	cmd := &cobra.Command{
		Use:   "plan FILE [TARGET...]",
		Short: "Show, per stage instance, whether run would use the cache, run it or skip it, and why",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			file := args[0]
			p, err := loadPipeline(file, f.sets, f.maxInstances)
			if err != nil {
				return err
			}
			store, err := artifacts.OpenDir(g.storeDir(file))
			if err != nil {
				return err
			}
			if err := checkSelection(cmd, p, f, args[1:]); err != nil {
				return err
			}
			opts, err := f.options(cmd, store, args[1:])
			if err != nil {
				return err
			}
			entries, err := p.Plan(cmd.Context(), opts)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if f.asJSON {
				return writeJSON(out, entries)
			}
			t := newTable()
			t.header("instance", "uses", "action", "reason", "key")
			for _, e := range entries {
				t.row(e.Instance, e.Uses, e.Action, e.Reason, shortDigest(e.Key))
			}
			t.render(out, "")
			return nil
		},
	}
	f.register(cmd)
	return cmd
}
