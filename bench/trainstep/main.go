// Command trainstep times one PGD-10 adversarial training step of package nn,
// the unit of work of SGLR training, so that it can be compared with the same
// step in PyTorch (bench/torch_step.py; bench/trainstep.sh runs both).
//
// One step at batch B is what the training loop does per batch:
//
//	PGD-10 against an Eval-mode Evaluator (eps 8/255, step 2/255, random
//	start): 10 input-gradient passes, the batch cut into one chunk per worker;
//	one Train-mode forward/backward on the adversarial batch (model.Trainer);
//	an SGD update (momentum 0.9, weight decay 5e-4), then the new weights are
//	pushed to the Evaluator.
//
// For each model it runs -warmup steps, then timed steps (at least -minsteps,
// at most -steps, stopping early once -maxtime is spent) and prints the
// median ms/step, the process CPU time per step (both cores' worth: steadier
// than the wall time on a shared machine), heap allocations per step and
// the peak RSS.
//
//	go run ./bench/trainstep                      # pure-Go BLAS, all four models
//	go run -tags openblas ./bench/trainstep       # OpenBLAS
//	go run ./bench/trainstep -models mlp,cnn-28   # some of them
//	go run ./bench/trainstep -memsteps 1000       # RSS every 100 MLP steps
//	go run ./bench/trainstep -memprofile m.out    # where the allocations come from
//
// Flags: see -help. -tsv prints machine-readable rows for trainstep.sh.
package main

import (
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sglr-pipe/sglr-pipe/nn/attack"
	"github.com/sglr-pipe/sglr-pipe/nn/model"
	"github.com/sglr-pipe/sglr-pipe/nn/ops"
	"github.com/sglr-pipe/sglr-pipe/nn/optim"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "trainstep:", err)
		os.Exit(1)
	}
}

// benchModel is one architecture the benchmark times.
type benchModel struct {
	name string
	arch model.Arch
}

// models lists the benchmarked architectures in table order;
// bench/torch_step.py uses the same names and architectures.
var models = []benchModel{
	{"mlp", model.Arch{Kind: model.KindMLP, Input: []int{1, 28, 28}, Classes: 10, Hidden: []int{256, 256}}},
	{"cnn-28", model.Arch{Kind: model.KindCNN, Input: []int{1, 28, 28}, Classes: 10, Channels: []int{32, 64}, Hidden: []int{128}}},
	{"cnn-32", model.Arch{Kind: model.KindCNN, Input: []int{3, 32, 32}, Classes: 10, Channels: []int{32, 64}, Hidden: []int{128}}},
	{"preact-resnet18", model.Arch{Kind: model.KindPreActResNet18, Input: []int{3, 32, 32}, Classes: 10, Width: 64}},
}

// PGD-10 of the SGLR training recipe and the optimiser settings.
const (
	pgdEps      = 8.0 / 255
	pgdStep     = 2.0 / 255
	pgdSteps    = 10
	momentum    = 0.9
	weightDecay = 5e-4
	learnRate   = 0.01
	memEvery    = 100
)

// options are the parsed command-line flags.
type options struct {
	models     []benchModel
	batch      int
	workers    int
	warmup     int
	steps      int
	minSteps   int
	maxTime    time.Duration
	memSteps   int
	tsv        bool
	cpuProfile string
	memProfile string
	seed       uint64
}

// result is one model's measurement.
type result struct {
	model       string
	steps       int
	medianMS    float64
	cpuMS       float64 // process CPU time (user+sys, all threads) per timed step
	allocs      float64
	peakRSSMB   float64
	peakIsModel bool // false when VmHWM could not be reset: the peak is the process's so far
}

func run(args []string) error {
	opts, err := parseFlags(args)
	if err != nil {
		return err
	}
	if opts.tsv {
		fmt.Printf("#blas\t%s\n#workers\t%d\n#gomaxprocs\t%d\n", ops.BLAS(), opts.workers, runtime.GOMAXPROCS(0))
	} else {
		fmt.Printf("BLAS: %s\nworkers: %d (GOMAXPROCS %d, %d CPUs)  batch: %d  step: PGD-%d attack + train fwd/bwd + SGD\n",
			ops.BLAS(), opts.workers, runtime.GOMAXPROCS(0), runtime.NumCPU(), opts.batch, pgdSteps)
	}
	if opts.cpuProfile != "" {
		f, err := os.Create(opts.cpuProfile)
		if err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("start cpu profile %s: %w", opts.cpuProfile, err)
		}
		defer pprof.StopCPUProfile()
	}
	if opts.memProfile != "" {
		runtime.MemProfileRate = 1
		defer writeMemProfile(opts.memProfile)
	}
	if opts.memSteps > 0 {
		return memoryRun(opts)
	}
	if !opts.tsv {
		fmt.Printf("%-16s %6s %10s %12s %12s %10s\n", "model", "steps", "ms/step", "CPU ms/step", "allocs/step", "peak RSS")
	}
	for _, m := range opts.models {
		r, err := timeModel(m, opts)
		if err != nil {
			return fmt.Errorf("%s: %w", m.name, err)
		}
		rss := fmt.Sprintf("%.0f MB", r.peakRSSMB)
		if !r.peakIsModel {
			rss += "*"
		}
		if opts.tsv {
			fmt.Printf("%s\t%.1f\t%.0f\t%s\t%d\t%.1f\n", r.model, r.medianMS, r.allocs, rss, r.steps, r.cpuMS)
		} else {
			fmt.Printf("%-16s %6d %10.1f %12.1f %12.0f %10s\n", r.model, r.steps, r.medianMS, r.cpuMS, r.allocs, rss)
		}
	}
	return nil
}

func parseFlags(args []string) (options, error) {
	fs := flag.NewFlagSet("trainstep", flag.ContinueOnError)
	var o options
	names := fs.String("models", modelNames(), "comma-separated models")
	fs.IntVar(&o.batch, "batch", 128, "batch size")
	fs.IntVar(&o.workers, "workers", runtime.NumCPU(), "worker goroutines (replicas and attack chunks)")
	fs.IntVar(&o.warmup, "warmup", 2, "untimed steps per model (graph compilation happens in the first)")
	fs.IntVar(&o.steps, "steps", 20, "timed steps per model, at most")
	fs.IntVar(&o.minSteps, "minsteps", 3, "timed steps per model, at least, even past -maxtime")
	fs.DurationVar(&o.maxTime, "maxtime", 30*time.Second, "stop timing a model after this long (once -minsteps are done)")
	fs.IntVar(&o.memSteps, "memsteps", 0, "instead of timing, run this many MLP steps and print the RSS every 100")
	fs.BoolVar(&o.tsv, "tsv", false, "print tab-separated rows (model, ms/step, allocs/step, peak RSS, steps, CPU ms/step) for trainstep.sh")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the whole run to this file")
	fs.StringVar(&o.memProfile, "memprofile", "", "write an allocation profile (every allocation sampled) of the whole run to this file")
	fs.Uint64Var(&o.seed, "seed", 1, "seed of the weights, data and attack starts")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	for name, v := range map[string]int{"batch": o.batch, "workers": o.workers, "steps": o.steps, "minsteps": o.minSteps} {
		if v < 1 {
			return o, fmt.Errorf("-%s must be at least 1, got %d", name, v)
		}
	}
	if o.warmup < 0 || o.memSteps < 0 {
		return o, fmt.Errorf("-warmup (%d) and -memsteps (%d) must not be negative", o.warmup, o.memSteps)
	}
	for _, name := range strings.Split(*names, ",") {
		name = strings.TrimSpace(name)
		i := slices.IndexFunc(models, func(m benchModel) bool { return m.name == name })
		if i < 0 {
			return o, fmt.Errorf("-models: unknown model %q, want some of %s", name, modelNames())
		}
		o.models = append(o.models, models[i])
	}
	return o, nil
}

// timeModel measures one model's step.
func timeModel(m benchModel, opts options) (result, error) {
	r := result{model: m.name}
	runtime.GC()
	debug.FreeOSMemory()
	r.peakIsModel = resetPeakRSS() == nil
	s, err := newStepper(m.arch, opts)
	if err != nil {
		return r, err
	}
	for i := range opts.warmup {
		if err := s.step(); err != nil {
			return r, fmt.Errorf("warm-up step %d: %w", i+1, err)
		}
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	cpuBefore, err := processCPU()
	if err != nil {
		return r, err
	}
	times := make([]float64, 0, opts.steps)
	start := time.Now()
	for len(times) < opts.steps && (len(times) < opts.minSteps || time.Since(start) < opts.maxTime) {
		t0 := time.Now()
		if err := s.step(); err != nil {
			return r, fmt.Errorf("timed step %d: %w", len(times)+1, err)
		}
		times = append(times, float64(time.Since(t0).Microseconds())/1000)
	}
	runtime.ReadMemStats(&after)
	cpuAfter, err := processCPU()
	if err != nil {
		return r, err
	}
	r.steps = len(times)
	r.cpuMS = float64((cpuAfter - cpuBefore).Microseconds()) / 1000 / float64(len(times))
	r.medianMS = median(times)
	r.allocs = float64(after.Mallocs-before.Mallocs) / float64(len(times))
	hwm, err := procStatusKB("VmHWM")
	if err != nil {
		return r, err
	}
	r.peakRSSMB = float64(hwm) / 1024
	return r, nil
}

// memoryRun runs opts.memSteps MLP steps and prints the resident set every
// memEvery steps, to show that training does not leak.
func memoryRun(opts options) error {
	s, err := newStepper(models[0].arch, opts)
	if err != nil {
		return err
	}
	fmt.Printf("%-6s %10s %10s %12s %10s\n", "step", "RSS", "peak RSS", "Go heap", "ms/step")
	last := time.Now()
	for i := 1; i <= opts.memSteps; i++ {
		if err := s.step(); err != nil {
			return fmt.Errorf("step %d: %w", i, err)
		}
		if i%memEvery == 0 || i == opts.memSteps {
			rss, err := procStatusKB("VmRSS")
			if err != nil {
				return err
			}
			hwm, err := procStatusKB("VmHWM")
			if err != nil {
				return err
			}
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			done := i % memEvery
			if done == 0 {
				done = memEvery
			}
			fmt.Printf("%-6d %7.1f MB %7.1f MB %9.1f MB %10.1f\n", i, float64(rss)/1024, float64(hwm)/1024,
				float64(ms.HeapInuse)/(1<<20), float64(time.Since(last).Milliseconds())/float64(done))
			last = time.Now()
		}
	}
	return nil
}

// stepper holds everything one model's training step needs, allocated once.
type stepper struct {
	trainer  *model.Trainer
	eval     *model.Evaluator
	sgd      *optim.SGD
	attacker attack.Attacker
	rng      *rand.Rand
	n        int
	x, xAdv  []float32
	targets  []float32
	labels   []int32
}

// newStepper initialises arch and a batch of random inputs in [0,1] with
// random labels.
func newStepper(arch model.Arch, opts options) (*stepper, error) {
	w, err := model.Init(arch, opts.seed)
	if err != nil {
		return nil, err
	}
	s := &stepper{n: opts.batch, rng: rand.New(rand.NewPCG(opts.seed, 2))}
	if s.trainer, err = model.NewTrainer(w, opts.batch, opts.workers); err != nil {
		return nil, err
	}
	// One attack chunk per worker, as the training loop does.
	if s.eval, err = model.NewEvaluator(w, (opts.batch+opts.workers-1)/opts.workers, opts.workers); err != nil {
		return nil, err
	}
	s.sgd = optim.NewSGD(s.trainer.Weights().Params, momentum, weightDecay, false)
	d, k := arch.InputSize(), arch.Classes
	s.x, s.xAdv = make([]float32, s.n*d), make([]float32, s.n*d)
	s.targets, s.labels = make([]float32, s.n*k), make([]int32, s.n)
	for i := range s.x {
		s.x[i] = s.rng.Float32()
	}
	for i := range s.labels {
		s.labels[i] = int32(s.rng.IntN(k))
		s.targets[i*k+int(s.labels[i])] = 1
	}
	return s, nil
}

// step is one adversarial training step: PGD-10 in Eval mode, a Train-mode
// forward/backward on the adversarial batch, the SGD update.
func (s *stepper) step() error {
	cfg := attack.PGD{Eps: pgdEps, Step: pgdStep, Steps: pgdSteps, RandomStart: true, Restarts: 1}
	if err := s.attacker.PGD(s.eval, s.x, s.labels, s.n, cfg, s.rng, s.xAdv); err != nil {
		return fmt.Errorf("attack: %w", err)
	}
	if _, _, err := s.trainer.Step(s.xAdv, s.targets, s.n); err != nil {
		return fmt.Errorf("train step: %w", err)
	}
	s.sgd.Step(s.trainer.Weights().Params, s.trainer.Grads(), learnRate)
	if err := s.eval.SetWeights(s.trainer.Weights()); err != nil {
		return fmt.Errorf("push weights to the evaluator: %w", err)
	}
	return nil
}

// writeMemProfile writes the allocation profile of the run so far to path,
// reporting a failure on stderr (the timings are printed already).
func writeMemProfile(path string) {
	runtime.GC() // the profile is as of the last collection
	f, err := os.Create(path)
	if err == nil {
		err = pprof.Lookup("allocs").WriteTo(f, 0)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "trainstep: memory profile %s: %v\n", path, err)
	}
}

// processCPU is the CPU time (user and system, every thread) this process
// has used. Unlike the wall time it hardly depends on other jobs sharing the
// machine, which makes it the steadier figure for before/after comparisons.
func processCPU() (time.Duration, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, fmt.Errorf("read CPU time: %w", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}

// resetPeakRSS resets the kernel's VmHWM of this process (Linux 4.0+), so
// that the next reading is the peak of one model only.
func resetPeakRSS() error {
	return os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
}

// procStatusKB reads a "Name:  N kB" field of /proc/self/status.
func procStatusKB(field string) (int64, error) {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, fmt.Errorf("read RSS: %w", err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		name, value, ok := strings.Cut(line, ":")
		if !ok || name != field {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(value), " kB"), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("parse %s in /proc/self/status: %w", field, err)
		}
		return kb, nil
	}
	return 0, errors.New("no " + field + " in /proc/self/status")
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func modelNames() string {
	names := make([]string, len(models))
	for i, m := range models {
		names[i] = m.name
	}
	return strings.Join(names, ",")
}
