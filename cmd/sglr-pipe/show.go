package main

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/sglr-pipe/sglr-pipe/artifacts"
)

// newShowCommand describes a run or an artifact.
func newShowCommand(g *globalFlags) *cobra.Command {
	var asJSON bool
	var head int
	cmd := &cobra.Command{
		Use:   "show REF",
		Short: "Describe a run (id, \"latest\", \"latest~N\") or an artifact (digest, prefix, or INSTANCE.PORT)",
		Long: `show describes what REF names:

  latest, latest~N    a run: the newest, or the one N runs before it; every
                      instance with its status, key and outputs
  RUN-ID              a run by its id, a unique prefix of it, or of its random part
  DIGEST              an artifact, by full digest or a unique prefix of 6+ hex digits
  INSTANCE.PORT       an output of the newest run that produced INSTANCE,
                      e.g. noisy[noise=0.2].dataset (a run that skipped it is passed over)

The store is the nearest .sglr in the current directory or above it (see --store).

For an artifact it prints the kind, rows, columns, metadata (shapes, class
names, ...) and the first --head rows.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if head < 0 {
				return usageErrorf(cmd, "--head must not be negative, got %d", head)
			}
			store, err := openExistingStore(cmd, g)
			if err != nil {
				return err
			}
			ref, err := resolveRef(store, args[0])
			if err != nil {
				return refUsage(cmd, err)
			}
			out := cmd.OutOrStdout()
			if ref.run != nil {
				if asJSON {
					return writeJSON(out, ref.run)
				}
				printRun(out, ref.run)
				return nil
			}
			shown, err := inspectArtifact(store, ref, head)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(out, shown)
			}
			printArtifact(out, shown)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	cmd.Flags().IntVar(&head, "head", 5, "rows of an artifact to show")
	return cmd
}

// shownArtifact is what `show` reports about one artifact.
type shownArtifact struct {
	Digest   artifacts.Digest `json:"digest"`
	Size     int64            `json:"size"`
	Run      string           `json:"run,omitempty"` // the run whose record named it, for INSTANCE.PORT
	Instance string           `json:"instance,omitempty"`
	Port     string           `json:"port,omitempty"`
	*artifacts.Info
}

// inspectArtifact opens the referenced object and inspects it.
func inspectArtifact(store *artifacts.DirStore, ref *resolvedRef, head int) (*shownArtifact, error) {
	f, err := store.Open(ref.digest) // read whole and checked against its digest
	if err != nil {
		return nil, err
	}
	defer f.Close()
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return nil, fmt.Errorf("artifact %s: %w", ref.digest, err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("artifact %s: %w", ref.digest, err)
	}
	info, err := artifacts.Inspect(f, head)
	if err != nil {
		return nil, fmt.Errorf("artifact %s: %w", ref.digest, err)
	}
	return &shownArtifact{Digest: ref.digest, Size: size, Run: ref.runID, Instance: ref.instance, Port: ref.port, Info: info}, nil
}

// printArtifact renders an artifact description.
func printArtifact(w io.Writer, a *shownArtifact) {
	fmt.Fprintf(w, "artifact %s\n", a.Digest)
	if a.Instance != "" {
		fmt.Fprintf(w, "  output   %s.%s (run %s)\n", a.Instance, a.Port, a.Run)
	}
	kind := a.Kind
	if kind == "" {
		kind = "(plain Arrow file)"
	} else if a.Version != "" {
		kind += " v" + a.Version
	}
	fmt.Fprintf(w, "  kind     %s\n", kind)
	fmt.Fprintf(w, "  size     %s\n", humanBytes(a.Size))
	fmt.Fprintf(w, "  rows     %d\n", a.Rows)
	fmt.Fprintln(w, "  columns:")
	for _, c := range a.Columns {
		fmt.Fprintf(w, "    %-16s %s\n", c.Name, c.Type)
	}
	if len(a.Meta) > 0 {
		fmt.Fprintln(w, "  metadata:")
		for _, k := range slices.Sorted(maps.Keys(a.Meta)) {
			fmt.Fprintf(w, "    %s = %s\n", k, a.Meta[k])
		}
	}
	if len(a.Head) == 0 {
		return
	}
	fmt.Fprintf(w, "  first %d rows:\n", len(a.Head))
	t := newTable()
	header := make([]string, len(a.Columns))
	for i, c := range a.Columns {
		header[i] = c.Name
	}
	t.header(header...)
	for _, row := range a.Head {
		r := make([]any, len(row))
		for i, v := range row {
			r[i] = v
		}
		t.row(r...)
	}
	t.render(w, "    ")
}

// printRun renders a run record: header, then one row per instance.
func printRun(w io.Writer, r *artifacts.Run) {
	fmt.Fprintf(w, "run %s  %s  (%s)\n", r.ID, r.Status, r.Name)
	fmt.Fprintf(w, "  pipeline %s\n", r.Pipeline)
	fmt.Fprintf(w, "  started  %s, took %s\n", r.Started.Local().Format(time.DateTime), formatSeconds(r.Finished.Sub(r.Started).Seconds()))
	if len(r.Args) > 0 {
		fmt.Fprintf(w, "  args     %s\n", strings.Join(r.Args, " "))
	}
	t := newTable()
	t.header("instance", "status", "seconds", "key", "outputs", "reason / error")
	for _, in := range r.Instances {
		outs := make([]string, 0, len(in.Outputs))
		for _, port := range slices.Sorted(maps.Keys(in.Outputs)) {
			outs = append(outs, port+"="+shortDigest(string(in.Outputs[port])))
		}
		note := in.Reason
		if in.Error != "" {
			note = in.Error
		}
		t.row(in.ID, in.Status, fmt.Sprintf("%.2f", in.Seconds), shortDigest(in.Key), strings.Join(outs, " "), note)
	}
	t.render(w, "  ")
}

// refUsage turns a reference that names nothing into a usage error.
func refUsage(cmd *cobra.Command, err error) error {
	var re *refError
	if errors.As(err, &re) {
		return usageErrorf(cmd, "%v", err)
	}
	return err
}

// sortedStrings returns s sorted (in place).
func sortedStrings(s []string) []string {
	sort.Strings(s)
	return s
}
