package model

import (
	"bytes"
	"encoding/binary"
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
	for _, arch := range []Arch{tinyMLP(), tinyCNN(), tinyResNet(32)} {
		t.Run(arch.Kind, func(t *testing.T) {
			a, err := Init(arch, 42)
			if err != nil {
				t.Fatal(err)
			}
			b, err := Init(arch, 42)
			if err != nil {
				t.Fatal(err)
			}
			c, err := Init(arch, 43)
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
		})
	}
}

// TestInitLayoutMatchesPyTorch checks names, shapes, order and counts against
// the PyTorch modules' state_dicts.
func TestInitLayoutMatchesPyTorch(t *testing.T) {
	cases := []struct {
		name      string
		arch      Arch
		tensors   int
		numel     int
		wantFirst []string
		wantLast  []string
		shapes    map[string][]int
	}{
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
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
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
		})
	}
}

// TestInitStatistics checks the Kaiming-normal scale, zero biases and
// BatchNorm defaults.
func TestInitStatistics(t *testing.T) {
	w, err := Init(Arch{Kind: KindPreActResNet18, Input: []int{3, 32, 32}, Classes: 10, Width: 8}, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range w.Params {
		switch {
		case strings.HasSuffix(p.Name, "conv2.weight") && strings.HasPrefix(p.Name, "layer4"):
			fanIn := p.Shape[1] * p.Shape[2] * p.Shape[3]
			sum2 := 0.0
			for _, v := range p.Data {
				sum2 += float64(v) * float64(v)
			}
			std := math.Sqrt(sum2 / float64(len(p.Data)))
			want := math.Sqrt(2 / float64(fanIn))
			if math.Abs(std-want) > 0.05*want {
				t.Errorf("%s: std %.4f, want %.4f", p.Name, std, want)
			}
		case strings.HasSuffix(p.Name, "bn1.weight"), strings.HasSuffix(p.Name, "running_var"):
			for _, v := range p.Data {
				if v != 1 {
					t.Fatalf("%s = %g, want 1", p.Name, v)
				}
			}
		case strings.HasSuffix(p.Name, ".bias"), strings.HasSuffix(p.Name, "running_mean"), strings.HasSuffix(p.Name, "num_batches_tracked"):
			for _, v := range p.Data {
				if v != 0 {
					t.Fatalf("%s = %g, want 0", p.Name, v)
				}
			}
		}
	}
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
