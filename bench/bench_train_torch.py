#!/usr/bin/env python3
"""PyTorch LoRA training baseline for the trainer benchmark (issue 5).

SmolLM2-135M with every tensor dequantized to fp32 (gguf-py) and frozen, run
through tools/torch_llama.py — the same decoder and LoRA as the golden
gradients — with LoRA r=16, alpha=16 on all seven projections of every block
(PEFT initialisation: A uniform in +-1/sqrt(in), B zero), AdamW (lr 2e-4,
betas 0.9/0.999, eps 1e-8, no weight decay: the HF Trainer's defaults) on one
fixed batch of 1 x 256 random token ids whose second half is the answer
(loss on positions 127..254, i.e. on predicting tokens 128..255).

One step = forward + masked cross-entropy + backward + optimizer step. After
--warmup untimed steps, --steps timed steps; prints one JSON line:
tokens_per_s (tokens of the batch per second of the median step), step_s
(median; min and mean too), peak_rss_mb (ru_maxrss, which includes loading
and dequantizing the model), loss_first / loss_last, the torch version, its
thread count and the BLAS it runs (build flags, the libblas.so.3 actually
mapped, OpenBLAS's own config string and a measured sgemm rate, so a fall-back
to the reference BLAS shows as ~1-2 GFLOP/s).

Run with Debian's torch (tools/install_peers.sh):
  /usr/bin/python3 bench/bench_train_torch.py [--model M.gguf] [--threads 2]
"""
from __future__ import annotations

import argparse
import ctypes
import json
import math
import os
import re
import resource
import statistics
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tools"))
import torch_llama as tl  # noqa: E402

DEFAULT_MODEL = os.path.join(HERE, "..", ".cache", "models", "SmolLM2-135M-Instruct.Q4_1.gguf")


def rss_mb() -> float:
    """Peak resident set size of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def blas_info() -> dict:
    """Which BLAS torch runs: its build flags, the BLAS library mapped into
    this process (Debian's torch links libblas.so.3, resolved by the
    alternatives system) and, when it is OpenBLAS, its config string."""
    cfg = torch.__config__.show()
    build = dict(re.findall(r"\b(BLAS_INFO|LAPACK_INFO)=([^,\s]+)", cfg))
    torch.ones(64, 64) @ torch.ones(64, 64)   # make sure the library is loaded
    with open("/proc/self/maps") as f:
        libs = sorted({line.split()[-1] for line in f if re.search(r"blas|lapack", line.split()[-1])})
    openblas = None
    for lib in libs:
        try:
            fn = ctypes.CDLL(lib).openblas_get_config
        except (OSError, AttributeError):
            continue
        fn.restype = ctypes.c_char_p
        openblas = fn().decode()
        break
    return {"build": build, "loaded": libs, "openblas_config": openblas}


def sgemm_gflops(m=256, k=576, n=1536, reps=20) -> float:
    """fp32 GEMM rate at a projection's shape (256 tokens x ffn_up)."""
    a, b = torch.randn(m, k), torch.randn(k, n)
    a @ b
    t0 = time.perf_counter()
    for _ in range(reps):
        a @ b
    return 2.0 * m * k * n * reps / (time.perf_counter() - t0) / 1e9


def make_lora(cfg: tl.Config, rank: int, alpha: float, gen: torch.Generator) -> tl.Lora:
    """PEFT's default initialisation: A ~ U(+-1/sqrt(in)) (kaiming_uniform, a=sqrt(5)), B = 0."""
    a, b = {}, {}
    for l in range(cfg.n_layer):
        for t in tl.TARGETS:
            out_f, in_f = tl.proj_shape(cfg, t)
            bound = 1.0 / math.sqrt(in_f)
            a[f"blk.{l}.{t}"] = ((torch.rand(rank, in_f, generator=gen) * 2 - 1) * bound).requires_grad_()
            b[f"blk.{l}.{t}"] = torch.zeros(out_f, rank, requires_grad=True)
    return tl.Lora(rank, alpha, a, b)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--seq-len", type=int, default=256)
    ap.add_argument("--rank", type=int, default=16)
    ap.add_argument("--alpha", type=float, default=16.0)
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(args.seed)
    t0 = time.perf_counter()
    cfg, weights = tl.load_gguf(os.path.normpath(args.model))
    load_s = time.perf_counter() - t0
    rss_after_load = rss_mb()

    lora = make_lora(cfg, args.rank, args.alpha, gen)
    opt = torch.optim.AdamW(lora.parameters(), lr=args.lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
    T = args.seq_len
    tokens = torch.randint(0, cfg.n_vocab, (T,), generator=gen)
    mask = torch.zeros(T, dtype=torch.int64)
    mask[T // 2 - 1:T - 1] = 1        # predictions of tokens T/2 .. T-1
    batch = [(tokens, mask)]

    losses, times = [], []
    for step in range(args.warmup + args.steps):
        t = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = tl.masked_loss(cfg, weights, batch, lora)
        loss.backward()
        opt.step()
        dt = time.perf_counter() - t
        losses.append(loss.item())
        if step >= args.warmup:
            times.append(dt)

    step_s = statistics.median(times)
    print(json.dumps({
        "bench": "train_lora_torch", "model": os.path.basename(args.model), "arch": cfg.arch,
        "batch": 1, "seq_len": T, "answer_tokens": int(mask.sum()), "rank": args.rank, "alpha": args.alpha,
        "targets": len(tl.TARGETS), "trainable_params": sum(p.numel() for p in lora.parameters()),
        "lr": args.lr, "threads": torch.get_num_threads(), "warmup": args.warmup, "steps": args.steps,
        "tokens_per_s": round(T / step_s, 2), "step_s": round(step_s, 4), "step_s_min": round(min(times), 4),
        "step_s_mean": round(statistics.mean(times), 4), "peak_rss_mb": round(rss_mb(), 1),
        "rss_after_load_mb": round(rss_after_load, 1), "load_s": round(load_s, 2),
        "loss_first": round(losses[0], 5), "loss_last": round(losses[-1], 5),
        "torch": torch.__version__, "blas": blas_info(), "sgemm_gflops": round(sgemm_gflops(), 1),
    }))


if __name__ == "__main__":
    main()
