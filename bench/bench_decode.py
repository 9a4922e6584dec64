#!/usr/bin/env python3
"""Prompt processing (pp) and token generation (tg) speed: `qlora bench` against
llama.cpp (llama-cpp-python's C API through llama_cpp.Llama.eval), measured in
the same run, alternating, on the same GGUF files and thread count.

llama.cpp side: pp = one eval() of the prompt from an empty cache; tg = n
single-token eval() calls (each returns the logits, like our decoder). Python
adds a few microseconds per call, negligible against milliseconds per token.

With --membw BENCH_MATMUL, every round also measures the read bandwidth
(bench_matmul's BM_membw at the same thread count) and the table gains the
bandwidth bound of tg — file bytes read per token / bandwidth — and the share
of it reached. --no-peer leaves llama.cpp out (for the bound alone).

Usage: python3 bench/bench_decode.py --qlora build/apps/qlora/qlora MODEL.gguf [...]
         [--membw build/bench/bench_matmul] [--no-peer]
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import time


def membw_gbs(binary, threads):
    """Read bandwidth in GB/s: median of bench_matmul's BM_membw repetitions."""
    out = subprocess.run([binary, f"--benchmark_filter=BM_membw/threads:{threads}(/|$)", "--benchmark_format=json",
                          "--benchmark_repetitions=3", "--benchmark_report_aggregates_only=true"],
                         check=True, capture_output=True, text=True).stdout
    rows = json.loads(out)["benchmarks"]
    return next(r["bytes_per_second"] for r in rows if r.get("aggregate_name") == "median") / 1e9


def llama_speed(path, n_prompt, n_gen, reps, threads):
    import llama_cpp
    llm = llama_cpp.Llama(model_path=path, n_ctx=n_prompt + n_gen + 8, n_batch=n_prompt, n_ubatch=n_prompt,
                          n_threads=threads, verbose=False)
    prompt = [100 + 7 * i for i in range(n_prompt)]
    pp, tg = [], []
    for _ in range(reps + 1):  # first run warms up
        llm.reset()
        t0 = time.perf_counter()
        llm.eval(prompt)
        pp.append(n_prompt / (time.perf_counter() - t0))
        llm.reset()
        llm.eval([1])
        t0 = time.perf_counter()
        for i in range(n_gen):
            llm.eval([100 + i])
        tg.append(n_gen / (time.perf_counter() - t0))
    return statistics.median(pp[1:]), statistics.median(tg[1:])


def qlora_speed(binary, path, n_prompt, n_gen, reps, threads):
    out = subprocess.run([binary, "bench", path, "-p", str(n_prompt), "-n", str(n_gen), "-r", str(reps),
                          "-t", str(threads)], check=True, capture_output=True, text=True).stdout
    pp = float(re.search(r"pp\s*\d+\D+?([\d.]+)", out).group(1))
    tg = float(re.search(r"tg\s*\d+\D+?([\d.]+)", out).group(1))
    return pp, tg, out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="+")
    ap.add_argument("--qlora", required=True)
    ap.add_argument("-p", type=int, default=256)
    ap.add_argument("-n", type=int, default=64)
    ap.add_argument("-r", type=int, default=3)
    ap.add_argument("-t", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=2, help="alternating rounds; medians over rounds")
    ap.add_argument("--membw", help="bench_matmul binary: measure the bandwidth bound of tg in the same run")
    ap.add_argument("--no-peer", action="store_true", help="leave llama.cpp out")
    args = ap.parse_args()
    head = f"| model | pp{args.p} qlora | pp{args.p} llama.cpp | ratio | tg{args.n} qlora | tg{args.n} llama.cpp | ratio |"
    rule = "|---|---|---|---|---|---|---|"
    if args.membw:
        head += " bandwidth (GB/s) | tg bound | tg / bound |"
        rule += "---|---|---|"
    print(head)
    print(rule)
    for m in args.models:
        q_pp, q_tg, l_pp, l_tg, bw = [], [], [], [], []
        for _ in range(args.rounds):
            if args.membw:
                bw.append(membw_gbs(args.membw, args.t))
            a, b, _ = qlora_speed(args.qlora, m, args.p, args.n, args.r, args.t)
            q_pp.append(a); q_tg.append(b)
            if not args.no_peer:
                c, d = llama_speed(m, args.p, args.n, args.r, args.t)
                l_pp.append(c); l_tg.append(d)
        qp, qt = statistics.median(q_pp), statistics.median(q_tg)
        lp = statistics.median(l_pp) if l_pp else float("nan")
        lt = statistics.median(l_tg) if l_tg else float("nan")
        row = f"| {m.split('/')[-1]} | {qp:.1f} | {lp:.1f} | {qp / lp:.2f} | {qt:.1f} | {lt:.1f} | {qt / lt:.2f} |"
        if args.membw:
            # Every weight byte is read once per token (the tied head reads all of token_embd).
            g = statistics.median(bw)
            bound = g * 1e9 / os.path.getsize(m)
            row += f" {g:.1f} | {bound:.0f} | {qt / bound:.0%} |"
        print(row, flush=True)


if __name__ == "__main__":
    main()
