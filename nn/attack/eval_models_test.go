package attack

import (
	"math"
	"math/rand/v2"
	"testing"
)

// evalMLP is a real two-layer ReLU network, z = W2·relu(W1·x + b1) + b2,
// computed in float64 with the analytic logits VJP and soft-target
// cross-entropy gradient. With hidden = 0 it is the linear model
// z = W2·x + b2. The evaluation-attack tests run against it.
type evalMLP struct {
	d, h, k        int
	w1, b1, w2, b2 []float64 // w1 h*d, w2 k*(h or d)
}

// newEvalMLP draws a network with Gaussian weights of scale 1/√fan-in
// (times gain) from seed.
func newEvalMLP(seed uint64, d, hidden, k int, gain float64) *evalMLP {
	rng := rand.New(rand.NewPCG(seed, 9))
	m := &evalMLP{d: d, h: hidden, k: k}
	in := d
	if hidden > 0 {
		m.w1, m.b1 = make([]float64, hidden*d), make([]float64, hidden)
		for i := range m.w1 {
			m.w1[i] = gain * rng.NormFloat64() / math.Sqrt(float64(d))
		}
		in = hidden
	}
	m.w2, m.b2 = make([]float64, k*in), make([]float64, k)
	for i := range m.w2 {
		m.w2[i] = gain * rng.NormFloat64() / math.Sqrt(float64(in))
	}
	return m
}

func (m *evalMLP) Classes() int   { return m.k }
func (m *evalMLP) InputSize() int { return m.d }

// width is the input size of the last layer.
func (m *evalMLP) width() int {
	if m.h > 0 {
		return m.h
	}
	return m.d
}

// forward fills pre (h), act (width) and z (k) for one sample.
func (m *evalMLP) forward(x []float32, pre, act, z []float64) {
	if m.h == 0 {
		for j, v := range x {
			act[j] = float64(v)
		}
	} else {
		for a := range m.h {
			s := m.b1[a]
			for j, v := range x {
				s += m.w1[a*m.d+j] * float64(v)
			}
			pre[a] = s
			act[a] = math.Max(s, 0)
		}
	}
	w := m.width()
	for c := range m.k {
		s := m.b2[c]
		for a := range w {
			s += m.w2[c*w+a] * act[a]
		}
		z[c] = s
	}
}

// scratch returns the per-sample buffers of forward.
func (m *evalMLP) scratch() (pre, act, z []float64) {
	return make([]float64, m.h), make([]float64, m.width()), make([]float64, m.k)
}

func (m *evalMLP) Logits(x []float32, n int, out []float32) error {
	pre, act, z := m.scratch()
	for i := range n {
		m.forward(x[i*m.d:(i+1)*m.d], pre, act, z)
		for c, v := range z {
			out[i*m.k+c] = float32(v)
		}
	}
	return nil
}

// vjp writes J(x)ᵀ·up for one sample into g.
func (m *evalMLP) vjp(x []float32, up []float64, g []float32) {
	pre, act, z := m.scratch()
	m.forward(x, pre, act, z)
	w := m.width()
	dact := make([]float64, w)
	for c := range m.k {
		for a := range w {
			dact[a] += m.w2[c*w+a] * up[c]
		}
	}
	if m.h == 0 {
		for j := range g {
			g[j] = float32(dact[j])
		}
		return
	}
	for j := range g {
		s := 0.0
		for a := range m.h {
			if pre[a] > 0 {
				s += m.w1[a*m.d+j] * dact[a]
			}
		}
		g[j] = float32(s)
	}
}

func (m *evalMLP) LogitsVJP(x []float32, n int, upstream, grad []float32) error {
	up := make([]float64, m.k)
	for i := range n {
		for c := range up {
			up[c] = float64(upstream[i*m.k+c])
		}
		m.vjp(x[i*m.d:(i+1)*m.d], up, grad[i*m.d:(i+1)*m.d])
	}
	return nil
}

func (m *evalMLP) InputGrad(x []float32, n int, target, grad []float32) (float64, error) {
	pre, act, z := m.scratch()
	up := make([]float64, m.k)
	loss := 0.0
	for i := range n {
		xi := x[i*m.d : (i+1)*m.d]
		m.forward(xi, pre, act, z)
		lse := evalLSE(z)
		t := target[i*m.k : (i+1)*m.k]
		tsum := 0.0
		for c := range z {
			loss += float64(t[c]) * (lse - z[c])
			tsum += float64(t[c])
		}
		for c := range z {
			up[c] = math.Exp(z[c]-lse)*tsum - float64(t[c])
		}
		m.vjp(xi, up, grad[i*m.d:(i+1)*m.d])
	}
	return loss, nil
}

// train fits the network to (x, labels) by full-batch gradient descent on
// the mean cross-entropy.
func (m *evalMLP) train(x []float32, labels []int32, n, iters int, lr float64) {
	w := m.width()
	pre, act, z := m.scratch()
	gw1, gb1 := make([]float64, len(m.w1)), make([]float64, len(m.b1))
	gw2, gb2 := make([]float64, len(m.w2)), make([]float64, len(m.b2))
	dz, dact := make([]float64, m.k), make([]float64, w)
	for range iters {
		clear(gw1)
		clear(gb1)
		clear(gw2)
		clear(gb2)
		for i := range n {
			xi := x[i*m.d : (i+1)*m.d]
			m.forward(xi, pre, act, z)
			lse := evalLSE(z)
			for c := range z {
				dz[c] = math.Exp(z[c] - lse)
			}
			dz[labels[i]]--
			clear(dact)
			for c := range m.k {
				gb2[c] += dz[c]
				for a := range w {
					gw2[c*w+a] += dz[c] * act[a]
					dact[a] += m.w2[c*w+a] * dz[c]
				}
			}
			for a := range m.h {
				if pre[a] <= 0 {
					continue
				}
				gb1[a] += dact[a]
				for j, v := range xi {
					gw1[a*m.d+j] += dact[a] * float64(v)
				}
			}
		}
		for _, p := range [][2][]float64{{m.w1, gw1}, {m.b1, gb1}, {m.w2, gw2}, {m.b2, gb2}} {
			for i := range p[0] {
				p[0][i] -= lr * p[1][i] / float64(n)
			}
		}
	}
}

// logits64 is the float64 logits of one sample, for finite differences.
func (m *evalMLP) logits64(x []float32) []float64 {
	pre, act, z := m.scratch()
	m.forward(x, pre, act, z)
	return z
}

func evalLSE(z []float64) float64 {
	hi := math.Inf(-1)
	for _, v := range z {
		hi = math.Max(hi, v)
	}
	s := 0.0
	for _, v := range z {
		s += math.Exp(v - hi)
	}
	return hi + math.Log(s)
}

const (
	evalD = 30
	evalK = 5
	evalN = 200
)

// evalTrained returns a model (hidden 0: linear) trained on attackBlobs and
// its training data, after checking it learnt the task.
func evalTrained(t *testing.T, hidden int) (*evalMLP, []float32, []int32) {
	t.Helper()
	x, labels := attackBlobs(11, evalN, evalD, evalK)
	m := newEvalMLP(5, evalD, hidden, evalK, 1)
	m.train(x, labels, evalN, 300, 0.5)
	acc, err := RobustAccuracy(m, x, labels, evalN)
	if err != nil {
		t.Fatal(err)
	}
	if acc < 0.95 {
		t.Fatalf("clean accuracy of the trained test model (hidden %d) is %.3f, want >= 0.95", hidden, acc)
	}
	return m, x, labels
}

func evalRNG(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 77)) }

func TestEvalModelsMatchFiniteDifferences(t *testing.T) {
	for _, hidden := range []int{0, 16} {
		m := newEvalMLP(3, 12, hidden, 4, 1)
		rng := evalRNG(1)
		const n = 3
		x := make([]float32, n*m.d)
		for i := range x {
			x[i] = float32(0.1 + 0.8*rng.Float64())
		}
		up := make([]float32, n*m.k)
		target := make([]float32, n*m.k)
		for i := range up {
			up[i] = float32(rng.NormFloat64())
			target[i] = float32(rng.Float64())
		}
		vjp := make([]float32, n*m.d)
		if err := m.LogitsVJP(x, n, up, vjp); err != nil {
			t.Fatal(err)
		}
		ig := make([]float32, n*m.d)
		if _, err := m.InputGrad(x, n, target, ig); err != nil {
			t.Fatal(err)
		}
		const h = 1e-3
		for i := range n {
			xi := x[i*m.d : (i+1)*m.d]
			dot := func() float64 {
				z := m.logits64(xi)
				s := 0.0
				for c, v := range z {
					s += v * float64(up[i*m.k+c])
				}
				return s
			}
			ce := func() float64 {
				z := m.logits64(xi)
				lse, s := evalLSE(z), 0.0
				for c, v := range z {
					s += float64(target[i*m.k+c]) * (lse - v)
				}
				return s
			}
			for j := range m.d {
				for _, f := range []struct {
					name string
					fn   func() float64
					got  float32
				}{{"vjp", dot, vjp[i*m.d+j]}, {"input grad", ce, ig[i*m.d+j]}} {
					old := xi[j]
					xi[j] = old + h
					hi := f.fn()
					xi[j] = old - h
					lo := f.fn()
					xi[j] = old
					want := (hi - lo) / float64((old+h)-(old-h))
					if math.Abs(float64(f.got)-want) > 1e-3*(1+math.Abs(want)) {
						t.Errorf("hidden %d %s sample %d feature %d: analytic %v, finite difference %v", hidden, f.name, i, j, f.got, want)
					}
				}
			}
		}
	}
}
