package model

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/sglr-pipe/sglr-pipe/nn/ops"
)

// Architecture kinds accepted in Arch.Kind.
const (
	KindMLP             = "mlp"
	KindCNN             = "cnn"
	KindPreActResNet18  = "preact-resnet18"
	defaultResNetWidth  = 64
	batchNormMomentum   = 0.1
	resNetPoolWindow    = ops.AvgPoolWindow // F.avg_pool2d(out, 4) in the reference
	resNetMaxFinalSide  = 7                 // a larger final map would give the linear layer more than 8*Width inputs
	initSeedStreamConst = 0x9e3779b97f4a7c15
)

// Init builds a fresh model for arch with weights drawn deterministically
// from seed: the same arch and seed always give the same bytes.
//
// Conv and linear weights are Kaiming-normal (fan_in, ReLU gain: std =
// sqrt(2/fan_in)), as torch.nn.init.kaiming_normal_ with its defaults; biases
// are zero (PyTorch's default is a small uniform; zero keeps runs easy to
// reason about and does not matter for training). BatchNorm weight is 1, bias
// 0, running_mean 0, running_var 1, num_batches_tracked 0. Parameters are
// listed in the PyTorch state_dict order of the same module.
func Init(arch Arch, seed uint64) (*Weights, error) {
	specs, err := paramSpecs(arch)
	if err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(seed, seed^initSeedStreamConst))
	w := &Weights{Arch: cloneArch(arch), Params: make([]*Param, len(specs))}
	for i, s := range specs {
		p := &Param{Name: s.name, Shape: slices.Clone(s.shape), Data: make([]float32, s.numel()), Buffer: s.role.isBuffer()}
		switch s.role {
		case roleKaiming:
			std := math.Sqrt(2 / float64(s.fanIn()))
			for j := range p.Data {
				p.Data[j] = float32(rng.NormFloat64() * std)
			}
		case roleOnes, roleRunningVar:
			for j := range p.Data {
				p.Data[j] = 1
			}
		}
		w.Params[i] = p
	}
	return w, nil
}

// Clone returns a deep copy of w, so that the copy can be changed (by an
// optimiser or a running-statistics update) without touching w.
func (w *Weights) Clone() *Weights {
	c := &Weights{Arch: cloneArch(w.Arch), Params: make([]*Param, len(w.Params))}
	for i, p := range w.Params {
		c.Params[i] = &Param{Name: p.Name, Shape: slices.Clone(p.Shape), Data: slices.Clone(p.Data), Buffer: p.Buffer}
	}
	return c
}

// Numel is the number of trainable scalars in w (buffers excluded), the
// figure usually quoted as a model's parameter count.
func (w *Weights) Numel() int {
	n := 0
	for _, p := range w.Params {
		if !p.Buffer {
			n += len(p.Data)
		}
	}
	return n
}

// Validate checks that w matches the parameter layout its Arch implies
// (names, shapes, lengths, buffer flags), so that a hand-built or decoded
// Weights fails with a clear error instead of a panic deep in a graph.
func (w *Weights) Validate() error {
	if w == nil {
		return fmt.Errorf("weights are nil")
	}
	specs, err := paramSpecs(w.Arch)
	if err != nil {
		return err
	}
	if len(specs) != len(w.Params) {
		return fmt.Errorf("weights for %s have %d tensors, the architecture needs %d", w.Arch.Kind, len(w.Params), len(specs))
	}
	for i, s := range specs {
		p := w.Params[i]
		if p == nil {
			return fmt.Errorf("weight tensor %d (%s) is nil", i, s.name)
		}
		if p.Name != s.name {
			return fmt.Errorf("weight tensor %d is named %q, want %q", i, p.Name, s.name)
		}
		if !slices.Equal(p.Shape, s.shape) {
			return fmt.Errorf("weight %s has shape %v, want %v", p.Name, p.Shape, s.shape)
		}
		if len(p.Data) != s.numel() {
			return fmt.Errorf("weight %s has %d values, its shape %v needs %d", p.Name, len(p.Data), p.Shape, s.numel())
		}
		if p.Buffer != s.role.isBuffer() {
			return fmt.Errorf("weight %s has Buffer=%v, want %v", p.Name, p.Buffer, s.role.isBuffer())
		}
	}
	return nil
}

// InputSize is the number of scalars in one input sample (C*H*W).
func (a Arch) InputSize() int {
	n := 1
	for _, d := range a.Input {
		n *= d
	}
	return n
}

// paramRole says how a tensor is initialised and whether it is trained.
type paramRole int

const (
	roleKaiming paramRole = iota
	roleZeros
	roleOnes
	roleRunningMean
	roleRunningVar
	roleBatchCount
)

func (r paramRole) isBuffer() bool {
	return r == roleRunningMean || r == roleRunningVar || r == roleBatchCount
}

// paramSpec describes one state_dict entry.
type paramSpec struct {
	name  string
	shape []int
	role  paramRole
}

func (s paramSpec) numel() int {
	n := 1
	for _, d := range s.shape {
		n *= d
	}
	return n
}

// fanIn is in_features for a linear weight [out,in] and in*kh*kw for a conv
// weight [out,in,kh,kw].
func (s paramSpec) fanIn() int {
	n := 1
	for _, d := range s.shape[1:] {
		n *= d
	}
	return n
}

// paramSpecs validates arch and lists its state_dict entries in order.
func paramSpecs(arch Arch) ([]paramSpec, error) {
	if arch.Classes < 2 {
		return nil, fmt.Errorf("arch %q: classes must be at least 2, got %d", arch.Kind, arch.Classes)
	}
	if len(arch.Input) != 3 {
		return nil, fmt.Errorf("arch %q: input must be a per-sample shape C,H,W, got %v", arch.Kind, arch.Input)
	}
	for _, d := range arch.Input {
		if d < 1 {
			return nil, fmt.Errorf("arch %q: input dimensions must be positive, got %v", arch.Kind, arch.Input)
		}
	}
	switch arch.Kind {
	case KindMLP:
		return mlpSpecs(arch)
	case KindCNN:
		return cnnSpecs(arch)
	case KindPreActResNet18:
		return resNetSpecs(arch)
	default:
		return nil, fmt.Errorf("unknown architecture kind %q (want %q, %q or %q)", arch.Kind, KindMLP, KindCNN, KindPreActResNet18)
	}
}

func linearSpecs(name string, in, out int) []paramSpec {
	return []paramSpec{
		{name: name + ".weight", shape: []int{out, in}, role: roleKaiming},
		{name: name + ".bias", shape: []int{out}, role: roleZeros},
	}
}

func batchNormSpecs(name string, ch int) []paramSpec {
	return []paramSpec{
		{name: name + ".weight", shape: []int{ch}, role: roleOnes},
		{name: name + ".bias", shape: []int{ch}, role: roleZeros},
		{name: name + ".running_mean", shape: []int{ch}, role: roleRunningMean},
		{name: name + ".running_var", shape: []int{ch}, role: roleRunningVar},
		{name: name + ".num_batches_tracked", shape: []int{}, role: roleBatchCount},
	}
}

func convSpec(name string, in, out, k int) paramSpec {
	return paramSpec{name: name, shape: []int{out, in, k, k}, role: roleKaiming}
}

func checkWidths(arch Arch, field string, widths []int) error {
	for i, h := range widths {
		if h < 1 {
			return fmt.Errorf("arch %q: %s[%d] must be positive, got %d", arch.Kind, field, i, h)
		}
	}
	return nil
}

func mlpSpecs(arch Arch) ([]paramSpec, error) {
	if err := checkWidths(arch, "hidden", arch.Hidden); err != nil {
		return nil, err
	}
	var specs []paramSpec
	prev := arch.InputSize()
	for i, h := range arch.Hidden {
		specs = append(specs, linearSpecs(fmt.Sprintf("layers.%d", i), prev, h)...)
		prev = h
	}
	return append(specs, linearSpecs("head", prev, arch.Classes)...), nil
}

func cnnSpecs(arch Arch) ([]paramSpec, error) {
	if len(arch.Channels) == 0 {
		return nil, fmt.Errorf("arch %q: channels must list at least one conv block", arch.Kind)
	}
	if err := checkWidths(arch, "channels", arch.Channels); err != nil {
		return nil, err
	}
	if err := checkWidths(arch, "hidden", arch.Hidden); err != nil {
		return nil, err
	}
	var specs []paramSpec
	prevC, h, w := arch.Input[0], arch.Input[1], arch.Input[2]
	for i, c := range arch.Channels {
		h, w = h/2, w/2
		if h < 1 || w < 1 {
			return nil, fmt.Errorf("arch %q: input %v is too small for %d conv blocks (each halves H and W)", arch.Kind, arch.Input, len(arch.Channels))
		}
		name := fmt.Sprintf("convs.%d", i)
		specs = append(specs, convSpec(name+".weight", prevC, c, 3), paramSpec{name: name + ".bias", shape: []int{c}, role: roleZeros})
		prevC = c
	}
	prev := prevC * h * w
	for j, hw := range arch.Hidden {
		specs = append(specs, linearSpecs(fmt.Sprintf("fcs.%d", j), prev, hw)...)
		prev = hw
	}
	return append(specs, linearSpecs("head", prev, arch.Classes)...), nil
}

// resNetStage is one of layer1..layer4.
type resNetStage struct {
	planes, stride int
}

func resNetStages(width int) []resNetStage {
	return []resNetStage{{width, 1}, {2 * width, 2}, {4 * width, 2}, {8 * width, 2}}
}

// resNetWidth is Arch.Width with the reference default of 64.
func resNetWidth(arch Arch) int {
	if arch.Width == 0 {
		return defaultResNetWidth
	}
	return arch.Width
}

// resNetFinalSide is the spatial size after layer4 (three stride-2 stages).
func resNetFinalSide(side int) int {
	for range 3 {
		side = (side-1)/2 + 1
	}
	return side
}

func resNetSpecs(arch Arch) ([]paramSpec, error) {
	width := resNetWidth(arch)
	if width < 1 {
		return nil, fmt.Errorf("arch %q: width must be positive, got %d", arch.Kind, arch.Width)
	}
	for _, side := range arch.Input[1:] {
		f := resNetFinalSide(side)
		if f < resNetPoolWindow || f > resNetMaxFinalSide {
			return nil, fmt.Errorf("arch %q: input %v gives a %dx%d map before avg_pool2d(4); it must be 4 to 7 (input sides 25 to 56)",
				arch.Kind, arch.Input, resNetFinalSide(arch.Input[1]), resNetFinalSide(arch.Input[2]))
		}
	}
	specs := []paramSpec{convSpec("conv1.weight", arch.Input[0], width, 3)}
	in := width
	for l, st := range resNetStages(width) {
		for b := range 2 {
			stride := st.stride
			if b == 1 {
				stride = 1
			}
			name := fmt.Sprintf("layer%d.%d", l+1, b)
			specs = append(specs, batchNormSpecs(name+".bn1", in)...)
			specs = append(specs, convSpec(name+".conv1.weight", in, st.planes, 3))
			specs = append(specs, batchNormSpecs(name+".bn2", st.planes)...)
			specs = append(specs, convSpec(name+".conv2.weight", st.planes, st.planes, 3))
			if stride != 1 || in != st.planes {
				specs = append(specs, convSpec(name+".shortcut.0.weight", in, st.planes, 1))
			}
			in = st.planes
		}
	}
	specs = append(specs, batchNormSpecs("bn", in)...)
	return append(specs, linearSpecs("linear", in, arch.Classes)...), nil
}

func cloneArch(a Arch) Arch {
	a.Input = slices.Clone(a.Input)
	a.Hidden = slices.Clone(a.Hidden)
	a.Channels = slices.Clone(a.Channels)
	return a
}
