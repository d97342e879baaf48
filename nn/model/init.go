package model

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
)

// Architecture kinds accepted in Arch.Kind (the residual networks are in
// resnet.go).
const (
	KindMLP             = "mlp"
	KindCNN             = "cnn"
	batchNormMomentum   = 0.1
	initSeedStreamConst = 0x9e3779b97f4a7c15
)

// Kinds lists every architecture kind, in the order the docs give them.
func Kinds() []string {
	return []string{KindMLP, KindCNN, KindPreActResNet18, KindResNet18, KindResNet34, KindResNet50, KindWRN34_10, KindWRN28_10}
}

// InitScheme selects how Init draws a fresh model's weights.
type InitScheme string

// Initialisation schemes (the train stage's `init` parameter).
const (
	// InitPyTorch is PyTorch's module defaults: every nn.Linear and
	// nn.Conv2d weight is kaiming_uniform_(a=√5), i.e. U(−b, b) with
	// b = 1/√fan_in, and its bias (nn.Linear, and the cnn's conv biases)
	// U(−b, b) with the same b; BatchNorm weight 1, bias 0. The default.
	InitPyTorch InitScheme = "pytorch"
	// InitKaimingNormal is Kaiming-normal weights (fan_in, ReLU gain:
	// std = √(2/fan_in), torch.nn.init.kaiming_normal_ with its defaults)
	// and zero biases: sglr-pipe's initialisation before InitPyTorch became
	// the default, bit-identical for the same arch and seed.
	InitKaimingNormal InitScheme = "kaiming-normal"
	// DefaultInit is the scheme of Init and of an empty InitScheme.
	DefaultInit = InitPyTorch
)

// InitSchemes lists the accepted schemes, the default first.
func InitSchemes() []string { return []string{string(InitPyTorch), string(InitKaimingNormal)} }

// Init builds a fresh model for arch with DefaultInit weights drawn
// deterministically from seed: the same arch and seed always give the same
// bytes. See InitWith.
func Init(arch Arch, seed uint64) (*Weights, error) {
	return InitWith(arch, seed, DefaultInit)
}

// InitWith builds a fresh model for arch with weights drawn by scheme ("" is
// DefaultInit) deterministically from seed. fan_in is in_features for a
// linear weight [out,in] and in·kh·kw for a conv weight [out,in,kh,kw]; a
// bias takes its layer's. Under every scheme BatchNorm weight is 1, bias 0,
// running_mean 0, running_var 1, num_batches_tracked 0. Parameters are
// listed in the PyTorch state_dict order of the same module and drawn in
// that order. The scheme is not part of Arch: it does not change the
// network, only its starting point.
func InitWith(arch Arch, seed uint64, scheme InitScheme) (*Weights, error) {
	if scheme == "" {
		scheme = DefaultInit
	}
	if scheme != InitPyTorch && scheme != InitKaimingNormal {
		return nil, fmt.Errorf("unknown init scheme %q (want %q or %q)", scheme, InitPyTorch, InitKaimingNormal)
	}
	specs, err := paramSpecs(arch)
	if err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(seed, seed^initSeedStreamConst))
	w := &Weights{Arch: cloneArch(arch), Params: make([]*Param, len(specs))}
	for i, s := range specs {
		p := &Param{Name: s.name, Shape: slices.Clone(s.shape), Data: make([]float32, s.numel()), Buffer: s.role.isBuffer()}
		switch {
		case s.role == roleKaiming && scheme == InitKaimingNormal:
			std := math.Sqrt(2 / float64(s.fanIn()))
			for j := range p.Data {
				p.Data[j] = float32(rng.NormFloat64() * std)
			}
		case s.role == roleKaiming || (s.role == roleBias && scheme == InitPyTorch):
			// kaiming_uniform_(a=√5): gain √(2/(1+5)) times √(3/fan_in) is
			// 1/√fan_in; nn.Linear and nn.Conv2d draw their bias from the
			// same interval.
			bound := 1 / math.Sqrt(float64(s.fanIn()))
			for j := range p.Data {
				p.Data[j] = float32((2*rng.Float64() - 1) * bound)
			}
		case s.role == roleOnes, s.role == roleRunningVar:
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
	roleKaiming paramRole = iota // a linear or conv weight
	roleBias                     // a linear or conv bias: zero (kaiming-normal) or U(±1/√fan_in) (pytorch)
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
	fan   int // roleBias: the fan_in of the layer's weight
}

func (s paramSpec) numel() int {
	n := 1
	for _, d := range s.shape {
		n *= d
	}
	return n
}

// fanIn is in_features for a linear weight [out,in] and in*kh*kw for a conv
// weight [out,in,kh,kw]; a bias has its layer's.
func (s paramSpec) fanIn() int {
	if s.role == roleBias {
		return s.fan
	}
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
	}
	if _, ok := residualKinds[arch.Kind]; ok {
		return residualSpecs(arch)
	}
	return nil, fmt.Errorf("unknown architecture kind %q (want one of %s)", arch.Kind, strings.Join(Kinds(), ", "))
}

func linearSpecs(name string, in, out int) []paramSpec {
	return []paramSpec{
		{name: name + ".weight", shape: []int{out, in}, role: roleKaiming},
		{name: name + ".bias", shape: []int{out}, role: roleBias, fan: in},
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
		specs = append(specs, convSpec(name+".weight", prevC, c, 3), paramSpec{name: name + ".bias", shape: []int{c}, role: roleBias, fan: prevC * 9})
		prevC = c
	}
	prev := prevC * h * w
	for j, hw := range arch.Hidden {
		specs = append(specs, linearSpecs(fmt.Sprintf("fcs.%d", j), prev, hw)...)
		prev = hw
	}
	return append(specs, linearSpecs("head", prev, arch.Classes)...), nil
}

func cloneArch(a Arch) Arch {
	a.Input = slices.Clone(a.Input)
	a.Hidden = slices.Clone(a.Hidden)
	a.Channels = slices.Clone(a.Channels)
	return a
}
