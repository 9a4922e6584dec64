#!/usr/bin/env python3
"""Generate the golden vectors in tests/data/golden/ from the real llama.cpp peer.

Why: qlora promises byte-identical output to ggml's reference quantizers. The
only trustworthy oracle is ggml itself, so this script calls the functions
exported by libggml-base.so (shipped inside llama-cpp-python) through ctypes
and commits their outputs. tests/quant/golden_test.cpp then replays every case
against qlora without needing Python or llama.cpp at test time.

Per case <c> it writes:
  <c>.f32                      the input (raw little-endian float32)
  <c>.q8_0 .q5_0 .q4_K .q6_K .q8_K
                               quantize_row_<fmt>_ref(input)
  <c>.q4_1, <c>.q4_1.f32       a valid Q4_1 buffer and dequantize_row_q4_1 of it
  <c>.q5_0in, <c>.q5_0in.f32   a valid Q5_0 buffer and dequantize_row_q5_0 of it
and the manifest records an FNV-1a-64 hash of ggml's dequantization of each
quantized output (cheap to recompute in C++, keeps the data set small).
Special floats go through ggml_fp32_to_fp16_row / ggml_fp32_to_bf16_row.

Where gguf-py or numpy implement the same conversion, the script cross-checks
them against ggml and records the agreement in MANIFEST.json.

Deterministic: fixed seeds, no timestamps, no absolute paths in the manifest.
"""
from __future__ import annotations

import argparse
import ctypes
import hashlib
import json
import sys
import zlib
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "tests" / "data" / "golden"
DEFAULT_MODEL = ROOT / ".cache" / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf"
GENERATOR_COMMAND = "python3 tools/gen_golden.py"

# ggml type ids (ggml.h) for ggml_quantize_chunk cross-checks.
GGML_TYPE_ID = {"q4_1": 3, "q5_0": 6, "q8_0": 8, "q4_K": 12, "q6_K": 14, "q8_K": 15}
# (elements per block, bytes per block) from ggml-common.h.
BLOCK = {"q4_1": (32, 20), "q5_0": (32, 22), "q8_0": (32, 34),
         "q4_K": (256, 144), "q6_K": (256, 210), "q8_K": (256, 292)}
QUANT_FORMATS = ["q8_0", "q5_0", "q4_K", "q6_K", "q8_K"]


# --------------------------------------------------------------------------
# The peer

def ggml_lib_path() -> Path:
    """libggml-base.so inside the installed llama_cpp package (the real peer)."""
    import llama_cpp
    return Path(llama_cpp.__file__).resolve().parent / "lib" / "libggml-base.so"


class Ggml:
    """Thin ctypes wrapper: one method per exported ggml function we trust."""

    def __init__(self, path: Path):
        self.lib = ctypes.CDLL(str(path))
        vp, fp, i64 = ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64
        for fmt in QUANT_FORMATS:
            fn = getattr(self.lib, f"quantize_row_{fmt}_ref")
            fn.argtypes, fn.restype = [fp, vp, i64], None
        for fmt in ["q4_1", "q5_0", "q8_0", "q4_K", "q6_K", "q8_K"]:
            fn = getattr(self.lib, f"dequantize_row_{fmt}")
            fn.argtypes, fn.restype = [vp, fp, i64], None
        for name in ["ggml_fp32_to_fp16_row", "ggml_fp32_to_bf16_row", "ggml_fp32_to_bf16_row_ref"]:
            fn = getattr(self.lib, name)
            fn.argtypes, fn.restype = [fp, vp, i64], None
        for name in ["ggml_fp16_to_fp32_row", "ggml_bf16_to_fp32_row"]:
            fn = getattr(self.lib, name)
            fn.argtypes, fn.restype = [vp, fp, i64], None
        self.lib.ggml_quantize_chunk.argtypes = [ctypes.c_int, fp, vp, i64, i64, i64, fp]
        self.lib.ggml_quantize_chunk.restype = ctypes.c_size_t
        self.lib.ggml_version.restype = ctypes.c_char_p
        self.lib.ggml_commit.restype = ctypes.c_char_p

    def to_fp32(self, fn_name: str, h: np.ndarray) -> np.ndarray:
        h = np.ascontiguousarray(h, dtype="<u2")
        y = np.zeros(h.size, dtype="<f4")
        getattr(self.lib, fn_name)(h.ctypes.data, y.ctypes.data, h.size)
        return y

    def version(self) -> str:
        return f"{self.lib.ggml_version().decode()} ({self.lib.ggml_commit().decode()})"

    def quantize_ref(self, fmt: str, x: np.ndarray) -> bytes:
        x = np.ascontiguousarray(x, dtype="<f4")
        qk, bs = BLOCK[fmt]
        out = np.zeros(x.size // qk * bs, dtype=np.uint8)
        getattr(self.lib, f"quantize_row_{fmt}_ref")(x.ctypes.data, out.ctypes.data, x.size)
        return out.tobytes()

    def quantize_chunk(self, fmt: str, x: np.ndarray) -> bytes:
        """ggml_quantize_chunk without imatrix: the path llama-quantize takes."""
        x = np.ascontiguousarray(x, dtype="<f4")
        qk, bs = BLOCK[fmt]
        out = np.zeros(x.size // qk * bs, dtype=np.uint8)
        self.lib.ggml_quantize_chunk(GGML_TYPE_ID[fmt], x.ctypes.data, out.ctypes.data, 0, 1, x.size, None)
        return out.tobytes()

    def dequantize(self, fmt: str, data: bytes) -> np.ndarray:
        qk, bs = BLOCK[fmt]
        n = len(data) // bs * qk
        src = np.frombuffer(data, dtype=np.uint8).copy()
        y = np.zeros(n, dtype="<f4")
        getattr(self.lib, f"dequantize_row_{fmt}")(src.ctypes.data, y.ctypes.data, n)
        return y

    def fp32_to_16(self, fn_name: str, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x, dtype="<f4")
        y = np.zeros(x.size, dtype="<u2")
        getattr(self.lib, fn_name)(x.ctypes.data, y.ctypes.data, x.size)
        return y


# --------------------------------------------------------------------------
# Input cases

def case_rng(name: str) -> np.random.Generator:
    """Seed from the case name (crc32, not hash(): that is salted per process)."""
    return np.random.default_rng(zlib.crc32(name.encode()))


def cos_case(n: int) -> np.ndarray:
    """ggml test-quantize-fns data: 0.1 + 2*cosf(i), the sum done in double."""
    libm = ctypes.CDLL("libm.so.6")
    libm.cosf.argtypes, libm.cosf.restype = [ctypes.c_float], ctypes.c_float
    return np.array([0.1 + 2.0 * libm.cosf(float(i)) for i in range(n)], dtype=np.float64).astype(np.float32)


def block_scales_case(rng: np.random.Generator, n: int) -> np.ndarray:
    """Each 32-block scaled by 10^k, k = -8..8 cycling: stresses fp16 scale range."""
    x = rng.standard_normal(n)
    k = -8 + (np.arange(n) // 32) % 17
    return (x * np.power(10.0, k)).astype(np.float32)


def ties_case(n: int) -> np.ndarray:
    """Blocks whose x*iscale hits exact .5 points.

    Block kinds cycle by block index b % 4 (e = exponent, a power of two so
    that d and 1/d are exact):
      0: Q8_0 ties   amax = 127*2^e, others (k+0.5)*2^e  -> roundf ties
      1: Q5_0 ties   max = -16*2^e,  others (k+0.5)*2^e  -> x*id+16.5 integral
      2: Q5_0 ties with max = +16*2^e (d negative)
      3: fp16 ties in d itself: d = amax/127 is exactly halfway between halves
    """
    out = np.zeros(n, dtype=np.float64)
    for b in range(n // 32):
        e = (b // 4) % 11 - 5
        s = 2.0 ** e
        kind = b % 4
        j = np.arange(32)
        if kind == 0:
            v = ((j * 37) % 254 - 127) + 0.5  # -126.5 .. 126.5
            v[(b * 7) % 32] = 127.0 * (1 if b % 8 < 4 else -1)
        elif kind in (1, 2):
            v = ((j * 13) % 32 - 16) + 0.5    # -15.5 .. 15.5
            v[(b * 5) % 32] = -16.0 if kind == 1 else 16.0
        else:
            d = 1.0 + 2.0 ** -11 + (b // 4 % 4) * 2.0 ** -9  # odd multiples of the half-ulp
            v = ((j * 29) % 255 - 127) * d
            v[(b * 3) % 32] = 127.0 * d
        out[b * 32:(b + 1) * 32] = v * s
    return out.astype(np.float32)


def smollm2_case(model: Path, rows: int) -> tuple[np.ndarray, bytes] | None:
    """First rows of blk.0.ffn_down.weight, dequantized by gguf-py, plus their Q4_1 bytes."""
    if not model.is_file():
        return None
    from gguf import GGUFReader, GGMLQuantizationType
    from gguf.quants import dequantize
    t = next(t for t in GGUFReader(str(model)).tensors if t.name == "blk.0.ffn_down.weight")
    assert t.tensor_type == GGMLQuantizationType.Q4_1, t.tensor_type
    raw = np.ascontiguousarray(t.data[:rows])
    x = dequantize(raw, GGMLQuantizationType.Q4_1).astype(np.float32).reshape(-1)
    return x, raw.tobytes()


def build_cases(n: int, model: Path) -> list[dict]:
    """Every input case: name, data, notes, and optionally real Q4_1 bytes."""
    cases = []

    def add(name, x, notes, q4_1=None):
        cases.append({"name": name, "x": np.asarray(x, dtype=np.float32), "notes": notes, "q4_1": q4_1})

    add("cos", cos_case(n), "x_i = 0.1 + 2*cosf(i) (ggml test-quantize-fns data, offset 0, A = 2)")
    add("gauss", case_rng("gauss").standard_normal(n).astype(np.float32), "N(0,1)")
    add("gauss_weights", (case_rng("gauss_weights").standard_normal(n) * 0.02).astype(np.float32),
        "N(0, 0.02): typical transformer weight scale")
    add("student_t3", case_rng("student_t3").standard_t(3, n).astype(np.float32), "Student t, 3 dof: heavy tails")
    add("block_scales", block_scales_case(case_rng("block_scales"), n),
        "N(0,1) with 32-block b scaled by 10^(-8 + b % 17): fp16 scale underflow/subnormal/overflow")
    add("zeros", np.zeros(n, dtype=np.float32), "all zeros: d = 0 paths")
    add("constant", np.full(n, 0.5, dtype=np.float32), "all 0.5: max == min paths")
    add("tiny", (case_rng("tiny").standard_normal(n) * 1e-30).astype(np.float32),
        "N(0,1)*1e-30: squares underflow, fp16 scale flushes to 0")
    add("huge", (case_rng("huge").standard_normal(n) * 1e30).astype(np.float32),
        "N(0,1)*1e30: fp16 scales overflow to inf, sums of squares overflow; bytes are whatever ggml produces")
    add("ties", ties_case(n), ties_case.__doc__.strip().splitlines()[0] +
        " (cycling Q8_0 ties, Q5_0 ties with negative/positive max, fp16 ties in d; power-of-two scales 2^-5..2^5)")
    smol = smollm2_case(model, 4)
    if smol is None:
        print(f"note: {model} not found, skipping case smollm2_ffn_down (run tools/fetch_model.sh)", file=sys.stderr)
    else:
        add("smollm2_ffn_down", smol[0],
            "rows 0..3 of blk.0.ffn_down.weight (ne0 = 1536) from SmolLM2-135M-Instruct.Q4_1.gguf, dequantized "
            "by gguf-py; the .q4_1 decode buffer is the real Q4_1 bytes of those rows", q4_1=smol[1])
    return cases


# --------------------------------------------------------------------------
# Valid random block buffers for decode checks

def random_finite_fp16(rng: np.random.Generator, count: int) -> np.ndarray:
    """Scales for decode checks: mostly realistic magnitudes, some arbitrary finite halves.

    Arbitrary bit patterns (exponent != 31) cover subnormal, negative and
    large d; realistic ones exercise the common path.
    """
    realistic = (rng.uniform(1e-4, 0.1, count) * rng.choice([-1.0, 1.0], count)).astype(np.float16).view("<u2")
    bits = rng.integers(0, 1 << 16, count, dtype=np.uint32)
    bits = np.where(((bits >> 10) & 0x1F) == 0x1F, bits & ~np.uint32(0x4000), bits).astype("<u2")
    pick = rng.random(count) < 0.25
    return np.where(pick, bits, realistic).astype("<u2")


def random_q4_1(rng: np.random.Generator, nblocks: int) -> bytes:
    """Q4_1 blocks: fp16 d, fp16 m, 16 random nibble bytes."""
    blocks = np.zeros((nblocks, 20), dtype=np.uint8)
    blocks[:, 0:2] = random_finite_fp16(rng, nblocks).view(np.uint8).reshape(nblocks, 2)
    blocks[:, 2:4] = random_finite_fp16(rng, nblocks).view(np.uint8).reshape(nblocks, 2)
    blocks[:, 4:] = rng.integers(0, 256, (nblocks, 16), dtype=np.uint8)
    return blocks.tobytes()


def random_q5_0(rng: np.random.Generator, nblocks: int) -> bytes:
    """Q5_0 blocks: fp16 d, 4 random qh bytes, 16 random nibble bytes."""
    blocks = np.zeros((nblocks, 22), dtype=np.uint8)
    blocks[:, 0:2] = random_finite_fp16(rng, nblocks).view(np.uint8).reshape(nblocks, 2)
    blocks[:, 2:] = rng.integers(0, 256, (nblocks, 20), dtype=np.uint8)
    return blocks.tobytes()


# --------------------------------------------------------------------------
# fp16 / bf16 special values

def special_float_bits() -> np.ndarray:
    """fp32 bit patterns at every rounding edge of fp16 and bf16, then random bits."""
    h = [
        0x00000000, 0x00000001, 0x007FFFFF, 0x00800000,            # zero, f32 subnormals, min normal
        0x33000000, 0x33000001, 0x337FFFFF, 0x33800000,            # 2^-25 (tie to 0), just above, 2^-24
        0x33C00000, 0x34200000, 0x34400000,                        # 1.5*2^-24 tie, 2.5*2^-24 tie, 3*2^-24
        0x387FC000, 0x387FE000, 0x387FF000, 0x38800000,            # around the fp16 subnormal/normal edge
        0x3F800000, 0x3F801000, 0x3F803000, 0x3F801001, 0x3F800FFF,  # 1, fp16 ties to even both ways
        0x3F808000, 0x3F818000, 0x3F808001, 0x3F807FFF,            # bf16 ties and neighbours
        0x477FE000, 0x477FEFFF, 0x477FF000, 0x47800000,            # 65504, just below/at 65520, 65536
        0x7F7F7FFF, 0x7F7F8000, 0x7F7FFFFF,                        # near FLT_MAX: bf16 tie, overflow
        0x7F800000,                                                # +inf
        0x7FC00000, 0x7F800001, 0x7FBFFFFF, 0x7FFFFFFF, 0x7FC00001,  # quiet/signalling NaNs with payloads
        0x7F810000, 0x7FA00000,                                    # sNaN payload only in the top bits
        0x40490FDB, 0x3DCCCCCD, 0x3EAAAAAB,                        # pi, 0.1, 1/3
    ]
    pos = np.array(h, dtype=np.uint32)
    specials = np.concatenate([pos, pos | np.uint32(0x80000000)])
    rand = np.random.default_rng(zlib.crc32(b"special_random")).integers(0, 1 << 32, 4096 - specials.size,
                                                                         dtype=np.uint64).astype(np.uint32)
    return np.concatenate([specials, rand]).astype("<u4"), int(specials.size)


# --------------------------------------------------------------------------
# Cross-checks against gguf-py / numpy

def gguf_quantize(fmt: str, x: np.ndarray) -> bytes | None:
    """gguf-py's numpy quantizer for fmt, or None if it has none."""
    from gguf import GGMLQuantizationType as T
    from gguf.quants import quantize
    qt = {"q8_0": T.Q8_0, "q5_0": T.Q5_0, "bf16": T.BF16}.get(fmt)
    if qt is None:
        return None
    with np.errstate(all="ignore"):
        return quantize(x.reshape(1, -1), qt).tobytes()


def gguf_dequantize(fmt: str, data: bytes) -> np.ndarray:
    """gguf-py's numpy dequantizer for fmt (all our formats except Q8_K have one)."""
    from gguf import GGMLQuantizationType as T
    from gguf.quants import dequantize
    qt = {"q4_1": T.Q4_1, "q5_0": T.Q5_0, "q8_0": T.Q8_0, "q4_K": T.Q4_K, "q6_K": T.Q6_K}[fmt]
    with np.errstate(all="ignore"):
        return dequantize(np.frombuffer(data, dtype=np.uint8).reshape(1, -1), qt).astype(np.float32).reshape(-1)


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.tobytes() == b.tobytes()


def first_diff_block(a: bytes, b: bytes, block_bytes: int) -> int | None:
    for i in range(0, min(len(a), len(b)), block_bytes):
        if a[i:i + block_bytes] != b[i:i + block_bytes]:
            return i // block_bytes
    return None if len(a) == len(b) else min(len(a), len(b)) // block_bytes


def fnv1a64(data: bytes) -> str:
    """FNV-1a 64-bit: trivial to recompute in the C++ test, unlike sha256."""
    h = 0xCBF29CE484222325
    for byte in data:
        h = ((h ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


# --------------------------------------------------------------------------
# Output

class Writer:
    """Writes files into the golden dir and remembers their sha256."""

    def __init__(self, out: Path):
        self.out = out
        out.mkdir(parents=True, exist_ok=True)
        self.written: set[str] = set()

    def write(self, name: str, data: bytes) -> dict:
        (self.out / name).write_bytes(data)
        self.written.add(name)
        return {"file": name, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}

    def remove_stale(self):
        """Delete files the previous MANIFEST.json listed that this run no longer writes.

        Only our own files are candidates: the golden directory is shared with
        other generators (nf4/, smollm2_llama_quantize.json, ...).
        """
        old = self.out / "MANIFEST.json"
        if not old.is_file():
            return
        for name in _manifest_files(json.loads(old.read_text())):
            p = self.out / name
            if name not in self.written and p.parent == self.out and p.is_file():
                p.unlink()


def _manifest_files(node) -> set[str]:
    """Every {"file": ...} name anywhere in a manifest."""
    if isinstance(node, dict):
        found = {node["file"]} if isinstance(node.get("file"), str) else set()
        for v in node.values():
            found |= _manifest_files(v)
        return found
    if isinstance(node, list):
        return set().union(*(_manifest_files(v) for v in node)) if node else set()
    return set()


def nonfinite_summary(fmt: str, data: bytes) -> dict:
    """How many stored fp16 scales are inf/NaN: documents what the peer did on 'huge'."""
    qk, bs = BLOCK[fmt]
    blocks = np.frombuffer(data, dtype=np.uint8).reshape(-1, bs)
    offsets = {"q8_0": [0], "q5_0": [0], "q4_1": [0, 2], "q4_K": [0, 2], "q6_K": [208]}.get(fmt)
    if offsets is None:  # q8_K: f32 d
        d = blocks[:, 0:4].copy().view("<f4").reshape(-1)
        return {"inf_d": int(np.isinf(d).sum()), "nan_d": int(np.isnan(d).sum())}
    res = {}
    for off in offsets:
        d = blocks[:, off:off + 2].copy().view("<f2").reshape(-1)
        res[f"inf_at_{off}"] = int(np.isinf(d).sum())
        res[f"nan_at_{off}"] = int(np.isnan(d).sum())
    return res


def process_case(ggml: Ggml, w: Writer, case: dict) -> dict:
    """Quantize one case with every reference, write files, cross-check peers."""
    name, x = case["name"], case["x"]
    entry = {"n": int(x.size), "notes": case["notes"], "input": w.write(f"{name}.f32", x.astype("<f4").tobytes()),
             "quant": {}, "decode": {}, "cross_checks": {}}
    for fmt in QUANT_FORMATS:
        data = ggml.quantize_ref(fmt, x)
        rec = w.write(f"{name}.{fmt}", data)
        rec["dequant_fnv1a64"] = fnv1a64(ggml.dequantize(fmt, data).tobytes())
        nf = nonfinite_summary(fmt, data)
        if any(nf.values()):
            rec["nonfinite_scales"] = nf
        zero = int((~np.frombuffer(data, dtype=np.uint8).reshape(-1, BLOCK[fmt][1]).any(axis=1)).sum())
        if zero:
            rec["all_zero_blocks"] = zero
        entry["quant"][fmt] = rec
        cc = entry["cross_checks"]
        if fmt != "q8_K":
            chunk = ggml.quantize_chunk(fmt, x)
            cc[f"{fmt}:ggml_quantize_chunk_vs_ref"] = _agreement(chunk, data, BLOCK[fmt][1])
            gd = gguf_dequantize(fmt, data)
            cc[f"{fmt}:gguf_py_dequantize_vs_ggml"] = "identical" if same_bits(gd, ggml.dequantize(fmt, data)) \
                else f"differs at {int(np.flatnonzero(gd.view('<u4') != ggml.dequantize(fmt, data).view('<u4'))[0])}"
        g = gguf_quantize(fmt, x)
        if g is not None:
            cc[f"{fmt}:gguf_py_quantize_vs_ref"] = _agreement(g, data, BLOCK[fmt][1])

    rng = case_rng(name + ":decode")
    q4_1 = case["q4_1"] if case["q4_1"] is not None else random_q4_1(rng, x.size // 32)
    q5_0 = random_q5_0(rng, x.size // 32)
    for fmt, tag, data in [("q4_1", "q4_1", q4_1), ("q5_0", "q5_0in", q5_0)]:
        y = ggml.dequantize(fmt, data)
        entry["decode"][fmt] = {"blocks": w.write(f"{name}.{tag}", data),
                                "dequant": w.write(f"{name}.{tag}.f32", y.astype("<f4").tobytes())}
        gd = gguf_dequantize(fmt, data)
        entry["cross_checks"][f"{fmt}:decode:gguf_py_dequantize_vs_ggml"] = \
            "identical" if same_bits(gd, y) else f"{int((gd.view('<u4') != y.view('<u4')).sum())} values differ"
    return entry


def _agreement(a: bytes, b: bytes, block_bytes: int) -> str:
    d = first_diff_block(a, b, block_bytes)
    return "identical" if d is None else f"differs, first block {d}"


def _f16_decode_agreement(ggml: Ggml, all16: np.ndarray) -> str:
    """numpy half->float vs ggml over all 65536 halves; NaNs are compared apart (payload handling)."""
    a = all16.view("<f2").astype(np.float32).view("<u4")
    b = ggml.to_fp32("ggml_fp16_to_fp32_row", all16).view("<u4")
    nan = np.isnan(all16.view("<f2"))
    return (f"non-NaN: {int((a[~nan] != b[~nan]).sum())} of {int((~nan).sum())} differ; "
            f"NaN: {int((a[nan] != b[nan]).sum())} of {int(nan.sum())} differ")


def _f16_decode_edges(ggml: Ggml, w: Writer) -> dict:
    """ggml's fp16->fp32 of every half with exponent 0 or 31 (zeros, subnormals, inf, NaN).

    The all-65536 decode is only hashed; these edge classes are stored in full
    so a failure can name the exact half (ggml quiets signalling NaNs).
    """
    all16 = np.arange(1 << 16, dtype=np.uint32)
    e = (all16 >> 10) & 0x1F
    h = all16[(e == 0) | (e == 0x1F)].astype("<u2")
    return {"halves": w.write("f16_edges.f16", h.tobytes()),
            "f32": w.write("f16_edges.f32", ggml.to_fp32("ggml_fp16_to_fp32_row", h).tobytes())}


def process_floats(ggml: Ggml, w: Writer) -> dict:
    """fp16/bf16 conversions of special and random fp32 bit patterns."""
    bits, n_special = special_float_bits()
    x = bits.view("<f4")
    f16 = ggml.fp32_to_16("ggml_fp32_to_fp16_row", x)
    bf16 = ggml.fp32_to_16("ggml_fp32_to_bf16_row", x)
    bf16_ref = ggml.fp32_to_16("ggml_fp32_to_bf16_row_ref", x)
    with np.errstate(all="ignore"):
        np16 = x.astype(np.float16).view("<u2")
    nan = np.isnan(x)
    g = np.frombuffer(gguf_quantize("bf16", x), dtype="<u2")
    all16 = np.arange(1 << 16, dtype=np.uint32).astype("<u2")  # every 16-bit pattern, for the decoders
    return {
        "n": int(x.size),
        "n_special": n_special,
        "notes": f"{x.size} fp32 bit patterns: {n_special} rounding edges of fp16/bf16 (both signs), "
                 "then uniformly random 32-bit patterns (fixed seed)",
        "input": w.write("special.f32", bits.tobytes()),
        "f16": w.write("special.f16", f16.tobytes()),
        "bf16": w.write("special.bf16", bf16.tobytes()),
        "f16_decode_edges": _f16_decode_edges(ggml, w),
        "f16_to_f32_all_fnv1a64": fnv1a64(ggml.to_fp32("ggml_fp16_to_fp32_row", all16).tobytes()),
        "bf16_to_f32_all_fnv1a64": fnv1a64(ggml.to_fp32("ggml_bf16_to_fp32_row", all16).tobytes()),
        "cross_checks": {
            "f16_to_f32:numpy_vs_ggml_all_65536": _f16_decode_agreement(ggml, all16),
            "bf16:ggml_fp32_to_bf16_row_ref_vs_row": "identical" if same_bits(bf16, bf16_ref) else "differs",
            "bf16:gguf_py_vs_ggml": "identical" if same_bits(g, bf16) else
            f"{int((g != bf16).sum())} values differ",
            "f16:numpy_astype_vs_ggml_non_nan": "identical" if same_bits(np16[~nan], f16[~nan]) else
            f"{int((np16[~nan] != f16[~nan]).sum())} values differ",
            "f16:numpy_astype_vs_ggml_nan": f"{int((np16[nan] != f16[nan]).sum())} of {int(nan.sum())} NaNs "
                                            "differ (numpy keeps payload bits; ggml canonicalises)",
            "f16:ggml_nan_outputs": sorted({f"0x{v:04x}" for v in f16[nan].tolist()}),
            "bf16:ggml_nan_outputs_sample": sorted({f"0x{v:04x}" for v in bf16[nan][:8].tolist()}),
        },
    }


def peer_versions(ggml: Ggml) -> dict:
    import gguf
    import llama_cpp
    try:
        from importlib.metadata import version
        gguf_version = version("gguf")
    except Exception:  # pragma: no cover - metadata missing
        gguf_version = getattr(gguf, "__version__", "unknown")
    return {"llama_cpp_python": llama_cpp.__version__, "ggml": ggml.version(), "gguf": gguf_version,
            "numpy": np.__version__, "library": "llama_cpp/lib/libggml-base.so"}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="golden directory (default: tests/data/golden)")
    ap.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="SmolLM2 Q4_1 GGUF for the real-weights case")
    ap.add_argument("--lib", type=Path, default=None, help="libggml-base.so (default: the one in llama_cpp)")
    ap.add_argument("-n", type=int, default=4096, help="elements per synthetic case (multiple of 256)")
    args = ap.parse_args()
    if args.n % 256:
        ap.error("-n must be a multiple of 256")

    ggml = Ggml(args.lib or ggml_lib_path())
    w = Writer(args.out)
    manifest = {
        "generator": GENERATOR_COMMAND,
        "description": "Golden vectors from llama.cpp's ggml reference quantizers (see tools/gen_golden.py docstring)",
        "peers": peer_versions(ggml),
        "formats": {f: {"block_elems": BLOCK[f][0], "block_bytes": BLOCK[f][1]} for f in BLOCK},
        "cases": {},
    }
    for case in build_cases(args.n, args.model):
        manifest["cases"][case["name"]] = process_case(ggml, w, case)
        print(f"{case['name']:18s} n={case['x'].size}", file=sys.stderr)
    manifest["floats"] = process_floats(ggml, w)
    w.remove_stale()
    text = json.dumps(manifest, indent=1, sort_keys=True) + "\n"
    (args.out / "MANIFEST.json").write_text(text)
    total = sum((args.out / f).stat().st_size for f in w.written) + len(text)
    print(f"wrote {len(w.written)} files + MANIFEST.json to {args.out} ({total} bytes)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
