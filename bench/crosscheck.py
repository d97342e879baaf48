"""Reference forward/backward pass in PyTorch (float64) for cross-checking
sglr-pipe's Go engine (package nn/model, test nn/model/torch_crosscheck_test.go).

    /usr/bin/python3 crosscheck.py IN.npz OUT.npz [IN2.npz OUT2.npz ...]
    /usr/bin/python3 crosscheck.py --self-test

(Several pairs in one run save the second it takes to import torch.)

IN.npz holds
    arch          the architecture spec JSON (0-d unicode array, bytes, or uint8 array)
    mode          "eval" or "train" (same encodings)
    w.<name>      every state_dict tensor of the model (see torch_models.py)
    x             [B, C, H, W] inputs
    target        [B, K] soft targets
The model is built, converted to float64, loaded with the weights (strictly:
every name present, every shape equal), and run in the given mode on x. The
loss is the soft-target cross-entropy averaged over the batch,
    loss = mean_i sum_k -target[i,k] * log_softmax(logits)[i,k],
and backward gives its gradients. OUT.npz receives float64 arrays
    logits        [B, K]
    loss          0-d
    input_grad    [B, C, H, W]  d loss / d x
    grad.<name>   d loss / d parameter, for every trainable parameter
    buf.<name>    train mode only: every buffer after the pass (BatchNorm
                  running_mean and running_var with momentum 0.1 and the
                  unbiased batch variance; num_batches_tracked as int64)

--self-test runs each architecture on random weights and checks the
gradients written to OUT.npz against central finite differences.
"""

import json
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.dont_write_bytecode = True  # no __pycache__ in the source tree when the Go tests run this
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_models import build  # noqa: E402


def text_of(a):
    """The string held by a 0-d unicode array, a bytes array or a uint8 array."""
    a = np.asarray(a)
    if a.dtype.kind == "U":
        return str(a[()])
    if a.dtype.kind == "S":
        return a[()].decode("utf-8")
    if a.dtype == np.uint8:
        return a.tobytes().decode("utf-8")
    raise ValueError(f"want a string, got an array of dtype {a.dtype}")


def load_model(arch, weights):
    """Builds arch in float64 and loads weights (name -> numpy array) strictly."""
    model = build(arch).double()
    current = model.state_dict()
    missing = [k for k in current if k not in weights]
    unexpected = [k for k in weights if k not in current]
    if missing or unexpected:
        raise ValueError(f"weights do not match the {arch.get('kind')} state_dict: "
                         f"missing {missing}, unexpected {unexpected}")
    state = {}
    for name, ref in current.items():
        value = torch.from_numpy(np.array(weights[name], order="C"))  # keeps 0-d arrays 0-d
        if tuple(value.shape) != tuple(ref.shape):
            raise ValueError(f"{name}: shape {list(value.shape)}, the module wants {list(ref.shape)}")
        state[name] = value.to(ref.dtype)
    model.load_state_dict(state, strict=True)
    return model


def soft_cross_entropy(logits, target):
    """mean_i sum_k -target[i,k] * log_softmax(logits)[i,k]."""
    return -(target * F.log_softmax(logits, dim=1)).sum(dim=1).mean()


def run(inputs):
    """Runs the reference pass on the arrays of IN.npz; returns those of OUT.npz."""
    arch = json.loads(text_of(inputs["arch"]))
    mode = text_of(inputs["mode"])
    if mode not in ("eval", "train"):
        raise ValueError(f"mode {mode!r}: want eval or train")
    weights = {k[len("w."):]: inputs[k] for k in inputs if k.startswith("w.")}
    model = load_model(arch, weights)
    model.train(mode == "train")
    x = torch.from_numpy(np.asarray(inputs["x"], dtype=np.float64)).requires_grad_(True)
    target = torch.from_numpy(np.asarray(inputs["target"], dtype=np.float64))
    model.zero_grad(set_to_none=True)
    logits = model(x)
    if logits.shape != target.shape:
        raise ValueError(f"logits have shape {list(logits.shape)}, target {list(target.shape)}")
    loss = soft_cross_entropy(logits, target)
    loss.backward()
    out = {
        "logits": logits.detach().numpy(),
        "loss": np.array(loss.item(), dtype=np.float64),
        "input_grad": x.grad.numpy(),
    }
    for name, p in model.named_parameters():
        g = p.grad if p.grad is not None else torch.zeros_like(p)
        out["grad." + name] = g.detach().numpy()
    if mode == "train":
        for name, b in model.named_buffers():
            out["buf." + name] = b.detach().numpy()
    return out


def main(argv):
    if len(argv) == 2 and argv[1] == "--self-test":
        return self_test()
    if len(argv) < 3 or len(argv) % 2 != 1:
        print(__doc__, file=sys.stderr)
        return 2
    for in_path, out_path in zip(argv[1::2], argv[2::2]):
        with np.load(in_path, allow_pickle=False) as z:
            inputs = {k: z[k] for k in z.files}
        try:
            out = run(inputs)
        except ValueError as e:
            print(f"crosscheck {in_path}: {e}", file=sys.stderr)
            return 1
        np.savez(out_path, **out)
    return 0


def self_test():
    """Checks run() on random models against central finite differences."""
    import tempfile

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    archs = [
        {"kind": "mlp", "input": [1, 4, 4], "classes": 3, "hidden": [5, 4]},
        {"kind": "cnn", "input": [2, 8, 8], "classes": 3, "channels": [3, 4], "hidden": [6]},
        {"kind": "preact-resnet18", "input": [1, 28, 28], "classes": 3, "width": 2},
    ]
    failures = 0
    for arch in archs:
        model = build(arch)
        # Random BatchNorm affine parameters and running statistics, so that
        # neither mode is close to the identity.
        with torch.no_grad():
            for name, t in list(model.named_parameters()) + list(model.named_buffers()):
                if ".bn" in "." + name:  # bn.*, layer1.0.bn1.*, ...
                    if name.endswith("weight"):
                        t.copy_(torch.rand_like(t) + 0.5)
                    elif name.endswith("bias") or name.endswith("running_mean"):
                        t.copy_(torch.randn_like(t) * 0.1)
                    elif name.endswith("running_var"):
                        t.copy_(torch.rand_like(t) + 0.5)
        weights = {"w." + k: v.numpy() for k, v in model.state_dict().items()}
        c, h, w = arch["input"]
        x = rng.random((3, c, h, w))
        target = rng.dirichlet(np.ones(arch["classes"]), size=3)
        for mode in ("eval", "train"):
            inputs = dict(weights, arch=np.array(json.dumps(arch)), mode=np.array(mode), x=x, target=target)
            with tempfile.TemporaryDirectory() as tmp:
                np.savez(os.path.join(tmp, "in.npz"), **inputs)
                if main(["crosscheck.py", os.path.join(tmp, "in.npz"), os.path.join(tmp, "out.npz")]) != 0:
                    raise SystemExit("crosscheck run failed")
                with np.load(os.path.join(tmp, "out.npz")) as z:
                    out = {k: z[k] for k in z.files}

            def finite_difference(key, idx):
                """Central difference of the loss along one coordinate of x or a weight."""
                eps = 1e-6
                base = np.array(inputs[key], dtype=np.float64)
                plus, minus = base.copy(), base.copy()
                plus[idx] += eps
                minus[idx] -= eps
                return (float(run(dict(inputs, **{key: plus}))["loss"]) -
                        float(run(dict(inputs, **{key: minus}))["loss"])) / (2 * eps)

            checks = [("x", "input_grad")] * 4
            grads = [k for k in out if k.startswith("grad.")]
            checks += [("w." + k[len("grad."):], k) for k in rng.choice(grads, size=min(8, len(grads)), replace=False)]
            worst, worst_at = 0.0, ""
            for key, grad_key in checks:
                idx = tuple(int(rng.integers(0, n)) for n in inputs[key].shape)
                fd, g = finite_difference(key, idx), float(out[grad_key][idx])
                # Absolute below 1, relative above. A coordinate whose step
                # crosses a ReLU kink would show an error near |gradient|.
                gap = abs(fd - g) / max(1.0, abs(g))
                if gap > worst:
                    worst, worst_at = gap, f"{grad_key}{list(idx)}: {fd:.9g} vs {g:.9g}"
            status = "ok" if worst < 1e-6 else "FAIL"
            failures += status == "FAIL"
            print(f"{arch['kind']:16s} {mode:5s} loss {float(out['loss']):.6f}  "
                  f"worst |finite difference - gradient| {worst:.1e} at {worst_at}  {status}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
