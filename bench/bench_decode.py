#!/usr/bin/env python3
"""Prompt processing (pp) and token generation (tg) speed: `qlora bench` against
llama.cpp (llama-cpp-python's C API through llama_cpp.Llama.eval), measured in
the same run, alternating, on the same GGUF files and thread count.

llama.cpp side: pp = one eval() of the prompt from an empty cache; tg = n
single-token eval() calls (each returns the logits, like our decoder). Python
adds a few microseconds per call, negligible against milliseconds per token.

Usage: python3 bench/bench_decode.py --qlora build/apps/qlora/qlora MODEL.gguf [...]
"""
import argparse
import re
import statistics
import subprocess
import time

import llama_cpp


def llama_speed(path, n_prompt, n_gen, reps, threads):
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
    args = ap.parse_args()
    print(f"| model | pp{args.p} qlora | pp{args.p} llama.cpp | ratio | tg{args.n} qlora | tg{args.n} llama.cpp | ratio |")
    print("|---|---|---|---|---|---|---|")
    for m in args.models:
        q_pp, q_tg, l_pp, l_tg = [], [], [], []
        for _ in range(args.rounds):
            a, b, _ = qlora_speed(args.qlora, m, args.p, args.n, args.r, args.t)
            q_pp.append(a); q_tg.append(b)
            c, d = llama_speed(m, args.p, args.n, args.r, args.t)
            l_pp.append(c); l_tg.append(d)
        qp, qt, lp, lt = (statistics.median(v) for v in (q_pp, q_tg, l_pp, l_tg))
        print(f"| {m.split('/')[-1]} | {qp:.1f} | {lp:.1f} | {qp / lp:.2f} | {qt:.1f} | {lt:.1f} | {qt / lt:.2f} |")


if __name__ == "__main__":
    main()
