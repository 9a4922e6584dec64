#!/usr/bin/env python3
"""Generate tests/data/golden/nf4/ from the real bitsandbytes (CPU build).

Why: quant/nf4.hpp and quant/nf4_double_quant.hpp promise the same bytes as
bitsandbytes. The oracle is bitsandbytes itself, run on torch CPU (this
machine has no GPU), so the 4-bit path exercised is bnb's torch "default"
backend and the nested 8-bit path is bnb's C++ CPU kernel.
tests/quant/nf4_test.cpp, tests/quant/nf4_double_quant_test.cpp and
tests/io/bnb_safetensors_test.cpp replay every case without Python.

Run it with a Python that has torch + bitsandbytes (`python3 -m venv
/tmp/bnbvenv && /tmp/bnbvenv/bin/pip install torch bitsandbytes safetensors
numpy`; PyPI's torch pulls ~3 GB of CUDA wheels but runs on CPU), from anywhere:
    /tmp/bnbvenv/bin/python tools/gen_nf4_golden.py

Per case <c> it writes (raw little-endian):
  <c>.f32            input tensor, row-major
  <c>.packed         quantize_4bit(compress_statistics=False): packed nibbles
  <c>.absmax         ... its fp32 absmax
  <c>.deq            dequantize_4bit of that state (bnb's torch backend), fp32
  <c>.nested_q       quantize_4bit(compress_statistics=True): u8 absmax codes
  <c>.nested_absmax  ... fp32 absmax of the nested (256-wide) blocks
  <c>.nested_absmax_deq  bnb's decode of the nested absmax (+ offset), fp32
  <c>.nested_deq     dequantize_4bit of the nested state (torch backend), fp32
  <c>.nested_q_cuda  NOT bitsandbytes: the nested codes recomputed by this
                     script's own numpy transcription of the CUDA dQuantize
                     search (bnb's CPU kernel uses a lookup-table
                     approximation that can pick a neighbouring code, and we
                     cannot run the CUDA kernel here). Labelled in MANIFEST.
and once:
  dynamic_map.f32    bnb create_dynamic_map() (signed, 7, 8)
  bnb_nested.safetensors, bnb_plain.safetensors
                     a Linear layer's NF4 weight serialized the way
                     transformers does it (QuantState.as_dict(packed=True)
                     saved with safetensors.torch.save_file)
The manifest records shapes, block sizes, offsets (as fp32 hex bits) and how
often bnb's CPU nested codes differ from the CUDA-rule codes.

Deterministic: numpy's PCG64 with fixed seeds, no timestamps, no paths.
"""
from __future__ import annotations

import json
import logging
import sys
import warnings
from pathlib import Path

import numpy as np

logging.disable(logging.WARNING)  # bnb logs about optional CPU kernels
warnings.filterwarnings("ignore")

import torch  # noqa: E402
import bitsandbytes  # noqa: E402
import bitsandbytes.functional as F  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "data" / "golden" / "nf4"


def f32_hex(x: float) -> str:
    return "%08x" % int(np.array([x], dtype=np.float32).view(np.uint32)[0])


def cuda_dquantize(code: np.ndarray, x: np.float32) -> int:
    """Independent transcription of bnb's CUDA dQuantize<0> (formats.md 6.4),
    in fp32 arithmetic. Used only to label CPU/CUDA differences."""
    f = np.float32
    pivot, upper_pivot, lower_pivot = 127, 255, 0
    lower, upper = f(-1.0), f(1.0)
    val = code[pivot]
    step = 64
    while step > 0:
        if x > val:
            lower_pivot, lower = pivot, val
            pivot += step
        else:
            upper_pivot, upper = pivot, val
            pivot -= step
        val = code[pivot]
        step >>= 1
    if upper_pivot == 255:
        upper = code[255]
    if lower_pivot == 0:
        lower = code[0]
    if x > val:
        mid = f((upper + val) * f(0.5))
        return upper_pivot if x > mid else pivot
    mid = f((lower + val) * f(0.5))
    return lower_pivot if x < mid else pivot


def cuda_nested_codes(absmax: np.ndarray, offset: np.float32, code: np.ndarray, bs: int) -> np.ndarray:
    f = np.float32
    centred = (absmax - offset).astype(np.float32)
    out = np.zeros(len(centred), dtype=np.uint8)
    for s in range(0, len(centred), bs):
        blk = centred[s : s + bs]
        a = f(np.max(np.abs(blk)))
        if a == 0:
            continue  # all-zero block: index 0 on every bnb path
        inv = f(f(1.0) / a)
        for j, v in enumerate(blk):
            out[s + j] = cuda_dquantize(code, f(v * inv))
    return out


def make_cases() -> dict[str, tuple[np.ndarray, int]]:
    rng = np.random.default_rng(20240601)
    cases: dict[str, tuple[np.ndarray, int]] = {}
    cases["gauss_4x64"] = (rng.standard_normal((4, 64), dtype=np.float32), 64)
    # 315 elements: a partial, odd last block (59 values) with a padded nibble.
    cases["odd_7x45"] = (rng.standard_normal((7, 45), dtype=np.float32), 64)
    cases["gauss_b32"] = (rng.standard_normal((16, 40), dtype=np.float32), 32)
    cases["gauss_b128"] = (rng.standard_normal((48, 96), dtype=np.float32), 128)
    cases["gauss_b4096"] = (rng.standard_normal((3, 1500), dtype=np.float32), 4096)
    # Row scales spread over e^[-3, 3] so the absmax vector is far from
    # constant, and 600 blocks -> three nested blocks (256, 256, 88).
    w = rng.standard_normal((300, 128), dtype=np.float32)
    w *= np.exp(rng.uniform(-3, 3, size=(300, 1))).astype(np.float32)
    cases["scaled_300x128"] = (w, 64)
    t3 = rng.standard_t(3, size=(64, 64)).astype(np.float32)
    cases["student_t3"] = (t3, 64)
    # Blocks 0 and 2 all zero (0x77 on the CPU path), block 1 ordinary.
    z = rng.standard_normal((3, 64), dtype=np.float32)
    z[0] = 0
    z[2] = 0
    cases["zero_blocks"] = (z, 64)
    # Exact ties: absmax 1.0, then every threshold and both fp32 neighbours.
    code = F.get_4bit_type("nf4", device="cpu").numpy()
    mids = ((code[:-1] + code[1:]) / np.float32(2)).astype(np.float32)
    vals = [np.float32(1.0)]
    for m in mids:
        vals += [m, np.nextafter(m, np.float32(-2)), np.nextafter(m, np.float32(2))]
    vals += list(code)
    tie = np.zeros(128, dtype=np.float32)
    tie[: len(vals)] = vals
    cases["ties"] = (tie.reshape(2, 64), 64)
    return cases


def torch_path_dequant(packed: torch.Tensor, absmax: torch.Tensor, bs: int, shape) -> np.ndarray:
    """dequantize_4bit through bnb's default (torch) backend. bnb 0.50.2's CPU
    C++ kernel mis-decodes tensors whose blocks cross rows (it assumes each row
    starts a block), so it is not used as the oracle; MANIFEST records where
    it disagrees."""
    from bitsandbytes.backends.default.ops import _dequantize_4bit_compute
    from bitsandbytes.backends.utils import _get_4bit_code

    code = _get_4bit_code("nf4", packed.device)
    out = _dequantize_4bit_compute(packed.reshape(-1), absmax, code, bs, tuple(shape), torch.float32)
    return out.numpy().reshape(-1).astype(np.float32)


def quant_dict(packed: torch.Tensor, state) -> dict[str, torch.Tensor]:
    return {"weight": packed, **{f"weight.{k}": v for k, v in state.as_dict(packed=True).items()}}


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    manifest: dict = {
        "generator": "tools/gen_nf4_golden.py",
        "bitsandbytes": bitsandbytes.__version__,
        "torch": torch.__version__,
        "backend": "cpu (bnb default torch path for 4-bit, bnb C++ CPU kernel for nested 8-bit)",
        "nested_q_cuda": "numpy transcription of CUDA dQuantize in this script, NOT bitsandbytes output",
        "cases": {},
    }
    dyn = F.create_dynamic_map().numpy().astype(np.float32)
    dyn.tofile(OUT / "dynamic_map.f32")
    for name, (x, bs) in make_cases().items():
        xt = torch.from_numpy(x.copy())
        q, st = F.quantize_4bit(xt, blocksize=bs, quant_type="nf4", compress_statistics=False)
        deq = torch_path_dequant(q, st.absmax, bs, x.shape)
        qn, stn = F.quantize_4bit(xt, blocksize=bs, quant_type="nf4", compress_statistics=True)
        # bnb's own absmax decode (CPU dequantize_blockwise kernel) + offset.
        absmax_nested = (F.dequantize_blockwise(stn.absmax, stn.state2) + stn.offset).float()
        deqn = torch_path_dequant(qn, absmax_nested, bs, x.shape)
        cpu_kernel_ok = np.array_equal(F.dequantize_4bit(q, st).numpy().reshape(-1).view(np.uint32),
                                       deq.view(np.uint32))
        assert torch.equal(q, qn), "nesting must not change the packed nibbles"
        x.tofile(OUT / f"{name}.f32")
        q.numpy().astype(np.uint8).tofile(OUT / f"{name}.packed")
        st.absmax.numpy().astype(np.float32).tofile(OUT / f"{name}.absmax")
        deq.tofile(OUT / f"{name}.deq")
        nq = stn.absmax.numpy().astype(np.uint8)
        nq.tofile(OUT / f"{name}.nested_q")
        stn.state2.absmax.numpy().astype(np.float32).tofile(OUT / f"{name}.nested_absmax")
        deqn.tofile(OUT / f"{name}.nested_deq")
        absmax_nested.numpy().astype(np.float32).tofile(OUT / f"{name}.nested_absmax_deq")
        code2 = stn.state2.code.numpy().astype(np.float32)
        assert np.array_equal(code2.view(np.uint32), dyn.view(np.uint32))
        offset = np.float32(stn.offset.item())
        cuda_q = cuda_nested_codes(st.absmax.numpy().astype(np.float32), offset, code2, stn.state2.blocksize)
        cuda_q.tofile(OUT / f"{name}.nested_q_cuda")
        am = st.absmax.numpy().astype(np.float32)
        # qlora's absmax_mean(): exact sum rounded to fp32, then / n in fp32.
        ours = np.float32(np.float32(np.sum(am.astype(np.float64))) / np.float32(len(am)))
        manifest["cases"][name] = {
            "shape": list(x.shape),
            "blocksize": bs,
            "nested_blocksize": stn.state2.blocksize,
            "nested_offset_hex": f32_hex(offset),
            "offset_equals_qlora_absmax_mean": bool(ours == offset),
            "cpu_vs_cuda_nested_code_mismatches": int(np.sum(nq != cuda_q)),
            "bnb_cpu_dequant_kernel_agrees": bool(cpu_kernel_ok),
        }
    # Serialized Linear weights, as transformers writes a bnb-4bit checkpoint.
    from safetensors.torch import save_file

    x, bs = make_cases()["scaled_300x128"]
    for fname, nested in (("bnb_nested.safetensors", True), ("bnb_plain.safetensors", False)):
        q, st = F.quantize_4bit(torch.from_numpy(x.copy()).to(torch.bfloat16).float(), blocksize=bs,
                                quant_type="nf4", compress_statistics=nested)
        st.dtype = torch.bfloat16  # what a bf16 model's Params4bit records
        sd = {f"model.layers.0.mlp.down_proj.{k}": v.contiguous() for k, v in quant_dict(q, st).items()}
        save_file(sd, str(OUT / fname))
    manifest["bnb_files_input"] = "scaled_300x128 rounded to bf16, saved with dtype bfloat16"
    (OUT / "MANIFEST.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    print(json.dumps(manifest["cases"], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
