package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"sort"
	"time"

	"github.com/spf13/cobra"

	"github.com/sglr-pipe/sglr-pipe/artifacts"
)

// newCacheCommand groups the store maintenance commands.
func newCacheCommand(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cache",
		Short: "Inspect, verify and garbage-collect the store",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return usageErrorf(cmd, "missing subcommand (ls, verify or gc)")
		},
	}
	cmd.AddCommand(newCacheLsCommand(g), newCacheVerifyCommand(g), newCacheGCCommand(g))
	return cmd
}

// cacheListing is what `cache ls` reports.
type cacheListing struct {
	Store   string         `json:"store"`
	Areas   []storeArea    `json:"areas"`
	Recent  []recentAction `json:"recent_actions"`
	Corrupt string         `json:"corrupt,omitempty"` // actions that could not be decoded
}

// storeArea is the file count and size of one top-level store directory.
type storeArea struct {
	Name  string `json:"name"`
	Files int    `json:"files"`
	Bytes int64  `json:"bytes"`
}

// recentAction is one action-cache entry in `cache ls`.
type recentAction struct {
	Instance string    `json:"instance"`
	Stage    string    `json:"stage"`
	Version  string    `json:"version"`
	Key      string    `json:"key"`
	Started  time.Time `json:"started"`
	Seconds  float64   `json:"seconds"`
}

// newCacheLsCommand summarises the store.
func newCacheLsCommand(g *globalFlags) *cobra.Command {
	var asJSON bool
	var recent int
	cmd := &cobra.Command{
		Use:   "ls",
		Short: "Count objects, actions and runs with their sizes, and list recent actions",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			store, err := openExistingStore(cmd, g)
			if err != nil {
				return err
			}
			listing, err := listStore(store, recent)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), listing)
			}
			printListing(cmd.OutOrStdout(), listing)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the listing as JSON")
	cmd.Flags().IntVar(&recent, "recent", 10, "how many recent actions to list")
	return cmd
}

// newCacheVerifyCommand re-hashes every object and decodes every record.
func newCacheVerifyCommand(g *globalFlags) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Re-hash every object and decode every record; exit 1 if anything is wrong",
		Long: `verify re-hashes every object and decodes every action, run and ref. Problems
(missing or corrupt objects, undecodable records, stray files) are listed and
the command exits 1. Leftovers in tmp/ (from an interrupted run, or a run in
progress) are reported as warnings only: they are never visible as artifacts,
and 'cache gc' removes them.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			store, err := openExistingStore(cmd, g)
			if err != nil {
				return err
			}
			rep, err := store.Check(cmd.Context(), artifacts.CheckOptions{ReadData: true})
			if err != nil {
				return err
			}
			problems, warnings := splitProblems(rep.Problems)
			out := cmd.OutOrStdout()
			if asJSON {
				if err := writeJSON(out, rep); err != nil {
					return err
				}
			} else {
				fmt.Fprintf(out, "checked %d objects (%s re-hashed), %d actions, %d runs, %d refs in %s\n",
					rep.Objects, humanBytes(rep.BytesRead), rep.Actions, rep.Runs, rep.Refs, store.Root())
				for _, p := range warnings {
					fmt.Fprintf(out, "warning: %s\n", p)
				}
				for _, p := range problems {
					fmt.Fprintf(out, "problem: %s\n", p)
				}
				if len(problems) == 0 {
					fmt.Fprintln(out, "store OK")
				}
			}
			if len(problems) > 0 {
				return failed(fmt.Errorf("store %s has %d problem(s)", store.Root(), len(problems)))
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the check report as JSON")
	return cmd
}

// newCacheGCCommand removes unreferenced objects and stale scratch files.
func newCacheGCCommand(g *globalFlags) *cobra.Command {
	var dryRun, asJSON, checkpoints bool
	var grace time.Duration
	cmd := &cobra.Command{
		Use:   "gc",
		Short: "Remove objects no action names, and stale scratch files",
		Long: `gc removes objects that no action-cache entry names and leftovers in tmp/.
Files younger than --grace are spared, so gc is safe beside a running
pipeline; --grace 0 removes everything unreferenced at once. Scratch
directories and writes of a live run are leased (an flock held while the
stage runs) and never removed, however old; a killed run's lease dies with
it, and its leftovers go once older than --grace. Training checkpoints
(what an interrupted or longer run resumes from) are kept unless
--checkpoints is given, which deletes them all.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if grace < 0 {
				return usageErrorf(cmd, "--grace must not be negative, got %s", grace)
			}
			store, err := openExistingStore(cmd, g)
			if err != nil {
				return err
			}
			rep, err := store.GC(cmd.Context(), artifacts.GCOptions{DryRun: dryRun, TmpOlderThan: grace, ObjectsOlderThan: grace})
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if checkpoints && !dryRun {
				freed, err := store.RemoveCheckpoints()
				if err != nil {
					return err
				}
				if !asJSON {
					fmt.Fprintf(out, "removed every checkpoint (%s)\n", humanBytes(freed))
				}
			}
			if asJSON {
				if err := writeJSON(out, rep); err != nil {
					return err
				}
			} else {
				verb := "removed"
				if dryRun {
					verb = "would remove"
					for _, p := range rep.Removed {
						fmt.Fprintf(out, "%s %s\n", verb, p)
					}
					for _, p := range rep.InUse {
						fmt.Fprintf(out, "in use %s\n", p)
					}
				}
				fmt.Fprintf(out, "%s %d objects (%s) and %d tmp entries; kept %d objects\n",
					verb, rep.ObjectsRemoved, humanBytes(rep.BytesFreed), rep.TmpRemoved, rep.ObjectsKept)
				if rep.TmpInUse > 0 {
					fmt.Fprintf(out, "spared %d tmp entries in use by running stages\n", rep.TmpInUse)
				}
				for _, p := range rep.Problems {
					fmt.Fprintf(out, "problem: %s\n", p)
				}
			}
			if len(rep.Problems) > 0 {
				return failed(fmt.Errorf("gc found %d problem(s)", len(rep.Problems)))
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "list what would be removed without removing it")
	cmd.Flags().DurationVar(&grace, "grace", time.Hour, "spare unreferenced objects and tmp entries younger than this (tmp entries a live run holds are always spared)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the GC report as JSON")
	cmd.Flags().BoolVar(&checkpoints, "checkpoints", false, "also delete every training checkpoint (runs then start over instead of resuming)")
	return cmd
}

// listStore counts files per store area and collects the newest actions.
func listStore(store *artifacts.DirStore, recent int) (*cacheListing, error) {
	listing := &cacheListing{Store: store.Root()}
	for _, area := range []string{"objects", "actions", "runs", "refs", "tmp"} {
		a, err := measureArea(filepath.Join(store.Root(), area))
		if err != nil {
			return nil, err
		}
		a.Name = area
		listing.Areas = append(listing.Areas, a)
	}
	actions, err := store.ListActions()
	if err != nil {
		if !errors.Is(err, artifacts.ErrCorrupt) {
			return nil, err
		}
		listing.Corrupt = err.Error()
	}
	sort.SliceStable(actions, func(i, j int) bool { return actions[i].Started.After(actions[j].Started) })
	for i, a := range actions {
		if i >= recent {
			break
		}
		listing.Recent = append(listing.Recent, recentAction{
			Instance: a.Instance, Stage: a.Stage, Version: a.Version, Key: a.Key, Started: a.Started, Seconds: a.Seconds,
		})
	}
	return listing, nil
}

// measureArea counts the regular files under dir and their total size.
func measureArea(dir string) (storeArea, error) {
	var a storeArea
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed while we walked (a tmp file renamed into place)
			}
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		a.Files++
		a.Bytes += info.Size()
		return nil
	})
	if err != nil {
		return a, fmt.Errorf("measure %s: %w", dir, err)
	}
	return a, nil
}

// printListing renders `cache ls` for a terminal.
func printListing(w io.Writer, l *cacheListing) {
	fmt.Fprintf(w, "store %s\n", l.Store)
	t := newTable()
	t.header("area", "files", "size")
	for _, a := range l.Areas {
		t.row(a.Name, a.Files, humanBytes(a.Bytes))
	}
	t.render(w, "  ")
	if l.Corrupt != "" {
		fmt.Fprintf(w, "warning: %s\n", l.Corrupt)
	}
	if len(l.Recent) == 0 {
		return
	}
	fmt.Fprintln(w, "recent actions:")
	t = newTable()
	t.header("started", "instance", "stage", "seconds", "key")
	for _, a := range l.Recent {
		t.row(a.Started.Local().Format("2006-01-02 15:04:05"), a.Instance, a.Stage+" "+a.Version,
			fmt.Sprintf("%.2f", a.Seconds), shortDigest(a.Key))
	}
	t.render(w, "  ")
}

// splitProblems separates integrity problems from leftovers of interrupted
// writes, which are harmless and only warned about.
func splitProblems(all []artifacts.Problem) (problems, warnings []artifacts.Problem) {
	for _, p := range all {
		if p.Kind == artifacts.ProblemStrayTmp {
			warnings = append(warnings, p)
			continue
		}
		problems = append(problems, p)
	}
	return problems, warnings
}

// shortDigest abbreviates a digest or key to 12 characters for display.
func shortDigest(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	return s
}
