package model

import (
	"fmt"

	"github.com/sglr-pipe/sglr-pipe/nn/ops"
)

// The residual networks, each named and laid out as its PyTorch reference
// (bench/torch_models.py):
//
//   - preact-resnet18: PreActResNet18 of the robust-overfitting reference
//     (Rice et al. 2020): pre-activation blocks, final bn, linear.
//   - resnet18, resnet34, resnet50: the standard CIFAR ResNets of
//     kuangliu/pytorch-cifar (as used by the robust-overfitting and SGLR
//     code): conv1-bn1-relu stem, BasicBlock (resnet18, resnet34) or
//     Bottleneck with expansion 4 (resnet50), shortcut conv1x1+bn when the
//     shape changes, avg_pool2d(4), linear.
//   - wrn-34-10, wrn-28-10: the WideResNet of the TRADES and
//     robust-overfitting code: 16-channel stem, three groups of
//     (depth−4)/6 pre-activation blocks of 16k, 32k and 64k channels (k the
//     widen factor, 10), dropRate 0, bn1-relu, avg_pool2d(8), fc. The
//     reference module also builds a sub_block1 that its forward pass never
//     calls; it is left out (load a reference checkpoint without its
//     sub_block1.* entries).
//
// One description, residualDesign, drives both the state_dict layout
// (residualSpecs) and the forward pass (layers_residual.go).

// Residual architecture kinds accepted in Arch.Kind.
const (
	KindPreActResNet18 = "preact-resnet18"
	KindResNet18       = "resnet18"
	KindResNet34       = "resnet34"
	KindResNet50       = "resnet50"
	KindWRN34_10       = "wrn-34-10"
	KindWRN28_10       = "wrn-28-10"

	defaultResNetWidth = 64 // channels of a ResNet's first stage
	defaultWRNWiden    = 10 // widen factor of wrn-34-10 and wrn-28-10
	wrnStemChannels    = 16
	resNetPoolWindow   = ops.AvgPoolWindow // F.avg_pool2d(out, 4) in the ResNet references
	wrnPoolWindow      = 8                 // F.avg_pool2d(out, 8) in the WideResNet reference
)

// blockKind is the residual block of a network.
type blockKind int

const (
	// blockPreAct is PreActBlock (and the WideResNet's BasicBlock, the same
	// computation): out = relu(bn1(x)); sc = shortcut(out) or x;
	// out = conv2(relu(bn2(conv1(out)))); return out + sc.
	blockPreAct blockKind = iota
	// blockBasic is BasicBlock: out = relu(bn1(conv1(x)));
	// out = bn2(conv2(out)); return relu(out + shortcut(x)).
	blockBasic
	// blockBottleneck is Bottleneck: 1x1, 3x3 (with the stride) and 1x1
	// (to 4·planes) convolutions, each followed by its bn, relu between
	// them; return relu(out + shortcut(x)).
	blockBottleneck
)

// residualFamily is what an architecture kind fixes.
type residualFamily struct {
	block  blockKind
	blocks []int // blocks per stage
	wide   bool  // a WideResNet (three stages, widen factor) rather than a ResNet (four, width)
}

var residualKinds = map[string]residualFamily{
	KindPreActResNet18: {block: blockPreAct, blocks: []int{2, 2, 2, 2}},
	KindResNet18:       {block: blockBasic, blocks: []int{2, 2, 2, 2}},
	KindResNet34:       {block: blockBasic, blocks: []int{3, 4, 6, 3}},
	KindResNet50:       {block: blockBottleneck, blocks: []int{3, 4, 6, 3}},
	KindWRN34_10:       {block: blockPreAct, blocks: []int{5, 5, 5}, wide: true},
	KindWRN28_10:       {block: blockPreAct, blocks: []int{4, 4, 4}, wide: true},
}

// residualStage is one group of blocks (layer1..layer4, block1..block3).
type residualStage struct {
	planes, stride, blocks int
}

// residualDesign is a residual network, complete.
type residualDesign struct {
	block     blockKind
	expansion int    // out channels of a block = expansion·planes
	stem      int    // channels of conv1
	stemBN    string // the stem's bn (conv1-bn1-relu), "" for none
	stages    []residualStage
	wide      bool   // block names block<s>.layer.<b> instead of layer<s>.<b>
	shortcut  string // the shortcut conv: "shortcut.0" or "convShortcut"
	// shortcutBN follows the shortcut conv in the post-activation blocks.
	shortcutBN string
	finalBN    string // bn-relu before the pooling, "" for none
	head       string // the linear classifier
	pool       int    // F.avg_pool2d window before the head
}

// residualBlock is one block of a design, in forward order.
type residualBlock struct {
	name                    string // e.g. "layer2.0", "block1.layer.3"
	in, planes, out, stride int
	shortcut                bool // a projection shortcut (stride or channels change)
}

// convUnit is one convolution of a block's main path (padding k/2).
type convUnit struct {
	in, out, k, stride int
}

// residualDesignOf checks arch (a residual kind) and describes it.
func residualDesignOf(arch Arch) (residualDesign, error) {
	fam, ok := residualKinds[arch.Kind]
	if !ok {
		return residualDesign{}, fmt.Errorf("arch %q is not a residual network", arch.Kind)
	}
	d := residualDesign{block: fam.block, expansion: 1, shortcut: "shortcut.0", head: "linear", pool: resNetPoolWindow}
	if fam.wide {
		if arch.Width != 0 {
			return d, fmt.Errorf("arch %q: width is not used by a WideResNet (set widen, the widen factor)", arch.Kind)
		}
		k := arch.Widen
		if k == 0 {
			k = defaultWRNWiden
		}
		if k < 1 {
			return d, fmt.Errorf("arch %q: widen must be positive, got %d", arch.Kind, arch.Widen)
		}
		d.stem, d.wide, d.shortcut, d.finalBN, d.head, d.pool = wrnStemChannels, true, "convShortcut", "bn1", "fc", wrnPoolWindow
		for s, n := range fam.blocks {
			d.stages = append(d.stages, residualStage{planes: (wrnStemChannels << s) * k, stride: min(s+1, 2), blocks: n})
		}
	} else {
		if arch.Widen != 0 {
			return d, fmt.Errorf("arch %q: widen is used by the WideResNets only (set width)", arch.Kind)
		}
		w := arch.Width
		if w == 0 {
			w = defaultResNetWidth
		}
		if w < 1 {
			return d, fmt.Errorf("arch %q: width must be positive, got %d", arch.Kind, arch.Width)
		}
		d.stem = w
		for s, n := range fam.blocks {
			d.stages = append(d.stages, residualStage{planes: w << s, stride: min(s+1, 2), blocks: n})
		}
		switch fam.block {
		case blockPreAct:
			d.finalBN = "bn"
		case blockBottleneck:
			d.expansion = 4
			fallthrough
		default:
			d.stemBN, d.shortcutBN = "bn1", "shortcut.1"
		}
	}
	return d, d.checkInput(arch)
}

// finalSide is the spatial size of an input side after the stride-2
// stages (3x3 convolutions with padding 1 and 1x1 without: ⌊(s−1)/2⌋+1).
func (d residualDesign) finalSide(side int) int {
	for _, st := range d.stages {
		if st.stride == 2 {
			side = (side-1)/2 + 1
		}
	}
	return side
}

// checkInput requires a final map from pool to 2·pool−1 pixels a side, so
// that avg_pool2d(pool) leaves 1x1 (reading its top-left pool×pool window).
func (d residualDesign) checkInput(arch Arch) error {
	ok := func(side int) bool { f := d.finalSide(side); return f >= d.pool && f < 2*d.pool }
	if ok(arch.Input[1]) && ok(arch.Input[2]) {
		return nil
	}
	lo, hi := 0, 0
	for s := 1; s <= 1<<12; s++ {
		if ok(s) {
			if lo == 0 {
				lo = s
			}
			hi = s
		}
	}
	return fmt.Errorf("arch %q: input %v gives a %dx%d map before avg_pool2d(%d); it must be %d to %d (input sides %d to %d)",
		arch.Kind, arch.Input, d.finalSide(arch.Input[1]), d.finalSide(arch.Input[2]), d.pool, d.pool, 2*d.pool-1, lo, hi)
}

// blocks lists the design's blocks in forward order; the channels after the
// last block are the last one's out.
func (d residualDesign) blocks() []residualBlock {
	var out []residualBlock
	in := d.stem
	for s, st := range d.stages {
		for b := range st.blocks {
			stride := 1
			if b == 0 {
				stride = st.stride
			}
			name := fmt.Sprintf("layer%d.%d", s+1, b)
			if d.wide {
				name = fmt.Sprintf("block%d.layer.%d", s+1, b)
			}
			o := st.planes * d.expansion
			out = append(out, residualBlock{name: name, in: in, planes: st.planes, out: o, stride: stride, shortcut: stride != 1 || in != o})
			in = o
		}
	}
	return out
}

// convs lists the convolutions of a block's main path, conv1, conv2, ...;
// bn<i> follows (post-activation) or precedes (pre-activation) conv<i>.
func (d residualDesign) convs(b residualBlock) []convUnit {
	if d.block == blockBottleneck {
		return []convUnit{{b.in, b.planes, 1, 1}, {b.planes, b.planes, 3, b.stride}, {b.planes, b.out, 1, 1}}
	}
	return []convUnit{{b.in, b.planes, 3, b.stride}, {b.planes, b.out, 3, 1}}
}

// residualSpecs lists a residual network's state_dict entries in order.
func residualSpecs(arch Arch) ([]paramSpec, error) {
	d, err := residualDesignOf(arch)
	if err != nil {
		return nil, err
	}
	specs := []paramSpec{convSpec("conv1.weight", arch.Input[0], d.stem, 3)}
	if d.stemBN != "" {
		specs = append(specs, batchNormSpecs(d.stemBN, d.stem)...)
	}
	ch := d.stem
	for _, b := range d.blocks() {
		specs = append(specs, d.blockSpecs(b)...)
		ch = b.out
	}
	if d.finalBN != "" {
		specs = append(specs, batchNormSpecs(d.finalBN, ch)...)
	}
	return append(specs, linearSpecs(d.head, ch, arch.Classes)...), nil
}

// blockSpecs is one block's state_dict entries, in the module's
// registration order.
func (d residualDesign) blockSpecs(b residualBlock) []paramSpec {
	var specs []paramSpec
	for i, c := range d.convs(b) {
		conv := convSpec(fmt.Sprintf("%s.conv%d.weight", b.name, i+1), c.in, c.out, c.k)
		if d.block == blockPreAct {
			specs = append(append(specs, batchNormSpecs(fmt.Sprintf("%s.bn%d", b.name, i+1), c.in)...), conv)
		} else {
			specs = append(append(specs, conv), batchNormSpecs(fmt.Sprintf("%s.bn%d", b.name, i+1), c.out)...)
		}
	}
	if b.shortcut {
		specs = append(specs, convSpec(b.name+"."+d.shortcut+".weight", b.in, b.out, 1))
		if d.shortcutBN != "" {
			specs = append(specs, batchNormSpecs(b.name+"."+d.shortcutBN, b.out)...)
		}
	}
	return specs
}
