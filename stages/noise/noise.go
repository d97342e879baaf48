// Package noise is the built-in `noise` stage: it corrupts a dataset's labels
// (symmetric, uniform or asymmetric label noise) or its images (Gaussian
// noise, random pixel permutations), seeded by the instance seed.
//
// The output keeps the truth: CleanLabels are the input's clean labels when it
// has them (so noise over noise is measured against the original labels) and
// the input's labels otherwise, and Flipped marks every sample whose label
// differs from its clean label.
package noise

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"

	"github.com/sglr-pipe/sglr-pipe/artifacts"
	"github.com/sglr-pipe/sglr-pipe/stages"
)

// Noise kinds accepted by the `kind` parameter.
const (
	KindNone         = "none"
	KindSymmetric    = "symmetric"
	KindUniform      = "uniform"
	KindAsymmetric   = "asymmetric"
	KindGaussian     = "gaussian"
	KindRandomPixels = "random-pixels"
)

// Stage is the `noise` stage.
type Stage struct{}

func init() { stages.Builtin.Register(Stage{}) }

// Spec declares the stage: one dataset in, one dataset out.
func (Stage) Spec() stages.Spec {
	return stages.Spec{
		Name:    "noise",
		Version: "1",
		Doc: "Corrupts labels (symmetric, uniform, asymmetric) or images (gaussian, random-pixels) of a dataset, " +
			"seeded by the instance seed; records the clean labels and which samples are flipped.",
		Inputs:  []stages.Port{{Name: "dataset", Kind: artifacts.KindDataset, Doc: "the dataset to corrupt"}},
		Outputs: []stages.Port{{Name: "dataset", Kind: artifacts.KindDataset, Doc: "the corrupted dataset"}},
		Params: []stages.Param{
			{Name: "kind", Type: stages.TypeString, Required: true,
				Enum: []string{KindNone, KindSymmetric, KindUniform, KindAsymmetric, KindGaussian, KindRandomPixels},
				Doc: "symmetric: round(rate*N) labels moved to one of the other K-1 classes; " +
					"uniform: round(rate*N) labels redrawn over all K classes (some stay correct); " +
					"asymmetric: round(rate*n_c) samples of each mapped class c moved to its target; " +
					"gaussian: round(fraction*N) images get N(0,sigma) pixel noise, clipped to [0,1]; " +
					"random-pixels: round(fraction*N) images get their pixels shuffled by their own permutation"},
			{Name: "rate", Type: stages.TypeFloat, Default: 0.0, Min: stages.Float(0), Max: stages.Float(1),
				Doc: "label noise kinds: share of samples (asymmetric: of each mapped class) whose label is corrupted"},
			{Name: "map", Type: stages.TypeMap, Default: map[string]any{},
				Doc: "asymmetric: source class -> target class, by name or index; empty uses the default for " +
					"CIFAR-10 (truck->automobile, bird->airplane, deer->horse, cat<->dog), Fashion-MNIST " +
					"(T-shirt/top<->Shirt, Pullover->Coat, Sneaker->Sandal) or MNIST (2->7, 3->8, 5<->6, 7->1)"},
			{Name: "sigma", Type: stages.TypeFloat, Default: 0.1, Min: stages.Float(0),
				Doc: "gaussian: standard deviation of the pixel noise"},
			{Name: "fraction", Type: stages.TypeFloat, Default: 0.0, Min: stages.Float(0), Max: stages.Float(1),
				Doc: "gaussian, random-pixels: share of images corrupted"},
		},
	}
}

// Run reads the dataset, corrupts it and writes the result.
func (Stage) Run(ctx context.Context, env *stages.Env) error {
	in, err := env.ReadDataset("dataset")
	if err != nil {
		return err
	}
	cfg, err := ConfigFromParams(env.Params, in.ClassNames)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	out, res, err := Apply(in, cfg, env.Seed)
	if err != nil {
		return err
	}
	if err := env.WriteDataset("dataset", out); err != nil {
		return err
	}
	env.Report("realised_rate", res.RealisedRate)
	env.Report("flipped", res.Flipped)
	env.Report("labels_changed", res.LabelsChanged)
	env.Report("images_corrupted", res.ImagesCorrupted)
	return nil
}

// Config is one noise setting, with the asymmetric map resolved to class indices.
type Config struct {
	Kind     string
	Rate     float64     // label kinds: share of samples corrupted
	Map      map[int]int // asymmetric: source class -> target class
	Sigma    float64     // gaussian: pixel noise standard deviation
	Fraction float64     // image kinds: share of images corrupted
}

// Result is what Apply did.
type Result struct {
	RealisedRate    float64 // share of samples whose label differs from the clean label (0 for N = 0)
	Flipped         int     // samples whose label differs from the clean label
	LabelsChanged   int     // labels this application changed
	ImagesCorrupted int     // images this application changed
}

// ConfigFromParams builds a Config from validated params, resolving the
// asymmetric map against the dataset's class names. A parameter that has no
// effect with the chosen kind (rate for image noise, fraction for label noise)
// is an error, so a sweep never silently does nothing.
func ConfigFromParams(ps stages.Params, classNames []string) (Config, error) {
	cfg := Config{
		Kind:     ps.String("kind"),
		Rate:     ps.Float("rate"),
		Sigma:    ps.Float("sigma"),
		Fraction: ps.Float("fraction"),
	}
	if cfg.Rate < 0 || cfg.Rate > 1 || cfg.Fraction < 0 || cfg.Fraction > 1 || cfg.Sigma < 0 || math.IsNaN(cfg.Sigma) {
		return cfg, fmt.Errorf("rate %v, fraction %v must be in [0,1] and sigma %v >= 0", cfg.Rate, cfg.Fraction, cfg.Sigma)
	}
	switch cfg.Kind {
	case KindNone:
		if cfg.Rate != 0 || cfg.Fraction != 0 {
			return cfg, fmt.Errorf("kind none: rate %v and fraction %v would have no effect: set them to 0 or choose a kind", cfg.Rate, cfg.Fraction)
		}
	case KindSymmetric, KindUniform, KindAsymmetric:
		if cfg.Fraction != 0 {
			return cfg, fmt.Errorf("kind %s corrupts labels: fraction %v has no effect (use rate)", cfg.Kind, cfg.Fraction)
		}
	case KindGaussian, KindRandomPixels:
		if cfg.Rate != 0 {
			return cfg, fmt.Errorf("kind %s corrupts images: rate %v has no effect (use fraction)", cfg.Kind, cfg.Rate)
		}
	default:
		return cfg, fmt.Errorf("kind %q unknown: want none, symmetric, uniform, asymmetric, gaussian or random-pixels", cfg.Kind)
	}
	raw := ps.Map("map")
	if len(raw) > 0 && cfg.Kind != KindAsymmetric {
		return cfg, fmt.Errorf("kind %s: map has no effect (only asymmetric uses it)", cfg.Kind)
	}
	if cfg.Kind == KindAsymmetric {
		var err error
		if len(raw) > 0 {
			cfg.Map, err = ParseClassMap(raw, classNames)
		} else {
			cfg.Map, err = DefaultAsymmetricMap(classNames)
		}
		if err != nil {
			return cfg, fmt.Errorf("asymmetric: %w", err)
		}
	}
	return cfg, nil
}

// Apply returns a corrupted copy of in (in is not modified). The draw is a
// function of in, cfg and seed: a PCG generator seeded with seed chooses the
// samples and their new labels or pixels.
func Apply(in *artifacts.Dataset, cfg Config, seed uint64) (*artifacts.Dataset, Result, error) {
	dim, err := checkInput(in)
	if err != nil {
		return nil, Result{}, err
	}
	n, k := len(in.Labels), len(in.ClassNames)
	out := cloneForNoise(in)
	rng := rand.New(rand.NewPCG(seed, 0x6e6f697365)) // stream "noise"
	var res Result
	switch cfg.Kind {
	case KindNone:
	case KindSymmetric, KindUniform:
		if k < 2 {
			return nil, Result{}, fmt.Errorf("%s noise needs at least 2 classes, dataset has %d", cfg.Kind, k)
		}
		res.LabelsChanged = flipUniform(rng, out.Labels, cfg, k)
	case KindAsymmetric:
		if res.LabelsChanged, err = flipAsymmetric(rng, in.Labels, out.Labels, cfg, k); err != nil {
			return nil, Result{}, err
		}
	case KindGaussian, KindRandomPixels:
		out.Images = slices.Clone(in.Images)
		res.ImagesCorrupted = corruptImages(rng, in.Images, out.Images, cfg, n, dim)
	default:
		return nil, Result{}, fmt.Errorf("kind %q unknown", cfg.Kind)
	}
	out.Flipped = make([]bool, n)
	for i := range out.Labels {
		out.Flipped[i] = out.Labels[i] != out.CleanLabels[i]
		if out.Flipped[i] {
			res.Flipped++
		}
	}
	if n > 0 {
		res.RealisedRate = float64(res.Flipped) / float64(n)
	}
	describeNoise(out.Meta, cfg, res, in.ClassNames)
	return out, res, nil
}

// checkInput checks that in's images, labels and clean labels agree and
// returns the number of values per sample.
func checkInput(in *artifacts.Dataset) (int, error) {
	n, k := len(in.Labels), len(in.ClassNames)
	dim := 1
	for _, d := range in.Shape {
		dim *= d
	}
	if len(in.Images) != n*dim {
		return 0, fmt.Errorf("dataset has %d labels of shape %v but %d pixel values", n, in.Shape, len(in.Images))
	}
	if in.CleanLabels != nil && len(in.CleanLabels) != n {
		return 0, fmt.Errorf("dataset has %d labels but %d clean labels", n, len(in.CleanLabels))
	}
	for i, l := range in.Labels {
		if l < 0 || int(l) >= k {
			return 0, fmt.Errorf("sample %d has label %d, not one of the %d classes", i, l, k)
		}
	}
	return dim, nil
}

// cloneForNoise copies in for Apply to corrupt: everything but the images
// (shared until a kind changes them) is a copy, and the clean labels are the
// input's clean labels or, if it has none, its labels.
func cloneForNoise(in *artifacts.Dataset) *artifacts.Dataset {
	out := &artifacts.Dataset{
		Shape:       slices.Clone(in.Shape),
		Images:      in.Images, // replaced by a copy if images change
		Labels:      slices.Clone(in.Labels),
		IDs:         slices.Clone(in.IDs),
		ClassNames:  slices.Clone(in.ClassNames),
		CleanLabels: slices.Clone(in.CleanLabels),
		Meta:        map[string]string{},
	}
	if out.CleanLabels == nil {
		out.CleanLabels = slices.Clone(in.Labels)
	}
	for key, v := range in.Meta {
		out.Meta[key] = v
	}
	return out
}

// flipUniform gives a cfg.Rate share of the labels a new label drawn from
// the other k-1 classes (symmetric) or from all k (uniform, which may draw
// the same label), and returns how many labels changed.
func flipUniform(rng *rand.Rand, labels []int32, cfg Config, k int) int {
	changed := 0
	for _, i := range choose(rng, len(labels), roundCount(cfg.Rate, len(labels))) {
		old := labels[i]
		var label int32
		if cfg.Kind == KindSymmetric {
			label = int32(rng.IntN(k - 1))
			if label >= old {
				label++
			}
		} else {
			label = int32(rng.IntN(k))
		}
		labels[i] = label
		if label != old {
			changed++
		}
	}
	return changed
}

// flipAsymmetric moves a cfg.Rate share of each source class of cfg.Map to
// its target, choosing members by the input labels in (so a chain a->b->c
// moves a only to b) and writing out; it returns how many labels moved.
func flipAsymmetric(rng *rand.Rand, in, out []int32, cfg Config, k int) (int, error) {
	sources := make([]int, 0, len(cfg.Map))
	for src, dst := range cfg.Map {
		if src < 0 || src >= k || dst < 0 || dst >= k {
			return 0, fmt.Errorf("asymmetric map %d -> %d outside the %d classes", src, dst, k)
		}
		sources = append(sources, src)
	}
	slices.Sort(sources)
	changed := 0
	for _, src := range sources {
		var members []int
		for i, l := range in {
			if int(l) == src {
				members = append(members, i)
			}
		}
		for _, j := range choose(rng, len(members), roundCount(cfg.Rate, len(members))) {
			out[members[j]] = int32(cfg.Map[src])
			changed++
		}
	}
	return changed, nil
}

// corruptImages adds clipped Gaussian noise to (gaussian) or permutes the
// pixels of (random-pixels) a cfg.Fraction share of the n images of out,
// reading the originals from in, and returns how many images changed.
func corruptImages(rng *rand.Rand, in, out []float32, cfg Config, n, dim int) int {
	corrupted := 0
	for _, i := range choose(rng, n, roundCount(cfg.Fraction, n)) {
		img := out[i*dim : (i+1)*dim]
		if cfg.Kind == KindGaussian {
			for j, v := range img {
				img[j] = float32(min(1, max(0, float64(v)+cfg.Sigma*rng.NormFloat64())))
			}
		} else {
			orig := in[i*dim : (i+1)*dim]
			for j, from := range rng.Perm(dim) {
				img[j] = orig[from]
			}
		}
		if !slices.Equal(img, in[i*dim:(i+1)*dim]) {
			corrupted++
		}
	}
	return corrupted
}

// describeNoise records cfg and what it did in the dataset metadata meta.
func describeNoise(meta map[string]string, cfg Config, res Result, classNames []string) {
	format := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
	meta["noise.kind"] = cfg.Kind
	meta["noise.rate"] = format(cfg.Rate)
	meta["noise.fraction"] = format(cfg.Fraction)
	if cfg.Kind == KindGaussian {
		meta["noise.sigma"] = format(cfg.Sigma)
	}
	if cfg.Kind == KindAsymmetric {
		meta["noise.map"] = formatMap(cfg.Map, classNames)
	}
	meta["noise.realised_rate"] = format(res.RealisedRate)
	meta["noise.images_corrupted"] = strconv.Itoa(res.ImagesCorrupted)
}

// roundCount is round(share * n), the exact number of items a share selects.
func roundCount(share float64, n int) int {
	return min(n, int(math.Round(share*float64(n))))
}

// choose returns m distinct indices of 0..n-1 drawn uniformly, in draw order
// (a partial Fisher-Yates shuffle).
func choose(rng *rand.Rand, n, m int) []int {
	perm := make([]int, n)
	for i := range perm {
		perm[i] = i
	}
	for i := range m {
		j := i + rng.IntN(n-i)
		perm[i], perm[j] = perm[j], perm[i]
	}
	return perm[:m]
}
