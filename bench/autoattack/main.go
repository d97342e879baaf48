// Command autoattack times AutoAttack "standard" (APGD-CE, APGD-T, FAB-T,
// Square with 5000 queries) of package nn, in the threat model -norm (linf,
// the default, l2 or l1), on the quickstart model: an MLP 784-128-128-10
// PGD-AT-trained (eps 0.1, step 0.025, 5 steps, 30 epochs, hard labels) on
// 1000 training images of the embedded fashion-mnist-mini subset, attacked
// at -eps (0.1) on the subset's 1000 test images. It prints
// the seconds, points broken and cumulative robust accuracy of each
// component, the total, and the BLAS in use (ops.BLAS()).
//
// The trained model is cached in -model (trained and written there when the
// file does not exist), so repeated runs and the pure-Go and OpenBLAS builds
// attack the same weights.
//
//	go run ./bench/autoattack                    # pure-Go BLAS
//	go run -tags openblas ./bench/autoattack     # OpenBLAS
//	go run ./bench/autoattack -cpuprofile aa.prof -attacks square
//
// Flags: see -help. -tsv prints machine-readable rows for autoattack.sh.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"time"

	"github.com/sglr-pipe/sglr-pipe/artifacts"
	"github.com/sglr-pipe/sglr-pipe/nn/attack"
	"github.com/sglr-pipe/sglr-pipe/nn/model"
	"github.com/sglr-pipe/sglr-pipe/nn/ops"
	"github.com/sglr-pipe/sglr-pipe/stages"
	"github.com/sglr-pipe/sglr-pipe/stages/load"
	"github.com/sglr-pipe/sglr-pipe/stages/train"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "autoattack:", err)
		os.Exit(1)
	}
}

// options are the command-line settings.
type options struct {
	model      string
	epochs     int
	test       int
	eps        float64
	batch      int
	workers    int
	seed       uint64
	queries    int
	cpuprofile string
	tsv        bool
	forward    int
	norm       string
}

func run(args []string) error {
	var o options
	fs := flag.NewFlagSet("autoattack", flag.ContinueOnError)
	fs.StringVar(&o.model, "model", filepath.Join(os.TempDir(), "sglr-bench-autoattack-mlp.arrow"),
		"cached model file: read if it exists, else trained and written")
	fs.IntVar(&o.epochs, "epochs", 30, "training epochs when the model is not cached")
	fs.IntVar(&o.test, "n", 1000, "test points attacked (fashion-mnist-mini has 1000)")
	fs.Float64Var(&o.eps, "eps", 0.1, "radius in -norm")
	fs.StringVar(&o.norm, "norm", "linf", "threat model: linf, l2 or l1 (AutoAttack standard for that norm)")
	fs.IntVar(&o.batch, "batch", 256, "Evaluator chunk size (the eval stage's default)")
	fs.IntVar(&o.workers, "workers", 0, "Evaluator workers; 0 = every core")
	fs.Uint64Var(&o.seed, "seed", 1, "seed of the attacks' generator")
	fs.IntVar(&o.queries, "queries", 0, "Square queries; 0 = the standard 5000")
	fs.StringVar(&o.cpuprofile, "cpuprofile", "", "write a CPU profile of the attack to this file")
	fs.IntVar(&o.forward, "forward", 0, "instead of AutoAttack, time Evaluator.Logits on this many points "+
		"(Square's query), with the Evaluator built at -batch and at ceil(n/workers); since the Evaluator "+
		"sizes its chunks per call, the two should agree")
	fs.BoolVar(&o.tsv, "tsv", false, "print tab-separated rows (attack, seconds, broken, robust accuracy)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.test < 1 || o.epochs < 1 || o.batch < 1 || o.workers < 0 || o.queries < 0 {
		return fmt.Errorf("-n %d, -epochs %d, -batch %d must be >= 1 and -workers %d, -queries %d >= 0",
			o.test, o.epochs, o.batch, o.workers, o.queries)
	}
	norm, err := attack.ParseNorm(o.norm)
	if err != nil {
		return fmt.Errorf("-norm: %w", err)
	}
	if o.workers == 0 {
		o.workers = runtime.NumCPU()
	}
	splits, err := loadMini(o.test)
	if err != nil {
		return err
	}
	w, err := cachedModel(o, splits)
	if err != nil {
		return err
	}
	testSet := splits["test"]
	n := len(testSet.Labels)
	if o.forward > 0 {
		return timeForward(o, w, testSet)
	}
	ev, err := model.NewEvaluator(w, min(o.batch, n), o.workers)
	if err != nil {
		return err
	}
	xAdv := make([]float32, len(testSet.Images))
	rng := rand.New(rand.NewPCG(o.seed, 0xa11a))
	if o.cpuprofile != "" {
		f, err := os.Create(o.cpuprofile)
		if err != nil {
			return fmt.Errorf("create profile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("start profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	start := time.Now()
	cfg := attack.AutoAttackConfig{Eps: o.eps, Queries: o.queries, Norm: norm}
	report, err := cfg.Run(ev, testSet.Images, testSet.Labels, n, rng, xAdv)
	if err != nil {
		return err
	}
	total := time.Since(start).Seconds()
	printReport(o, n, report, total)
	return nil
}

// loadMini runs the load stage on fashion-mnist-mini: 1000 training, 200
// validation and test test images, as the quickstart loads them.
func loadMini(test int) (map[string]*artifacts.Dataset, error) {
	dir, err := os.MkdirTemp("", "sglr-bench-autoattack-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	spec := load.Stage{}.Spec()
	params, err := stages.DecodeParams(spec, map[string]any{
		"dataset": load.FashionMNISTMini, "train": int64(1000), "val": int64(200), "test": int64(test)})
	if err != nil {
		return nil, fmt.Errorf("load parameters: %w", err)
	}
	env := &stages.Env{Instance: "data", Params: params, Progress: stages.NopProgress{}, OutDir: dir}
	if err := (load.Stage{}).Run(context.Background(), env); err != nil {
		return nil, fmt.Errorf("load fashion-mnist-mini: %w", err)
	}
	out := map[string]*artifacts.Dataset{}
	for _, port := range []string{"train", "val", "test"} {
		ds, err := artifacts.ReadDatasetFile(env.OutputPath(port))
		if err != nil {
			return nil, fmt.Errorf("read %s split: %w", port, err)
		}
		out[port] = ds
	}
	return out, nil
}

// cachedModel reads o.model, or trains the quickstart MLP and writes it there.
func cachedModel(o options, splits map[string]*artifacts.Dataset) (*model.Weights, error) {
	m, err := artifacts.ReadModelFile(o.model)
	if err == nil {
		return stages.WeightsFromArtifact(m)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("read cached model %s: %w (delete it to retrain)", o.model, err)
	}
	params := stages.Params{}
	for _, p := range (train.Stage{}).Spec().Params {
		params[p.Name] = p.Default
	}
	for k, v := range map[string]any{"model": "mlp", "hidden": []any{int64(128), int64(128)},
		"epochs": int64(o.epochs), "weight_decay": 0.0, "eps": 0.1, "step": 0.025, "steps": int64(5),
		"val_steps": int64(10), "workers": int64(o.workers)} {
		params[k] = v
	}
	cfg, err := train.ConfigFromParams(params)
	if err != nil {
		return nil, fmt.Errorf("training configuration: %w", err)
	}
	fmt.Fprintf(os.Stderr, "training the quickstart MLP (%d epochs), cached in %s\n", o.epochs, o.model)
	start := time.Now()
	res, err := train.Train(context.Background(), cfg, splits["train"], splits["val"], nil, 0, nil)
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	fmt.Fprintf(os.Stderr, "trained in %.1f s\n", time.Since(start).Seconds())
	art, err := stages.ModelArtifact(res.Final, map[string]string{"checkpoint": "final"})
	if err != nil {
		return nil, err
	}
	if err := artifacts.WriteAtomic(o.model, 0o644, func(w io.Writer) error { return artifacts.WriteModel(w, art) }); err != nil {
		return nil, fmt.Errorf("cache model %s: %w", o.model, err)
	}
	return res.Final, nil
}

// timeForward times Evaluator.Logits on the first o.forward test points,
// the cost of one Square query on that many remaining points, with the
// Evaluator built at -batch and at ceil(n/workers). The Evaluator sizes its
// chunks per call (every worker busy, padding under 16 rows), so both should
// cost the same; a gap would mean chunking regressed.
func timeForward(o options, w *model.Weights, testSet *artifacts.Dataset) error {
	n := min(o.forward, len(testSet.Labels))
	x := testSet.Images[:n*w.Arch.InputSize()]
	out := make([]float32, n*w.Arch.Classes)
	fmt.Printf("Evaluator.Logits on %d points, %d workers, BLAS %s\n", n, o.workers, ops.BLAS())
	for _, batch := range []int{o.batch, (n + o.workers - 1) / o.workers} {
		ev, err := model.NewEvaluator(w, batch, o.workers)
		if err != nil {
			return err
		}
		if err := ev.Logits(x, n, out); err != nil { // compiles the graphs
			return err
		}
		const calls = 200
		start := time.Now()
		for range calls {
			if err := ev.Logits(x, n, out); err != nil {
				return err
			}
		}
		fmt.Printf("batch %4d: %.3f ms per call\n", batch, 1e3*time.Since(start).Seconds()/calls)
	}
	return nil
}

// printReport prints one row per component and the total.
func printReport(o options, n int, r *attack.AutoAttackReport, total float64) {
	if o.tsv {
		fmt.Printf("blas\t%s\n", ops.BLAS())
		fmt.Printf("clean\t0\t0\t%.4f\n", r.CleanAcc)
		for _, s := range r.Steps {
			fmt.Printf("%s\t%.2f\t%d\t%.4f\n", s.Attack, s.Seconds, s.Broken, s.RobustAcc)
		}
		fmt.Printf("total\t%.2f\t%d\t%.4f\n", total, 0, r.RobustAcc)
		return
	}
	fmt.Printf("AutoAttack standard (%s), eps %g, %d fashion-mnist-mini test points, MLP 784-128-128-10\n", o.norm, o.eps, n)
	fmt.Printf("BLAS: %s; Evaluator batch %d, %d workers; GOMAXPROCS %d\n", ops.BLAS(), min(o.batch, n), o.workers, runtime.GOMAXPROCS(0))
	fmt.Printf("%-8s %9s %7s %10s\n", "attack", "seconds", "broken", "robust %")
	fmt.Printf("%-8s %9s %7s %10.1f\n", "clean", "", "", 100*r.CleanAcc)
	for _, s := range r.Steps {
		fmt.Printf("%-8s %9.2f %7d %10.1f\n", s.Attack, s.Seconds, s.Broken, 100*s.RobustAcc)
	}
	fmt.Printf("%-8s %9.2f %7s %10.1f\n", "total", total, "", 100*r.RobustAcc)
}
