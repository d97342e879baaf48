"""Reference MART loss and AWP training steps in PyTorch (float64), for the
cross-check nn/model/mart_awp_torch_test.go of sglr-pipe's Go engine.

    /usr/bin/python3 bench/mart_awp_crosscheck.py < CASES.json > RESULTS.json
    /usr/bin/python3 bench/mart_awp_crosscheck.py --self-test

CASES.json is a list of cases, each an object with
    arch       the architecture spec, as torch_models.build takes it
    mode       "train" or "eval" (BatchNorm mode of the model)
    state      {name: flat list} for every state_dict entry
    x, x_adv   flat [B, C, H, W] inputs; target: flat [B, K] soft targets
    objective  "ce"     mean_i −Σ_k T·log softmax f(x)   (pgd-at: x holds x')
               "trades" CE(f(x), T) + beta·KL(p(x) ‖ p(x')), batchmean; the
                        passes model(x), model(x'), model(x), as the TRADES
                        reference runs them
               "mart"   the MART reference's mart_loss after its attack
                        (YisenWang/MART, mart.py), y = argmax T, with the CE
                        term against T (the reference's F.cross_entropy for
                        one-hot T)
    beta       weight of the KL term
    steps      training steps to take (default 1), each on the same batch
    awp        optional {gamma, proxy_lr}: each step is the AWP reference's
               (csdongxian/AWP, utils_awp.py): a proxy copy in train mode takes
               one SGD(proxy_lr) step on −objective, every state_dict tensor
               with more than one dimension and "weight" in its name gets
               diff = ‖w‖/(‖w_proxy − w‖ + 1e-20)·(w_proxy − w), the model is
               moved by gamma·diff, the objective is differentiated there, the
               optimiser steps, and gamma·diff is subtracted again
    sgd        {lr, momentum, weight_decay}: torch.optim.SGD for the steps
               (absent: no step, just the loss and gradients)
For each case it prints, in a JSON list, {"losses": [...], "grads": [{name:
flat}, ...]} per step (at the perturbed weights under AWP) and "state": the
state_dict after the last step.

--self-test checks the MART loss's gradient against central finite
differences on a small MLP.
"""

import copy
import json
import os
import sys

import torch
import torch.nn.functional as F

sys.dont_write_bytecode = True  # no __pycache__ in the source tree when the Go tests run this
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_models import build  # noqa: E402

torch.set_default_dtype(torch.float64)


def soft_ce(logits, target):
    """mean_i −Σ_k target[i,k]·log_softmax(logits)[i,k]."""
    return -(target * F.log_softmax(logits, dim=1)).sum(dim=1).mean()


def mart_loss(model, x, x_adv, target, beta):
    """The MART objective of mart_loss after the attack: model(x), then
    model(x_adv); nothing detached."""
    y = target.argmax(dim=1)
    logits = model(x)
    logits_adv = model(x_adv)
    adv_probs = F.softmax(logits_adv, dim=1)
    # The most probable class other than y: the top one, or the runner-up when the top one is y.
    top2 = torch.argsort(adv_probs, dim=1)[:, -2:]
    new_y = torch.where(top2[:, -1] == y, top2[:, -2], top2[:, -1])
    margin = F.nll_loss(torch.log(1.0001 - adv_probs + 1e-12), new_y)
    loss_adv = soft_ce(logits_adv, target) + margin
    nat_probs = F.softmax(logits, dim=1)
    true_probs = torch.gather(nat_probs, 1, y.unsqueeze(1)).squeeze(1)
    kl = F.kl_div(torch.log(adv_probs + 1e-12), nat_probs, reduction="none").sum(dim=1)
    return loss_adv + float(beta) * (kl * (1.0000001 - true_probs)).mean()


def objective(model, spec, x, x_adv, target):
    kind, beta = spec["objective"], spec.get("beta", 0.0)
    if kind == "ce":
        return soft_ce(model(x), target)
    if kind == "trades":
        logits = model(x)
        logits_adv = model(x_adv)
        robust = F.kl_div(F.log_softmax(logits_adv, dim=1), F.softmax(model(x), dim=1), reduction="batchmean")
        return soft_ce(logits, target) + beta * robust
    if kind == "mart":
        return mart_loss(model, x, x_adv, target, beta)
    raise ValueError(f"objective {kind!r}: want ce, trades or mart")


def awp_diff(model, proxy):
    """The reference's diff_in_weights."""
    diff = {}
    for (name, old), (_, new) in zip(model.state_dict().items(), proxy.state_dict().items()):
        if old.dim() <= 1 or "weight" not in name:
            continue
        d = new - old
        diff[name] = old.norm() / (d.norm() + 1e-20) * d
    return diff


def add_into(model, diff, coeff):
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name in diff:
                p.add_(coeff * diff[name])


def run_case(spec):
    model = build(spec["arch"]).double()
    state = {}
    for name, ref in model.state_dict().items():
        state[name] = torch.tensor(spec["state"][name], dtype=torch.float64).reshape(ref.shape).to(ref.dtype)
    model.load_state_dict(state, strict=True)
    model.train(spec["mode"] == "train")
    c, h, w = spec["arch"]["input"]
    k = spec["arch"]["classes"]
    x = torch.tensor(spec["x"]).reshape(-1, c, h, w)
    x_adv = torch.tensor(spec["x_adv"]).reshape(-1, c, h, w)
    target = torch.tensor(spec["target"]).reshape(-1, k)
    sgd = spec.get("sgd")
    opt = None
    if sgd:
        opt = torch.optim.SGD(model.parameters(), lr=sgd["lr"], momentum=sgd["momentum"], weight_decay=sgd["weight_decay"])
    awp = spec.get("awp")
    losses, grads = [], []
    for _ in range(spec.get("steps", 1)):
        diff = None
        if awp:
            proxy = copy.deepcopy(model)
            proxy.load_state_dict(model.state_dict())
            proxy.train()
            proxy_opt = torch.optim.SGD(proxy.parameters(), lr=awp["proxy_lr"])
            proxy_opt.zero_grad()
            (-objective(proxy, spec, x, x_adv, target)).backward()
            proxy_opt.step()
            diff = awp_diff(model, proxy)
            add_into(model, diff, awp["gamma"])
        model.zero_grad(set_to_none=True)
        loss = objective(model, spec, x, x_adv, target)
        loss.backward()
        losses.append(loss.item())
        grads.append({n: p.grad.flatten().tolist() for n, p in model.named_parameters()})
        if opt:
            opt.step()
        if diff is not None:
            add_into(model, diff, -awp["gamma"])
    return {"losses": losses, "grads": grads,
            "state": {n: t.double().flatten().tolist() for n, t in model.state_dict().items()}}


def self_test():
    """The MART loss's gradients against central finite differences."""
    torch.manual_seed(0)
    arch = {"kind": "mlp", "input": [1, 3, 3], "classes": 4, "hidden": [5]}
    model = build(arch).double()
    x, x_adv = torch.rand(3, 1, 3, 3), torch.rand(3, 1, 3, 3)
    target = torch.softmax(torch.randn(3, 4), dim=1)
    loss = mart_loss(model, x, x_adv, target, 6.0)
    params = list(model.parameters())
    analytic = torch.autograd.grad(loss, params)
    worst = 0.0
    with torch.no_grad():
        for p, g in zip(params, analytic):
            for i in range(min(6, p.numel())):
                flat = p.view(-1)
                orig = flat[i].item()
                flat[i] = orig + 1e-6
                up = mart_loss(model, x, x_adv, target, 6.0).item()
                flat[i] = orig - 1e-6
                down = mart_loss(model, x, x_adv, target, 6.0).item()
                flat[i] = orig
                fd = (up - down) / 2e-6
                worst = max(worst, abs(fd - g.view(-1)[i].item()) / max(1.0, abs(fd)))
    print(f"mart_loss: worst |finite difference - gradient| {worst:.1e}", "ok" if worst < 1e-6 else "FAIL")
    return 0 if worst < 1e-6 else 1


def main(argv):
    if len(argv) == 2 and argv[1] == "--self-test":
        return self_test()
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        results = [run_case(spec) for spec in json.load(sys.stdin)]
    except (ValueError, KeyError, RuntimeError) as e:
        print(f"mart_awp_crosscheck: {e}", file=sys.stderr)
        return 1
    json.dump(results, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
