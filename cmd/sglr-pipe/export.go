package main

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/sglr-pipe/sglr-pipe/artifacts"
)

// newExportCommand writes an artifact as NumPy arrays or CSV.
func newExportCommand(g *globalFlags) *cobra.Command {
	var format, output string
	cmd := &cobra.Command{
		Use:   "export REF --format npy|csv [-o PATH]",
		Short: "Export an artifact as a directory of .npy files or as CSV",
		Long: `export writes the artifact REF names (a digest, a unique prefix, or
INSTANCE.PORT of the latest run) in a format other tools read:

  --format npy   one .npy file per column in the directory -o (default: ./<digest12>-npy)
  --format csv   one CSV file at -o, or stdout without -o`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != "npy" && format != "csv" {
				return usageErrorf(cmd, "--format must be npy or csv, got %q", format)
			}
			store, err := openExistingStore(g)
			if err != nil {
				return err
			}
			ref, err := resolveRef(store, args[0])
			if err != nil {
				return refUsage(cmd, err)
			}
			if ref.run != nil {
				return usageErrorf(cmd, "%s names a run, not an artifact: export INSTANCE.PORT or a digest", args[0])
			}
			src, err := store.Open(ref.digest)
			if err != nil {
				return err
			}
			defer src.Close()
			if format == "npy" {
				dir := output
				if dir == "" {
					dir = shortDigest(string(ref.digest)) + "-npy"
				}
				paths, err := artifacts.ExportNPY(src, dir)
				if err != nil {
					return err
				}
				for _, p := range paths {
					fmt.Fprintln(cmd.OutOrStdout(), p)
				}
				return nil
			}
			if output == "" {
				w := bufio.NewWriter(cmd.OutOrStdout())
				if err := artifacts.ExportCSV(src, w); err != nil {
					return err
				}
				return w.Flush()
			}
			return exportCSVFile(src, output)
		},
	}
	cmd.Flags().StringVar(&format, "format", "", "npy or csv (required)")
	cmd.Flags().StringVarP(&output, "output", "o", "", "output directory (npy) or file (csv; default stdout)")
	return cmd
}

// exportCSVFile writes CSV to path through a temporary file, so a failed
// export never leaves a truncated file under the requested name.
func exportCSVFile(src artifacts.ReadAtSeeker, path string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".export-*.csv")
	if err != nil {
		return fmt.Errorf("export csv to %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	w := bufio.NewWriter(tmp)
	if err := artifacts.ExportCSV(src, w); err != nil {
		tmp.Close()
		return err
	}
	if err := w.Flush(); err != nil {
		tmp.Close()
		return fmt.Errorf("export csv to %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("export csv to %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("export csv to %s: %w", path, err)
	}
	return nil
}
