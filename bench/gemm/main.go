// Command gemm prints the speed, in GFLOP/s, of the float32 matrix products
// the nn networks run, on package nn/gemm's kernels, on gonum's native
// pure-Go BLAS and, when built with -tags openblas, on OpenBLAS (through
// gonum's netlib bindings, single-threaded as the trainer runs it):
//
//	go run ./bench/gemm                   # nn/gemm and gonum
//	go run -tags openblas ./bench/gemm    # and OpenBLAS
//
// The shapes are the MLP 784-256-256-10 layers at batch 128 (forward x·Wᵀ,
// input gradient g·W, weight gradient gᵀ·x) and im2col convolutions (weights
// times columns per image and per batch of 128, and their gradients). Each
// figure is the median over -rounds rounds of at least -round of calls,
// timed by the wall clock or, with -clock cpu (Linux), by the CPU time of
// the process, which other processes on a busy machine disturb less. (gonum
// runs large products on several goroutines: the wall clock credits it with
// their parallelism, the CPU clock charges it for all of them, which is what
// matters to a trainer already running one goroutine per core.)
package main

import (
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sglr-pipe/sglr-pipe/nn/gemm"
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "gemm:", err)
		os.Exit(1)
	}
}

// shape is one product C (m×n) = op(A) (m×k) · op(B) (k×n).
type shape struct {
	name    string
	tA, tB  blas.Transpose
	m, n, k int
}

// shapes are the products the benchmark times, in table order.
var shapes = []shape{
	{"mlp fwd 784->256   x·Wᵀ", blas.NoTrans, blas.Trans, 128, 256, 784},
	{"mlp fwd 256->256   x·Wᵀ", blas.NoTrans, blas.Trans, 128, 256, 256},
	{"mlp fwd 256->10    x·Wᵀ", blas.NoTrans, blas.Trans, 128, 10, 256},
	{"mlp dx  256->784   g·W", blas.NoTrans, blas.NoTrans, 128, 784, 256},
	{"mlp dx  256->256   g·W", blas.NoTrans, blas.NoTrans, 128, 256, 256},
	{"mlp dW  256x784    gᵀ·x", blas.Trans, blas.NoTrans, 256, 784, 128},
	{"mlp dW  256x256    gᵀ·x", blas.Trans, blas.NoTrans, 256, 256, 128},
	{"conv 1->32 28² img  W·cols", blas.NoTrans, blas.NoTrans, 32, 784, 9},
	{"conv 3->32 32² img  W·cols", blas.NoTrans, blas.NoTrans, 32, 1024, 27},
	{"conv 32->64 14² img W·cols", blas.NoTrans, blas.NoTrans, 64, 196, 288},
	{"conv 32->64 14² b128 W·cols", blas.NoTrans, blas.NoTrans, 64, 25088, 288},
	{"conv 32->64 14² b128 cols·Wᵀ", blas.NoTrans, blas.Trans, 25088, 64, 288},
	{"conv 32->64 14² b128 dW=g·colsᵀ", blas.NoTrans, blas.Trans, 64, 288, 25088},
	{"conv 32->64 14² b128 dcols=Wᵀ·g", blas.Trans, blas.NoTrans, 288, 25088, 64},
	{"resnet 64->64 32² img W·cols", blas.NoTrans, blas.NoTrans, 64, 1024, 576},
	{"resnet 512->512 4² img W·cols", blas.NoTrans, blas.NoTrans, 512, 16, 4608},
}

// contender is a Sgemm to time.
type contender struct {
	name string
	impl blas.Float32Level3
}

// contenders are nn/gemm and gonum, plus OpenBLAS in -tags openblas builds
// (openblas.go).
var contenders = []contender{
	{"nn/gemm", gemm.Implementation{}},
	{"gonum", gonum.Implementation{}},
}

func run(args []string) error {
	fs := flag.NewFlagSet("gemm", flag.ContinueOnError)
	rounds := fs.Int("rounds", 5, "timed rounds per shape and implementation (the median is printed)")
	round := fs.Duration("round", 40*time.Millisecond, "minimum length of a round")
	filter := fs.String("shapes", "", "only shapes whose name contains this")
	clockName := fs.String("clock", "wall", "what times the rounds: wall or cpu (the process's CPU time, Linux only)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *rounds < 1 || *round <= 0 {
		return fmt.Errorf("-rounds %d and -round %v must be positive", *rounds, *round)
	}
	var now func() time.Duration
	switch *clockName {
	case "wall":
		start := time.Now()
		now = func() time.Duration { return time.Since(start) }
	case "cpu":
		var err error
		if now, err = cpuClock(); err != nil {
			return fmt.Errorf("-clock cpu: %w", err)
		}
	default:
		return fmt.Errorf("-clock %q: want wall or cpu", *clockName)
	}
	fmt.Printf("nn/gemm kernel: %s   GOARCH %s   clock: %s   (single-threaded products)\n", gemm.Kernel(), runtime.GOARCH, *clockName)
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	header := "shape\tm\tn\tk\t"
	for _, c := range contenders {
		header += c.name + " GFLOP/s\t"
	}
	for _, c := range contenders[1:] {
		header += "nn/gemm ÷ " + c.name + "\t"
	}
	fmt.Fprintln(w, header)
	matched := false
	for _, s := range shapes {
		if !strings.Contains(s.name, *filter) {
			continue
		}
		matched = true
		line := fmt.Sprintf("%s\t%d\t%d\t%d\t", s.name, s.m, s.n, s.k)
		speeds := make([]float64, len(contenders))
		for i, c := range contenders {
			speeds[i] = measure(c.impl, s, *rounds, *round, now)
			line += fmt.Sprintf("%.1f\t", speeds[i])
		}
		for _, v := range speeds[1:] {
			line += fmt.Sprintf("%.2fx\t", speeds[0]/v)
		}
		fmt.Fprintln(w, line)
	}
	if !matched {
		return errors.New("no shape matches -shapes " + *filter)
	}
	return w.Flush()
}

// measure returns the median GFLOP/s of impl's Sgemm on s over rounds rounds
// of at least round each by clock now, after one untimed call.
func measure(impl blas.Float32Level3, s shape, rounds int, round time.Duration, now func() time.Duration) float64 {
	rng := rand.New(rand.NewPCG(1, uint64(s.m*s.n*s.k)))
	a, b, c := randomMatrix(rng, s.m*s.k), randomMatrix(rng, s.k*s.n), make([]float32, s.m*s.n)
	lda, ldb := s.k, s.n
	if s.tA != blas.NoTrans {
		lda = s.m
	}
	if s.tB != blas.NoTrans {
		ldb = s.k
	}
	call := func() { impl.Sgemm(s.tA, s.tB, s.m, s.n, s.k, 1, a, lda, b, ldb, 0, c, s.n) }
	call()
	flops := 2 * float64(s.m) * float64(s.n) * float64(s.k)
	speeds := make([]float64, rounds)
	for r := range speeds {
		calls, start := 0, now()
		for now()-start < round {
			call()
			calls++
		}
		speeds[r] = flops * float64(calls) / (now() - start).Seconds() / 1e9
	}
	slices.Sort(speeds)
	return speeds[rounds/2]
}

func randomMatrix(rng *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(rng.Float64()*2 - 1)
	}
	return s
}
