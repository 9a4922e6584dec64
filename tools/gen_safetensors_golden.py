#!/usr/bin/env python3
"""Write tests/data/safetensors/*.safetensors with the real `safetensors` package.

Why: io/safetensors.hpp promises to write the same bytes the Python library
writes (tensor order, compact JSON, space padding to 8 bytes).
tests/io/safetensors_test.cpp rebuilds each file from the same tensors and
compares byte-for-byte, and also reads them back.

Needs: pip install safetensors numpy   (torch optional, only for BF16)
Run:   python3 tools/gen_safetensors_golden.py
Deterministic: fixed values, one metadata key (the library emits several
keys in hash-map order, which is not reproducible).
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

OUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "safetensors"


def tensors() -> dict[str, np.ndarray]:
    # Values are simple closed forms so the C++ test can rebuild them.
    return {
        "b.weight": (np.arange(6, dtype=np.float32) * 0.5 - 1.0).reshape(2, 3),
        "a": np.array([1.0, -2.0, 0.5, 65504.0], dtype=np.float16),
        "z_bytes": np.arange(5, dtype=np.uint8) * 3,
        "i8": np.array([-128, 0, 127], dtype=np.int8),
        "counts": np.array([[1, -2], [3, 2147483647]], dtype=np.int32),
        "big": np.array([-(2**40), 7, 2**62], dtype=np.int64),
        "scalar": np.array(3.25, dtype=np.float32),
        "empty": np.zeros((0, 3), dtype=np.float32),
        "layer.10.w": np.array([2.0], dtype=np.float32),
        "layer.9.w": np.array([4.0], dtype=np.float32),
    }


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    save_file(tensors(), str(OUT / "numpy_mixed.safetensors"), metadata={"format": "np"})
    save_file({"only": np.array([1.5, 2.5], dtype=np.float32)}, str(OUT / "numpy_nometa.safetensors"))
    try:
        import torch
        from safetensors.torch import save_file as save_torch

        save_torch({"w": torch.tensor([1.0, -0.5, 3.0], dtype=torch.bfloat16),
                    "h": torch.tensor([0.25], dtype=torch.float16)},
                   str(OUT / "torch_bf16.safetensors"), metadata={"format": "pt"})
    except ImportError:
        print("torch not installed: torch_bf16.safetensors left as is", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
