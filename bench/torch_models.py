"""PyTorch reference modules for sglr-pipe's model architectures.

These modules DEFINE the tensor names and layouts of sglr-pipe's model
artifacts: the Go engine (package nn) names every weight exactly as the
state_dict of the matching module below, in state_dict order, with PyTorch's
layouts (Linear weight [out, in], Conv2d weight [out, in, kh, kw]). So a model
exported with `sglr-pipe export REF --format npz` loads here without renaming,
and without restating its architecture, which the archive holds:

    from torch_models import load_npz
    model = load_npz("model.npz")                   # eval mode
    logits = model(x)                               # x: float32 [N, C, H, W]

read_npz gives the (arch, state_dict) pair instead; build(arch) makes a fresh
module from a spec. Keys of the archive that begin with "__" are metadata,
not tensors: "__arch__.json" holds the artifact's sglr.arch JSON as a uint8
array of its UTF-8 bytes.

The architecture spec is the JSON stored in the artifact (nn.Arch in Go):
    {"kind": "mlp" | "cnn" | "preact-resnet18" | "resnet18" | "resnet34" | "resnet50"
             | "wrn-34-10" | "wrn-28-10",
     "input": [C, H, W], "classes": K,
     "hidden": [...],    # mlp: hidden widths; cnn: widths of the linear layers
     "channels": [...],  # cnn: output channels of each conv block
     "width": w,         # preact-resnet18, resnet*: channels of the first stage (64)
     "widen": k}         # wrn-*: widen factor (10)

Requires PyTorch (tested with Debian's python3-torch 1.13, CPU).
"""

import json

import numpy as np
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


class BasicBlock(nn.Module):
    """Post-activation basic block of the standard CIFAR ResNet
    (kuangliu/pytorch-cifar resnet.py, as in the robust-overfitting code)."""

    expansion = 1

    def __init__(self, in_planes, planes, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != self.expansion * planes:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, self.expansion * planes, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(self.expansion * planes),
            )

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += self.shortcut(x)
        return F.relu(out)


class Bottleneck(nn.Module):
    """Bottleneck block (expansion 4, stride on the 3x3 convolution) of
    kuangliu/pytorch-cifar resnet.py."""

    expansion = 4

    def __init__(self, in_planes, planes, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, self.expansion * planes, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm2d(self.expansion * planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != self.expansion * planes:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, self.expansion * planes, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(self.expansion * planes),
            )

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        out += self.shortcut(x)
        return F.relu(out)


class ResNet(nn.Module):
    """The standard CIFAR ResNet of kuangliu/pytorch-cifar (ResNet18: BasicBlock
    [2,2,2,2]; ResNet34: BasicBlock [3,4,6,3]; ResNet50: Bottleneck [3,4,6,3]),
    with the input channels and the width (64 there) as parameters.

    state_dict (w = width, e = expansion): conv1.weight [w, in_ch, 3, 3], bn1.*;
    layer<s>.<b>.conv<i>.weight, layer<s>.<b>.bn<i>.*,
    layer<s>.<b>.shortcut.0.weight and shortcut.1.* where the shape changes;
    linear.weight [classes, 8we], linear.bias. avg_pool2d(4) must leave 1x1:
    input sides of 25 to 56 pixels.
    """

    def __init__(self, block, num_blocks, in_ch, classes, width=64):
        super().__init__()
        self.in_planes = width
        self.conv1 = nn.Conv2d(in_ch, width, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.layer1 = self._make_layer(block, width, num_blocks[0], stride=1)
        self.layer2 = self._make_layer(block, 2 * width, num_blocks[1], stride=2)
        self.layer3 = self._make_layer(block, 4 * width, num_blocks[2], stride=2)
        self.layer4 = self._make_layer(block, 8 * width, num_blocks[3], stride=2)
        self.linear = nn.Linear(8 * width * block.expansion, classes)

    def _make_layer(self, block, planes, num_blocks, stride):
        strides = [stride] + [1] * (num_blocks - 1)
        layers = []
        for s in strides:
            layers.append(block(self.in_planes, planes, s))
            self.in_planes = planes * block.expansion
        return nn.Sequential(*layers)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer1(out)
        out = self.layer2(out)
        out = self.layer3(out)
        out = self.layer4(out)
        out = F.avg_pool2d(out, 4)
        out = out.view(out.size(0), -1)
        return self.linear(out)


class WideBasicBlock(nn.Module):
    """The WideResNet's pre-activation block (BasicBlock of the TRADES and
    robust-overfitting wideresnet.py), dropRate 0."""

    def __init__(self, in_planes, out_planes, stride):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_planes)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(out_planes, out_planes, kernel_size=3, stride=1, padding=1, bias=False)
        self.equalInOut = in_planes == out_planes
        self.convShortcut = (not self.equalInOut) and nn.Conv2d(
            in_planes, out_planes, kernel_size=1, stride=stride, padding=0, bias=False) or None

    def forward(self, x):
        if not self.equalInOut:
            x = self.relu1(self.bn1(x))
        else:
            out = self.relu1(self.bn1(x))
        out = self.relu2(self.bn2(self.conv1(out if self.equalInOut else x)))
        out = self.conv2(out)
        return torch.add(x if self.equalInOut else self.convShortcut(x), out)


class NetworkBlock(nn.Module):
    """nb_layers WideBasicBlocks, the first with the stride (state_dict: layer.<i>.*)."""

    def __init__(self, nb_layers, in_planes, out_planes, stride):
        super().__init__()
        self.layer = nn.Sequential(*[WideBasicBlock(i == 0 and in_planes or out_planes, out_planes, i == 0 and stride or 1)
                                     for i in range(int(nb_layers))])

    def forward(self, x):
        return self.layer(x)


class WideResNet(nn.Module):
    """WideResNet-depth-widen of the TRADES / robust-overfitting code, dropRate 0,
    with the input channels as a parameter. The reference also builds a
    sub_block1 that forward never calls; it is left out (load a reference
    checkpoint with its sub_block1.* entries removed). The reference re-draws
    conv weights as N(0, 2/(k*k*out_channels)) and zeroes the fc bias; this
    module keeps PyTorch's default initialisation, like sglr-pipe's `init: pytorch`.

    state_dict (k = widen): conv1.weight [16, in_ch, 3, 3];
    block<g>.layer.<b>.{bn1,bn2}.*, .conv1.weight, .conv2.weight,
    block<g>.layer.0.convShortcut.weight where the channels change;
    bn1.*; fc.weight [classes, 64k], fc.bias. avg_pool2d(8) must leave 1x1:
    input sides of 29 to 60 pixels.
    """

    def __init__(self, depth, in_ch, classes, widen_factor=10):
        super().__init__()
        n_channels = [16, 16 * widen_factor, 32 * widen_factor, 64 * widen_factor]
        if (depth - 4) % 6 != 0:
            raise ValueError(f"WideResNet depth {depth}: want 6n+4")
        n = (depth - 4) // 6
        self.conv1 = nn.Conv2d(in_ch, n_channels[0], kernel_size=3, stride=1, padding=1, bias=False)
        self.block1 = NetworkBlock(n, n_channels[0], n_channels[1], 1)
        self.block2 = NetworkBlock(n, n_channels[1], n_channels[2], 2)
        self.block3 = NetworkBlock(n, n_channels[2], n_channels[3], 2)
        self.bn1 = nn.BatchNorm2d(n_channels[3])
        self.relu = nn.ReLU(inplace=True)
        self.fc = nn.Linear(n_channels[3], classes)
        self.nChannels = n_channels[3]

    def forward(self, x):
        out = self.conv1(x)
        out = self.block1(out)
        out = self.block2(out)
        out = self.block3(out)
        out = self.relu(self.bn1(out))
        out = F.avg_pool2d(out, 8)
        out = out.view(-1, self.nChannels)
        return self.fc(out)


# The residual kinds beyond preact-resnet18: kind -> (constructor(in_ch, classes, arch),
# stride-2 stages, avg_pool2d window).
RESIDUAL_KINDS = {
    "resnet18": (lambda c, k, a: ResNet(BasicBlock, [2, 2, 2, 2], c, k, a.get("width") or 64), 3, 4),
    "resnet34": (lambda c, k, a: ResNet(BasicBlock, [3, 4, 6, 3], c, k, a.get("width") or 64), 3, 4),
    "resnet50": (lambda c, k, a: ResNet(Bottleneck, [3, 4, 6, 3], c, k, a.get("width") or 64), 3, 4),
    "wrn-34-10": (lambda c, k, a: WideResNet(34, c, k, a.get("widen") or 10), 2, 8),
    "wrn-28-10": (lambda c, k, a: WideResNet(28, c, k, a.get("widen") or 10), 2, 8),
}


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
    if kind in RESIDUAL_KINDS:
        make, halvings, window = RESIDUAL_KINDS[kind]
        for side in (h, w):
            for _ in range(halvings):  # the stride-2 stages: 3x3 conv, padding 1 (or 1x1)
                side = (side - 1) // 2 + 1
            if side // window != 1:
                raise ValueError(f"{kind} input {shape!r}: avg_pool2d({window}) must leave a 1x1 map")
        return make(c, classes, arch)
    raise ValueError(f"arch kind {kind!r}: want mlp, cnn, preact-resnet18 or one of {', '.join(RESIDUAL_KINDS)}")


def state_layout(model):
    """[(name, shape, is_buffer, dtype)] of a module's state_dict, in order."""
    params = {name for name, _ in model.named_parameters()}
    return [(name, list(t.shape), name not in params, str(t.dtype).replace("torch.", ""))
            for name, t in model.state_dict().items()]


# The key of the architecture in a model .npz (artifacts.NPZArchKey in Go): the
# artifact's sglr.arch JSON as a 1-D uint8 array of its UTF-8 bytes.
ARCH_KEY = "__arch__.json"
# Keys of a model .npz that begin with this are metadata, not state_dict entries.
META_PREFIX = "__"


def read_npz(path):
    """(arch, state) of a model archive from `sglr-pipe export REF --format npz`:
    the architecture spec (a dict) stored under ARCH_KEY, and the state_dict
    as {name: tensor} in archive order (the state_dict order), without the
    metadata keys. Raises ValueError for an archive without a readable
    architecture (one exported before sglr-pipe stored it: pass the
    artifact's sglr.arch to build() and load the tensors yourself)."""
    with np.load(path, allow_pickle=False) as z:
        if ARCH_KEY not in z.files:
            raise ValueError(f"{path}: no {ARCH_KEY} entry; it holds {z.files[:5]}... "
                             "(exported by an older sglr-pipe? re-export it)")
        raw = z[ARCH_KEY]
        if raw.dtype != np.uint8 or raw.ndim != 1:
            raise ValueError(f"{path}: {ARCH_KEY} is {raw.dtype} of shape {list(raw.shape)}, want 1-D uint8")
        try:
            arch = json.loads(raw.tobytes().decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ValueError(f"{path}: {ARCH_KEY} is not UTF-8 JSON: {e}") from e
        if not isinstance(arch, dict):
            raise ValueError(f"{path}: {ARCH_KEY} holds a {type(arch).__name__}, want a JSON object")
        # np.array(..., order="C") copies out of the archive and keeps 0-d arrays 0-d.
        state = {k: torch.from_numpy(np.array(z[k], order="C")) for k in z.files if not k.startswith(META_PREFIX)}
    return arch, state


def load_npz(path, strict=True):
    """The model of an exported .npz, ready to run: built from the archive's
    own architecture (ARCH_KEY), its state_dict loaded (strict: every name
    present, every shape equal), in eval mode, so BatchNorm uses the stored
    running statistics (call .train() to fine-tune). Raises ValueError when
    the archive has no architecture or its tensors do not fit it."""
    arch, state = read_npz(path)
    model = build(arch)
    try:
        model.load_state_dict(state, strict=strict)
    except RuntimeError as e:
        raise ValueError(f"{path}: the tensors do not fit the {arch.get('kind')} architecture: {e}") from e
    return model.eval()


if __name__ == "__main__":
    # Prints the state_dict layout of the architecture given as JSON in argv[1].
    import json
    import sys

    if len(sys.argv) != 2:
        sys.exit("usage: torch_models.py ARCH_JSON   (prints the state_dict layout as JSON)")
    layout = state_layout(build(json.loads(sys.argv[1])))
    print(json.dumps([{"name": n, "shape": s, "buffer": b, "dtype": d} for n, s, b, d in layout]))
