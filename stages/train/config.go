package train

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/sglr-pipe/sglr-pipe/nn/attack"
	"github.com/sglr-pipe/sglr-pipe/nn/model"
	"github.com/sglr-pipe/sglr-pipe/nn/optim"
	"github.com/sglr-pipe/sglr-pipe/stages"
	"github.com/sglr-pipe/sglr-pipe/stages/internal/device"
	"github.com/sglr-pipe/sglr-pipe/stages/param"
)

// Training methods (the `method` parameter).
const (
	MethodStandard = "standard" // plain training on clean inputs
	MethodPGDAT    = "pgd-at"   // adversarial training on the training attack's examples (Madry et al.)
	MethodTRADES   = "trades"   // CE on clean inputs + beta·KL(p(x) ‖ p(x')) (Zhang et al.)
	// MART: BCE on x' + beta·KL(p(x) ‖ p(x'))·(1 − p_y(x)) (Wang et al., ICLR 2020)
	MethodMART = "mart"
	// AWP on pgd-at, trades and mart: the step's loss and gradient are taken at
	// adversarially perturbed weights (Wu et al., NeurIPS 2020; AT-AWP, TRADES-AWP, MART-AWP)
	MethodAWP       = "awp"
	MethodTRADESAWP = "trades-awp"
	MethodMARTAWP   = "mart-awp"
)

// methodNames are the `method` values, in documentation order.
var methodNames = []string{MethodStandard, MethodPGDAT, MethodTRADES, MethodMART, MethodAWP, MethodTRADESAWP, MethodMARTAWP}

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
	Arch model.Arch
	// Init is how the weights are drawn (model.InitWith); not part of Arch,
	// which describes the network only.
	Init model.InitScheme

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
	Augment     optim.Augment

	Method      string
	Attack      string
	Eps         float64
	Step        float64
	Steps       int
	RandomStart bool
	Restarts    int
	Beta        float64
	// AWPGamma and AWPWarmup are the AWP methods' perturbation size and
	// epochs without AWP before it starts (resolved from −1 to the method's
	// reference default; 0 for the other methods, and then left out of the
	// checkpoint fingerprint).
	AWPGamma  float64 `json:",omitempty"`
	AWPWarmup int     `json:",omitempty"`
	// Norm is the threat model of the training and validation attacks:
	// attack.Linf (NormLinf, the default) or attack.L2 (pgd only).
	Norm attack.Norm

	Labels       string
	Smoothing    float64
	SGLR         optim.SGLRConfig // WarmupEpochs resolved (−1 → the first milestone)
	DistillAlpha float64

	ValSteps int
	ValEvery int
	Workers  int // 0 = runtime.NumCPU(), resolved when training starts

	// CheckpointEvery saves a checkpoint after every this many epochs (and
	// after the last); 0 after the first epoch that ends at least
	// AutoCheckpointInterval after the last save (and after the last); −1
	// saves none. Only with CheckpointDir.
	CheckpointEvery int
	// CheckpointDir is where checkpoints are saved and resumed from (the
	// stage's Env.Checkpoints; set by Run, not a parameter); "" disables both.
	CheckpointDir string `json:"-"`
}

// params is the train stage's parameter schema.
func params() []stages.Param {
	return append([]stages.Param{
		{Name: "model", Type: stages.TypeString, Default: model.KindMLP, Enum: model.Kinds(),
			Doc: "architecture: mlp (linear-relu stack), cnn (conv3x3-relu-maxpool blocks + linear), preact-resnet18 " +
				"(Rice et al.), resnet18, resnet34, resnet50 (standard CIFAR ResNets, kuangliu-style), wrn-34-10, wrn-28-10 " +
				"(TRADES WideResNet); the residual nets need inputs of 25 to 56 pixels a side (wrn: 29 to 60)"},
		{Name: "hidden", Type: stages.TypeList, Default: []any{int64(256), int64(256)},
			Doc: "mlp: hidden layer widths; cnn: widths of the linear layers after the conv blocks"},
		{Name: "channels", Type: stages.TypeList, Default: []any{int64(32), int64(64)},
			Doc: "cnn: output channels of each conv block"},
		{Name: "width", Type: stages.TypeInt, Default: int64(64), Min: stages.Float(1), Max: stages.Float(1024),
			Doc: "preact-resnet18, resnet18/34/50: channels of the first stage (64 in the paper)"},
		{Name: "widen", Type: stages.TypeInt, Default: int64(10), Min: stages.Float(1), Max: stages.Float(64),
			Doc: "wrn-34-10, wrn-28-10: widen factor k (10 in the name; stages of 16k, 32k, 64k channels)"},
		{Name: "init", Type: stages.TypeString, Default: string(model.DefaultInit), Enum: model.InitSchemes(),
			Doc: "weight initialisation: pytorch (PyTorch's module defaults: Linear/Conv2d weights and biases " +
				"U(±1/sqrt(fan_in)), BatchNorm 1 and 0) or kaiming-normal (weights N(0, 2/fan_in), zero biases: " +
				"sglr-pipe's default before pytorch, bit-identical for reproducing older runs)"},
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
		{Name: "method", Type: stages.TypeString, Default: MethodPGDAT, Enum: methodNames,
			Doc: "standard: clean training; pgd-at: train on the training attack's examples; trades: CE(f(x)) + beta·KL(p(x)‖p(x')) " +
				"with the TRADES KL attack; mart: MART (Wang et al.) on the training attack's examples, BCE(p(x')) + " +
				"beta·KL(p(x)‖p(x'))·(1−p_y(x)); awp, trades-awp, mart-awp: pgd-at, trades, mart with adversarial weight " +
				"perturbation (Wu et al.; awp_gamma, awp_warmup)"},
		{Name: "attack", Type: stages.TypeString, Default: AttackPGD, Enum: []string{AttackPGD, AttackFGSM},
			Doc: "training attack of pgd-at, mart, awp and mart-awp: pgd (eps, step, steps, random_start, restarts) or fgsm " +
				"with random start (Wong et al.; step 1.25·eps); trades and trades-awp use the TRADES KL attack"},
		{Name: "eps", Type: stages.TypeFloat, Default: 8.0 / 255, Min: stages.Float(0),
			Doc: "radius of the training and validation attacks in the norm `norm` (8/255 = 0.0313725; at most 1 for linf)"},
		{Name: "norm", Type: stages.TypeString, Default: NormLinf, Enum: []string{NormLinf, NormL2},
			Doc: "threat model of the training and validation attacks: linf (signed steps) or l2 (PGD-L2 of the " +
				"robust-overfitting reference: steps along ∇/‖∇‖₂, projection onto the L2 ball; pgd attack of pgd-at only). " +
				"linf, the default, is left out of the cache key"},
		{Name: "step", Type: stages.TypeFloat, Default: 2.0 / 255, Min: stages.Float(0), Max: stages.Float(1),
			Doc: "step size of the PGD, TRADES and validation attacks (2/255)"},
		{Name: "steps", Type: stages.TypeInt, Default: int64(10), Min: stages.Float(1), Max: stages.Float(1000),
			Doc: "steps of the training attack (pgd, trades)"},
		{Name: "random_start", Type: stages.TypeBool, Default: true,
			Doc: "pgd training attack: start from a uniform point of the eps-ball"},
		{Name: "restarts", Type: stages.TypeInt, Default: int64(1), Min: stages.Float(1), Max: stages.Float(100),
			Doc: "pgd training attack: restarts, keeping each sample's worst case"},
		{Name: "beta", Type: stages.TypeFloat, Default: 6.0, Min: stages.Float(0),
			Doc: "trades, mart (and their awp forms): weight of the KL term (6.0 in both references)"},
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
		{Name: "checkpoint_every", Type: stages.TypeInt, Default: int64(0), Min: stages.Float(-1), Max: stages.Float(100000),
			Doc: "save the full training state in the store every this many epochs, and after the last, so that a rerun " +
				"after an interruption, or with more epochs, resumes from it; 0 = automatic (after the first epoch that " +
				"ends a minute or more after the last save, and after the last epoch), -1 = never. Not part of the cache key"},
		{Name: "workers", Type: stages.TypeInt, Default: int64(0), Min: stages.Float(0), Max: stages.Float(1024),
			Doc: "data-parallel workers; 0 = every core. Results agree across worker counts only up to float " +
				"rounding, so set it explicitly for bit-identical replays on other machines (it is part of the cache key)"},
	}, append(awpParams(), device.Params("train")...)...)
}

// ConfigFromParams builds a Config from typed params and checks what the
// schema cannot (see Config.Validate), with the rules Stage.Check applies at
// plan time.
func ConfigFromParams(ps stages.Params) (Config, error) {
	c, problems := configFromParams(ps)
	return c, param.Join(problems)
}

// Check implements stages.Checker: every rule of ConfigFromParams, and that
// the labels input is connected exactly when the label strategy reads it.
func (Stage) Check(ps stages.Params, inputs map[string][]stages.Upstream) []stages.Problem {
	c, problems := configFromParams(ps)
	if len(problems) > 0 {
		return problems
	}
	if p := c.labelsInputProblem(len(inputs["labels"]) > 0); p != nil {
		problems = append(problems, *p)
	}
	return problems
}

// labelsInputProblem says what is wrong with connecting (or not) the labels
// input under c's label strategy, or nil.
func (c Config) labelsInputProblem(connected bool) *stages.Problem {
	switch {
	case c.NeedsLabelsInput() && !connected:
		return &stages.Problem{Param: "labels", Msg: fmt.Sprintf("labels %s needs the labels input (soft labels or teacher probabilities)", c.Labels),
			Hint: "connect inputs: {labels: STAGE.labels}, e.g. from refine"}
	case !c.NeedsLabelsInput() && connected:
		return &stages.Problem{Param: "labels", Msg: fmt.Sprintf("the labels input has no effect with labels %s", c.Labels),
			Hint: "use labels given or distill, or disconnect the labels input"}
	}
	return nil
}

// configFromParams builds a Config and lists what is wrong with it.
func configFromParams(ps stages.Params) (Config, []stages.Problem) {
	c := Config{
		Arch:        model.Arch{Kind: ps.String("model"), Width: int(ps.Int("width")), Widen: int(ps.Int("widen"))},
		Init:        model.InitScheme(ps.String("init")),
		Epochs:      int(ps.Int("epochs")),
		Batch:       int(ps.Int("batch")),
		LR:          ps.Float("lr"),
		Momentum:    ps.Float("momentum"),
		Nesterov:    ps.Bool("nesterov"),
		WeightDecay: ps.Float("weight_decay"),
		Schedule:    ps.String("schedule"),
		LRFactor:    ps.Float("lr_factor"),
		PerIter:     ps.Bool("per_iteration"),
		Augment:     optim.Augment{Pad: int(ps.Int("crop_pad")), Flip: ps.Bool("flip")},
		Method:      ps.String("method"),
		Attack:      ps.String("attack"),
		Eps:         ps.Float("eps"),
		Step:        ps.Float("step"),
		Steps:       int(ps.Int("steps")),
		RandomStart: ps.Bool("random_start"),
		Restarts:    int(ps.Int("restarts")),
		Beta:        ps.Float("beta"),
		AWPGamma:    ps.Float("awp_gamma"),
		AWPWarmup:   int(ps.Int("awp_warmup")),
		Norm:        attack.Linf,
		Labels:      ps.String("labels"),
		Smoothing:   ps.Float("smoothing"),
		SGLR: optim.SGLRConfig{
			Lambda:       ps.Float("sglr_lambda"),
			Alpha:        ps.Float("sglr_alpha"),
			WarmupEpochs: int(ps.Int("warmup")),
			FixedR:       ps.Float("sglr_r"),
		},
		DistillAlpha: ps.Float("distill_alpha"),
		ValSteps:     int(ps.Int("val_steps")),
		ValEvery:     int(ps.Int("val_every")),
		Workers:      int(ps.Int("workers")),

		CheckpointEvery: int(ps.Int("checkpoint_every")),
	}
	var problems []stages.Problem
	if name := ps.String("norm"); name != "" {
		norm, err := attack.ParseNorm(name)
		if err != nil {
			problems = append(problems, stages.Problem{Param: "norm", Msg: err.Error()})
		}
		c.Norm = norm
	}
	c.Arch.Hidden = positiveInts("hidden", ps.List("hidden"), &problems)
	c.Arch.Channels = positiveInts("channels", ps.List("channels"), &problems)
	milestones := nonNegativeInts("milestones", ps.List("milestones"), &problems)
	if len(problems) > 0 {
		return c, problems
	}
	switch c.Arch.Kind {
	case model.KindMLP:
		c.Arch.Channels, c.Arch.Width, c.Arch.Widen = nil, 0, 0
	case model.KindCNN:
		c.Arch.Width, c.Arch.Widen = 0, 0
	case model.KindWRN34_10, model.KindWRN28_10:
		c.Arch.Hidden, c.Arch.Channels, c.Arch.Width = nil, nil, 0
	default: // preact-resnet18, resnet18, resnet34, resnet50
		c.Arch.Hidden, c.Arch.Channels, c.Arch.Widen = nil, nil, 0
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
	c.resolveAWP()
	return c, c.problems()
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

// Validate reports the configuration's mistakes (see problems).
func (c Config) Validate() error { return param.Join(c.problems()) }

// problems lists the configuration's mistakes, each blaming the parameter to
// change, so that the pipeline reports it at that value before anything runs
// (Stage.Check) and Run refuses the same configuration in the same words.
func (c Config) problems() []stages.Problem {
	var ps []stages.Problem
	blame := func(name string, err error) {
		if err != nil {
			ps = append(ps, stages.Problem{Param: name, Msg: err.Error()})
		}
	}
	if c.Epochs < 1 || c.Batch < 1 {
		blame("epochs", fmt.Errorf("epochs %d and batch %d must be >= 1", c.Epochs, c.Batch))
	}
	if _, err := optim.ParseSchedule(c.Schedule, c.LR, c.Milestones, c.LRFactor, c.Epochs, c.PerIter); err != nil {
		blame(c.scheduleParam(), err)
	}
	if err := optim.ValidateSGD(c.Momentum, c.WeightDecay); err != nil {
		name := "weight_decay"
		if !(c.Momentum >= 0 && c.Momentum < 1) {
			name = "momentum"
		}
		blame(name, err)
	}
	blame("crop_pad", c.Augment.Validate())
	if !slices.Contains(methodNames, c.Method) {
		blame("method", fmt.Errorf("method %q unknown: want one of %s", c.Method, strings.Join(methodNames, ", ")))
	}
	if !slices.Contains([]string{AttackPGD, AttackFGSM}, c.Attack) {
		blame("attack", fmt.Errorf("attack %q unknown: want pgd or fgsm", c.Attack))
	}
	if c.tradesAttack() && c.Attack != AttackPGD {
		blame("attack", fmt.Errorf("attack %q has no effect with method %s, which uses the TRADES KL attack: remove it", c.Attack, c.Method))
	}
	if p := c.normProblem(); p != nil {
		ps = append(ps, *p)
	} else {
		blame("step", c.trainPGD().Validate())
		blame("val_steps", c.valPGD().Validate())
	}
	if math.IsNaN(c.Beta) || math.IsInf(c.Beta, 0) || c.Beta < 0 {
		blame("beta", fmt.Errorf("beta %v must be finite and >= 0", c.Beta))
	}
	ps = append(ps, c.awpProblems()...)
	ps = append(ps, c.labelProblems()...)
	if c.ValEvery < 1 {
		blame("val_every", fmt.Errorf("val_every %d must be >= 1", c.ValEvery))
	}
	if c.Workers < 0 {
		blame("workers", fmt.Errorf("workers %d must be >= 0 (0 = every core)", c.Workers))
	}
	return ps
}

// scheduleParam names the parameter a schedule error blames: lr, lr_factor
// or milestones.
func (c Config) scheduleParam() string {
	switch {
	case !(c.LR > 0) || math.IsInf(c.LR, 0):
		return "lr"
	case c.Schedule == "piecewise" && (!(c.LRFactor > 0) || math.IsInf(c.LRFactor, 0)):
		return "lr_factor"
	case c.Schedule == "piecewise":
		return "milestones"
	}
	return "schedule"
}

// labelProblems checks the settings of the label strategy.
func (c Config) labelProblems() []stages.Problem {
	problem := func(name, format string, args ...any) []stages.Problem {
		return []stages.Problem{{Param: name, Msg: fmt.Sprintf(format, args...)}}
	}
	switch c.Labels {
	case LabelsHard, LabelsGiven:
	case LabelsSmooth:
		if !(c.Smoothing >= 0 && c.Smoothing <= 1) {
			return problem("smoothing", "smoothing %v must be in [0,1]", c.Smoothing)
		}
	case LabelsSGLR:
		if err := c.SGLR.Validate(); err != nil {
			name := "sglr_r"
			switch {
			case !(c.SGLR.Lambda >= 0 && c.SGLR.Lambda <= 1):
				name = "sglr_lambda"
			case !(c.SGLR.Alpha >= 0 && c.SGLR.Alpha < 1):
				name = "sglr_alpha"
			case c.SGLR.WarmupEpochs < 0:
				name = "warmup"
			}
			return problem(name, "%v", err)
		}
		if c.SGLR.WarmupEpochs >= c.Epochs {
			return problem("warmup", "warmup %d leaves no refinement epoch in %d epochs: lower warmup (or raise epochs)",
				c.SGLR.WarmupEpochs, c.Epochs)
		}
	case LabelsDistill:
		if !(c.DistillAlpha >= 0 && c.DistillAlpha <= 1) {
			return problem("distill_alpha", "distill_alpha %v must be in [0,1]", c.DistillAlpha)
		}
	default:
		return problem("labels", "labels %q unknown: want hard, smooth, sglr, given or distill", c.Labels)
	}
	return nil
}

// NeedsLabelsInput reports whether the label strategy reads the `labels` input.
func (c Config) NeedsLabelsInput() bool { return c.Labels == LabelsGiven || c.Labels == LabelsDistill }

// trainPGD is the PGD training attack.
func (c Config) trainPGD() attack.PGD {
	return attack.PGD{Eps: c.Eps, Step: c.Step, Steps: c.Steps, RandomStart: c.RandomStart, Restarts: c.Restarts, Norm: c.Norm}
}

// valPGD is the validation attack: PGD-val_steps with random start, in the
// training norm.
func (c Config) valPGD() attack.PGD {
	return attack.PGD{Eps: c.Eps, Step: c.Step, Steps: c.ValSteps, RandomStart: true, Restarts: 1, Norm: c.Norm}
}

// Values of the norm parameter.
const (
	NormLinf = "linf"
	NormL2   = "l2"
)

// keyNeutral is what Stage.KeyNeutral leaves out of the cache key: the
// values of later parameters that compute what train computed before they
// existed — device cpu (index 0), norm linf, init kaiming-normal (the only
// initialisation before init; the default is now pytorch, which keys anew),
// widen 10 (read by the WideResNets only) and awp_gamma/awp_warmup −1
// (nothing for the methods that existed then).
func keyNeutral() stages.Params {
	ps := device.KeyNeutral()
	ps["norm"] = NormLinf
	ps["init"] = string(model.InitKaimingNormal)
	ps["widen"] = int64(10)
	ps["awp_gamma"] = -1.0
	ps["awp_warmup"] = int64(-1)
	return ps
}

// normProblem says what is wrong with the norm for the method and attack:
// L2 is the pgd attack's (the fgsm and TRADES attacks are L∞ only), and an
// L∞ radius above 1 covers the whole box.
func (c Config) normProblem() *stages.Problem {
	switch {
	case c.Norm != attack.Linf && c.Norm != attack.L2:
		return &stages.Problem{Param: "norm", Msg: fmt.Sprintf("norm %s is not a training threat model: want linf or l2", c.Norm)}
	case c.Norm == attack.L2 && c.tradesAttack():
		return &stages.Problem{Param: "norm", Msg: fmt.Sprintf("norm l2 is not supported by method %s (its TRADES KL attack is L∞)", c.Method),
			Hint: "use method pgd-at, or norm linf"}
	case c.Norm == attack.Linf && !(c.Eps <= 1):
		return &stages.Problem{Param: "eps", Msg: fmt.Sprintf("eps %v must be in [0,1] for norm linf", c.Eps)}
	}
	return nil
}

// positiveInts converts a list param to positive integers, adding a
// problem for each element that is not one.
func positiveInts(name string, list []any, problems *[]stages.Problem) []int {
	out := nonNegativeInts(name, list, problems)
	for i, v := range out {
		if v < 1 {
			*problems = append(*problems, stages.Problem{Param: name, Elem: i + 1, Msg: fmt.Sprintf("%d is not a positive integer", v)})
		}
	}
	return out
}

// nonNegativeInts converts a list param (ints, integral floats or numeric
// strings) to integers >= 0, adding a problem for each element that is not
// one.
func nonNegativeInts(name string, list []any, problems *[]stages.Problem) []int {
	out := make([]int, len(list))
	for i, v := range list {
		bad := func(format string, args ...any) {
			*problems = append(*problems, stages.Problem{Param: name, Elem: i + 1, Msg: fmt.Sprintf(format, args...)})
		}
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
				bad("%q is not an integer", x)
				continue
			}
			f = float64(n)
		default:
			bad("%v is not an integer", v)
			continue
		}
		if f != math.Trunc(f) || f < 0 || f > 1<<30 {
			bad("%v must be an integer in 0..2^30", v)
			continue
		}
		out[i] = int(f)
	}
	return out
}
