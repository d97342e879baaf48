package model

// Arch is a model architecture. It is stored in the model artifact, so it
// must describe the network completely (with the weights).
type Arch struct {
	Kind    string `json:"kind"`    // one of Kinds(): "mlp", "cnn", "preact-resnet18", "resnet18", "resnet34", "resnet50", "wrn-34-10", "wrn-28-10"
	Input   []int  `json:"input"`   // per-sample shape C,H,W (e.g. [1,28,28])
	Classes int    `json:"classes"` // K

	Hidden   []int `json:"hidden,omitempty"`   // mlp: hidden widths; cnn: widths of the linear layers after the conv blocks
	Channels []int `json:"channels,omitempty"` // cnn: output channels of each conv(3x3,pad 1)-relu-maxpool(2) block
	Width    int   `json:"width,omitempty"`    // preact-resnet18, resnet18/34/50: channels of the first stage (0 = 64, the paper's; 8*Width planes at the end)
	Widen    int   `json:"widen,omitempty"`    // wrn-34-10, wrn-28-10: widen factor k (0 = 10, the name's; 16k, 32k, 64k channels)
}

// Param is one weight tensor, named and laid out exactly as in the equivalent
// PyTorch module's state_dict (see bench/torch_models.py), so models export to
// PyTorch without renaming.
type Param struct {
	Name  string    // e.g. "layers.0.weight", "layer1.0.bn1.running_mean"
	Shape []int     // PyTorch layout: Linear [out,in], Conv2d [out,in,kh,kw]
	Data  []float32 // row-major, len = prod(Shape)
	// Buffer marks state that is not trained by gradient descent
	// (BatchNorm running_mean, running_var, num_batches_tracked).
	Buffer bool
}

// Weights is a model's full state, in a fixed order (the state_dict order).
type Weights struct {
	Arch   Arch
	Params []*Param
}

// Mode selects BatchNorm behaviour: Train uses batch statistics and updates
// the running ones; Eval uses the running statistics. Attacks always run in Eval.
type Mode int

const (
	Eval Mode = iota
	Train
)
