package main

import (
	"bufio"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/sglr-pipe/sglr-pipe/artifacts"
)

// newExportCommand writes an artifact as NumPy arrays or CSV.
func newExportCommand(g *globalFlags) *cobra.Command {
	var format, output string
	cmd := &cobra.Command{
		Use:   "export REF --format npy|csv|npz [-o PATH]",
		Short: "Export an artifact as a directory of .npy files, as CSV, or a model as .npz",
		Long: `export writes the artifact REF names (a digest, a unique prefix, or
INSTANCE.PORT of the newest run that produced INSTANCE) in a format other
tools read:

  --format npy   one .npy file per column in the directory -o (default: ./<digest12>-npy)
  --format csv   one CSV file at -o, or stdout without -o
  --format npz   a model only: one NumPy .npz archive at -o (default: ./<digest12>.npz)
                 holding its state_dict and, under __arch__.json, its architecture;
                 PyTorch builds and loads it without torch.load:
                   model = torch_models.load_npz(PATH)   # bench/torch_models.py`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != "npy" && format != "csv" && format != "npz" {
				return usageErrorf(cmd, "--format must be npy, csv or npz, got %q", format)
			}
			store, err := openExistingStore(cmd, g)
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
			if format == "npz" {
				info, err := artifacts.Inspect(src, 0)
				if err != nil {
					return err
				}
				if info.Kind != artifacts.KindModel {
					return usageErrorf(cmd, "--format npz exports model artifacts; %s is a %q artifact (use npy or csv)",
						args[0], info.Kind)
				}
				path := output
				if path == "" {
					path = shortDigest(string(ref.digest)) + ".npz"
				}
				if err := exportFile(src, path, artifacts.ExportNPZ); err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), path)
				return nil
			}
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
			return exportFile(src, output, artifacts.ExportCSV)
		},
	}
	cmd.Flags().StringVar(&format, "format", "", "npy, csv or npz (required)")
	cmd.Flags().StringVarP(&output, "output", "o", "", "output directory (npy) or file (csv, default stdout; npz)")
	return cmd
}

// exportFile writes the output of export (CSV or NPZ) to path atomically,
// so a failed export never leaves a truncated file under the requested name.
func exportFile(src artifacts.ReadAtSeeker, path string, export func(artifacts.ReadAtSeeker, io.Writer) error) error {
	var exportErr error
	err := artifacts.WriteAtomic(path, 0o644, func(w io.Writer) error {
		exportErr = export(src, w)
		return exportErr
	})
	if err != nil && err != exportErr {
		return fmt.Errorf("export to %s: %w", path, err)
	}
	return err
}
