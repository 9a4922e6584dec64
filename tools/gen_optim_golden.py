#!/usr/bin/env python3
"""Generate tests/data/optim/adamw_golden.json from the real torch (1.13, CPU).

Why: include/qlora/optim/ promises torch.optim.AdamW's fp32 arithmetic,
torch.nn.utils.clip_grad_norm_'s clipping and transformers' learning-rate
schedules. tests/optim/*_test.cpp replay every case without Python.

Run with the Debian torch (python3-torch 1.13; the pyenv python on PATH has
no torch):
    /usr/bin/python3 tools/gen_optim_golden.py

What the file holds (floats as 8-hex-digit IEEE-754 bit patterns, arrays of
them concatenated into one string; doubles as Python reprs, which round-trip):

  adamw     Parameters of three tensors (flattened and concatenated in order,
            as the trainer's flat buffer is), 20 steps of gradients, and per
            case the parameters after step 1 and p, exp_avg, exp_avg_sq after
            the last step. Each case runs twice, in child processes with
            ATEN_CPU_CAPABILITY=avx2 (torch's vectorised kernels contract
            a*b+c into FMAs) and =default (no FMA), since the two round
            differently. Cases with moment "mul_add" are torch.optim.AdamW
            itself (torch 1.13: exp_avg.mul_(beta1).add_(grad, alpha=1-beta1)).
            Cases with moment "lerp" are NOT torch.optim.AdamW: this script
            replays the op sequence of torch >= 2.0's _single_tensor_adamw
            (exp_avg.lerp_(grad, 1-beta1), the rest unchanged) with torch
            1.13's tensor ops, because torch 2 is not installed here.
  clip      Multi-tensor gradients, torch.nn.utils.clip_grad_norm_'s returned
            total norm (fp32) and clipped gradients, the norm in float64
            (torch on the float64 copies), per max_norm.
  schedules transformers' lr lambdas (get_{linear,cosine,constant}_schedule*
            of transformers/optimization.py) transcribed below, at every step
            0..total+5; warmup steps as TrainingArguments.get_warmup_steps
            computes them; total optimizer steps as Trainer computes them
            (set_initial_training_values). transformers is not installed, so
            these are the formulas, evaluated by Python in double precision.

Deterministic: numpy PCG64 with fixed seeds, no timestamps, no paths.
"""
from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "data" / "optim" / "adamw_golden.json"

SHAPES = [(6, 16), (16, 6), (13,)]  # 205 parameters: not a multiple of 8/16, so torch's vector tails run too
STEPS = 20


def hex32(a) -> str:
    """Big-endian hex of each float32's bits, concatenated."""
    a = np.ascontiguousarray(np.asarray(a, dtype=np.float32)).reshape(-1)
    return "".join(f"{b:08x}" for b in a.view(np.uint32).tolist())


# ---------------------------------------------------------------------------
# AdamW inputs and cases
# ---------------------------------------------------------------------------

def adamw_inputs():
    rng = np.random.Generator(np.random.PCG64(20240917))
    n = sum(int(np.prod(s)) for s in SHAPES)
    params0 = (rng.standard_normal(n) * 0.05).astype(np.float32)
    grads = []
    for t in range(STEPS):
        # Scales differ per step and per element so that v spans many binades;
        # some exact zeros (m and v decay without input) and a few large ones.
        scale = 10.0 ** rng.uniform(-4, 1)
        g = rng.standard_normal(n) * scale * np.exp(rng.standard_normal(n))
        g[rng.random(n) < 0.05] = 0.0
        g[rng.random(n) < 0.01] *= 1e3
        grads.append(g.astype(np.float32))
    return params0, grads


def cosine_lrs(base, total, warmup):
    return [base * cosine_lambda(s, warmup, total, 0.5) for s in range(total)]


# name, per-step lr (list) or constant, beta1, beta2, eps, weight_decay
ADAMW_CASES = [
    ("torch_defaults", 1e-3, 0.9, 0.999, 1e-8, 0.0),
    ("qlora_lr_wd", 2e-4, 0.9, 0.999, 1e-8, 0.01),
    ("large_lr_wd", 5e-2, 0.8, 0.99, 1e-6, 0.1),
    ("small_beta1", 1e-3, 0.3, 0.9, 1e-8, 0.5),  # lerp weight 0.7 >= 0.5: torch's other lerp branch
    ("cosine_schedule", None, 0.9, 0.999, 1e-8, 0.01),  # lr changes every step, starts at 0 (warmup)
]


def run_adamw_worker(moment: str):
    """Runs in a child whose ATEN_CPU_CAPABILITY is already set."""
    import torch

    params0, grads = adamw_inputs()
    offs = np.cumsum([0] + [int(np.prod(s)) for s in SHAPES])
    out = []
    for name, lr, b1, b2, eps, wd in ADAMW_CASES:
        lrs = cosine_lrs(2e-3, STEPS, 3) if lr is None else [lr] * STEPS
        ps = [torch.tensor(params0[offs[i]:offs[i + 1]]).reshape(s).clone() for i, s in enumerate(SHAPES)]
        for p in ps:
            p.requires_grad_(True)
        flat = lambda ts: np.concatenate([t.detach().numpy().reshape(-1) for t in ts])
        after1 = None
        if moment == "mul_add":
            opt = torch.optim.AdamW(ps, lr=lrs[0], betas=(b1, b2), eps=eps, weight_decay=wd)
            for t in range(STEPS):
                for i, p in enumerate(ps):
                    p.grad = torch.tensor(grads[t][offs[i]:offs[i + 1]]).reshape(p.shape)
                opt.param_groups[0]["lr"] = lrs[t]
                opt.step()
                if t == 0:
                    after1 = flat(ps)
            ms = [opt.state[p]["exp_avg"] for p in ps]
            vs = [opt.state[p]["exp_avg_sq"] for p in ps]
            assert all(float(opt.state[p]["step"]) == STEPS for p in ps)
        else:
            # torch >= 2.0 _single_tensor_adamw, op for op, on torch 1.13 kernels.
            ms = [torch.zeros_like(p) for p in ps]
            vs = [torch.zeros_like(p) for p in ps]
            step_t = torch.tensor(0.0)
            with torch.no_grad():
                for t in range(STEPS):
                    step_t += 1
                    lr_t = lrs[t]
                    for i, p in enumerate(ps):
                        g = torch.tensor(grads[t][offs[i]:offs[i + 1]]).reshape(p.shape)
                        p.mul_(1 - lr_t * wd)
                        ms[i].lerp_(g, 1 - b1)
                        vs[i].mul_(b2).addcmul_(g, g, value=1 - b2)
                        step = step_t.item()
                        bc1 = 1 - b1 ** step
                        bc2 = 1 - b2 ** step
                        step_size = lr_t / bc1
                        bc2_sqrt = math.sqrt(bc2)
                        denom = (vs[i].sqrt() / bc2_sqrt).add_(eps)
                        p.addcdiv_(ms[i], denom, value=-step_size)
                    if t == 0:
                        after1 = flat(ps)
        out.append({
            "name": name, "lr": [repr(x) for x in lrs], "beta1": b1, "beta2": b2, "eps": eps, "weight_decay": wd,
            "p_after_step1": hex32(after1), "p": hex32(flat(ps)), "m": hex32(flat(ms)), "v": hex32(flat(vs)),
        })
    return out


def adamw_section():
    params0, grads = adamw_inputs()
    cases = []
    for capability, fma in (("avx2", True), ("default", False)):
        for moment in ("mul_add", "lerp"):
            env = dict(os.environ, ATEN_CPU_CAPABILITY=capability, OMP_NUM_THREADS="1")
            res = subprocess.run([sys.executable, __file__, "--adamw-worker", moment], env=env, check=True,
                                 capture_output=True, text=True)
            for c in json.loads(res.stdout):
                c.update(moment=moment, fma=fma, aten_cpu_capability=capability,
                         source=("torch.optim.AdamW" if moment == "mul_add"
                                 else "torch>=2.0 _single_tensor_adamw op sequence replayed on torch 1.13 ops"))
                cases.append(c)
    return {"shapes": [list(s) for s in SHAPES], "steps": STEPS, "params0": hex32(params0),
            "grads": [hex32(g) for g in grads], "cases": cases}


# ---------------------------------------------------------------------------
# Gradient clipping
# ---------------------------------------------------------------------------

def clip_section():
    import torch
    rng = np.random.Generator(np.random.PCG64(7))
    shapes = [(24, 16), (16, 24), (300,), (7,)]
    scales = [1.0, 0.01, 30.0, 1e-4]  # norms of very different sizes, as LoRA A and B grads have
    grads = [(rng.standard_normal(int(np.prod(s))) * sc).astype(np.float32).reshape(s) for s, sc in zip(shapes, scales)]
    flat64 = np.concatenate([g.reshape(-1).astype(np.float64) for g in grads])
    norm64 = float(torch.linalg.vector_norm(torch.tensor(flat64)))
    cases = []
    for max_norm in (1.0, 0.3, 1e6):
        ps = [torch.zeros(g.shape, requires_grad=True) for g in grads]
        for p, g in zip(ps, grads):
            p.grad = torch.tensor(g).clone()
        total = torch.nn.utils.clip_grad_norm_(ps, max_norm)
        coef = torch.clamp(max_norm / (total + 1e-6), max=1.0)
        cases.append({"max_norm": max_norm, "total_norm_f32": hex32([total.item()]),
                      "coefficient_f32": hex32([coef.item()]),
                      "clipped": hex32(np.concatenate([p.grad.numpy().reshape(-1) for p in ps]))})
    return {"shapes": [list(s) for s in shapes],
            "grads": hex32(np.concatenate([g.reshape(-1) for g in grads])),
            "norm_f64": repr(norm64), "cases": cases}


# ---------------------------------------------------------------------------
# Schedules: transformers/optimization.py lambdas and Trainer step counting
# ---------------------------------------------------------------------------

def linear_lambda(step, warmup, total):
    if step < warmup:
        return float(step) / float(max(1, warmup))
    return max(0.0, float(total - step) / float(max(1, total - warmup)))


def cosine_lambda(step, warmup, total, num_cycles):
    if step < warmup:
        return float(step) / float(max(1, warmup))
    progress = float(step - warmup) / float(max(1, total - warmup))
    return max(0.0, 0.5 * (1.0 + math.cos(math.pi * float(num_cycles) * 2.0 * progress)))


def constant_with_warmup_lambda(step, warmup):
    if step < warmup:
        return float(step) / float(max(1.0, warmup))
    return 1.0


def hf_warmup_steps(total, ratio):
    return math.ceil(total * ratio)  # TrainingArguments.get_warmup_steps


def hf_step_count(examples, batch, accum, epochs, max_steps, drop_last, rounding):
    """Trainer.set_initial_training_values (ceil: transformers >= 4.52) or
    _inner_training_loop (floor: earlier), single process."""
    len_dataloader = examples // batch if drop_last else math.ceil(examples / batch)
    if rounding == "ceil":
        per_epoch = max(len_dataloader // accum + int(len_dataloader % accum > 0), 1)
    else:
        per_epoch = max(len_dataloader // accum, 1)
    if max_steps > 0:
        total = max_steps
        n_epochs = max_steps // per_epoch + int(max_steps % per_epoch > 0)
    else:
        total = math.ceil(epochs * per_epoch)
        n_epochs = math.ceil(epochs)
    return {"batches_per_epoch": len_dataloader, "updates_per_epoch": per_epoch, "total_steps": total,
            "num_train_epochs": n_epochs}


def schedules_section():
    cases = []
    for kind, total, ratio in [("cosine", 100, 0.1), ("linear", 100, 0.1), ("constant_with_warmup", 100, 0.1),
                               ("constant", 100, 0.1), ("cosine", 300, 0.07), ("linear", 300, 0.07),
                               ("cosine", 7, 0.03), ("cosine", 1, 0.0), ("linear", 1, 0.0),
                               ("cosine", 10, 1.0), ("linear", 10, 1.0)]:
        warmup = hf_warmup_steps(total, ratio)
        steps = list(range(0, total + 6))
        if kind == "cosine":
            f = [cosine_lambda(s, warmup, total, 0.5) for s in steps]
        elif kind == "linear":
            f = [linear_lambda(s, warmup, total) for s in steps]
        elif kind == "constant_with_warmup":
            f = [constant_with_warmup_lambda(s, warmup) for s in steps]
        else:
            f = [1.0 for _ in steps]  # get_scheduler passes no warmup to "constant"
        cases.append({"kind": kind, "total_steps": total, "warmup_ratio": ratio, "warmup_steps": warmup,
                      "factor": [repr(x) for x in f]})
    warmups = [{"total_steps": t, "warmup_ratio": r, "warmup_steps": hf_warmup_steps(t, r)}
               for t, r in [(100, 0.1), (1000, 0.03), (300, 0.07), (333, 0.3), (7, 0.03), (0, 0.5), (10, 0.0),
                            (10, 1.0), (1875, 0.03), (57, 0.1), (123457, 0.05)]]
    counts = []
    for ex, b, acc, ep, ms, dl in [(1000, 8, 1, 3.0, -1, False), (1000, 8, 4, 3.0, -1, False),
                                   (1001, 8, 4, 3.0, -1, False), (1001, 8, 4, 3.0, -1, True),
                                   (10, 4, 8, 2.0, -1, False), (5000, 16, 2, 1.5, -1, False),
                                   (5000, 16, 3, 0.5, -1, False), (999, 1, 16, 3.0, -1, False),
                                   (1000, 8, 4, 3.0, 100, False), (1000, 8, 4, 3.0, 95, False),
                                   (7, 16, 16, 10.0, -1, False), (1001, 8, 1, 1.0, -1, False),
                                   (1001, 8, 1, 1.0, -1, True)]:
        for rounding in ("ceil", "floor"):
            c = {"examples": ex, "per_device_batch": b, "grad_accum": acc, "epochs": ep, "max_steps": ms,
                 "drop_last": dl, "rounding": rounding}
            c.update(hf_step_count(ex, b, acc, ep, ms, dl, rounding))
            counts.append(c)
    return {"cases": cases, "warmup": warmups, "step_counts": counts}


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--adamw-worker":
        json.dump(run_adamw_worker(sys.argv[2]), sys.stdout)
        return
    import torch
    doc = {
        "generator": "tools/gen_optim_golden.py",
        "torch_version": torch.__version__,
        "adamw": adamw_section(),
        "clip": clip_section(),
        "schedules": schedules_section(),
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(doc, indent=1)
    # Lists of scalars on one line each: the file stays diffable without a
    # line per number.
    text = re.sub(r"\[\n\s*([^\[\]{}]*?)\n\s*\]", lambda m: "[" + re.sub(r",\n\s*", ", ", m.group(1)) + "]", text)
    OUT.write_text(text + "\n")
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
