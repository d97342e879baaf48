"""Times one PGD-10 adversarial training step in PyTorch, the same step that
bench/trainstep (Go, package nn) times, for bench/trainstep.sh's comparison.

    /usr/bin/python3 bench/torch_step.py [--models mlp,cnn-28,cnn-32,preact-resnet18]
        [--batch 128] [--threads 2] [--warmup 2] [--steps 20] [--minsteps 3]
        [--maxtime 30] [--tsv]

One step at batch B (float32, CPU):
    PGD-10 in model.eval(): random start x + U(-eps, eps) clipped to [0,1], then
    10 times: input gradient of the summed cross-entropy, signed step of 2/255,
    projection to the 8/255 ball and [0,1];
    model.train(): mean cross-entropy on the adversarial batch, backward,
    torch.optim.SGD(lr 0.01, momentum 0.9, weight_decay 5e-4).step().
Models (same names and architectures as the Go program, built by
torch_models.build):
    mlp              784-256-256-10 on 1x28x28
    cnn-28, cnn-32   conv channels [32, 64], hidden [128], on 1x28x28 / 3x32x32
    preact-resnet18  width 64 on 3x32x32
For each model: warm-up steps, then timed steps (at least --minsteps, at most
--steps, stopping once --maxtime seconds are spent); prints the median ms/step
and the peak resident set of the model's run (VmHWM, reset before each model
through /proc/self/clear_refs; marked * when the reset is not allowed and the
peak is the process's so far).
"""

import argparse
import gc
import os
import re
import statistics
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_models import build  # noqa: E402

MODELS = {
    "mlp": {"kind": "mlp", "input": [1, 28, 28], "classes": 10, "hidden": [256, 256]},
    "cnn-28": {"kind": "cnn", "input": [1, 28, 28], "classes": 10, "channels": [32, 64], "hidden": [128]},
    "cnn-32": {"kind": "cnn", "input": [3, 32, 32], "classes": 10, "channels": [32, 64], "hidden": [128]},
    "preact-resnet18": {"kind": "preact-resnet18", "input": [3, 32, 32], "classes": 10, "width": 64},
}

EPS, STEP, STEPS = 8 / 255, 2 / 255, 10
LR, MOMENTUM, WEIGHT_DECAY = 0.01, 0.9, 5e-4


def pgd(model, x, y):
    """PGD-10 with random start against model in eval mode; returns x_adv."""
    model.eval()
    x_adv = (x + torch.empty_like(x).uniform_(-EPS, EPS)).clamp_(0, 1)
    for _ in range(STEPS):
        x_adv.requires_grad_(True)
        loss = F.cross_entropy(model(x_adv), y, reduction="sum")
        (grad,) = torch.autograd.grad(loss, x_adv)
        with torch.no_grad():
            x_adv = x_adv + STEP * grad.sign()
            x_adv = torch.min(torch.max(x_adv, x - EPS), x + EPS).clamp_(0, 1)
    return x_adv.detach()


def train_step(model, opt, x, y):
    """One adversarial training step: attack, then update on x_adv."""
    x_adv = pgd(model, x, y)
    model.train()
    opt.zero_grad(set_to_none=True)
    loss = F.cross_entropy(model(x_adv), y)
    loss.backward()
    opt.step()


def reset_peak_rss():
    """Resets the kernel's VmHWM of this process (Linux 4.0+); False when
    that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss_mb():
    """VmHWM of this process in MB, None when /proc is not there."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def time_model(name, args):
    """Median ms/step and the number of timed steps for one model."""
    arch = MODELS[name]
    torch.manual_seed(args.seed)
    model = build(arch)
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)
    x = torch.rand(args.batch, *arch["input"])
    y = torch.randint(0, arch["classes"], (args.batch,))
    for _ in range(args.warmup):
        train_step(model, opt, x, y)
    times = []
    start = time.perf_counter()
    while len(times) < args.steps and (len(times) < args.minsteps or time.perf_counter() - start < args.maxtime):
        t0 = time.perf_counter()
        train_step(model, opt, x, y)
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times), len(times)


def blas_info():
    """torch's BLAS_INFO build setting and the BLAS/oneDNN libraries actually
    loaded (Debian's torch says "generic" and uses whatever libblas.so.3 is)."""
    setting = re.search(r"BLAS_INFO=([^,\s]+)", torch.__config__.show())
    libs = set()
    try:
        with open("/proc/self/maps") as maps:
            for line in maps:
                path = line.split()[-1]
                if re.search(r"blas|dnnl|mkl", os.path.basename(path)):
                    libs.add(os.path.realpath(path))
    except OSError:
        pass
    loaded = ", ".join(sorted(libs)) or "none found"
    return f"BLAS_INFO={setting.group(1) if setting else 'unknown'}, loaded: {loaded}"


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default=",".join(MODELS), help="comma-separated: " + ", ".join(MODELS))
    p.add_argument("--resnet", action="store_true", help="also time preact-resnet18 when --models leaves it out")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--steps", type=int, default=20, help="timed steps per model, at most")
    p.add_argument("--minsteps", type=int, default=3, help="timed steps per model, at least")
    p.add_argument("--maxtime", type=float, default=30, help="seconds of timing per model (after --minsteps)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--tsv", action="store_true", help="tab-separated rows: model, ms/step, steps, peak RSS")
    args = p.parse_args()
    names = [n.strip() for n in args.models.split(",")]
    for n in names:
        if n not in MODELS:
            p.error(f"--models: unknown model {n!r}, want some of {', '.join(MODELS)}")
    if args.resnet and "preact-resnet18" not in names:
        names.append("preact-resnet18")
    if args.batch < 1 or args.threads < 1 or args.steps < 1 or args.minsteps < 1 or args.warmup < 0:
        p.error("--batch, --threads, --steps and --minsteps must be >= 1, --warmup >= 0")

    torch.set_num_threads(args.threads)
    header = f"torch {torch.__version__}, {torch.get_num_threads()} threads, {blas_info()}"
    if args.tsv:
        print(f"#blas\t{header}")
    else:
        print(header)
        print(f"{'model':16s} {'steps':>6s} {'ms/step':>10s} {'peak RSS':>10s}")
    for name in names:
        gc.collect()
        own_peak = reset_peak_rss()
        ms, steps = time_model(name, args)
        peak = peak_rss_mb()
        rss = "?" if peak is None else f"{peak:.0f} MB" + ("" if own_peak else "*")
        if args.tsv:
            print(f"{name}\t{ms:.1f}\t{steps}\t{rss}", flush=True)
        else:
            print(f"{name:16s} {steps:6d} {ms:10.1f} {rss:>10s}", flush=True)


if __name__ == "__main__":
    main()
