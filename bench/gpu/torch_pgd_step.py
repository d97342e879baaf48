"""Times PyTorch's PGD-10 adversarial training step on a CUDA GPU, for
bench/gpu/check.sh: the same step as bench/torch_step.py (whose pgd and
train_step it imports: PGD-10 in eval mode with random start, eps 8/255,
step 2/255, then one SGD step, lr 0.01, momentum 0.9, weight decay 5e-4),
with model and batch resident on the GPU and torch.cuda.synchronize()
around each timed step.

    python3 bench/gpu/torch_pgd_step.py [--models preact-resnet18] [--batch 128]
        [--warmup 5] [--steps 20] [--tf32 off|on|both] [--tsv]

--tf32 off sets torch.backends.cuda.matmul.allow_tf32 and
torch.backends.cudnn.allow_tf32 to False: strict fp32, what sglr-pipe's
GPU path will default to. on is PyTorch's own default for convolutions
(cuDNN TF32 allowed). Prints the median ms/step per model and mode.
Exits 3 when torch has no CUDA device.
"""

import argparse
import os
import statistics
import sys
import time

import torch

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(here))
from torch_step import MODELS, train_step  # noqa: E402
from torch_models import build  # noqa: E402

LR, MOMENTUM, WEIGHT_DECAY = 0.01, 0.9, 5e-4


def time_model(name, args, tf32):
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    arch = MODELS[name]
    torch.manual_seed(args.seed)
    dev = torch.device("cuda", args.device)
    model = build(arch).to(dev)
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)
    x = torch.rand(args.batch, *arch["input"], device=dev)
    y = torch.randint(0, arch["classes"], (args.batch,), device=dev)
    for _ in range(args.warmup):
        train_step(model, opt, x, y)
    torch.cuda.synchronize(dev)
    times = []
    for _ in range(args.steps):
        t0 = time.perf_counter()
        train_step(model, opt, x, y)
        torch.cuda.synchronize(dev)
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="preact-resnet18", help="comma-separated: " + ", ".join(MODELS))
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--device", type=int, default=0)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--tf32", choices=["off", "on", "both"], default="both")
    p.add_argument("--tsv", action="store_true", help="rows: model, batch, tf32, ms/step")
    args = p.parse_args()
    if not torch.cuda.is_available():
        print(f"torch {torch.__version__}: no CUDA device (torch.cuda.is_available() is False)", file=sys.stderr)
        sys.exit(3)
    names = [n.strip() for n in args.models.split(",")]
    for n in names:
        if n not in MODELS:
            p.error(f"--models: unknown model {n!r}, want some of {', '.join(MODELS)}")
    modes = {"off": [False], "on": [True], "both": [False, True]}[args.tf32]
    info = f"torch {torch.__version__}, CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}, {torch.cuda.get_device_name(args.device)}"
    print(("#torch\t" if args.tsv else "") + info, flush=True)
    for name in names:
        for tf32 in modes:
            ms = time_model(name, args, tf32)
            mode = "on" if tf32 else "off"
            if args.tsv:
                print(f"{name}\t{args.batch}\t{mode}\t{ms:.2f}", flush=True)
            else:
                print(f"{name:16s} batch {args.batch}  TF32 {mode:3s}  {ms:8.2f} ms/step", flush=True)


if __name__ == "__main__":
    main()
