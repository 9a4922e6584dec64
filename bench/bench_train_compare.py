#!/usr/bin/env python3
"""Training benchmark, side by side (issue 5): our QLoRA step
(build/bench/bench_train_step) against the PyTorch LoRA baseline
(bench/bench_train_torch.py, Debian's torch + OpenBLAS) on the same shape —
SmolLM2-135M, LoRA r=16 on all seven projections, AdamW, 1 x 256 tokens, half
of them answer — on the same number of threads, in the same run. The two
sides alternate for --rounds rounds so that machine noise hits both; the
figures are medians over rounds. Prints a table and one JSON line with the
ratios the issue targets: tokens/s (ours / torch, target >= 2) and peak
resident memory (ours / torch, target <= 0.5).

  python3 bench/bench_train_compare.py [--bin build/bench/bench_train_step]
      [--threads 2] [--rounds 3] [--steps 5] [--variant nf4 --variant nf4-ckpt ...]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, ".."))

VARIANTS = {
    "nf4": ["--compute", "fp32"],
    "nf4-bf16": ["--compute", "bf16"],
    "nf4-ckpt": ["--compute", "fp32", "--checkpointing"],
    "nf4-bf16-ckpt": ["--compute", "bf16", "--checkpointing"],
    "file": ["--compute", "fp32", "--base", "file"],
}


def run_json(cmd: list[str]) -> dict:
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "bench", "bench_train_step"))
    ap.add_argument("--python", default="/usr/bin/python3", help="the python with Debian's torch")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--variant", action="append", choices=sorted(VARIANTS), help="ours: nf4 (fp32, default), nf4-bf16, nf4-ckpt, nf4-bf16-ckpt, file")
    args = ap.parse_args()
    variants = args.variant or ["nf4"]

    torch_cmd = [args.python, os.path.join(HERE, "bench_train_torch.py"), "--threads", str(args.threads),
                 "--steps", str(args.steps)]
    results: dict[str, list[dict]] = {"torch": []}
    for v in variants:
        results[v] = []
    for r in range(args.rounds):
        results["torch"].append(run_json(torch_cmd))
        for v in variants:
            results[v].append(run_json([args.bin, "--threads", str(args.threads), "--steps", str(args.steps)] +
                                       VARIANTS[v]))
        print(f"round {r + 1}/{args.rounds} done", file=sys.stderr)

    def med(name: str, key: str) -> float:
        return statistics.median(x[key] for x in results[name])

    t_tps, t_rss = med("torch", "tokens_per_s"), med("torch", "peak_rss_mb")
    print(f"{'side':<22}{'tokens/s':>10}{'peak RSS MB':>13}{'x torch tok/s':>15}{'x torch RSS':>13}")
    print(f"{'torch fp32 + OpenBLAS':<22}{t_tps:>10.1f}{t_rss:>13.1f}{1.0:>15.2f}{1.0:>13.2f}")
    summary = {"threads": args.threads, "rounds": args.rounds, "torch": {"tokens_per_s": t_tps, "peak_rss_mb": t_rss,
               "blas": results["torch"][0].get("blas"), "torch": results["torch"][0].get("torch")}}
    for v in variants:
        tps, rss = med(v, "tokens_per_s"), med(v, "peak_rss_mb")
        print(f"{'qlora ' + v:<22}{tps:>10.1f}{rss:>13.1f}{tps / t_tps:>15.2f}{rss / t_rss:>13.2f}")
        summary[v] = {"tokens_per_s": tps, "peak_rss_mb": rss, "speed_ratio": round(tps / t_tps, 3),
                      "memory_ratio": round(rss / t_rss, 3)}
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
