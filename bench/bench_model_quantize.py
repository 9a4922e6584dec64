#!/usr/bin/env python3
"""Whole-model quantization time: `qlora quantize` against llama.cpp's quantizer.

For each scheme (default q4_k_m, q8_0, f16) and N repetitions (default 5) this
runs, alternating which side goes first in each repetition:

  qlora      `QLORA IN OUT --type T --no-error -q` as a subprocess, with
             QLORA_THREADS=<threads>; timed as the whole process (exec, mmap
             of the input, quantization, write + fsync + rename)
  llama.cpp  llama_cpp.llama_model_quantize(IN, OUT, params) in this Python
             process (ftype for T, nthread=<threads>, allow_requantize=True);
             timed around that one call (model load, quantization, write; no
             process start-up, no fsync)

Then it prints a Markdown table: the median wall seconds of each side, the
ratio llama.cpp/qlora (> 1 means qlora is faster), the median CPU seconds
(user + sys over all threads; steadier than wall time on a shared machine),
and whether the two output files are byte-identical (sha256 of the last
repetition's outputs). Exit status 1 if any pair differs.

Usage:
  python3 bench/bench_model_quantize.py build/apps/qlora/qlora
  python3 bench/bench_model_quantize.py QLORA --model M.gguf --types q4_k_m --reps 9
"""
from __future__ import annotations

import argparse
import contextlib
import datetime
import hashlib
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DEFAULT_MODEL = Path(__file__).resolve().parent.parent / ".cache/models/SmolLM2-135M-Instruct.Q4_1.gguf"

# Our scheme names -> llama.cpp's llama_ftype constant names.
LLAMA_FTYPES = {
    "q4_k_m": "LLAMA_FTYPE_MOSTLY_Q4_K_M",
    "q8_0": "LLAMA_FTYPE_MOSTLY_Q8_0",
    "f16": "LLAMA_FTYPE_MOSTLY_F16",
}


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@contextlib.contextmanager
def silenced_stderr():
    """llama.cpp logs every tensor to fd 2; hide it (at the fd level)."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run_qlora(binary: str, model: Path, out: Path, scheme: str, threads: int) -> tuple[float, float]:
    """(wall seconds, CPU seconds user+sys over all threads) of one run."""
    env = dict(os.environ, QLORA_THREADS=str(threads))
    cmd = [binary, "quantize", str(model), str(out), "--type", scheme, "--no-error", "-q"]
    c0 = children_cpu()
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    dt = time.perf_counter() - t0
    cpu = children_cpu() - c0
    if proc.returncode != 0:
        raise SystemExit(f"qlora failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr}")
    return dt, cpu


def run_llama(llama_cpp, model: Path, out: Path, scheme: str, threads: int) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process, all threads) of one call."""
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, LLAMA_FTYPES[scheme])
    params.nthread = threads
    params.allow_requantize = True
    with silenced_stderr():
        c0 = time.process_time()
        t0 = time.perf_counter()
        rc = llama_cpp.llama_model_quantize(str(model).encode(), str(out).encode(), params)
        dt = time.perf_counter() - t0
        cpu = time.process_time() - c0
    if rc != 0:
        raise SystemExit(f"llama_model_quantize failed ({rc}) for {scheme}")
    return dt, cpu


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("qlora", help="path to the qlora binary (e.g. build/apps/qlora/qlora)")
    ap.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="input GGUF (default: %(default)s)")
    ap.add_argument("--types", default="q4_k_m,q8_0,f16", help="comma-separated schemes (default: %(default)s)")
    ap.add_argument("--reps", type=int, default=5, help="repetitions per side and scheme (default: %(default)s)")
    ap.add_argument("--threads", type=int, default=2, help="threads for both sides (default: %(default)s)")
    ap.add_argument("--out-dir", type=Path, default=None, help="where outputs go (default: a temp dir, removed)")
    ap.add_argument("--keep", action="store_true", help="keep the output files")
    args = ap.parse_args()

    import llama_cpp  # imported here so --help works without it

    schemes = [s.strip().lower() for s in args.types.split(",") if s.strip()]
    for s in schemes:
        if s not in LLAMA_FTYPES:
            ap.error(f"unknown scheme {s!r}; known: {', '.join(LLAMA_FTYPES)}")
    if not args.model.is_file():
        ap.error(f"model not found: {args.model}")
    if not os.access(args.qlora, os.X_OK):
        ap.error(f"qlora binary not executable: {args.qlora}")

    out_dir = args.out_dir or Path(tempfile.mkdtemp(prefix="qlora-bench-"))
    out_dir.mkdir(parents=True, exist_ok=True)
    llama_cpp.llama_backend_init()

    # Warm the page cache for the input once, so neither side pays for it first.
    with open(args.model, "rb") as f:
        while f.read(1 << 24):
            pass

    rows = []
    try:
        for scheme in schemes:
            ours_out = out_dir / f"qlora.{scheme}.gguf"
            peer_out = out_dir / f"llama.{scheme}.gguf"
            t_ours, t_peer, c_ours, c_peer = [], [], [], []
            for rep in range(args.reps):
                # Alternate who goes first, so drift in machine load hits both.
                order = ("qlora", "llama") if rep % 2 == 0 else ("llama", "qlora")
                for who in order:
                    if who == "qlora":
                        wall, cpu = run_qlora(args.qlora, args.model, ours_out, scheme, args.threads)
                        t_ours.append(wall)
                        c_ours.append(cpu)
                    else:
                        wall, cpu = run_llama(llama_cpp, args.model, peer_out, scheme, args.threads)
                        t_peer.append(wall)
                        c_peer.append(cpu)
                print(f"  {scheme} rep {rep + 1}/{args.reps}: qlora {t_ours[-1]:.3f} s, llama.cpp {t_peer[-1]:.3f} s",
                      file=sys.stderr)
            h_ours, h_peer = sha256(ours_out), sha256(peer_out)
            rows.append(dict(scheme=scheme, ours=t_ours, peer=t_peer, c_ours=c_ours, c_peer=c_peer,
                             identical=h_ours == h_peer,
                             h_ours=h_ours, h_peer=h_peer, size=ours_out.stat().st_size))
    finally:
        if not args.keep and args.out_dir is None:
            shutil.rmtree(out_dir, ignore_errors=True)

    load = os.getloadavg()
    print(f"Model: `{args.model.name}`; {args.reps} alternating repetitions, {args.threads} threads each side; "
          f"{cpu_model()}, {os.cpu_count()} CPUs; {datetime.datetime.now().isoformat(timespec='minutes')}; "
          f"load average at end {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print()
    print("| scheme | qlora median s | llama.cpp median s | llama.cpp / qlora | qlora min–max s | "
          "llama.cpp min–max s | qlora CPU s | llama.cpp CPU s | CPU ratio | output MiB | byte-identical |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in rows:
        mo, mp = statistics.median(r["ours"]), statistics.median(r["peer"])
        co, cp = statistics.median(r["c_ours"]), statistics.median(r["c_peer"])
        ident = "yes" if r["identical"] else f"**NO** ({r['h_ours'][:12]} vs {r['h_peer'][:12]})"
        print(f"| {r['scheme']} | {mo:.3f} | {mp:.3f} | {mp / mo:.2f} | "
              f"{min(r['ours']):.3f}–{max(r['ours']):.3f} | {min(r['peer']):.3f}–{max(r['peer']):.3f} | "
              f"{co:.3f} | {cp:.3f} | {cp / co:.2f} | {r['size'] / 2**20:.1f} | {ident} |")
    print()
    print("Wall: median seconds per run. CPU: median user+sys seconds summed over threads (qlora: the child "
          "process; llama.cpp: this process during the call). Ratios > 1 mean qlora is faster.")
    return 0 if all(r["identical"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
