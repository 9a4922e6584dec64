#!/usr/bin/env python3
"""Write tests/data/peft/ with the real PEFT, safetensors and torch.

Why: io/peft_adapter.hpp promises the adapter directory PEFT's
save_pretrained writes (adapter_config.json fields and values,
adapter_model.safetensors bytes via safetensors.torch.save_file).
tests/io/peft_adapter_test.cpp rebuilds each file from the same closed-form
values and compares: the safetensors byte for byte, the config key by key.

Model: a llama with the shape of qlora's presets::tiny() (hidden 64, 2
layers, 4 heads, 2 KV heads, head_dim 16, FFN 96, vocab 64).

Values (HF coordinates, before any Q/K permutation), for layer l, target t
(PEFT order q,k,v,o,gate,up,down = 0..6), matrix m (A=0, B=1), row i, col j:
    float32( ((131*i + 31*j + 17*l + 7*t + 3*m) % 193 - 96) / 97.0 )
The division is correctly rounded in float64 and the cast rounds to nearest
even, so C++ reproduces every bit; most values need rounding in F16/BF16.

Files:
  tiny_llama_r4/            PeftModel.save_pretrained: r=4, lora_alpha=8,
                            lora_dropout=0.05, all 7 targets, CAUSAL_LM, F32
                            (README.md, the model card, is removed)
  tiny_llama_r2_bf16.safetensors, tiny_llama_r2_f16.safetensors
                            safetensors.torch.save_file of an r=2 q/k/o state
                            dict cast to bfloat16 / float16, {"format": "pt"}

Needs torch, safetensors, transformers and peft (a venv; PEFT pulls torch):
    python3 -m venv /tmp/peftvenv && /tmp/peftvenv/bin/pip install torch safetensors transformers peft
    /tmp/peftvenv/bin/python tools/gen_peft_golden.py
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

OUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "peft"
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
MODULE = {"q_proj": "self_attn", "k_proj": "self_attn", "v_proj": "self_attn", "o_proj": "self_attn",
          "gate_proj": "mlp", "up_proj": "mlp", "down_proj": "mlp"}
HIDDEN, FFN, LAYERS, HEADS, KV_HEADS, HEAD_DIM, VOCAB = 64, 96, 2, 4, 2, 16, 64


def shape_of(target: str) -> tuple[int, int]:
    """(in, out) of a projection of the tiny model."""
    q, kv = HEADS * HEAD_DIM, KV_HEADS * HEAD_DIM
    return {"q_proj": (HIDDEN, q), "k_proj": (HIDDEN, kv), "v_proj": (HIDDEN, kv), "o_proj": (q, HIDDEN),
            "gate_proj": (HIDDEN, FFN), "up_proj": (HIDDEN, FFN), "down_proj": (FFN, HIDDEN)}[target]


def closed_form(layer: int, t: int, m: int, rows: int, cols: int) -> np.ndarray:
    i = np.arange(rows, dtype=np.int64)[:, None]
    j = np.arange(cols, dtype=np.int64)[None, :]
    k = (131 * i + 31 * j + 17 * layer + 7 * t + 3 * m) % 193 - 96
    return (k.astype(np.float64) / 97.0).astype(np.float32)


def state_dict(r: int, targets: list[str]) -> dict[str, torch.Tensor]:
    sd = {}
    for layer in range(LAYERS):
        for name in targets:
            t = TARGETS.index(name)
            fin, fout = shape_of(name)
            base = f"base_model.model.model.layers.{layer}.{MODULE[name]}.{name}"
            sd[f"{base}.lora_A.weight"] = torch.from_numpy(closed_form(layer, t, 0, r, fin))
            sd[f"{base}.lora_B.weight"] = torch.from_numpy(closed_form(layer, t, 1, fout, r))
    return sd


def peft_dir() -> None:
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(vocab_size=VOCAB, hidden_size=HIDDEN, intermediate_size=FFN, num_hidden_layers=LAYERS,
                      num_attention_heads=HEADS, num_key_value_heads=KV_HEADS, head_dim=HEAD_DIM)
    torch.manual_seed(0)
    model = get_peft_model(LlamaForCausalLM(cfg), LoraConfig(r=4, lora_alpha=8, lora_dropout=0.05,
                                                             target_modules=TARGETS, task_type="CAUSAL_LM"))
    # Load the closed-form weights into the live modules (PEFT's names carry
    # the adapter name "default" in memory and drop it on save).
    wanted = state_dict(4, TARGETS)
    live = dict(model.named_parameters())
    for name, value in wanted.items():
        live_name = name.replace(".lora_A.weight", ".lora_A.default.weight").replace(".lora_B.weight", ".lora_B.default.weight")
        with torch.no_grad():
            live[live_name].copy_(value)
    out = OUT / "tiny_llama_r4"
    model.save_pretrained(str(out))
    (out / "README.md").unlink(missing_ok=True)


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    peft_dir()
    small = state_dict(2, ["q_proj", "k_proj", "o_proj"])
    save_file({k: v.to(torch.bfloat16) for k, v in small.items()}, str(OUT / "tiny_llama_r2_bf16.safetensors"),
              metadata={"format": "pt"})
    save_file({k: v.to(torch.float16) for k, v in small.items()}, str(OUT / "tiny_llama_r2_f16.safetensors"),
              metadata={"format": "pt"})
    import peft, safetensors
    print(f"wrote {OUT} with peft {peft.__version__}, safetensors {safetensors.__version__}, torch {torch.__version__}",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
