package model

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
	"strings"
	"testing"
)

func weightBytes(w *Weights) []byte {
	var buf bytes.Buffer
	for _, p := range w.Params {
		buf.WriteString(p.Name)
		_ = binary.Write(&buf, binary.LittleEndian, p.Data)
	}
	return buf.Bytes()
}

func TestInitIsDeterministic(t *testing.T) {
	archs := []Arch{tinyMLP(), tinyCNN(), tinyResNet(32)}
	for _, kind := range []string{KindResNet18, KindResNet50, KindWRN28_10} {
		archs = append(archs, tinyResidual(kind, 32))
	}
	for _, scheme := range []InitScheme{InitPyTorch, InitKaimingNormal} {
		for _, arch := range archs {
			t.Run(string(scheme)+"/"+arch.Kind, func(t *testing.T) { checkInitDeterministic(t, arch, scheme) })
		}
	}
}

func checkInitDeterministic(t *testing.T, arch Arch, scheme InitScheme) {
	a, err := InitWith(arch, 42, scheme)
	if err != nil {
		t.Fatal(err)
	}
	b, err := InitWith(arch, 42, scheme)
	if err != nil {
		t.Fatal(err)
	}
	c, err := InitWith(arch, 43, scheme)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(weightBytes(a), weightBytes(b)) {
		t.Error("same seed gave different weights")
	}
	if bytes.Equal(weightBytes(a), weightBytes(c)) {
		t.Error("different seeds gave identical weights")
	}
	if !bytes.Equal(weightBytes(a.Clone()), weightBytes(a)) {
		t.Error("clone differs from original")
	}
}

// TestInitLayoutMatchesPyTorch checks names, shapes, order and counts against
// the PyTorch modules' state_dicts.
func TestInitLayoutMatchesPyTorch(t *testing.T) {
	for _, tc := range layoutCases() {
		t.Run(tc.name, func(t *testing.T) { checkLayout(t, tc) })
	}
}

// layoutCase is the expected state_dict layout of one architecture.
type layoutCase struct {
	name      string
	arch      Arch
	tensors   int
	numel     int
	wantFirst []string
	wantLast  []string
	shapes    map[string][]int
}

func layoutCases() []layoutCase {
	return []layoutCase{
		{
			name: "mlp", arch: Arch{Kind: KindMLP, Input: []int{1, 28, 28}, Classes: 10, Hidden: []int{256, 128}},
			tensors: 6, numel: 784*256 + 256 + 256*128 + 128 + 128*10 + 10,
			wantFirst: []string{"layers.0.weight", "layers.0.bias", "layers.1.weight"},
			wantLast:  []string{"head.weight", "head.bias"},
			shapes:    map[string][]int{"layers.0.weight": {256, 784}, "head.weight": {10, 128}},
		},
		{
			name: "cnn", arch: Arch{Kind: KindCNN, Input: []int{1, 28, 28}, Classes: 10, Channels: []int{16, 32}, Hidden: []int{64}},
			tensors: 8, numel: 16*9 + 16 + 32*16*9 + 32 + 32*7*7*64 + 64 + 64*10 + 10,
			wantFirst: []string{"convs.0.weight", "convs.0.bias", "convs.1.weight", "convs.1.bias", "fcs.0.weight"},
			wantLast:  []string{"head.weight", "head.bias"},
			shapes:    map[string][]int{"convs.1.weight": {32, 16, 3, 3}, "fcs.0.weight": {64, 1568}},
		},
		{
			// PreActResNet18 on CIFAR-10 without the final bn has 11,171,146
			// trainable parameters (kuangliu); the reference adds bn (2*512).
			name: "preact-resnet18", arch: Arch{Kind: KindPreActResNet18, Input: []int{3, 32, 32}, Classes: 10},
			tensors: 1 + 8*12 + 3 + 5 + 2, numel: 11171146 + 2*512,
			wantFirst: []string{"conv1.weight", "layer1.0.bn1.weight", "layer1.0.bn1.bias", "layer1.0.bn1.running_mean",
				"layer1.0.bn1.running_var", "layer1.0.bn1.num_batches_tracked", "layer1.0.conv1.weight", "layer1.0.bn2.weight"},
			wantLast: []string{"bn.running_var", "bn.num_batches_tracked", "linear.weight", "linear.bias"},
			shapes: map[string][]int{"layer2.0.shortcut.0.weight": {128, 64, 1, 1}, "layer2.0.conv1.weight": {128, 64, 3, 3},
				"bn.num_batches_tracked": {}, "linear.weight": {10, 512}},
		},
		{
			// kuangliu/pytorch-cifar ResNet18: 11,173,962 parameters.
			name: "resnet18", arch: Arch{Kind: KindResNet18, Input: []int{3, 32, 32}, Classes: 10},
			tensors: 122, numel: 11173962,
			wantFirst: []string{"conv1.weight", "bn1.weight", "bn1.bias", "bn1.running_mean", "bn1.running_var",
				"bn1.num_batches_tracked", "layer1.0.conv1.weight", "layer1.0.bn1.weight"},
			wantLast: []string{"layer4.1.bn2.num_batches_tracked", "linear.weight", "linear.bias"},
			shapes: map[string][]int{"layer2.0.shortcut.0.weight": {128, 64, 1, 1}, "layer2.0.shortcut.1.running_var": {128},
				"linear.weight": {10, 512}},
		},
		{
			name: "resnet34", arch: Arch{Kind: KindResNet34, Input: []int{3, 32, 32}, Classes: 10},
			tensors: 218, numel: 21282122,
			wantLast: []string{"layer4.2.bn2.num_batches_tracked", "linear.weight", "linear.bias"},
			shapes:   map[string][]int{"layer3.5.conv2.weight": {256, 256, 3, 3}},
		},
		{
			name: "resnet50", arch: Arch{Kind: KindResNet50, Input: []int{3, 32, 32}, Classes: 10},
			tensors: 320, numel: 23520842,
			wantFirst: []string{"conv1.weight", "bn1.weight", "bn1.bias", "bn1.running_mean", "bn1.running_var",
				"bn1.num_batches_tracked", "layer1.0.conv1.weight", "layer1.0.bn1.weight"},
			wantLast: []string{"layer4.2.bn3.num_batches_tracked", "linear.weight", "linear.bias"},
			shapes: map[string][]int{"layer1.0.conv1.weight": {64, 64, 1, 1}, "layer1.0.conv3.weight": {256, 64, 1, 1},
				"layer1.0.shortcut.0.weight": {256, 64, 1, 1}, "layer2.0.conv2.weight": {128, 128, 3, 3}, "linear.weight": {10, 2048}},
		},
		{
			// TRADES' WRN-34-10 without its unused sub_block1: 46,160,474.
			name: "wrn-34-10", arch: Arch{Kind: KindWRN34_10, Input: []int{3, 32, 32}, Classes: 10},
			tensors: 191, numel: 46160474,
			wantFirst: []string{"conv1.weight", "block1.layer.0.bn1.weight", "block1.layer.0.bn1.bias"},
			wantLast:  []string{"bn1.running_var", "bn1.num_batches_tracked", "fc.weight", "fc.bias"},
			shapes: map[string][]int{"conv1.weight": {16, 3, 3, 3}, "block1.layer.0.convShortcut.weight": {160, 16, 1, 1},
				"block2.layer.4.conv2.weight": {320, 320, 3, 3}, "fc.weight": {10, 640}},
		},
		{
			name: "wrn-28-10", arch: Arch{Kind: KindWRN28_10, Input: []int{3, 32, 32}, Classes: 10},
			tensors: 155, numel: 36479194,
			wantLast: []string{"block3.layer.3.conv2.weight", "bn1.weight", "bn1.bias", "bn1.running_mean", "bn1.running_var",
				"bn1.num_batches_tracked", "fc.weight", "fc.bias"},
		},
	}
}

func checkLayout(t *testing.T, tc layoutCase) {
	w, err := Init(tc.arch, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(w.Params) != tc.tensors {
		t.Errorf("%d tensors, want %d", len(w.Params), tc.tensors)
	}
	if w.Numel() != tc.numel {
		t.Errorf("Numel = %d, want %d", w.Numel(), tc.numel)
	}
	for i, name := range tc.wantFirst {
		if w.Params[i].Name != name {
			t.Errorf("param %d = %s, want %s", i, w.Params[i].Name, name)
		}
	}
	for i, name := range tc.wantLast {
		j := len(w.Params) - len(tc.wantLast) + i
		if w.Params[j].Name != name {
			t.Errorf("param %d = %s, want %s", j, w.Params[j].Name, name)
		}
	}
	byName := map[string]*Param{}
	for _, p := range w.Params {
		byName[p.Name] = p
		if p.Buffer != (strings.HasSuffix(p.Name, "running_mean") || strings.HasSuffix(p.Name, "running_var") || strings.HasSuffix(p.Name, "num_batches_tracked")) {
			t.Errorf("%s: Buffer = %v", p.Name, p.Buffer)
		}
	}
	for name, shape := range tc.shapes {
		p, ok := byName[name]
		if !ok {
			t.Errorf("missing %s", name)
			continue
		}
		if len(p.Shape) != len(shape) {
			t.Errorf("%s shape %v, want %v", name, p.Shape, shape)
			continue
		}
		for i := range shape {
			if p.Shape[i] != shape[i] {
				t.Errorf("%s shape %v, want %v", name, p.Shape, shape)
			}
		}
	}
	if err := w.Validate(); err != nil {
		t.Error(err)
	}
}

// TestInitKaimingNormalIsUnchanged pins InitKaimingNormal to the bytes the
// initialisation gave before InitPyTorch became the default (SHA-256 of
// every tensor's name and little-endian float32 data, seed 7), so old runs
// can be reproduced with init: kaiming-normal.
func TestInitKaimingNormalIsUnchanged(t *testing.T) {
	cases := []struct {
		arch Arch
		want string
	}{
		{Arch{Kind: KindMLP, Input: []int{1, 28, 28}, Classes: 10, Hidden: []int{64, 32}},
			"ee34b9b4aa493103af6217c358116cefc53d77665423bbd77a92f1e184318470"},
		{Arch{Kind: KindCNN, Input: []int{1, 28, 28}, Classes: 10, Channels: []int{8, 16}, Hidden: []int{32}},
			"e9d160f9135b396db6ed6126ee2c484e3b15ee033cabc270776eea5b0feab560"},
		{Arch{Kind: KindPreActResNet18, Input: []int{3, 32, 32}, Classes: 10, Width: 4},
			"852aea0c56e913bed6a2baa3318715ba398e2580036c94b2119e8ac8e779a730"},
	}
	for _, tc := range cases {
		w, err := InitWith(tc.arch, 7, InitKaimingNormal)
		if err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprintf("%x", sha256.Sum256(weightBytes(w))); got != tc.want {
			t.Errorf("%s: kaiming-normal init digest %s, want %s (the pre-pytorch-default bytes)", tc.arch.Kind, got, tc.want)
		}
		def, err := Init(tc.arch, 7)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Equal(weightBytes(def), weightBytes(w)) {
			t.Errorf("%s: Init (default %s) gave the kaiming-normal bytes", tc.arch.Kind, DefaultInit)
		}
	}
	if _, err := InitWith(tinyMLP(), 0, "xavier"); err == nil || !strings.Contains(err.Error(), "unknown init scheme") {
		t.Errorf("InitWith(xavier): error %v", err)
	}
	a, _ := InitWith(tinyCNN(), 3, "")
	b, _ := InitWith(tinyCNN(), 3, InitPyTorch)
	if !bytes.Equal(weightBytes(a), weightBytes(b)) {
		t.Error(`InitWith(scheme "") differs from InitPyTorch`)
	}
}

// initStatsArchs cover every parameter kind: linear weights and biases
// (mlp, cnn heads), conv weights with and without bias (cnn) of 3x3 and 1x1
// kernels (resnet50's bottlenecks and shortcuts), and BatchNorm.
func initStatsArchs() []Arch {
	return []Arch{
		{Kind: KindMLP, Input: []int{1, 28, 28}, Classes: 10, Hidden: []int{256, 64}},
		{Kind: KindCNN, Input: []int{3, 32, 32}, Classes: 10, Channels: []int{32, 64}, Hidden: []int{128}},
		{Kind: KindResNet50, Input: []int{3, 32, 32}, Classes: 10, Width: 16},
		{Kind: KindWRN28_10, Input: []int{3, 32, 32}, Classes: 10, Widen: 2},
	}
}

// normalisedInit groups every value of a freshly initialised model by
// parameter kind, divided by its expected scale: the PyTorch bound
// 1/sqrt(fan_in) or the Kaiming-normal std sqrt(2/fan_in). fan_in is
// computed here from the shapes: in for a linear weight [out,in],
// in*kh*kw for a conv weight [out,in,kh,kw], and a bias takes that of the
// weight before it.
func normalisedInit(t *testing.T, w *Weights, scheme InitScheme) (groups map[string][]float64, fans map[string]int) {
	t.Helper()
	groups, fans = map[string][]float64{}, map[string]int{}
	fan := 0
	for _, p := range w.Params {
		kind := ""
		switch {
		case strings.Contains(p.Name, "bn") || strings.Contains(p.Name, "shortcut.1"):
			kind = "batchnorm." + p.Name[strings.LastIndex(p.Name, ".")+1:]
		case strings.HasSuffix(p.Name, ".weight") && len(p.Shape) == 2:
			kind, fan = "linear.weight", p.Shape[1]
		case strings.HasSuffix(p.Name, ".weight") && len(p.Shape) == 4:
			kind, fan = fmt.Sprintf("conv%dx%d.weight", p.Shape[2], p.Shape[3]), p.Shape[1]*p.Shape[2]*p.Shape[3]
		case strings.HasSuffix(p.Name, ".bias"):
			kind = "bias"
		default:
			t.Fatalf("unexpected tensor %s", p.Name)
		}
		fans[p.Name] = fan
		scale := 1 / math.Sqrt(float64(fan))
		if scheme == InitKaimingNormal {
			scale = math.Sqrt(2 / float64(fan))
		}
		for _, v := range p.Data {
			if strings.HasPrefix(kind, "batchnorm.") {
				groups[kind] = append(groups[kind], float64(v))
			} else {
				groups[kind] = append(groups[kind], float64(v)/scale)
			}
		}
		if kind != "bias" && !strings.HasPrefix(kind, "batchnorm.") && scheme == InitPyTorch {
			// Per tensor too: every |value| within its float32 bound.
			bound := float32(1 / math.Sqrt(float64(fan)))
			for _, v := range p.Data {
				if v > bound || v < -bound {
					t.Fatalf("%s: %g outside ±%g (fan_in %d)", p.Name, v, bound, fan)
				}
			}
		}
	}
	return groups, fans
}

// TestInitPyTorchDistribution checks InitPyTorch against U(−1/√fan_in,
// 1/√fan_in) for every weight and bias kind (bounds, mean, variance, and
// that the maximum reaches the bound), and BatchNorm's constants. The
// tolerances are six standard errors.
func TestInitPyTorchDistribution(t *testing.T) {
	for _, arch := range initStatsArchs() {
		w, err := Init(arch, 11)
		if err != nil {
			t.Fatal(err)
		}
		groups, _ := normalisedInit(t, w, InitPyTorch)
		for kind, vals := range groups {
			n := float64(len(vals))
			if strings.HasPrefix(kind, "batchnorm.") {
				checkConstant(t, arch.Kind+" "+kind, vals)
				continue
			}
			mean, sq, maxAbs := moments(vals)
			// U(−1,1): mean 0 (sd 1/√(3n)), E x² = 1/3 (sd √(4/45)/√n).
			if math.Abs(mean) > 6/math.Sqrt(3*n) {
				t.Errorf("%s %s: mean %.4g over %d values, want 0 ± %.3g", arch.Kind, kind, mean, len(vals), 6/math.Sqrt(3*n))
			}
			if math.Abs(sq-1.0/3) > 6*math.Sqrt(4.0/45)/math.Sqrt(n) {
				t.Errorf("%s %s: mean square %.4g, want 1/3 ± %.3g", arch.Kind, kind, sq, 6*math.Sqrt(4.0/45)/math.Sqrt(n))
			}
			if maxAbs > 1+1e-6 || maxAbs < 1-20/n {
				t.Errorf("%s %s: max |value|/bound %.6g over %d values, want just below 1", arch.Kind, kind, maxAbs, len(vals))
			}
		}
		for _, kind := range []string{"linear.weight", "bias", "conv3x3.weight", "conv1x1.weight", "batchnorm.weight"} {
			want := kind == "linear.weight" || kind == "bias" || arch.Kind != KindMLP && kind == "conv3x3.weight" ||
				arch.Kind != KindMLP && arch.Kind != KindCNN
			if _, ok := groups[kind]; ok != want {
				t.Errorf("%s: %s tensors present %v, want %v", arch.Kind, kind, ok, want)
			}
		}
	}
}

// TestInitKaimingNormalDistribution checks InitKaimingNormal: weights
// N(0, 2/fan_in), biases zero, BatchNorm's constants.
func TestInitKaimingNormalDistribution(t *testing.T) {
	for _, arch := range initStatsArchs() {
		w, err := InitWith(arch, 11, InitKaimingNormal)
		if err != nil {
			t.Fatal(err)
		}
		groups, _ := normalisedInit(t, w, InitKaimingNormal)
		for kind, vals := range groups {
			if strings.HasPrefix(kind, "batchnorm.") {
				checkConstant(t, arch.Kind+" "+kind, vals)
				continue
			}
			if kind == "bias" {
				for _, v := range vals {
					if v != 0 {
						t.Fatalf("%s: bias %g, want 0", arch.Kind, v)
					}
				}
				continue
			}
			n := float64(len(vals))
			mean, sq, _ := moments(vals)
			if math.Abs(mean) > 6/math.Sqrt(n) || math.Abs(sq-1) > 6*math.Sqrt(2/n) {
				t.Errorf("%s %s: mean %.4g, mean square %.4g of value/std over %d values, want 0 and 1", arch.Kind, kind, mean, sq, len(vals))
			}
		}
	}
}

// checkConstant checks BatchNorm's initial values: weight and running_var
// 1, bias, running_mean and num_batches_tracked 0.
func checkConstant(t *testing.T, what string, vals []float64) {
	t.Helper()
	want := 0.0
	if strings.HasSuffix(what, ".weight") || strings.HasSuffix(what, ".running_var") {
		want = 1
	}
	for _, v := range vals {
		if v != want {
			t.Fatalf("%s = %g, want %g", what, v, want)
		}
	}
}

func moments(vals []float64) (mean, meanSquare, maxAbs float64) {
	for _, v := range vals {
		mean += v
		meanSquare += v * v
		maxAbs = math.Max(maxAbs, math.Abs(v))
	}
	return mean / float64(len(vals)), meanSquare / float64(len(vals)), maxAbs
}

func TestInitRejectsBadArch(t *testing.T) {
	cases := []struct {
		name string
		arch Arch
		want string
	}{
		{"unknown kind", Arch{Kind: "vit", Input: []int{1, 28, 28}, Classes: 10}, "unknown architecture"},
		{"one class", Arch{Kind: KindMLP, Input: []int{1, 28, 28}, Classes: 1}, "classes"},
		{"flat input", Arch{Kind: KindMLP, Input: []int{784}, Classes: 10}, "C,H,W"},
		{"zero dim", Arch{Kind: KindMLP, Input: []int{1, 0, 28}, Classes: 10}, "positive"},
		{"negative hidden", Arch{Kind: KindMLP, Input: []int{1, 28, 28}, Classes: 10, Hidden: []int{-3}}, "hidden[0]"},
		{"cnn without convs", Arch{Kind: KindCNN, Input: []int{1, 28, 28}, Classes: 10}, "channels"},
		{"cnn too deep", Arch{Kind: KindCNN, Input: []int{1, 4, 4}, Classes: 10, Channels: []int{2, 2, 2}}, "too small"},
		{"resnet input too small", Arch{Kind: KindPreActResNet18, Input: []int{3, 16, 16}, Classes: 10}, "4 to 7"},
		{"resnet input too large", Arch{Kind: KindPreActResNet18, Input: []int{3, 64, 64}, Classes: 10}, "4 to 7"},
		{"resnet negative width", Arch{Kind: KindPreActResNet18, Input: []int{3, 32, 32}, Classes: 10, Width: -1}, "width"},
		{"resnet18 input too small", Arch{Kind: KindResNet18, Input: []int{3, 24, 32}, Classes: 10}, "input sides 25 to 56"},
		{"resnet50 with widen", Arch{Kind: KindResNet50, Input: []int{3, 32, 32}, Classes: 10, Widen: 2}, "widen"},
		{"wrn on 28x28", Arch{Kind: KindWRN34_10, Input: []int{1, 28, 28}, Classes: 10}, "it must be 8 to 15 (input sides 29 to 60)"},
		{"wrn with width", Arch{Kind: KindWRN28_10, Input: []int{3, 32, 32}, Classes: 10, Width: 8}, "widen"},
		{"wrn negative widen", Arch{Kind: KindWRN28_10, Input: []int{3, 32, 32}, Classes: 10, Widen: -1}, "widen must be positive"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Init(tc.arch, 0)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestValidateRejectsMismatchedWeights(t *testing.T) {
	base, err := Init(tinyMLP(), 0)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		mutate func(w *Weights)
		want   string
	}{
		{"missing tensor", func(w *Weights) { w.Params = w.Params[:len(w.Params)-1] }, "have 5 tensors, the architecture needs 6"},
		{"renamed", func(w *Weights) { w.Params[0].Name = "fc.weight" }, `weight tensor 0 is named "fc.weight", want "layers.0.weight"`},
		{"short data", func(w *Weights) { w.Params[1].Data = w.Params[1].Data[:1] }, "weight layers.0.bias has 1 values"},
		{"wrong shape", func(w *Weights) { w.Params[0].Shape = []int{1, 2} }, "weight layers.0.weight has shape [1 2]"},
		{"buffer flag", func(w *Weights) { w.Params[0].Buffer = true }, "has Buffer=true, want false"},
		{"nil param", func(w *Weights) { w.Params[2] = nil }, "weight tensor 2 (layers.1.weight) is nil"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := base.Clone()
			tc.mutate(w)
			if err := w.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}
