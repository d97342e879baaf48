"""PyTorch PGD-20 reference for cross-checking sglr-pipe's robust accuracy
(Go test cmd/sglr-pipe/pgd_crosscheck_test.go).

    /usr/bin/python3 pgd_crosscheck.py MODEL.npz ARCH DATA [--eps E] [--step S]
                                       [--steps N] [--seed SEED] [--batch B]
                                       [--norm linf|l2] [--no-random-start]

MODEL.npz  a model exported with `sglr-pipe export REF --format npz` (its
           state_dict, see torch_models.py)
ARCH       the model's architecture spec (the artifact's sglr.arch metadata):
           the JSON text itself, or the path of a file holding it
DATA       the samples, either
             - the directory written by `sglr-pipe export REF --format npy`
               for a dataset artifact: image.npy [N, C, H, W] float32 in
               [0, 1] and label.npy [N] (any integer type), or
             - an .npz archive with x [N, C, H, W] float32 in [0, 1] and
               y [N] integers.

It prints one line of JSON,
    {"clean_acc": ..., "pgd20_acc": ..., "n": ..., "norm": ...}
with the accuracies as fractions in [0, 1] (like sglr-pipe's eval metrics).

The attack is the PGD of Madry et al. 2018 as in the robust-overfitting
reference (Rice et al. 2020, attack_pgd without early stop, one restart).
--norm linf (the default): delta ~ U(-eps, eps), x' = clamp(x + delta, 0, 1);
then per step delta += step * sign(d CE(f(x'), y) / d x'), projected to
[-eps, eps] and clipped so that x + delta stays in [0, 1].
--norm l2: delta = r * eps * g / ||g||_2 with g ~ N(0, I), r ~ U(0, 1) per
sample, clipped to the box; then per step delta += step * grad / (||grad||_2
+ 1e-10) with grad the gradient of the per-sample cross-entropy, rescaled
onto the L2 ball of radius eps (torch.renorm) and clipped to the box.
--no-random-start starts from delta = 0 (then the attack is deterministic
and sglr-pipe's PGD without random start must give the same iterates up to
float rounding). The final iterate is evaluated.
The model runs in eval mode in float32, in batches of --batch samples, with
the random starts drawn after torch.manual_seed(--seed). --steps defaults to
20 (hence "pgd20_acc"; the key keeps its name for other step counts).
"""

import argparse
import json
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.dont_write_bytecode = True  # no __pycache__ in the source tree when the Go tests run this
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_models import build  # noqa: E402


def load_arch(arg):
    """The architecture spec: arg is JSON text or the path of a JSON file."""
    text = arg
    if not arg.lstrip().startswith("{"):
        try:
            with open(arg, encoding="utf-8") as f:
                text = f.read()
        except OSError as e:
            raise ValueError(f"arch {arg!r} is neither JSON text nor a readable file: {e}") from e
    try:
        arch = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"arch {arg!r}: not valid JSON: {e}") from e
    if not isinstance(arch, dict):
        raise ValueError(f"arch {arg!r}: want a JSON object, got {type(arch).__name__}")
    return arch


def load_model(path, arch):
    """Builds arch in float32, eval mode, with the state_dict of MODEL.npz
    loaded strictly (every name present, every shape equal)."""
    model = build(arch).float()
    try:
        with np.load(path, allow_pickle=False) as z:
            # Keys beginning with "__" (the architecture, __arch__.json) are metadata, not tensors.
            weights = {k: z[k] for k in z.files if not k.startswith("__")}
    except (OSError, ValueError) as e:
        raise ValueError(f"model {path}: {e}") from e
    current = model.state_dict()
    missing = [k for k in current if k not in weights]
    unexpected = [k for k in weights if k not in current]
    if missing or unexpected:
        raise ValueError(f"model {path} does not match the {arch.get('kind')} state_dict: "
                         f"missing {missing}, unexpected {unexpected}")
    state = {}
    for name, ref in current.items():
        value = torch.from_numpy(np.array(weights[name], order="C"))
        if tuple(value.shape) != tuple(ref.shape):
            raise ValueError(f"model {path}: {name} has shape {list(value.shape)}, "
                             f"the module wants {list(ref.shape)}")
        state[name] = value.to(ref.dtype)
    model.load_state_dict(state, strict=True)
    model.eval()
    return model


def load_data(path, arch):
    """The samples (x float32 [N, C, H, W], y int64 [N]) of DATA, checked
    against the architecture's input shape and class count."""
    try:
        if os.path.isdir(path):
            x = np.load(os.path.join(path, "image.npy"), allow_pickle=False)
            y = np.load(os.path.join(path, "label.npy"), allow_pickle=False)
        else:
            with np.load(path, allow_pickle=False) as z:
                if "x" not in z.files or "y" not in z.files:
                    raise ValueError(f"holds {z.files}, want arrays x and y")
                x, y = z["x"], z["y"]
    except (OSError, ValueError) as e:
        raise ValueError(f"data {path}: {e}") from e
    shape = list(arch["input"])
    if x.ndim != 4 or list(x.shape[1:]) != shape:
        raise ValueError(f"data {path}: images have shape {list(x.shape)}, want [N, {', '.join(map(str, shape))}]")
    if y.ndim != 1 or y.shape[0] != x.shape[0]:
        raise ValueError(f"data {path}: labels have shape {list(y.shape)}, want [{x.shape[0]}]")
    if y.dtype.kind not in "iu":
        raise ValueError(f"data {path}: labels have dtype {y.dtype}, want integers")
    x = np.ascontiguousarray(x, dtype=np.float32)
    y = y.astype(np.int64)
    if x.size and not (np.isfinite(x).all() and x.min() >= 0 and x.max() <= 1):
        raise ValueError(f"data {path}: images must lie in [0, 1], found [{x.min()}, {x.max()}]")
    if y.size and (y.min() < 0 or y.max() >= arch["classes"]):
        raise ValueError(f"data {path}: labels span [{y.min()}, {y.max()}], want [0, {arch['classes'] - 1}]")
    return torch.from_numpy(x), torch.from_numpy(y)


def pgd(model, x, y, eps, step, steps, norm="linf", random_start=True):
    """The final PGD iterate for the batch x with labels y (see the module doc)."""
    if norm == "l2":
        return pgd_l2(model, x, y, eps, step, steps, random_start)
    delta = torch.zeros_like(x)
    if random_start:
        delta.uniform_(-eps, eps)
    delta = torch.min(torch.max(delta, -x), 1 - x)  # x + delta in [0, 1]
    for _ in range(steps):
        delta.requires_grad_(True)
        loss = F.cross_entropy(model(x + delta), y)
        (grad,) = torch.autograd.grad(loss, delta)
        with torch.no_grad():
            delta = torch.clamp(delta + step * grad.sign(), -eps, eps)
            delta = torch.min(torch.max(delta, -x), 1 - x)
    return (x + delta).detach()


def pgd_l2(model, x, y, eps, step, steps, random_start):
    """The final L2 PGD iterate (Rice et al.'s attack_pgd, norm "l_2")."""
    n = x.shape[0]
    delta = torch.zeros_like(x)
    if random_start:
        delta.normal_()
        norms = delta.view(n, -1).norm(p=2, dim=1).view(n, 1, 1, 1)
        r = torch.zeros_like(norms).uniform_(0, 1)
        delta *= r / norms * eps
    delta = torch.min(torch.max(delta, -x), 1 - x)
    for _ in range(steps):
        delta.requires_grad_(True)
        # Summed, so that each sample's gradient is its own loss's (the
        # normalisation makes the scale irrelevant but for the 1e-10).
        loss = F.cross_entropy(model(x + delta), y, reduction="sum")
        (grad,) = torch.autograd.grad(loss, delta)
        with torch.no_grad():
            g_norm = grad.view(n, -1).norm(p=2, dim=1).view(n, 1, 1, 1)
            delta = delta + step * grad / (g_norm + 1e-10)
            delta = delta.view(n, -1).renorm(p=2, dim=0, maxnorm=eps).view_as(x)
            delta = torch.min(torch.max(delta, -x), 1 - x)
    return (x + delta).detach()


def evaluate(model, x, y, eps, step, steps, batch, norm="linf", random_start=True):
    """Clean and PGD accuracy (fractions) of model on x, y."""
    clean = robust = 0
    for lo in range(0, x.shape[0], batch):
        xb, yb = x[lo:lo + batch], y[lo:lo + batch]
        with torch.no_grad():
            clean += (model(xb).argmax(1) == yb).sum().item()
        adv = pgd(model, xb, yb, eps, step, steps, norm, random_start)
        with torch.no_grad():
            robust += (model(adv).argmax(1) == yb).sum().item()
    n = x.shape[0]
    return {"clean_acc": clean / n if n else 0.0, "pgd20_acc": robust / n if n else 0.0, "n": n, "norm": norm}


def main(argv):
    parser = argparse.ArgumentParser(
        description="PyTorch PGD reference accuracy of an exported sglr-pipe model",
        epilog=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="MODEL.npz from `sglr-pipe export REF --format npz`")
    parser.add_argument("arch", help="architecture spec: JSON text or a file holding it")
    parser.add_argument("data", help="dataset: npy export directory or .npz with x, y")
    parser.add_argument("--eps", type=float, default=8 / 255, help="radius in --norm (default 8/255)")
    parser.add_argument("--norm", choices=["linf", "l2"], default="linf", help="threat model (default linf)")
    parser.add_argument("--no-random-start", dest="random_start", action="store_false",
                        help="start from the clean input instead of a random point of the ball")
    parser.add_argument("--step", type=float, default=None, help="step size (default eps/4)")
    parser.add_argument("--steps", type=int, default=20, help="PGD steps (default 20)")
    parser.add_argument("--seed", type=int, default=0, help="torch.manual_seed of the random starts")
    parser.add_argument("--batch", type=int, default=256, help="samples per batch")
    args = parser.parse_args(argv[1:])
    step = args.eps / 4 if args.step is None else args.step
    max_eps = 1 if args.norm == "linf" else float("inf")
    if not (0 <= args.eps <= max_eps) or not (0 <= step <= max_eps) or args.steps < 0 or args.batch < 1:
        parser.error(f"want 0 <= eps, step (<= 1 for linf), steps >= 0 and batch >= 1; got eps {args.eps}, "
                     f"step {step}, steps {args.steps}, batch {args.batch}")
    try:
        arch = load_arch(args.arch)
        model = load_model(args.model, arch)
        x, y = load_data(args.data, arch)
    except ValueError as e:
        print(f"pgd_crosscheck: {e}", file=sys.stderr)
        return 1
    for p in model.parameters():
        p.requires_grad_(False)  # only the input gradient is needed
    torch.manual_seed(args.seed)
    print(json.dumps(evaluate(model, x, y, args.eps, step, args.steps, args.batch, args.norm, args.random_start)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
