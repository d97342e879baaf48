package artifacts_test

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/sglr-pipe/sglr-pipe/artifacts"
	"github.com/sglr-pipe/sglr-pipe/nn/model"
)

// torchLogitsTol bounds |torch − go| ≤ tol·(|go| + max|go|) per logit: both
// sides compute in float32, in different orders.
const torchLogitsTol = 1e-4

// torchLogitsCase is one architecture's exported model and inputs.
type torchLogitsCase struct {
	arch   model.Arch
	npz    string    // the exported archive
	input  string    // raw little-endian float32 samples
	n      int       // number of samples
	logits []float32 // the Go evaluator's logits, n × classes
}

// TestExportNPZRunsInTorch is the round trip a PyTorch user makes: a model
// (with non-trivial biases and BatchNorm statistics) is written as an
// artifact, exported with ExportNPZ, and rebuilt by
// bench/torch_models.load_npz from the archive alone, without being told the
// architecture. Its eval-mode logits on a few inputs must equal those of the
// Go engine's Evaluator, and an archive without the architecture must be
// refused with a message naming the missing entry. One Python run for every architecture (importing
// torch takes a second); skipped when /usr/bin/python3 lacks torch.
func TestExportNPZRunsInTorch(t *testing.T) {
	const python = "/usr/bin/python3"
	if out, err := exec.Command(python, "-c", "import numpy, torch").CombinedOutput(); err != nil {
		t.Skipf("%s cannot import numpy and torch (%v: %s); install python3-torch to run this test",
			python, err, strings.TrimSpace(string(out)))
	}
	bench, err := filepath.Abs(filepath.Join("..", "bench"))
	if err != nil {
		t.Fatal(err)
	}
	archs := []model.Arch{
		{Kind: model.KindMLP, Input: []int{1, 5, 4}, Classes: 4, Hidden: []int{7, 5}},
		{Kind: model.KindCNN, Input: []int{2, 9, 8}, Classes: 3, Channels: []int{3, 4}, Hidden: []int{6}},
		{Kind: model.KindPreActResNet18, Input: []int{2, 26, 26}, Classes: 3, Width: 2},
	}
	dir := t.TempDir()
	args := []string{"-c", torchLogitsScript, bench, dir}
	cases := make([]*torchLogitsCase, len(archs))
	for i, arch := range archs {
		c := newTorchLogitsCase(t, arch, uint64(i+1), filepath.Join(dir, arch.Kind))
		cases[i] = c
		args = append(args, c.npz, c.input, shapeArg(arch.Input))
	}
	out, err := exec.Command(python, args...).Output()
	if err != nil {
		t.Fatalf("torch_models.load_npz and the forward pass failed: %v\n%s", err, stderrOf(err))
	}
	var got struct {
		Logits      [][]float64
		NoArchError string `json:"no_arch_error"`
	}
	if err := json.Unmarshal(out, &got); err != nil || len(got.Logits) != len(cases) {
		t.Fatalf("python printed %.300s (%v), want %d logit lists", out, err, len(cases))
	}
	for i, c := range cases {
		t.Run(c.arch.Kind, func(t *testing.T) { compareLogits(t, got.Logits[i], c.logits) })
	}
	if !strings.Contains(got.NoArchError, "no "+artifacts.NPZArchKey+" entry") {
		t.Errorf("load_npz of an archive without %s: error %q, want one naming the missing entry",
			artifacts.NPZArchKey, got.NoArchError)
	}
}

// torchLogitsScript loads each archive with load_npz and prints, as JSON,
// the logits of its inputs and the error load_npz gives for an archive
// without the architecture: argv = BENCH_DIR, SCRATCH_DIR, then
// (NPZ, INPUT, "C,H,W") triples.
const torchLogitsScript = `import json, os, sys
sys.dont_write_bytecode = True
sys.path.insert(0, sys.argv[1])
import numpy as np, torch
import torch_models
out = {"logits": []}
for npz, raw, shape in zip(sys.argv[3::3], sys.argv[4::3], sys.argv[5::3]):
    model = torch_models.load_npz(npz)
    x = torch.from_numpy(np.fromfile(raw, dtype="<f4").reshape([-1] + [int(s) for s in shape.split(",")]))
    with torch.no_grad():
        out["logits"].append(model(x).ravel().tolist())
bare = os.path.join(sys.argv[2], "no-arch.npz")
np.savez(bare, **{"head.bias": np.zeros(2, dtype=np.float32)})
try:
    torch_models.load_npz(bare)
    out["no_arch_error"] = ""
except ValueError as e:
    out["no_arch_error"] = str(e)
print(json.dumps(out))`

// newTorchLogitsCase initialises arch, perturbs every bias and BatchNorm
// statistic (fresh ones are 0 and 1, which would hide a mix-up of names or of
// train and eval mode), exports it to base+".npz", writes three random inputs
// to base+".f32" and computes their logits with the Go Evaluator.
func newTorchLogitsCase(t *testing.T, arch model.Arch, seed uint64, base string) *torchLogitsCase {
	t.Helper()
	w, err := model.Init(arch, seed)
	if err != nil {
		t.Fatalf("%s: %v", arch.Kind, err)
	}
	rng := rand.New(rand.NewPCG(seed, 7))
	m := &artifacts.Model{}
	for _, p := range w.Params {
		for j := range p.Data {
			switch {
			case strings.HasSuffix(p.Name, artifacts.NumBatchesTrackedName):
				p.Data[j] = 3
			case strings.HasSuffix(p.Name, "running_var"):
				p.Data[j] = 0.5 + rng.Float32()
			case strings.HasSuffix(p.Name, "bias"), strings.HasSuffix(p.Name, "running_mean"):
				p.Data[j] = rng.Float32() - 0.5
			}
		}
		m.Tensors = append(m.Tensors, artifacts.Tensor{Name: p.Name, Shape: p.Shape, Data: p.Data, Buffer: p.Buffer})
	}
	archJSON, err := json.Marshal(arch)
	if err != nil {
		t.Fatal(err)
	}
	m.Arch = string(archJSON)
	var art, npz bytes.Buffer
	if err := artifacts.WriteModel(&art, m); err != nil {
		t.Fatalf("%s: %v", arch.Kind, err)
	}
	if err := artifacts.ExportNPZ(bytes.NewReader(art.Bytes()), &npz); err != nil {
		t.Fatalf("%s: %v", arch.Kind, err)
	}
	c := &torchLogitsCase{arch: arch, npz: base + ".npz", input: base + ".f32", n: 3}
	x := make([]float32, c.n*arch.InputSize())
	for j := range x {
		x[j] = rng.Float32()
	}
	raw, _ := binary.Append(nil, binary.LittleEndian, x)
	if err := os.WriteFile(c.npz, npz.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(c.input, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	ev, err := model.NewEvaluator(w, c.n, 1)
	if err != nil {
		t.Fatalf("%s: %v", arch.Kind, err)
	}
	c.logits = make([]float32, c.n*arch.Classes)
	if err := ev.Logits(x, c.n, c.logits); err != nil {
		t.Fatalf("%s: Go logits: %v", arch.Kind, err)
	}
	return c
}

// compareLogits checks PyTorch's logits against the Go ones.
func compareLogits(t *testing.T, torch []float64, goLogits []float32) {
	t.Helper()
	if len(torch) != len(goLogits) {
		t.Fatalf("PyTorch gave %d logits, Go %d", len(torch), len(goLogits))
	}
	scale := 0.0
	for _, v := range goLogits {
		scale = math.Max(scale, math.Abs(float64(v)))
	}
	for i, v := range goLogits {
		want := float64(v)
		if d := math.Abs(torch[i] - want); d > torchLogitsTol*(math.Abs(want)+scale) {
			t.Errorf("logit %d: PyTorch %.7g, Go %.7g (|diff| %.3g)", i, torch[i], want, d)
		}
	}
}

// shapeArg formats a shape as "C,H,W".
func shapeArg(shape []int) string {
	parts := make([]string, len(shape))
	for i, s := range shape {
		parts[i] = strconv.Itoa(s)
	}
	return strings.Join(parts, ",")
}

// stderrOf is the captured stderr of a failed exec.Cmd.Output.
func stderrOf(err error) string {
	if ee, ok := err.(*exec.ExitError); ok {
		return string(ee.Stderr)
	}
	return ""
}
