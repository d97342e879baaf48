package model

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestEvaluatorChunking pins the per-call chunk plan: every worker gets work
// on small calls, chunks never exceed the batch size, and the Net a chunk
// runs on pads it by fewer than chunkGrain rows.
func TestEvaluatorChunking(t *testing.T) {
	cases := []struct {
		n, batch, workers int
		wantSize          int
		wantRows          []int // Net rows per chunk
	}{
		{n: 0, batch: 256, workers: 2, wantSize: 1, wantRows: nil},
		{n: 1, batch: 256, workers: 2, wantSize: 16, wantRows: []int{16}},
		{n: 15, batch: 256, workers: 2, wantSize: 16, wantRows: []int{16}},
		{n: 17, batch: 256, workers: 2, wantSize: 16, wantRows: []int{16, 16}},
		{n: 117, batch: 256, workers: 2, wantSize: 64, wantRows: []int{64, 64}},
		{n: 300, batch: 256, workers: 2, wantSize: 160, wantRows: []int{160, 144}},
		{n: 513, batch: 256, workers: 2, wantSize: 256, wantRows: []int{256, 256, 16}},
		{n: 1000, batch: 256, workers: 2, wantSize: 256, wantRows: []int{256, 256, 256, 240}},
		{n: 117, batch: 50, workers: 2, wantSize: 50, wantRows: []int{50, 50, 32}},
		{n: 99, batch: 100, workers: 1, wantSize: 100, wantRows: []int{100}},
		{n: 7, batch: 3, workers: 2, wantSize: 3, wantRows: []int{3, 3, 3}},
		{n: 117, batch: 256, workers: 3, wantSize: 48, wantRows: []int{48, 48, 32}},
	}
	for _, tc := range cases {
		w, err := Init(tinyMLP(), 0)
		if err != nil {
			t.Fatal(err)
		}
		e, err := NewEvaluator(w, tc.batch, tc.workers)
		if err != nil {
			t.Fatal(err)
		}
		size, chunks := e.chunking(tc.n)
		if size != tc.wantSize || chunks != len(tc.wantRows) {
			t.Errorf("n %d batch %d workers %d: chunk size %d, %d chunks; want %d, %d",
				tc.n, tc.batch, tc.workers, size, chunks, tc.wantSize, len(tc.wantRows))
			continue
		}
		rows := make([]int, chunks)
		covered := 0
		err = e.forChunks(tc.n, func(_ *evalWorker, chunk, lo, hi, r int) error {
			rows[chunk] = r
			if r < hi-lo || r-(hi-lo) >= chunkGrain {
				t.Errorf("n %d: chunk %d [%d,%d) runs on %d rows", tc.n, chunk, lo, hi, r)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		for c, r := range rows {
			if r != tc.wantRows[c] {
				t.Errorf("n %d batch %d workers %d: chunk rows %v, want %v", tc.n, tc.batch, tc.workers, rows, tc.wantRows)
				break
			}
			covered += min(size, tc.n-c*size)
		}
		if covered != tc.n {
			t.Errorf("n %d: chunks cover %d samples", tc.n, covered)
		}
	}
}

// TestEvaluatorChunksMatchPerSampleNets checks Logits, InputGrad and
// LogitsVJP on call sizes that exercise every chunk shape (one padded
// chunk, two small chunks, full chunks plus a small tail) against batch-1
// Nets run one sample at a time, and that repeated calls give the same bits.
func TestEvaluatorChunksMatchPerSampleNets(t *testing.T) {
	arch := tinyCNN()
	w := randomWeights(t, arch, 11)
	e, err := NewEvaluator(w, 256, 2)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{1, 15, 17, 117, 300, 513} {
		rng := rand.New(rand.NewPCG(uint64(n), 3))
		x := toFloat32(randomSlice(rng, n*arch.InputSize()))
		target := toFloat32(softTargets(rng, n, arch.Classes))
		upstream := toFloat32(randomSlice(rng, n*arch.Classes))
		want := perSampleOutputs(t, w, x, target, upstream, n)
		got := evaluatorOutputs(t, e, x, target, upstream, n)
		compareOutputs(t, n, got, want)

		again := evaluatorOutputs(t, e, x, target, upstream, n)
		if !sameBits(again.logits, got.logits) || !sameBits(again.grad, got.grad) ||
			!sameBits(again.vjp, got.vjp) || again.loss != got.loss {
			t.Errorf("n %d: a second call gave different results", n)
		}
	}
	for _, wk := range e.workers {
		for _, p := range []Purpose{PurposeLogits, PurposeInputGrad, PurposeVJP} {
			if kept := netsKept(wk, p); kept > maxChunkNets {
				t.Errorf("a worker keeps %d %s nets, bound %d", kept, p, maxChunkNets)
			}
		}
	}
}

// TestEvaluatorSetWeightsUpdatesEveryChunkSize builds Nets of several sizes,
// replaces the weights and checks that every size computes with the new ones.
func TestEvaluatorSetWeightsUpdatesEveryChunkSize(t *testing.T) {
	arch := tinyMLP()
	w1, w2 := randomWeights(t, arch, 1), randomWeights(t, arch, 2)
	e, err := NewEvaluator(w1, 64, 2)
	if err != nil {
		t.Fatal(err)
	}
	sizes := []int{1, 20, 50, 130}
	inputs := make([]evaluatorInputs, len(sizes))
	for i, n := range sizes {
		rng := rand.New(rand.NewPCG(uint64(n), 5))
		inputs[i] = evaluatorInputs{
			x:        toFloat32(randomSlice(rng, n*arch.InputSize())),
			target:   toFloat32(softTargets(rng, n, arch.Classes)),
			upstream: toFloat32(randomSlice(rng, n*arch.Classes)),
		}
		evaluatorOutputs(t, e, inputs[i].x, inputs[i].target, inputs[i].upstream, n)
	}
	if kept := netsKept(e.workers[0], PurposeVJP); kept < 3 {
		t.Fatalf("worker 0 keeps %d vjp nets after calls of sizes %v, want several", kept, sizes)
	}
	if err := e.SetWeights(w2); err != nil {
		t.Fatal(err)
	}
	for i, n := range sizes {
		in := inputs[i]
		want := perSampleOutputs(t, w2, in.x, in.target, in.upstream, n)
		got := evaluatorOutputs(t, e, in.x, in.target, in.upstream, n)
		compareOutputs(t, n, got, want)
	}
}

// TestEvaluatorEvictsLeastRecentlyUsedNets calls more distinct chunk sizes
// than a worker keeps and checks the bound and the results after eviction.
func TestEvaluatorEvictsLeastRecentlyUsedNets(t *testing.T) {
	arch := tinyMLP()
	w := randomWeights(t, arch, 3)
	e, err := NewEvaluator(w, 512, 1)
	if err != nil {
		t.Fatal(err)
	}
	d, k := arch.InputSize(), arch.Classes
	for round := range 2 {
		for i := range maxChunkNets + 3 {
			n := 16*i + 1 // a new row count each time: 16, 32, 48, ...
			rng := rand.New(rand.NewPCG(uint64(n), uint64(round)))
			x := toFloat32(randomSlice(rng, n*d))
			out := make([]float32, n*k)
			if err := e.Logits(x, n, out); err != nil {
				t.Fatal(err)
			}
			want := perSampleOutputs(t, w, x, make([]float32, n*k), make([]float32, n*k), n)
			closeSlices(t, "logits after eviction", out, want.logits, 1e-6)
			if kept := netsKept(e.workers[0], PurposeLogits); kept > maxChunkNets {
				t.Fatalf("worker keeps %d logits nets, bound %d", kept, maxChunkNets)
			}
		}
	}
}

// evaluatorInputs are the inputs of one call of each Evaluator method.
type evaluatorInputs struct {
	x, target, upstream []float32
}

// modelOutputs are the results of Logits, InputGrad and LogitsVJP on the
// same samples.
type modelOutputs struct {
	logits, grad, vjp []float32
	loss              float64
}

// evaluatorOutputs runs the three Evaluator methods on n samples.
func evaluatorOutputs(t *testing.T, e *Evaluator, x, target, upstream []float32, n int) modelOutputs {
	t.Helper()
	o := modelOutputs{
		logits: make([]float32, n*e.Classes()),
		grad:   make([]float32, n*e.InputSize()),
		vjp:    make([]float32, n*e.InputSize()),
	}
	if err := e.Logits(x, n, o.logits); err != nil {
		t.Fatalf("n %d: logits: %v", n, err)
	}
	var err error
	if o.loss, err = e.InputGrad(x, n, target, o.grad); err != nil {
		t.Fatalf("n %d: input gradient: %v", n, err)
	}
	if err := e.LogitsVJP(x, n, upstream, o.vjp); err != nil {
		t.Fatalf("n %d: vjp: %v", n, err)
	}
	return o
}

// perSampleOutputs computes the same results with batch-1 Nets, one sample
// at a time: the ground truth for any chunking.
func perSampleOutputs(t *testing.T, w *Weights, x, target, upstream []float32, n int) modelOutputs {
	t.Helper()
	var o modelOutputs
	o.logits, o.grad, o.loss = perSampleReference(t, w, x, target, n)
	d, k := w.Arch.InputSize(), w.Arch.Classes
	vn, err := NewNet(w, 1, PurposeVJP, NetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	o.vjp = make([]float32, n*d)
	for i := range n {
		if err := vn.LogitsVJP(x[i*d:(i+1)*d], upstream[i*k:(i+1)*k], o.vjp[i*d:(i+1)*d]); err != nil {
			t.Fatal(err)
		}
	}
	return o
}

func compareOutputs(t *testing.T, n int, got, want modelOutputs) {
	t.Helper()
	const tol = 1e-6
	closeSlices(t, "logits", got.logits, want.logits, tol)
	closeSlices(t, "input gradient", got.grad, want.grad, tol)
	closeSlices(t, "vjp", got.vjp, want.vjp, tol)
	if math.Abs(got.loss-want.loss) > tol*math.Max(1, math.Abs(want.loss)) {
		t.Errorf("n %d: loss %g, want %g", n, got.loss, want.loss)
	}
}

func sameBits(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return false
		}
	}
	return true
}

// netsKept counts the worker's cached Nets for purpose.
func netsKept(wk *evalWorker, p Purpose) int {
	kept := 0
	for _, cn := range wk.nets {
		if cn.purpose == p {
			kept++
		}
	}
	return kept
}
