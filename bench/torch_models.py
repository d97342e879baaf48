"""PyTorch reference modules for sglr-pipe's model architectures.

These modules DEFINE the tensor names and layouts of sglr-pipe's model
artifacts: the Go engine (package nn) names every weight exactly as the
state_dict of the matching module below, in state_dict order, with PyTorch's
layouts (Linear weight [out, in], Conv2d weight [out, in, kh, kw]). So a model
exported with `sglr-pipe export REF --format npz` loads here without renaming:

    import json, numpy as np, torch
    from torch_models import build
    z = np.load("model.npz")
    model = build(json.loads(ARCH_JSON))            # the artifact's sglr.arch
    model.load_state_dict({k: torch.from_numpy(v) for k, v in z.items()})

The architecture spec is the JSON stored in the artifact (nn.Arch in Go):
    {"kind": "mlp" | "cnn" | "preact-resnet18",
     "input": [C, H, W], "classes": K,
     "hidden": [...],    # mlp: hidden widths; cnn: widths of the linear layers
     "channels": [...],  # cnn: output channels of each conv block
     "width": w}         # preact-resnet18: channels of the first stage (64)

Requires PyTorch (tested with Debian's python3-torch 1.13, CPU).
"""

import torch
import torch.nn as nn
import torch.nn.functional as F


class MLP(nn.Module):
    """x.flatten(1) -> [Linear -> ReLU] per hidden width -> Linear head.

    state_dict: layers.<i>.weight [h, prev], layers.<i>.bias [h],
    head.weight [classes, prev], head.bias [classes].
    """

    def __init__(self, input_size, hidden, classes):
        super().__init__()
        layers, prev = [], input_size
        for h in hidden:
            layers.append(nn.Linear(prev, h))
            prev = h
        self.layers = nn.ModuleList(layers)
        self.head = nn.Linear(prev, classes)

    def forward(self, x):
        out = x.flatten(1)
        for layer in self.layers:
            out = F.relu(layer(out))
        return self.head(out)


class CNN(nn.Module):
    """[Conv2d(3x3, pad 1) -> ReLU -> MaxPool2d(2)] per channel count ->
    flatten -> [Linear -> ReLU] per hidden width -> Linear head.

    state_dict: convs.<i>.weight [c, prev, 3, 3], convs.<i>.bias [c],
    fcs.<i>.weight [h, prev], fcs.<i>.bias [h], head.weight, head.bias.
    The first linear layer sees channels[-1] * (H/2^n) * (W/2^n) features
    (floor division at every pool), flattened in C, H, W order.
    """

    def __init__(self, in_ch, channels, hidden, classes, hw):
        super().__init__()
        h, w = hw
        convs, prev = [], in_ch
        for c in channels:
            convs.append(nn.Conv2d(prev, c, 3, padding=1))
            prev = c
            h, w = h // 2, w // 2
        if h < 1 or w < 1:
            raise ValueError(f"cnn: {len(channels)} pooling steps shrink input {list(hw)} to nothing")
        self.convs = nn.ModuleList(convs)
        fcs, prev = [], prev * h * w
        for width in hidden:
            fcs.append(nn.Linear(prev, width))
            prev = width
        self.fcs = nn.ModuleList(fcs)
        self.head = nn.Linear(prev, classes)

    def forward(self, x):
        out = x
        for conv in self.convs:
            out = F.max_pool2d(F.relu(conv(out)), 2)
        out = out.flatten(1)
        for fc in self.fcs:
            out = F.relu(fc(out))
        return self.head(out)


class PreActBlock(nn.Module):
    """Pre-activation basic block, as in Rice et al. 2020 (preactresnet.py)."""

    expansion = 1

    def __init__(self, in_planes, planes, stride=1):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = nn.Conv2d(in_planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=1, padding=1, bias=False)
        if stride != 1 or in_planes != self.expansion * planes:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, self.expansion * planes, kernel_size=1, stride=stride, bias=False)
            )

    def forward(self, x):
        out = F.relu(self.bn1(x))
        shortcut = self.shortcut(out) if hasattr(self, "shortcut") else x
        out = self.conv1(out)
        out = self.conv2(F.relu(self.bn2(out)))
        out += shortcut
        return out


class PreActResNet18(nn.Module):
    """PreActResNet-18 of the robust-overfitting reference (Rice et al. 2020),
    with the input channels and the width (64 there) as parameters.

    state_dict (w = width): conv1.weight [w, in_ch, 3, 3];
    layer<s>.<b>.{bn1,bn2}.{weight,bias,running_mean,running_var,num_batches_tracked},
    layer<s>.<b>.conv1.weight, layer<s>.<b>.conv2.weight,
    layer<s>.0.shortcut.0.weight (stages 2-4, or when in != planes);
    bn.*; linear.weight [classes, 8w], linear.bias [classes].
    The final avg_pool2d(4) must leave a 1x1 map: square inputs of 25 to 56 pixels
    (e.g. 28x28, 32x32).
    """

    def __init__(self, in_ch, classes, width=64):
        super().__init__()
        self.in_planes = width
        self.conv1 = nn.Conv2d(in_ch, width, kernel_size=3, stride=1, padding=1, bias=False)
        self.layer1 = self._make_layer(width, 2, stride=1)
        self.layer2 = self._make_layer(2 * width, 2, stride=2)
        self.layer3 = self._make_layer(4 * width, 2, stride=2)
        self.layer4 = self._make_layer(8 * width, 2, stride=2)
        self.bn = nn.BatchNorm2d(8 * width * PreActBlock.expansion)
        self.linear = nn.Linear(8 * width * PreActBlock.expansion, classes)

    def _make_layer(self, planes, num_blocks, stride):
        strides = [stride] + [1] * (num_blocks - 1)
        layers = []
        for s in strides:
            layers.append(PreActBlock(self.in_planes, planes, s))
            self.in_planes = planes * PreActBlock.expansion
        return nn.Sequential(*layers)

    def forward(self, x):
        out = self.conv1(x)
        out = self.layer1(out)
        out = self.layer2(out)
        out = self.layer3(out)
        out = self.layer4(out)
        out = F.relu(self.bn(out))
        out = F.avg_pool2d(out, 4)
        out = out.view(out.size(0), -1)
        return self.linear(out)


def build(arch):
    """Builds the module that an architecture spec (a dict, see the module
    docstring) describes. Raises ValueError for a spec it cannot build."""
    kind = arch.get("kind")
    shape = arch.get("input")
    classes = arch.get("classes")
    if not isinstance(shape, list) or len(shape) != 3 or not all(isinstance(s, int) and s > 0 for s in shape):
        raise ValueError(f"arch input {shape!r}: want [C, H, W] of positive integers")
    if not isinstance(classes, int) or classes < 1:
        raise ValueError(f"arch classes {classes!r}: want a positive integer")
    c, h, w = shape
    if kind == "mlp":
        return MLP(c * h * w, list(arch.get("hidden") or []), classes)
    if kind == "cnn":
        return CNN(c, list(arch.get("channels") or []), list(arch.get("hidden") or []), classes, (h, w))
    if kind == "preact-resnet18":
        width = arch.get("width") or 64
        side = h
        for _ in range(3):  # the three stride-2 stages: 3x3 conv, padding 1
            side = (side - 1) // 2 + 1
        if h != w or side // 4 != 1:
            raise ValueError(f"preact-resnet18 input {shape!r}: avg_pool2d(4) must leave a 1x1 map "
                             "(square inputs of 25 to 56 pixels)")
        return PreActResNet18(c, classes, width)
    raise ValueError(f"arch kind {kind!r}: want mlp, cnn or preact-resnet18")


def state_layout(model):
    """[(name, shape, is_buffer, dtype)] of a module's state_dict, in order."""
    params = {name for name, _ in model.named_parameters()}
    return [(name, list(t.shape), name not in params, str(t.dtype).replace("torch.", ""))
            for name, t in model.state_dict().items()]


if __name__ == "__main__":
    # Prints the state_dict layout of the architecture given as JSON in argv[1].
    import json
    import sys

    if len(sys.argv) != 2:
        sys.exit("usage: torch_models.py ARCH_JSON   (prints the state_dict layout as JSON)")
    layout = state_layout(build(json.loads(sys.argv[1])))
    print(json.dumps([{"name": n, "shape": s, "buffer": b, "dtype": d} for n, s, b, d in layout]))
