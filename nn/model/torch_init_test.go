package model

import (
	"encoding/json"
	"math"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// initStatsScript prints, for each architecture JSON in argv, the state_dict
// of the bench/torch_models.py module with PyTorch's default initialisation
// (torch.manual_seed(0)): every entry's name, shape, buffer flag, and the
// mean, root mean square and largest magnitude of its values.
const initStatsScript = `
import json, sys
sys.dont_write_bytecode = True
sys.path.insert(0, sys.argv[1])
import torch
from torch_models import build
torch.manual_seed(0)
out = []
for spec in sys.argv[2:]:
    m = build(json.loads(spec))
    params = {n for n, _ in m.named_parameters()}
    rows = []
    for name, t in m.state_dict().items():
        v = t.detach().double().flatten()
        rows.append({"name": name, "shape": list(t.shape), "buffer": name not in params,
                     "mean": v.mean().item() if v.numel() else 0.0,
                     "rms": v.pow(2).mean().sqrt().item() if v.numel() else 0.0,
                     "max": v.abs().max().item() if v.numel() else 0.0})
    out.append(rows)
print(json.dumps(out))
`

// torchInitStat is one state_dict entry of initStatsScript's output.
type torchInitStat struct {
	Name           string
	Shape          []int
	Buffer         bool
	Mean, RMS, Max float64
}

// TestTorchInitMatchesPyTorchDefaults compares InitPyTorch with the
// default-initialised PyTorch modules of the same architectures: the same
// state_dict layout (names, order, shapes, buffers), and per tensor the same
// statistics (not the same values): BatchNorm's constants exactly, and for
// every weight and bias a largest magnitude within the bound 1/sqrt(fan_in)
// in both, and for tensors of 256 values or more the mean, root mean square
// and largest magnitude within six standard errors of PyTorch's. Skipped
// when /usr/bin/python3 cannot import torch.
func TestTorchInitMatchesPyTorchDefaults(t *testing.T) {
	if out, err := exec.Command(torchPython, "-c", "import torch").CombinedOutput(); err != nil {
		t.Skipf("PyTorch init cross-check skipped: %s cannot import torch (%v: %s); install python3-torch",
			torchPython, err, strings.TrimSpace(string(out)))
	}
	bench, err := filepath.Abs(filepath.Join("..", "..", "bench"))
	if err != nil {
		t.Fatal(err)
	}
	archs := []Arch{
		{Kind: KindMLP, Input: []int{1, 28, 28}, Classes: 10, Hidden: []int{256, 128}},
		{Kind: KindCNN, Input: []int{3, 32, 32}, Classes: 10, Channels: []int{32, 64}, Hidden: []int{128}},
		{Kind: KindPreActResNet18, Input: []int{3, 32, 32}, Classes: 10, Width: 16},
		{Kind: KindResNet18, Input: []int{3, 32, 32}, Classes: 10, Width: 16},
		{Kind: KindResNet34, Input: []int{3, 32, 32}, Classes: 10, Width: 8},
		{Kind: KindResNet50, Input: []int{3, 32, 32}, Classes: 10, Width: 16},
		{Kind: KindWRN28_10, Input: []int{3, 32, 32}, Classes: 10, Widen: 2},
		{Kind: KindWRN34_10, Input: []int{3, 32, 32}, Classes: 10, Widen: 1},
	}
	args := []string{"-c", initStatsScript, bench}
	for _, a := range archs {
		js, err := json.Marshal(a)
		if err != nil {
			t.Fatal(err)
		}
		args = append(args, string(js))
	}
	out, err := exec.Command(torchPython, args...).Output()
	if err != nil {
		t.Fatalf("PyTorch init statistics: %v", err)
	}
	var want [][]torchInitStat
	if err := json.Unmarshal(out, &want); err != nil {
		t.Fatalf("PyTorch init statistics: %v\n%s", err, out)
	}
	for i, arch := range archs {
		t.Run(arch.Kind, func(t *testing.T) { compareInitStats(t, arch, want[i]) })
	}
}

func compareInitStats(t *testing.T, arch Arch, want []torchInitStat) {
	w, err := InitWith(arch, 5, InitPyTorch)
	if err != nil {
		t.Fatal(err)
	}
	if len(w.Params) != len(want) {
		t.Fatalf("%d tensors, PyTorch's state_dict has %d", len(w.Params), len(want))
	}
	fan := 0
	for i, p := range w.Params {
		ref := want[i]
		if p.Name != ref.Name || !slices.Equal(p.Shape, ref.Shape) || p.Buffer != ref.Buffer {
			t.Fatalf("tensor %d is %s%v (buffer %v), PyTorch's %s%v (buffer %v)", i, p.Name, p.Shape, p.Buffer, ref.Name, ref.Shape, ref.Buffer)
		}
		var mean, sq, maxAbs float64
		for _, v := range p.Data {
			mean += float64(v)
			sq += float64(v) * float64(v)
			maxAbs = math.Max(maxAbs, math.Abs(float64(v)))
		}
		n := float64(len(p.Data))
		mean, rms := mean/n, math.Sqrt(sq/n)
		isWeight := strings.HasSuffix(p.Name, ".weight") && len(p.Shape) >= 2
		if isWeight {
			fan = 1
			for _, d := range p.Shape[1:] {
				fan *= d
			}
		}
		if !isWeight && !(strings.HasSuffix(p.Name, ".bias") && fan > 0 && !isBatchNormName(p.Name)) {
			// BatchNorm parameters and buffers: constants.
			if mean != ref.Mean || rms != ref.RMS || maxAbs != ref.Max {
				t.Errorf("%s: mean/rms/max %g/%g/%g, PyTorch %g/%g/%g", p.Name, mean, rms, maxAbs, ref.Mean, ref.RMS, ref.Max)
			}
			continue
		}
		bound := 1 / math.Sqrt(float64(fan))
		if maxAbs > bound*(1+1e-6) || ref.Max > bound*(1+1e-6) {
			t.Errorf("%s: largest magnitude %.6g, PyTorch's %.6g, bound 1/sqrt(%d) = %.6g", p.Name, maxAbs, ref.Max, fan, bound)
		}
		if n < 256 {
			continue
		}
		// U(−b, b): rms b/√3 with relative standard error 0.447/√n, mean
		// standard error rms/√n; the difference of two draws has √2 times that.
		se := math.Sqrt2 / math.Sqrt(n)
		if math.Abs(rms-ref.RMS) > 6*se*0.447*ref.RMS || math.Abs(mean-ref.Mean) > 6*se*ref.RMS ||
			math.Abs(maxAbs-ref.Max) > bound*20/n {
			t.Errorf("%s (%d values): mean/rms/max %.5g/%.5g/%.5g, PyTorch %.5g/%.5g/%.5g", p.Name, len(p.Data),
				mean, rms, maxAbs, ref.Mean, ref.RMS, ref.Max)
		}
	}
}

// isBatchNormName reports whether a state_dict name belongs to a BatchNorm
// layer of one of the architectures (bn, bn1, layer1.0.bn2, shortcut.1).
func isBatchNormName(name string) bool {
	return strings.HasPrefix(name, "bn") || strings.Contains(name, ".bn") || strings.Contains(name, "shortcut.1.")
}
