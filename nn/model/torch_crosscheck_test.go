package model

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/sglr-pipe/sglr-pipe/nn/internal/vec"
	"gorgonia.org/tensor"
)

// The PyTorch cross-check: every architecture's logits, loss, input gradient,
// weight gradients and (in Train mode) BatchNorm running statistics against
// the reference modules of bench/torch_models.py, run in float64 by
// bench/crosscheck.py on the same weights and batch. It needs
// /usr/bin/python3 with torch (Debian's python3-torch) and skips otherwise.
//
// Tolerances: an array matches when every element satisfies
// |got − want| ≤ tol·(|want| + max_j |want_j|), i.e. relative to the element
// and to the array's largest magnitude (so tiny gradients of a large tensor
// are not held to a tighter standard than float32 arithmetic can give).
// tol is 1e-4 for the float32 production path and 1e-9 for the float64 path.

const (
	torchPython     = "/usr/bin/python3"
	crosscheckTol32 = 1e-4
	crosscheckTol64 = 1e-9
)

// crosscheckCase is one architecture in one BatchNorm mode.
type crosscheckCase struct {
	name string
	arch Arch
	// skipGrads32 leaves out the float32 gradient comparisons (see deep32).
	skipGrads32 bool
	mode        Mode
	batch       int
	weights     *Weights
	x           []float32
	target      []float32
	inPath      string
	outPath     string
}

func TestTorchCrosscheck(t *testing.T) {
	if out, err := exec.Command(torchPython, "-c", "import torch, numpy").CombinedOutput(); err != nil {
		t.Skipf("PyTorch cross-check skipped: %s cannot import torch and numpy (%v: %s); install python3-torch",
			torchPython, err, strings.TrimSpace(string(out)))
	}
	script, err := filepath.Abs(filepath.Join("..", "..", "bench", "crosscheck.py"))
	if err != nil {
		t.Fatal(err)
	}
	archs := []struct {
		name string
		arch Arch
		// deep32 marks the deep residual nets whose Train-mode gradients
		// are ill-conditioned in float32: PyTorch's own float32 gradients
		// of them differ from its float64 ones by up to a few hundred times
		// crosscheckTol32 (measured on resnet50 and wrn-34 at widths 2-8,
		// batch 2-8: a ReLU input within rounding of 0 flips its mask, and
		// Train-mode BatchNorm spreads that to the whole channel). Their
		// float32 Train-mode logits, loss and running statistics are still
		// checked to crosscheckTol32 and every gradient in float64 to
		// crosscheckTol64 and in float32 Eval mode.
		deep32 bool
	}{
		{"mlp", Arch{Kind: KindMLP, Input: []int{1, 5, 4}, Classes: 4, Hidden: []int{7, 5}}, false},
		{"cnn", Arch{Kind: KindCNN, Input: []int{2, 9, 8}, Classes: 3, Channels: []int{3, 4}, Hidden: []int{6}}, false},
		// 33 pixels leave a 5x5 map before avg_pool2d(4), which then reads its top-left 4x4.
		{"preact-resnet18", Arch{Kind: KindPreActResNet18, Input: []int{2, 33, 33}, Classes: 3, Width: 2}, false},
		// Width 8 gives 16 to 64 channels: the 3x3 convolutions of stages 2 to 4 run as Winograd F(2×2,3×3).
		{"preact-resnet18 w8", Arch{Kind: KindPreActResNet18, Input: []int{3, 26, 26}, Classes: 4, Width: 8}, false},
		// The standard ResNets and the WideResNets at small widths; 30 pixels
		// leave a 4x4 map before the ResNets' avg_pool2d(4), 33 a 9x9 one
		// before the WideResNets' avg_pool2d(8), which reads its top-left 8x8.
		{"resnet18 w4", Arch{Kind: KindResNet18, Input: []int{3, 30, 30}, Classes: 3, Width: 4}, false},
		{"resnet34 w2", Arch{Kind: KindResNet34, Input: []int{2, 25, 25}, Classes: 3, Width: 2}, false},
		{"resnet50 w2", Arch{Kind: KindResNet50, Input: []int{3, 32, 32}, Classes: 4, Width: 2}, true},
		{"wrn-28-10 widen 1", Arch{Kind: KindWRN28_10, Input: []int{3, 33, 33}, Classes: 3, Widen: 1}, false},
		{"wrn-34-10 widen 2", Arch{Kind: KindWRN34_10, Input: []int{2, 29, 29}, Classes: 3, Widen: 2}, true},
	}
	dir := t.TempDir()
	var cases []*crosscheckCase
	args := []string{script}
	for a, spec := range archs {
		w := crosscheckWeights(t, spec.arch, uint64(a+1))
		rng := rand.New(rand.NewPCG(uint64(a), 99))
		for _, mode := range []Mode{Eval, Train} {
			c := &crosscheckCase{name: spec.name + "/" + modeName(mode), arch: spec.arch, mode: mode, batch: 4, weights: w,
				skipGrads32: spec.deep32 && mode == Train}
			c.x = make([]float32, c.batch*spec.arch.InputSize())
			for i := range c.x {
				c.x[i] = rng.Float32()
			}
			c.target = crosscheckTargets(rng, c.batch, spec.arch.Classes)
			base := filepath.Join(dir, spec.name+"-"+modeName(mode))
			c.inPath, c.outPath = base+"-in.npz", base+"-out.npz"
			if err := writeCrosscheckInput(c); err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			cases = append(cases, c)
			args = append(args, c.inPath, c.outPath)
		}
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
			for _, dt := range []struct {
				name string
				run  func(*testing.T, *crosscheckCase, map[string][]float64)
			}{
				{"float32", crosscheckRun[float32]},
				{"float64", crosscheckRun[float64]},
			} {
				t.Run(dt.name, func(t *testing.T) { dt.run(t, c, want) })
			}
		})
	}
}

// crosscheckRun runs the case's nets with caller type T (and the graph dtype
// that matches it) and compares every output with PyTorch's.
func crosscheckRun[T vec.Float](t *testing.T, c *crosscheckCase, want map[string][]float64) {
	dtype, tol := tensor.Float32, crosscheckTol32
	var zero T
	if any(zero) == any(float64(0)) {
		dtype, tol = tensor.Float64, crosscheckTol64
	}
	x, target := convertSlice[T](c.x), convertSlice[T](c.target)
	k, b := c.arch.Classes, c.batch

	// The training net: mean loss, logits, weight gradients and (internal
	// option) the input gradient, in the case's BatchNorm mode.
	n, err := NewNet(c.weights, b, PurposeTrain, NetOptions{Mode: c.mode, Dtype: dtype, withInputGrads: true})
	if err != nil {
		t.Fatal(err)
	}
	logits := make([]T, b*k)
	loss, err := netTrainStep(n, x, nil, target, logits, 0)
	if err != nil {
		t.Fatal(err)
	}
	inputGrad := make([]T, len(x))
	copyFromValue(inputGrad, n.xGradValue())
	compareArrays(t, "logits", toFloat64s(logits), want["logits"], tol)
	compareArrays(t, "loss", []float64{loss}, want["loss"], tol)
	gradTol := tol
	if c.skipGrads32 && dtype == tensor.Float32 {
		gradTol = math.Inf(1)
		t.Logf("float32 Train-mode gradients not compared: ill-conditioned for this deep net (see deep32)")
	}
	compareArrays(t, "input_grad", toFloat64s(inputGrad), want["input_grad"], gradTol)
	// Grads and Weights hand out float32; the float64 path reads the graph's
	// own gradient values and buffers instead, so as not to round them.
	grads := make([][]float64, len(c.weights.Params))
	for i, g := range n.Grads() {
		if g != nil {
			grads[i] = toFloat64s(g)
			if dtype == tensor.Float64 {
				copyFromValue(grads[i], n.gradValue(i))
			}
		}
	}
	for i, p := range c.weights.Params {
		if p.Buffer {
			if grads[i] != nil {
				t.Errorf("buffer %s has a gradient", p.Name)
			}
			continue
		}
		w, ok := want["grad."+p.Name]
		if !ok || grads[i] == nil {
			t.Errorf("parameter %s: PyTorch gradient present %v, ours present %v", p.Name, ok, grads[i] != nil)
			continue
		}
		compareArrays(t, "grad."+p.Name, grads[i], w, gradTol)
	}
	if c.mode == Train {
		for i, p := range n.Weights().Params {
			if !p.Buffer {
				continue
			}
			got := toFloat64s(p.Data)
			if dtype == tensor.Float64 {
				copyFromDense(got, n.values[i])
			}
			compareArrays(t, "buf."+p.Name, got, want["buf."+p.Name], tol)
		}
		return
	}

	// Eval mode: the public logits and attack-gradient paths as well. The
	// attack loss is summed over the batch, PyTorch's is averaged.
	logitsNet, err := NewNet(c.weights, b, PurposeLogits, NetOptions{Dtype: dtype})
	if err != nil {
		t.Fatal(err)
	}
	clear(logits)
	if err := netLogits(logitsNet, x, logits); err != nil {
		t.Fatal(err)
	}
	compareArrays(t, "logits (logits net)", toFloat64s(logits), want["logits"], tol)
	gradNet, err := NewNet(c.weights, b, PurposeInputGrad, NetOptions{Dtype: dtype})
	if err != nil {
		t.Fatal(err)
	}
	clear(inputGrad)
	sum, err := netInputGrad(gradNet, x, target, inputGrad)
	if err != nil {
		t.Fatal(err)
	}
	mean := toFloat64s(inputGrad)
	for i := range mean {
		mean[i] /= float64(b)
	}
	compareArrays(t, "loss (input-grad net) / batch", []float64{sum / float64(b)}, want["loss"], tol)
	compareArrays(t, "input_grad (input-grad net) / batch", mean, want["input_grad"], tol)
}

// compareArrays reports the worst element of got outside the tolerance
// |got−want| ≤ tol·(|want| + max|want|).
func compareArrays(t *testing.T, name string, got, want []float64, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d values, PyTorch has %d", name, len(got), len(want))
		return
	}
	scale := 0.0
	for _, w := range want {
		scale = math.Max(scale, math.Abs(w))
	}
	worst, at := 0.0, -1
	for i := range got {
		excess := math.Abs(got[i]-want[i]) / (tol * (math.Abs(want[i]) + scale + 1e-30))
		if excess > worst || math.IsNaN(got[i]) {
			worst, at = excess, i
		}
	}
	if at >= 0 && (worst > 1 || math.IsNaN(got[at])) {
		t.Errorf("%s: element %d is %.10g, PyTorch %.10g (%.3g times the tolerance %g relative to %.3g)",
			name, at, got[at], want[at], worst, tol, scale)
	}
}

// crosscheckWeights initialises arch and then moves every bias, BatchNorm
// affine parameter and running statistic away from its initial value, so
// that neither mode tests BatchNorm near the identity; each counter starts
// at 3.
func crosscheckWeights(t *testing.T, arch Arch, seed uint64) *Weights {
	t.Helper()
	w, err := Init(arch, seed)
	if err != nil {
		t.Fatalf("init %s: %v", arch.Kind, err)
	}
	rng := rand.New(rand.NewPCG(seed, 17))
	specs, err := paramSpecs(arch)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range w.Params {
		isBN := specs[i].role == roleOnes // a BatchNorm weight (bn1, layer1.0.bn2, layer2.0.shortcut.1, ...)
		for j := range p.Data {
			switch {
			case strings.HasSuffix(p.Name, ".num_batches_tracked"):
				p.Data[j] = 3
			case strings.HasSuffix(p.Name, ".running_var"):
				p.Data[j] = float32(0.5 + rng.Float64())
			case strings.HasSuffix(p.Name, ".running_mean"), strings.HasSuffix(p.Name, ".bias"):
				p.Data[j] = float32(rng.NormFloat64() * 0.1)
			case isBN && strings.HasSuffix(p.Name, ".weight"):
				p.Data[j] = float32(1 + rng.NormFloat64()*0.2)
			}
		}
	}
	return w
}

// crosscheckTargets draws b random probability vectors over k classes.
func crosscheckTargets(rng *rand.Rand, b, k int) []float32 {
	out := make([]float32, b*k)
	for i := 0; i < b; i++ {
		row := out[i*k : (i+1)*k]
		var sum float32
		for j := range row {
			row[j] = rng.Float32() + 0.01
			sum += row[j]
		}
		for j := range row {
			row[j] /= sum
		}
	}
	return out
}

func modeName(m Mode) string {
	if m == Train {
		return "train"
	}
	return "eval"
}

func convertSlice[T vec.Float](v []float32) []T {
	out := make([]T, len(v))
	for i, x := range v {
		out[i] = T(x)
	}
	return out
}

func toFloat64s[T vec.Float](v []T) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}

// writeCrosscheckInput writes the case's IN.npz for bench/crosscheck.py:
// arch and mode as 0-d unicode arrays, the weights as w.<name> (float32; the
// BatchNorm counters int64 scalars, as PyTorch keeps them), x [B,C,H,W] and
// target [B,K].
func writeCrosscheckInput(c *crosscheckCase) error {
	arch, err := json.Marshal(c.arch)
	if err != nil {
		return err
	}
	var arrays []npzArray
	arrays = append(arrays, unicodeScalar("arch", string(arch)), unicodeScalar("mode", modeName(c.mode)))
	for _, p := range c.weights.Params {
		if strings.HasSuffix(p.Name, ".num_batches_tracked") {
			arrays = append(arrays, npzArray{name: "w." + p.Name, descr: "<i8", shape: []int{},
				data: binary.LittleEndian.AppendUint64(nil, uint64(p.Data[0]))})
			continue
		}
		arrays = append(arrays, float32Array("w."+p.Name, p.Shape, p.Data))
	}
	shape := append([]int{c.batch}, c.arch.Input...)
	arrays = append(arrays, float32Array("x", shape, c.x), float32Array("target", []int{c.batch, c.arch.Classes}, c.target))
	return writeNPZFile(c.inPath, arrays)
}

// npzArray is one array of an .npz archive: a NumPy dtype string, a shape and
// the little-endian bytes.
type npzArray struct {
	name  string
	descr string
	shape []int
	data  []byte
}

func float32Array(name string, shape []int, v []float32) npzArray {
	data := make([]byte, 0, 4*len(v))
	for _, x := range v {
		data = binary.LittleEndian.AppendUint32(data, math.Float32bits(x))
	}
	return npzArray{name: name, descr: "<f4", shape: shape, data: data}
}

func unicodeScalar(name, s string) npzArray {
	var data []byte
	n := 0
	for _, r := range s {
		data = binary.LittleEndian.AppendUint32(data, uint32(r))
		n++
	}
	return npzArray{name: name, descr: "<U" + strconv.Itoa(max(n, 1)), shape: []int{}, data: data}
}

// writeNPZFile writes arrays as an uncompressed .npz archive (NumPy 1.0 .npy
// entries in a zip).
func writeNPZFile(path string, arrays []npzArray) error {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, a := range arrays {
		f, err := zw.CreateHeader(&zip.FileHeader{Name: a.name + ".npy", Method: zip.Store})
		if err != nil {
			return err
		}
		dims := make([]string, len(a.shape))
		for i, d := range a.shape {
			dims[i] = strconv.Itoa(d) + ","
		}
		header := fmt.Sprintf("{'descr': '%s', 'fortran_order': False, 'shape': (%s), }", a.descr, strings.Join(dims, " "))
		header += strings.Repeat(" ", (64-(10+len(header)+1)%64)%64) + "\n"
		raw := append([]byte("\x93NUMPY\x01\x00"), byte(len(header)), byte(len(header)>>8))
		raw = append(append(raw, header...), a.data...)
		if _, err := f.Write(raw); err != nil {
			return err
		}
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}

var npyHeader = regexp.MustCompile(`^\{'descr': '([<|][fi][48])', 'fortran_order': False, 'shape': \(([\d, ]*)\), \}\s*$`)

// readNPZFile reads an .npz archive of little-endian float32, float64 and
// int64 arrays (what np.savez writes for crosscheck.py's outputs) as
// flattened float64 slices keyed by array name.
func readNPZFile(path string) (map[string][]float64, error) {
	zr, err := zip.OpenReader(path)
	if err != nil {
		return nil, err
	}
	defer zr.Close()
	out := map[string][]float64{}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			return nil, err
		}
		raw, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			return nil, err
		}
		if len(raw) < 10 || string(raw[:6]) != "\x93NUMPY" {
			return nil, fmt.Errorf("%s: not a .npy file", f.Name)
		}
		var hlen, start int
		switch raw[6] {
		case 1:
			hlen, start = int(binary.LittleEndian.Uint16(raw[8:])), 10
		case 2, 3:
			hlen, start = int(binary.LittleEndian.Uint32(raw[8:])), 12
		default:
			return nil, fmt.Errorf("%s: .npy version %d", f.Name, raw[6])
		}
		if start+hlen > len(raw) {
			return nil, fmt.Errorf("%s: header past the end", f.Name)
		}
		m := npyHeader.FindStringSubmatch(string(raw[start : start+hlen]))
		if m == nil {
			return nil, fmt.Errorf("%s: unsupported header %q", f.Name, raw[start:start+hlen])
		}
		count := 1
		for _, d := range strings.Split(m[2], ",") {
			if d = strings.TrimSpace(d); d != "" {
				n, _ := strconv.Atoi(d)
				count *= n
			}
		}
		data := raw[start+hlen:]
		size := int(m[1][2] - '0')
		if len(data) != count*size {
			return nil, fmt.Errorf("%s: %d data bytes for %d values of %s", f.Name, len(data), count, m[1])
		}
		values := make([]float64, count)
		for i := range values {
			cell := data[i*size:]
			switch m[1][1:] {
			case "f4":
				values[i] = float64(math.Float32frombits(binary.LittleEndian.Uint32(cell)))
			case "f8":
				values[i] = math.Float64frombits(binary.LittleEndian.Uint64(cell))
			case "i8":
				values[i] = float64(int64(binary.LittleEndian.Uint64(cell)))
			default:
				return nil, fmt.Errorf("%s: dtype %s not handled", f.Name, m[1])
			}
		}
		out[strings.TrimSuffix(f.Name, ".npy")] = values
	}
	return out, nil
}
