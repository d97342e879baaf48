package model

import (
	"fmt"

	"github.com/sglr-pipe/sglr-pipe/nn/ops"
	G "gorgonia.org/gorgonia"
)

// residual adds one pass of a residual network (resnet.go) on x: conv1
// (with bn1-relu for the ResNets), the blocks, the final bn-relu of the
// pre-activation networks, avg_pool2d and the linear head.
func (fb *forwardBuilder) residual(x *G.Node, pass *forwardPass) (*G.Node, error) {
	d, err := residualDesignOf(fb.arch)
	if err != nil {
		return nil, err
	}
	out, err := fb.conv(x, "conv1.weight", 1, 1)
	if err != nil {
		return nil, err
	}
	if d.stemBN != "" {
		if out, err = fb.batchNormReLU(out, d.stemBN, pass); err != nil {
			return nil, err
		}
	}
	for _, b := range d.blocks() {
		if out, err = fb.residualBlock(out, d, b, pass); err != nil {
			return nil, fmt.Errorf("%s: %w", b.name, err)
		}
	}
	if d.finalBN != "" {
		if out, err = fb.batchNormReLU(out, d.finalBN, pass); err != nil {
			return nil, err
		}
	}
	if d.pool == ops.AvgPoolWindow {
		out, err = ops.AvgPool4(out)
	} else {
		out, err = avgPoolFlatten(out, d.pool)
	}
	if err != nil {
		return nil, err
	}
	return fb.linear(out, d.head)
}

// residualBlock adds block b of design d (see blockKind for what each kind
// computes).
func (fb *forwardBuilder) residualBlock(x *G.Node, d residualDesign, b residualBlock, pass *forwardPass) (*G.Node, error) {
	convs := d.convs(b)
	convName := func(i int) string { return fmt.Sprintf("%s.conv%d.weight", b.name, i+1) }
	bnName := func(i int) string { return fmt.Sprintf("%s.bn%d", b.name, i+1) }
	shortcutConv := b.name + "." + d.shortcut + ".weight"
	out, shortcut := x, x
	var err error
	if d.block == blockPreAct {
		for i, c := range convs {
			if out, err = fb.batchNormReLU(out, bnName(i), pass); err != nil {
				return nil, err
			}
			if i == 0 && b.shortcut {
				// The projection reads the activated input.
				if shortcut, err = fb.conv(out, shortcutConv, b.stride, 0); err != nil {
					return nil, err
				}
			}
			if out, err = fb.conv(out, convName(i), c.stride, c.k/2); err != nil {
				return nil, err
			}
		}
		return G.Add(out, shortcut)
	}
	for i, c := range convs {
		if out, err = fb.conv(out, convName(i), c.stride, c.k/2); err != nil {
			return nil, err
		}
		if out, err = fb.batchNormLayer(out, bnName(i), pass, i < len(convs)-1); err != nil {
			return nil, err
		}
	}
	if b.shortcut {
		if shortcut, err = fb.conv(x, shortcutConv, b.stride, 0); err != nil {
			return nil, err
		}
		if shortcut, err = fb.batchNorm(shortcut, b.name+"."+d.shortcutBN, pass); err != nil {
			return nil, err
		}
	}
	if out, err = G.Add(out, shortcut); err != nil {
		return nil, err
	}
	return ops.ReLU(out)
}
