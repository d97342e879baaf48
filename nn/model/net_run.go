package model

import (
	"fmt"

	"github.com/sglr-pipe/sglr-pipe/nn/internal/vec"
	"github.com/sglr-pipe/sglr-pipe/nn/ops"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// The functions below run a compiled Net on caller slices. They are generic
// over the caller's float type so that the float64 gradient tests drive the
// very code the float32 path uses.

func netLogits[T vec.Float](n *Net, x, out []T) error {
	if err := n.checkLen("x", len(x), n.batch*n.arch.InputSize()); err != nil {
		return err
	}
	if err := n.checkLen("logits", len(out), n.batch*n.arch.Classes); err != nil {
		return err
	}
	copyIntoDense(n.xT, x)
	if err := n.run(); err != nil {
		return err
	}
	copyFromValue(out, n.logitsValue())
	return nil
}

func netInputGrad[T vec.Float](n *Net, x, target, grad []T) (float64, error) {
	if n.purpose != PurposeInputGrad {
		return 0, fmt.Errorf("InputGrad needs a %s net, this one is %s", PurposeInputGrad, n.purpose)
	}
	if err := n.checkLen("x", len(x), n.batch*n.arch.InputSize()); err != nil {
		return 0, err
	}
	if err := n.checkLen("target", len(target), n.batch*n.arch.Classes); err != nil {
		return 0, err
	}
	if err := n.checkLen("grad", len(grad), n.batch*n.arch.InputSize()); err != nil {
		return 0, err
	}
	copyIntoDense(n.xT, x)
	copyIntoDense(n.targetT, target)
	if err := n.run(); err != nil {
		return 0, err
	}
	copyFromValue(grad, n.xGradValue())
	return n.lossValue(), nil
}

func netLogitsVJP[T vec.Float](n *Net, x, upstream, grad []T) error {
	if n.purpose != PurposeVJP {
		return fmt.Errorf("LogitsVJP needs a %s net, this one is %s", PurposeVJP, n.purpose)
	}
	if err := n.checkLen("x", len(x), n.batch*n.arch.InputSize()); err != nil {
		return err
	}
	if err := n.checkLen("upstream", len(upstream), n.batch*n.arch.Classes); err != nil {
		return err
	}
	if err := n.checkLen("grad", len(grad), n.batch*n.arch.InputSize()); err != nil {
		return err
	}
	copyIntoDense(n.xT, x)
	copyIntoDense(n.upstreamT, upstream)
	if err := n.run(); err != nil {
		return err
	}
	copyFromValue(grad, n.xGradValue())
	return nil
}

func netLossGrad[T vec.Float](n *Net, x []T, call lossCall[T], logits, grad []T) error {
	if n.purpose != PurposeLossGrad {
		return fmt.Errorf("LossGrad needs a %s net, this one is %s", PurposeLossGrad, n.purpose)
	}
	if call.loss == nil {
		return fmt.Errorf("%s net: loss is nil", n.purpose)
	}
	if err := n.checkLen("x", len(x), n.batch*n.arch.InputSize()); err != nil {
		return err
	}
	if err := n.checkLen("logits", len(logits), n.batch*n.arch.Classes); err != nil {
		return err
	}
	if err := n.checkLen("grad", len(grad), n.batch*n.arch.InputSize()); err != nil {
		return err
	}
	if call.first < 0 || call.rows < 0 || call.rows > n.batch || call.first+call.rows > len(call.losses) {
		return fmt.Errorf("%s net (batch %d): samples [%d,%d) with %d loss slots", n.purpose, n.batch, call.first, call.first+call.rows, len(call.losses))
	}
	if err := call.bind(n.lossHook); err != nil {
		return fmt.Errorf("%s net: %w", n.purpose, err)
	}
	defer n.lossHook.Unbind()
	copyIntoDense(n.xT, x)
	if err := n.run(); err != nil {
		return err
	}
	copyFromValue(logits, n.logitsValue())
	copyFromValue(grad, n.xGradValue())
	return nil
}

// netTrainStep runs a PurposeTrain net (xAdv nil) or a PurposeTrainTRADES
// net (xAdv and beta used).
func netTrainStep[T vec.Float](n *Net, x, xAdv, target, logits []T, beta float64) (float64, error) {
	want := PurposeTrain
	if xAdv != nil {
		want = PurposeTrainTRADES
	}
	return runTrainStep(n, want, x, xAdv, target, logits, beta)
}

// runTrainStep checks that n is a want net and the slices fit it, binds
// them (xAdv and beta when not nil: the TRADES and MART nets), runs the
// step and returns its loss, writing f(x) into logits when not nil.
func runTrainStep[T vec.Float](n *Net, want Purpose, x, xAdv, target, logits []T, beta float64) (float64, error) {
	if n.purpose != want {
		return 0, fmt.Errorf("this step needs a %s net, this one is %s", want, n.purpose)
	}
	inSize := n.batch * n.arch.InputSize()
	if err := n.checkLen("x", len(x), inSize); err != nil {
		return 0, err
	}
	if err := n.checkLen("target", len(target), n.batch*n.arch.Classes); err != nil {
		return 0, err
	}
	if logits != nil {
		if err := n.checkLen("logits", len(logits), n.batch*n.arch.Classes); err != nil {
			return 0, err
		}
	}
	copyIntoDense(n.xT, x)
	copyIntoDense(n.targetT, target)
	if xAdv != nil {
		if err := n.checkLen("x_adv", len(xAdv), inSize); err != nil {
			return 0, err
		}
		copyIntoDense(n.xAdvT, xAdv)
		if err := n.setBeta(beta); err != nil {
			return 0, err
		}
	}
	if err := n.run(); err != nil {
		return 0, err
	}
	if logits != nil {
		copyFromValue(logits, n.logitsValue())
	}
	return n.lossValue(), nil
}

// setBeta binds the TRADES beta for the next run.
func (n *Net) setBeta(beta float64) error {
	var b G.Value = G.NewF64(beta)
	if n.opts.Dtype == tensor.Float32 {
		b = G.NewF32(float32(beta))
	}
	if err := G.Let(n.beta, b); err != nil {
		return fmt.Errorf("bind beta: %w", err)
	}
	return nil
}

func (n *Net) checkLen(what string, got, want int) error {
	if got != want {
		return fmt.Errorf("%s net (batch %d): %s has %d values, want %d", n.purpose, n.batch, what, got, want)
	}
	return nil
}

// The helpers below read and write tensors through Float32s/Float64s, which
// allocate nothing, unlike Dense.Data (which boxes a fresh slice header on
// every call): they run several times per pass.

// copyIntoDense converts src into the backing slice of dst (same length).
// Equal element types are a plain copy (a memmove): the inputs and weights
// go through here on every pass.
func copyIntoDense[T vec.Float](dst *tensor.Dense, src []T) {
	switch dst.Dtype() {
	case tensor.Float32:
		d := dst.Float32s()[:len(src)]
		if same, ok := any(src).([]float32); ok {
			copy(d, same)
			return
		}
		for i, v := range src {
			d[i] = float32(v)
		}
	case tensor.Float64:
		d := dst.Float64s()[:len(src)]
		if same, ok := any(src).([]float64); ok {
			copy(d, same)
			return
		}
		for i, v := range src {
			d[i] = float64(v)
		}
	}
}

// copyFromDense converts the backing slice of src into dst (same length).
func copyFromDense[T vec.Float](dst []T, src *tensor.Dense) {
	switch src.Dtype() {
	case tensor.Float32:
		if same, ok := any(dst).([]float32); ok {
			copy(same, src.Float32s()[:len(dst)])
			return
		}
		for i, v := range src.Float32s()[:len(dst)] {
			dst[i] = T(v)
		}
	case tensor.Float64:
		if same, ok := any(dst).([]float64); ok {
			copy(same, src.Float64s()[:len(dst)])
			return
		}
		for i, v := range src.Float64s()[:len(dst)] {
			dst[i] = T(v)
		}
	}
}

// copyFromValue converts a graph value (a dense tensor or a scalar) into
// dst (same length).
func copyFromValue[T vec.Float](dst []T, v G.Value) {
	switch x := v.(type) {
	case *tensor.Dense:
		copyFromDense(dst, x)
	case *G.F32:
		dst[0] = T(*x)
	case *G.F64:
		dst[0] = T(*x)
	default:
		copyFromData(dst, v.Data())
	}
}

func copyFromData[T vec.Float](dst []T, data any) {
	switch s := data.(type) {
	case []float32:
		for i := range dst {
			dst[i] = T(s[i])
		}
	case []float64:
		for i := range dst {
			dst[i] = T(s[i])
		}
	case float32:
		dst[0] = T(s)
	case float64:
		dst[0] = T(s)
	}
}

// valueData is the backing slice of a tensor value of element type T.
func valueData[T vec.Float](v G.Value) []T {
	d, ok := v.(*tensor.Dense)
	if !ok {
		return v.Data().([]T)
	}
	var out []T
	switch p := any(&out).(type) {
	case *[]float32:
		*p = d.Float32s()
	case *[]float64:
		*p = d.Float64s()
	}
	return out
}

// scalarValue reads a scalar graph value as float64.
func scalarValue(v G.Value) float64 {
	if s, err := ops.ScalarOf(v); err == nil {
		return s
	}
	switch s := v.Data().(type) {
	case float32:
		return float64(s)
	case float64:
		return s
	case []float32:
		return float64(s[0])
	case []float64:
		return s[0]
	}
	return 0
}
