#!/usr/bin/env python3
"""Quantize a GGUF with llama.cpp itself and compare it with qlora's output.

Why: byte-identical Q4_K_M / Q8_0 / F16 files are qlora's acceptance bar. The
golden vectors cover single rows; this covers the whole pipeline (per-tensor
type choice, requantization of the input, KV metadata, tensor order, padding)
against llama.cpp's own llama_model_quantize, run in-process through
llama-cpp-python, and also reports how long llama.cpp took.

Usage:
  tools/compare_quantize.py MODEL.gguf --type q4_k_m --ours ours.gguf
  tools/compare_quantize.py MODEL.gguf --type q8_0 --qlora build/apps/qlora/qlora
  tools/compare_quantize.py MODEL.gguf --type f16          # llama.cpp half only
Exit status: 0 when every compared item matches (or nothing of ours was given),
1 on any mismatch, 2 when a quantizer fails.
"""
from __future__ import annotations

import argparse
import ctypes
import hashlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# llama_ftype values (include/llama.h); the names are what `qlora quantize --type` takes.
FTYPES = {"f16": 1, "q8_0": 7, "q4_k_m": 15}


# --------------------------------------------------------------------------
# Running the quantizers

_LOG_CB = None  # keep the ctypes callback alive while llama.cpp may call it


def silence_llama_log() -> None:
    """llama.cpp logs every tensor to stderr; drop it unless --verbose."""
    import llama_cpp
    global _LOG_CB
    _LOG_CB = llama_cpp.llama_log_callback(lambda level, text, user: None)
    llama_cpp.llama_log_set(_LOG_CB, ctypes.c_void_p(0))


def llama_quantize(src: Path, dst: Path, ftype: int, nthread: int) -> float:
    """Run llama_model_quantize with the default params; returns wall seconds."""
    import llama_cpp
    llama_cpp.llama_backend_init()
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = ftype
    params.nthread = nthread
    params.allow_requantize = True
    t0 = time.perf_counter()
    rc = llama_cpp.llama_model_quantize(str(src).encode(), str(dst).encode(), ctypes.byref(params))
    elapsed = time.perf_counter() - t0
    if rc != 0:
        raise RuntimeError(f"llama_model_quantize returned {rc}")
    return elapsed


def qlora_quantize(binary: Path, src: Path, dst: Path, qtype: str) -> float:
    """Run `qlora quantize IN OUT --type T`; returns wall seconds."""
    cmd = [str(binary), "quantize", str(src), str(dst), "--type", qtype]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stderr[-2000:]}")
    return elapsed


# --------------------------------------------------------------------------
# Reading GGUF files

def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def describe(path: Path) -> dict:
    """Everything we compare: KV records (raw bytes), tensors (type, shape, sha256), file hash."""
    from gguf import GGUFReader
    r = GGUFReader(str(path))
    kv = {}
    for name, field in r.fields.items():
        raw = b"".join(bytes(p.tobytes()) for p in field.parts)
        kv[name] = {"raw": raw, "types": [t.name for t in field.types], "value": _short(field)}
    tensors = {}
    for t in r.tensors:
        tensors[t.name] = {"type": t.tensor_type.name, "shape": [int(v) for v in t.shape],
                           "sha256": hashlib.sha256(t.data.tobytes()).hexdigest(), "bytes": int(t.n_bytes),
                           "offset": int(t.data_offset)}
    return {"kv": kv, "kv_order": list(r.fields), "tensors": tensors, "tensor_order": [t.name for t in r.tensors],
            "sha256": sha256_file(path), "size": path.stat().st_size}


def _short(field) -> str:
    """Printable value of a KV field, arrays abbreviated."""
    try:
        v = field.contents()
    except Exception as e:  # pragma: no cover - exotic field
        return f"<{e}>"
    if isinstance(v, list):
        return f"[{len(v)} items] " + repr(v[:3])[:60]
    return repr(v)[:80]


# --------------------------------------------------------------------------
# Reports

def type_histogram(desc: dict) -> str:
    counts: dict[str, int] = {}
    for t in desc["tensors"].values():
        counts[t["type"]] = counts.get(t["type"], 0) + 1
    return ", ".join(f"{k}:{v}" for k, v in sorted(counts.items()))


def compare(ref: dict, ours: dict) -> list[str]:
    """Print per-tensor and KV tables; return a list of mismatch descriptions."""
    problems = []
    names = ref["tensor_order"] + [n for n in ours["tensor_order"] if n not in ref["tensors"]]
    print(f"\n{'tensor':34s} {'llama.cpp':>9s} {'qlora':>9s}  {'bytes':>9s}  result")
    for name in names:
        a, b = ref["tensors"].get(name), ours["tensors"].get(name)
        if a is None or b is None:
            problems.append(f"tensor {name} only in {'qlora' if a is None else 'llama.cpp'}")
            print(f"{name:34s} {a['type'] if a else '-':>9s} {b['type'] if b else '-':>9s}  {'':>9s}  MISSING")
            continue
        res = []
        if a["type"] != b["type"]:
            res.append("type")
        if a["shape"] != b["shape"]:
            res.append("shape")
        if a["sha256"] != b["sha256"]:
            res.append("bytes")
        if a["offset"] != b["offset"]:
            res.append("offset")
        if res:
            problems.append(f"tensor {name}: {'/'.join(res)} differ")
        print(f"{name:34s} {a['type']:>9s} {b['type']:>9s}  {a['bytes']:>9d}  {'ok' if not res else 'DIFF ' + ','.join(res)}")
    if ref["tensor_order"] != ours["tensor_order"]:
        problems.append("tensor order differs")

    print(f"\n{'kv key':44s} result")
    keys = ref["kv_order"] + [k for k in ours["kv_order"] if k not in ref["kv"]]
    for key in keys:
        a, b = ref["kv"].get(key), ours["kv"].get(key)
        if a is None or b is None:
            problems.append(f"kv {key} only in {'qlora' if a is None else 'llama.cpp'}")
            print(f"{key:44s} MISSING in {'llama.cpp' if a is None else 'qlora'}")
        elif a["raw"] != b["raw"]:
            problems.append(f"kv {key}: llama.cpp {a['types']} {a['value']} vs qlora {b['types']} {b['value']}")
            print(f"{key:44s} DIFF  llama.cpp={a['value']}  qlora={b['value']}")
        else:
            print(f"{key:44s} ok")
    if ref["kv_order"] != ours["kv_order"]:
        problems.append("kv order differs")

    same_file = ref["sha256"] == ours["sha256"]
    print(f"\nwhole file: llama.cpp {ref['sha256'][:16]} ({ref['size']} B)  "
          f"qlora {ours['sha256'][:16]} ({ours['size']} B)  {'IDENTICAL' if same_file else 'DIFFERENT'}")
    if not same_file:
        problems.append("whole-file sha256 differs")
    return problems


# --------------------------------------------------------------------------

def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", type=Path, help="input GGUF (any type llama.cpp can requantize)")
    ap.add_argument("--type", choices=sorted(FTYPES), default="q4_k_m", help="target file type")
    ap.add_argument("--ours", type=Path, help="GGUF produced by `qlora quantize` (compared if given)")
    ap.add_argument("--qlora", type=Path, help="qlora binary: run it to produce --ours (or a temp file)")
    ap.add_argument("--llama-out", type=Path, help="keep llama.cpp's output here (default: temporary)")
    ap.add_argument("--nthread", type=int, default=2, help="llama.cpp quantize threads (default 2)")
    ap.add_argument("--repeat", type=int, default=1, help="time llama.cpp this many runs; report min and median")
    ap.add_argument("--verbose", action="store_true", help="show llama.cpp's log")
    args = ap.parse_args()
    if not args.model.is_file():
        ap.error(f"{args.model} not found")
    if not args.verbose:
        silence_llama_log()

    with tempfile.TemporaryDirectory(prefix="qlora-cmp-") as tmp:
        ref_path = args.llama_out or Path(tmp) / f"llama.{args.type}.gguf"
        try:
            times = sorted(llama_quantize(args.model, ref_path, FTYPES[args.type], args.nthread)
                           for _ in range(max(1, args.repeat)))
        except RuntimeError as e:
            print(f"llama.cpp quantize failed: {e}", file=sys.stderr)
            return 2
        ref = describe(ref_path)
        timing = f"{times[0]:.2f} s" if len(times) == 1 else \
            f"min {times[0]:.2f} s, median {times[len(times) // 2]:.2f} s of {len(times)}"
        print(f"llama.cpp {args.type} ({args.nthread} threads): {timing}, {ref['size']} B, "
              f"sha256 {ref['sha256']}\n  tensor types: {type_histogram(ref)}")

        ours_path = args.ours
        if args.qlora is not None:
            ours_path = ours_path or Path(tmp) / f"qlora.{args.type}.gguf"
            try:
                t_ours = qlora_quantize(args.qlora, args.model, ours_path, args.type)
            except (RuntimeError, OSError) as e:
                print(f"qlora quantize failed: {e}", file=sys.stderr)
                return 2
            print(f"qlora {args.type}: {t_ours:.2f} s")
        if ours_path is None:
            print("no qlora output given (--ours / --qlora): llama.cpp half only")
            return 0
        if not ours_path.is_file():
            print(f"{ours_path} not found", file=sys.stderr)
            return 2
        problems = compare(ref, describe(ours_path))

    if problems:
        print(f"\n{len(problems)} mismatch(es):")
        for p in problems[:40]:
            print(f"  - {p}")
        return 1
    print("\nall tensors, KV records and the whole file match")
    return 0


if __name__ == "__main__":
    sys.exit(main())
