package train

import (
	"fmt"
	"math"
	"slices"
	"strconv"

	"github.com/sglr-pipe/sglr-pipe/nn"
	"github.com/sglr-pipe/sglr-pipe/stages"
)

// Training methods (the `method` parameter).
const (
	MethodStandard = "standard" // plain training on clean inputs
	MethodPGDAT    = "pgd-at"   // adversarial training on the training attack's examples (Madry et al.)
	MethodTRADES   = "trades"   // CE on clean inputs + beta·KL(p(x) ‖ p(x')) (Zhang et al.)
)

// Training attacks of pgd-at (the `attack` parameter).
const (
	AttackPGD  = "pgd"
	AttackFGSM = "fgsm"
)

// Label strategies (the `labels` parameter).
const (
	LabelsHard    = "hard"    // one-hot of the (possibly noisy) training labels
	LabelsSmooth  = "smooth"  // label smoothing: (1−ε)·onehot + ε/K
	LabelsSGLR    = "sglr"    // self-guided label refinement (SGLR.md)
	LabelsGiven   = "given"   // soft labels from the `labels` input (e.g. from refine)
	LabelsDistill = "distill" // (1−α)·onehot + α·teacher probabilities from the `labels` input
)

// Config is a checked training configuration. Arch.Input and Arch.Classes
// are filled from the training data when training starts.
type Config struct {
	Arch nn.Arch

	Epochs      int
	Batch       int
	LR          float64
	Momentum    float64
	Nesterov    bool
	WeightDecay float64
	Schedule    string
	Milestones  []int // resolved: the defaults [epochs/2, 3·epochs/4] filled in
	LRFactor    float64
	PerIter     bool
	Augment     nn.Augment

	Method      string
	Attack      string
	Eps         float64
	Step        float64
	Steps       int
	RandomStart bool
	Restarts    int
	Beta        float64

	Labels       string
	Smoothing    float64
	SGLR         nn.SGLRConfig // WarmupEpochs resolved (−1 → the first milestone)
	DistillAlpha float64

	ValSteps int
	ValEvery int
	Workers  int // 0 = runtime.NumCPU(), resolved when training starts
}

// params is the train stage's parameter schema.
func params() []stages.Param {
	return []stages.Param{
		{Name: "model", Type: stages.TypeString, Default: nn.KindMLP,
			Enum: []string{nn.KindMLP, nn.KindCNN, nn.KindPreActResNet18},
			Doc:  "architecture: mlp (linear-relu stack), cnn (conv3x3-relu-maxpool blocks + linear), preact-resnet18"},
		{Name: "hidden", Type: stages.TypeList, Default: []any{int64(256), int64(256)},
			Doc: "mlp: hidden layer widths; cnn: widths of the linear layers after the conv blocks"},
		{Name: "channels", Type: stages.TypeList, Default: []any{int64(32), int64(64)},
			Doc: "cnn: output channels of each conv block"},
		{Name: "width", Type: stages.TypeInt, Default: int64(64), Min: stages.Float(1), Max: stages.Float(1024),
			Doc: "preact-resnet18: channels of the first stage (64 in the paper)"},
		{Name: "epochs", Type: stages.TypeInt, Default: int64(30), Min: stages.Float(1), Max: stages.Float(100000),
			Doc: "training epochs"},
		{Name: "batch", Type: stages.TypeInt, Default: int64(128), Min: stages.Float(1), Max: stages.Float(65536),
			Doc: "training batch size (the last, partial batch of an epoch is kept)"},
		{Name: "lr", Type: stages.TypeFloat, Default: 0.1, Min: stages.Float(0),
			Doc: "initial learning rate (must be > 0)"},
		{Name: "momentum", Type: stages.TypeFloat, Default: 0.9, Min: stages.Float(0), Max: stages.Float(1),
			Doc: "SGD momentum in [0,1)"},
		{Name: "nesterov", Type: stages.TypeBool, Default: false, Doc: "Nesterov momentum"},
		{Name: "weight_decay", Type: stages.TypeFloat, Default: 5e-4, Min: stages.Float(0),
			Doc: "L2 weight decay added to the gradient (as torch.optim.SGD)"},
		{Name: "schedule", Type: stages.TypeString, Default: "piecewise", Enum: []string{"piecewise", "cosine", "constant"},
			Doc: "learning-rate schedule"},
		{Name: "milestones", Type: stages.TypeList, Default: []any{},
			Doc: "piecewise: 0-based epochs at which lr is multiplied by lr_factor; empty = [epochs/2, 3·epochs/4] " +
				"(the reference's 100 and 150 of 200)"},
		{Name: "lr_factor", Type: stages.TypeFloat, Default: 0.1, Min: stages.Float(0), Doc: "piecewise: decay factor (> 0)"},
		{Name: "per_iteration", Type: stages.TypeBool, Default: false,
			Doc: "update the learning rate every batch (at the fractional epoch) instead of every epoch"},
		{Name: "crop_pad", Type: stages.TypeInt, Default: int64(0), Min: stages.Float(0), Max: stages.Float(64),
			Doc: "random-crop augmentation: zero padding on each side; 0 = no crop"},
		{Name: "flip", Type: stages.TypeBool, Default: false, Doc: "random horizontal flip augmentation"},
		{Name: "method", Type: stages.TypeString, Default: MethodPGDAT, Enum: []string{MethodStandard, MethodPGDAT, MethodTRADES},
			Doc: "standard: clean training; pgd-at: train on the training attack's examples; trades: CE(f(x)) + beta·KL(p(x)‖p(x')) " +
				"with the TRADES KL attack"},
		{Name: "attack", Type: stages.TypeString, Default: AttackPGD, Enum: []string{AttackPGD, AttackFGSM},
			Doc: "pgd-at's training attack: pgd (eps, step, steps, random_start, restarts) or fgsm with random start " +
				"(Wong et al.; step 1.25·eps)"},
		{Name: "eps", Type: stages.TypeFloat, Default: 8.0 / 255, Min: stages.Float(0), Max: stages.Float(1),
			Doc: "L∞ radius of the training and validation attacks (8/255 = 0.0313725)"},
		{Name: "step", Type: stages.TypeFloat, Default: 2.0 / 255, Min: stages.Float(0), Max: stages.Float(1),
			Doc: "step size of the PGD, TRADES and validation attacks (2/255)"},
		{Name: "steps", Type: stages.TypeInt, Default: int64(10), Min: stages.Float(1), Max: stages.Float(1000),
			Doc: "steps of the training attack (pgd, trades)"},
		{Name: "random_start", Type: stages.TypeBool, Default: true,
			Doc: "pgd training attack: start from a uniform point of the eps-ball"},
		{Name: "restarts", Type: stages.TypeInt, Default: int64(1), Min: stages.Float(1), Max: stages.Float(100),
			Doc: "pgd training attack: restarts, keeping each sample's worst case"},
		{Name: "beta", Type: stages.TypeFloat, Default: 6.0, Min: stages.Float(0), Doc: "trades: weight of the KL term"},
		{Name: "labels", Type: stages.TypeString, Default: LabelsHard,
			Enum: []string{LabelsHard, LabelsSmooth, LabelsSGLR, LabelsGiven, LabelsDistill},
			Doc: "training targets: hard (one-hot), smooth (label smoothing), sglr (self-guided refinement), " +
				"given (soft labels of the labels input), distill ((1−distill_alpha)·one-hot + distill_alpha·teacher " +
				"probabilities of the labels input)"},
		{Name: "smoothing", Type: stages.TypeFloat, Default: 0.1, Min: stages.Float(0), Max: stages.Float(1),
			Doc: "smooth: ε of (1−ε)·onehot + ε/K"},
		{Name: "sglr_lambda", Type: stages.TypeFloat, Default: 0.2, Min: stages.Float(0), Max: stages.Float(1),
			Doc: "sglr: weight λ of the clean prediction in λ·p(x) + (1−λ)·p(x')"},
		{Name: "sglr_alpha", Type: stages.TypeFloat, Default: 0.9, Min: stages.Float(0), Max: stages.Float(1),
			Doc: "sglr: bank momentum α in [0,1): S ← α·S + (1−α)·f~"},
		{Name: "warmup", Type: stages.TypeInt, Default: int64(-1), Min: stages.Float(-1),
			Doc: "sglr: epochs of plain cross-entropy before refinement starts; -1 = the first milestone " +
				"(the reference's 90 of 200, just before the first decay; epochs/2 when the schedule has no milestone)"},
		{Name: "sglr_r", Type: stages.TypeFloat, Default: -1.0, Min: stages.Float(-1), Max: stages.Float(1),
			Doc: "sglr: fixed mixing weight r of y = r·p~ + (1−r)·y_hard; negative = off (r grows as 1−α^k, so the hard " +
				"label's share is below 5% after 30 refinement epochs at α 0.9). With method trades the natural term then " +
				"trains on the model's own predictions and the KL term flattens them (Final collapse in " +
				"examples/ablation.yaml); a fixed r, e.g. 0.5, keeps the hard label's share and avoided it"},
		{Name: "distill_alpha", Type: stages.TypeFloat, Default: 0.5, Min: stages.Float(0), Max: stages.Float(1),
			Doc: "distill: weight of the teacher probabilities"},
		{Name: "val_steps", Type: stages.TypeInt, Default: int64(10), Min: stages.Float(0), Max: stages.Float(1000),
			Doc: "steps of the PGD validation attack (eps and step as above, random start); 0 = clean only"},
		{Name: "val_every", Type: stages.TypeInt, Default: int64(1), Min: stages.Float(1),
			Doc: "validate every this many epochs (the last epoch is always validated)"},
		{Name: "seed", Type: stages.TypeInt, Default: int64(0), Min: stages.Float(0),
			Doc: "replicate number, mixed into the instance's derived seed: `seed: ${{ matrix.seed }}` gives each " +
				"replicate its own initialisation, shuffling and attack noise on the same data"},
		{Name: "workers", Type: stages.TypeInt, Default: int64(0), Min: stages.Float(0), Max: stages.Float(1024),
			Doc: "data-parallel workers; 0 = every core. Results agree across worker counts only up to float " +
				"rounding, so set it explicitly for bit-identical replays on other machines (it is part of the cache key)"},
	}
}

// ConfigFromParams builds a Config from validated params and checks what the
// schema cannot: positive learning rate and factor, integer lists, milestones
// inside the run, momentum below 1.
func ConfigFromParams(ps stages.Params) (Config, error) {
	c := Config{
		Arch:        nn.Arch{Kind: ps.String("model"), Width: int(ps.Int("width"))},
		Epochs:      int(ps.Int("epochs")),
		Batch:       int(ps.Int("batch")),
		LR:          ps.Float("lr"),
		Momentum:    ps.Float("momentum"),
		Nesterov:    ps.Bool("nesterov"),
		WeightDecay: ps.Float("weight_decay"),
		Schedule:    ps.String("schedule"),
		LRFactor:    ps.Float("lr_factor"),
		PerIter:     ps.Bool("per_iteration"),
		Augment:     nn.Augment{Pad: int(ps.Int("crop_pad")), Flip: ps.Bool("flip")},
		Method:      ps.String("method"),
		Attack:      ps.String("attack"),
		Eps:         ps.Float("eps"),
		Step:        ps.Float("step"),
		Steps:       int(ps.Int("steps")),
		RandomStart: ps.Bool("random_start"),
		Restarts:    int(ps.Int("restarts")),
		Beta:        ps.Float("beta"),
		Labels:      ps.String("labels"),
		Smoothing:   ps.Float("smoothing"),
		SGLR: nn.SGLRConfig{
			Lambda:       ps.Float("sglr_lambda"),
			Alpha:        ps.Float("sglr_alpha"),
			WarmupEpochs: int(ps.Int("warmup")),
			FixedR:       ps.Float("sglr_r"),
		},
		DistillAlpha: ps.Float("distill_alpha"),
		ValSteps:     int(ps.Int("val_steps")),
		ValEvery:     int(ps.Int("val_every")),
		Workers:      int(ps.Int("workers")),
	}
	var err error
	if c.Arch.Hidden, err = positiveInts("hidden", ps.List("hidden")); err != nil {
		return c, err
	}
	if c.Arch.Channels, err = positiveInts("channels", ps.List("channels")); err != nil {
		return c, err
	}
	switch c.Arch.Kind {
	case nn.KindMLP:
		c.Arch.Channels, c.Arch.Width = nil, 0
	case nn.KindCNN:
		c.Arch.Width = 0
	case nn.KindPreActResNet18:
		c.Arch.Hidden, c.Arch.Channels = nil, nil
	}
	milestones, err := nonNegativeInts("milestones", ps.List("milestones"))
	if err != nil {
		return c, err
	}
	if len(milestones) == 0 {
		milestones = DefaultMilestones(c.Epochs)
	}
	c.Milestones = milestones
	if c.SGLR.WarmupEpochs < 0 {
		c.SGLR.WarmupEpochs = c.Epochs / 2
		if c.Schedule == "piecewise" && len(c.Milestones) > 0 {
			c.SGLR.WarmupEpochs = c.Milestones[0]
		}
	}
	if c.SGLR.FixedR < 0 {
		c.SGLR.FixedR = -1
	}
	return c, c.Validate()
}

// DefaultMilestones are the piecewise milestones used when none are given:
// [epochs/2, 3·epochs/4] (the reference's 100 and 150 of 200 epochs),
// without duplicates or a decay at epoch 0.
func DefaultMilestones(epochs int) []int {
	var out []int
	for _, m := range []int{epochs / 2, 3 * epochs / 4} {
		if m >= 1 && !slices.Contains(out, m) {
			out = append(out, m)
		}
	}
	return out
}

// Validate reports a configuration mistake with the parameter's name.
func (c Config) Validate() error {
	if c.Epochs < 1 || c.Batch < 1 {
		return fmt.Errorf("epochs %d and batch %d must be >= 1", c.Epochs, c.Batch)
	}
	if _, err := nn.ParseSchedule(c.Schedule, c.LR, c.Milestones, c.LRFactor, c.Epochs, c.PerIter); err != nil {
		return fmt.Errorf("lr, schedule, milestones, lr_factor: %w", err)
	}
	if err := nn.ValidateSGD(c.Momentum, c.WeightDecay); err != nil {
		return fmt.Errorf("momentum, weight_decay: %w", err)
	}
	if err := c.Augment.Validate(); err != nil {
		return fmt.Errorf("crop_pad: %w", err)
	}
	switch c.Method {
	case MethodStandard, MethodPGDAT, MethodTRADES:
	default:
		return fmt.Errorf("method %q unknown: want standard, pgd-at or trades", c.Method)
	}
	switch c.Attack {
	case AttackPGD, AttackFGSM:
	default:
		return fmt.Errorf("attack %q unknown: want pgd or fgsm", c.Attack)
	}
	if c.Method == MethodTRADES && c.Attack != AttackPGD {
		return fmt.Errorf("attack %q has no effect with method trades, which uses the TRADES KL attack: remove it", c.Attack)
	}
	if err := c.trainPGD().Validate(); err != nil {
		return fmt.Errorf("eps, step, steps, restarts: %w", err)
	}
	if err := c.valPGD().Validate(); err != nil {
		return fmt.Errorf("val_steps: %w", err)
	}
	if math.IsNaN(c.Beta) || math.IsInf(c.Beta, 0) || c.Beta < 0 {
		return fmt.Errorf("beta %v must be finite and >= 0", c.Beta)
	}
	switch c.Labels {
	case LabelsHard, LabelsGiven:
	case LabelsSmooth:
		if !(c.Smoothing >= 0 && c.Smoothing <= 1) {
			return fmt.Errorf("smoothing %v must be in [0,1]", c.Smoothing)
		}
	case LabelsSGLR:
		if err := c.SGLR.Validate(); err != nil {
			return fmt.Errorf("sglr_lambda, sglr_alpha, warmup, sglr_r: %w", err)
		}
		if c.SGLR.WarmupEpochs >= c.Epochs {
			return fmt.Errorf("warmup %d leaves no refinement epoch in %d epochs: lower warmup (or raise epochs)",
				c.SGLR.WarmupEpochs, c.Epochs)
		}
	case LabelsDistill:
		if !(c.DistillAlpha >= 0 && c.DistillAlpha <= 1) {
			return fmt.Errorf("distill_alpha %v must be in [0,1]", c.DistillAlpha)
		}
	default:
		return fmt.Errorf("labels %q unknown: want hard, smooth, sglr, given or distill", c.Labels)
	}
	if c.ValEvery < 1 {
		return fmt.Errorf("val_every %d must be >= 1", c.ValEvery)
	}
	if c.Workers < 0 {
		return fmt.Errorf("workers %d must be >= 0 (0 = every core)", c.Workers)
	}
	return nil
}

// NeedsLabelsInput reports whether the label strategy reads the `labels` input.
func (c Config) NeedsLabelsInput() bool { return c.Labels == LabelsGiven || c.Labels == LabelsDistill }

// trainPGD is the PGD training attack.
func (c Config) trainPGD() nn.PGD {
	return nn.PGD{Eps: c.Eps, Step: c.Step, Steps: c.Steps, RandomStart: c.RandomStart, Restarts: c.Restarts}
}

// valPGD is the validation attack: PGD-val_steps with random start.
func (c Config) valPGD() nn.PGD {
	return nn.PGD{Eps: c.Eps, Step: c.Step, Steps: c.ValSteps, RandomStart: true, Restarts: 1}
}

// positiveInts converts a list param to positive integers.
func positiveInts(name string, list []any) ([]int, error) {
	out, err := nonNegativeInts(name, list)
	if err != nil {
		return nil, err
	}
	for i, v := range out {
		if v < 1 {
			return nil, fmt.Errorf("%s: element %d is %d, want a positive integer", name, i, v)
		}
	}
	return out, nil
}

// nonNegativeInts converts a list param (ints, integral floats or numeric
// strings) to integers >= 0.
func nonNegativeInts(name string, list []any) ([]int, error) {
	out := make([]int, len(list))
	for i, v := range list {
		var f float64
		switch x := v.(type) {
		case int64:
			f = float64(x)
		case int:
			f = float64(x)
		case float64:
			f = x
		case string:
			n, err := strconv.Atoi(x)
			if err != nil {
				return nil, fmt.Errorf("%s: element %d %q is not an integer", name, i, x)
			}
			f = float64(n)
		default:
			return nil, fmt.Errorf("%s: element %d (%v) is not an integer", name, i, v)
		}
		if f != math.Trunc(f) || f < 0 || f > 1<<30 {
			return nil, fmt.Errorf("%s: element %d (%v) must be an integer in 0..2^30", name, i, v)
		}
		out[i] = int(f)
	}
	return out, nil
}
