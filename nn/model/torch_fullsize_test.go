package model

import (
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestTorchCrosscheckFullSize runs every residual architecture at its real
// size (width 64, widen 10, CIFAR-10 shapes) once against PyTorch: Eval-mode
// float32 logits, mean loss and input gradient of a batch of 2, to
// crosscheckTol32. (TestTorchCrosscheck checks every gradient and Train
// mode at small widths.) It takes a minute on two cores; -short skips it.
func TestTorchCrosscheckFullSize(t *testing.T) {
	if testing.Short() {
		t.Skip("full-size PyTorch cross-check skipped in -short mode")
	}
	if out, err := exec.Command(torchPython, "-c", "import torch, numpy").CombinedOutput(); err != nil {
		t.Skipf("PyTorch cross-check skipped: %s cannot import torch and numpy (%v: %s); install python3-torch",
			torchPython, err, strings.TrimSpace(string(out)))
	}
	script, err := filepath.Abs(filepath.Join("..", "..", "bench", "crosscheck.py"))
	if err != nil {
		t.Fatal(err)
	}
	kinds := []string{KindPreActResNet18, KindResNet18, KindResNet34, KindResNet50, KindWRN28_10, KindWRN34_10}
	dir := t.TempDir()
	args := []string{script}
	var cases []*crosscheckCase
	for i, kind := range kinds {
		arch := Arch{Kind: kind, Input: []int{3, 32, 32}, Classes: 10}
		c := &crosscheckCase{name: kind, arch: arch, mode: Eval, batch: 2, weights: crosscheckWeights(t, arch, uint64(100+i))}
		rng := rand.New(rand.NewPCG(uint64(i), 5))
		c.x = make([]float32, c.batch*arch.InputSize())
		for j := range c.x {
			c.x[j] = rng.Float32()
		}
		c.target = crosscheckTargets(rng, c.batch, arch.Classes)
		c.inPath, c.outPath = filepath.Join(dir, kind+"-in.npz"), filepath.Join(dir, kind+"-out.npz")
		if err := writeCrosscheckInput(c); err != nil {
			t.Fatal(err)
		}
		args = append(args, c.inPath, c.outPath)
		cases = append(cases, c)
	}
	if out, err := exec.Command(torchPython, args...).CombinedOutput(); err != nil {
		t.Fatalf("bench/crosscheck.py failed: %v\n%s", err, out)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			want, err := readNPZFile(c.outPath)
			if err != nil {
				t.Fatal(err)
			}
			n, err := NewNet(c.weights, c.batch, PurposeInputGrad, NetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			grad := make([]float32, len(c.x))
			sum, err := n.InputGrad(c.x, c.target, grad)
			if err != nil {
				t.Fatal(err)
			}
			logits := make([]float64, c.batch*c.arch.Classes)
			copyFromValue(logits, n.logitsValue())
			mean := toFloat64s(grad)
			for i := range mean {
				mean[i] /= float64(c.batch)
			}
			compareArrays(t, "logits", logits, want["logits"], crosscheckTol32)
			compareArrays(t, "loss / batch", []float64{sum / float64(c.batch)}, want["loss"], crosscheckTol32)
			compareArrays(t, "input_grad / batch", mean, want["input_grad"], crosscheckTol32)
		})
	}
	_ = os.RemoveAll(dir)
}
