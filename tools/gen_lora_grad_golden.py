#!/usr/bin/env python3
"""Golden LoRA losses and gradients from PyTorch, for qlora's trainer tests.

Builds two tiny random decoders in GGUF conventions (tools/torch_llama.py) with
LoRA (rank 4, alpha 8: scale 2) on all seven projections of every block, A and
B both random and nonzero so that every gradient is exercised:

  llama_gqa  llama, tied embeddings, GQA (4 query heads on 2 KV heads), NORM
             RoPE; a batch of TWO sequences of different lengths
  qwen2_mha  qwen2, separate output head, q/k/v biases, MHA, NEOX RoPE;
             a batch of ONE sequence

and writes tests/data/lora/grad_<case>.safetensors with the tensors below
(all little-endian; matrices in numpy orientation [out, in], as GGUF stores
them with ne = [in, out]):

  <GGUF name>                         F32  every base weight ("token_embd.weight",
                                           "blk.0.attn_q.weight", "blk.0.attn_q.bias", ...)
  lora.blk.N.<target>.lora_a          F32  [r, in]   target in attn_q attn_k attn_v
  lora.blk.N.<target>.lora_b          F32  [out, r]  attn_output ffn_gate ffn_up ffn_down
  tokens                              I32  [n_seq, T_max], padded with -1
  lengths                             I32  [n_seq]
  loss_mask                           U8   [n_seq, T_max]: 1 where position t's
                                           prediction of tokens[t+1] is an answer token
  base_logits                         F32  [T0, n_vocab]  sequence 0 without LoRA
  lora_logits                         F32  [T0, n_vocab]  sequence 0 with LoRA
  loss                                F32  [1]  sum of the masked CEs of all
                                           sequences / number of masked positions
  grad.blk.N.<target>.lora_a / lora_b F32  d loss / d A, d loss / d B

__metadata__ (strings): arch n_vocab n_embd n_layer n_head n_head_kv head_dim
n_rot n_ff rope_theta rms_eps tied qkv_bias rank alpha lora_scale n_seq seed,
and what fp32 arithmetic itself costs, from a float64 run of the same model:
  grad_rel_err_f32   max over gradient tensors of max|g32 - g64| / max|g64|
  logits_rel_err_f32 the same for base_logits and lora_logits
  loss_f64           the float64 loss (the stored loss is the fp32 one)
A C++ implementation in fp32 cannot be expected to land closer to the fp32
golden than a few times these numbers.

Writing is done by hand in the layout of include/qlora/io/safetensors.hpp
(tensors sorted by dtype then name, compact JSON, header padded to 8), so no
safetensors package is needed. Run with Debian's torch:
  /usr/bin/python3 tools/gen_lora_grad_golden.py [--out tests/data/lora]
"""
from __future__ import annotations

import argparse
import json
import math
import os
import struct
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_llama as tl  # noqa: E402

SEED = 20261122
RANK, ALPHA = 4, 8.0

CASES = {
    "llama_gqa": dict(
        cfg=tl.Config(arch="llama", n_vocab=96, n_embd=48, n_layer=2, n_head=4, n_head_kv=2, head_dim=12,
                      n_ff=64, rope_theta=10000.0, rms_eps=1e-5, tied=True, qkv_bias=False),
        lengths=[16, 11], questions=[6, 4]),
    "qwen2_mha": dict(
        cfg=tl.Config(arch="qwen2", n_vocab=80, n_embd=32, n_layer=2, n_head=2, n_head_kv=2, head_dim=16,
                      n_ff=72, rope_theta=1000000.0, rms_eps=1e-6, tied=False, qkv_bias=True),
        lengths=[13], questions=[5]),
}


def random_model(cfg: tl.Config, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Weights scaled so that activations stay O(1): projections N(0, 1/in),
    norm gains 1 + N(0, 0.1^2), biases N(0, 0.2^2), embeddings N(0, 0.3^2)
    (logits then have a spread of about 2 nats)."""
    out = {}
    for name, shape in tl.weight_shapes(cfg).items():
        z = rng.standard_normal(shape)
        if "norm" in name:
            w = 1.0 + 0.1 * z
        elif name.endswith(".bias"):
            w = 0.2 * z
        elif name in ("token_embd.weight", "output.weight"):
            w = 0.3 * z
        else:
            w = z / np.sqrt(shape[1])
        out[name] = w.astype(np.float32)
    return out


def random_lora(cfg: tl.Config, rng: np.random.Generator) -> tuple[dict, dict]:
    """A ~ N(0, 1/in) so x A^T is O(1); B ~ N(0, 0.05^2) so the adapter adds
    about a fifth of the base projection's output (scale 2, rank 4)."""
    a, b = {}, {}
    for l in range(cfg.n_layer):
        for t in tl.TARGETS:
            out_f, in_f = tl.proj_shape(cfg, t)
            key = f"blk.{l}.{t}"
            a[key] = (rng.standard_normal((RANK, in_f)) / np.sqrt(in_f)).astype(np.float32)
            b[key] = (0.05 * rng.standard_normal((out_f, RANK))).astype(np.float32)
    return a, b


def batch(cfg: tl.Config, rng: np.random.Generator, lengths: list[int], questions: list[int]):
    """Random token ids; position t predicts tokens[t+1] and is counted when
    tokens[t+1] is an answer token, i.e. for t in questions-1 .. T-2."""
    t_max = max(lengths)
    tokens = np.full((len(lengths), t_max), -1, dtype=np.int32)
    mask = np.zeros((len(lengths), t_max), dtype=np.uint8)
    for s, (T, q) in enumerate(zip(lengths, questions)):
        tokens[s, :T] = rng.integers(0, cfg.n_vocab, size=T)
        mask[s, q - 1:T - 1] = 1
    return tokens, np.array(lengths, dtype=np.int32), mask


def run(cfg, weights, lora_a, lora_b, tokens, lengths, mask, dtype):
    """base logits, LoRA logits (sequence 0), loss and LoRA gradients in `dtype`."""
    w = {k: torch.from_numpy(v).to(dtype) for k, v in weights.items()}
    lora = tl.Lora(RANK, ALPHA, {k: torch.from_numpy(v).to(dtype).requires_grad_() for k, v in lora_a.items()},
                   {k: torch.from_numpy(v).to(dtype).requires_grad_() for k, v in lora_b.items()})
    seqs = [(torch.from_numpy(tokens[s, :T].astype(np.int64)), torch.from_numpy(mask[s, :T].astype(np.int64)))
            for s, T in enumerate(lengths)]
    with torch.no_grad():
        base_logits = tl.forward(cfg, w, seqs[0][0])
        lora_logits = tl.forward(cfg, w, seqs[0][0], lora)
    loss = tl.masked_loss(cfg, w, seqs, lora)
    loss.backward()
    grads_a = {k: v.grad.detach() for k, v in lora.a.items()}
    grads_b = {k: v.grad.detach() for k, v in lora.b.items()}
    return base_logits, lora_logits, loss.detach(), grads_a, grads_b, (w, lora, seqs)


def check_directional_derivative(cfg, state, grads_a, grads_b, rng):
    """Central finite difference of the float64 loss along a random direction
    of all LoRA parameters against <grad, direction>: catches a wrong graph
    (a detached tensor, an in-place op), not just rounding."""
    w, lora, seqs = state
    dirs = {id(p): torch.from_numpy(rng.standard_normal(tuple(p.shape))) for p in lora.parameters()}
    norm = math.sqrt(sum(float((d * d).sum()) for d in dirs.values()))
    dirs = {k: d / norm for k, d in dirs.items()}   # a unit step: truncation error ~ eps^2
    analytic = sum((grads_a[k] * dirs[id(lora.a[k])]).sum() + (grads_b[k] * dirs[id(lora.b[k])]).sum()
                   for k in lora.a).item()
    eps = 1e-6

    def shifted(sign):
        moved = tl.Lora(RANK, ALPHA, {k: (v + sign * eps * dirs[id(v)]).detach() for k, v in lora.a.items()},
                        {k: (v + sign * eps * dirs[id(v)]).detach() for k, v in lora.b.items()})
        with torch.no_grad():
            return tl.masked_loss(cfg, w, seqs, moved).item()

    numeric = (shifted(+1) - shifted(-1)) / (2 * eps)
    rel = abs(numeric - analytic) / max(abs(analytic), 1e-12)
    if rel > 1e-7:
        sys.exit(f"directional derivative check failed: numeric {numeric:.10g} vs autograd {analytic:.10g}")
    return rel


def max_rel(pairs) -> float:
    """max over (a32, a64) pairs of max|a32 - a64| / max|a64|."""
    return max(float((a.double() - b).abs().max() / b.abs().max()) for a, b in pairs)


# Dtype spelling and sort rank in include/qlora/io/safetensors.hpp (the Rust crate's enum order).
_ST_DTYPES = {np.dtype("<f4"): ("F32", 17), np.dtype("<i4"): ("I32", 15), np.dtype("u1"): ("U8", 4)}


def save_safetensors(path: str, tensors: dict[str, np.ndarray], metadata: dict[str, str]) -> None:
    """The layout io::save_safetensors writes: metadata first with sorted keys,
    tensors by dtype rank (descending) then name, compact JSON padded with
    spaces to a multiple of 8, data packed in the same order."""
    items = sorted(tensors.items(), key=lambda kv: (-_ST_DTYPES[kv[1].dtype][1], kv[0].encode()))
    header = {"__metadata__": dict(sorted(metadata.items()))}
    blobs, offset = [], 0
    for name, arr in items:
        data = np.ascontiguousarray(arr).tobytes()
        header[name] = {"dtype": _ST_DTYPES[arr.dtype][0], "shape": list(arr.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    h = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def make_case(name: str, spec: dict, seed: int, out_dir: str) -> str:
    cfg = spec["cfg"]
    rng = np.random.default_rng([seed, list(CASES).index(name)])
    weights = random_model(cfg, rng)
    lora_a, lora_b = random_lora(cfg, rng)
    tokens, lengths, mask = batch(cfg, rng, spec["lengths"], spec["questions"])

    base32, lora32, loss32, ga32, gb32, _ = run(cfg, weights, lora_a, lora_b, tokens, lengths, mask, torch.float32)
    base64, lora64, loss64, ga64, gb64, state64 = run(cfg, weights, lora_a, lora_b, tokens, lengths, mask,
                                                      torch.float64)
    fd_rel = check_directional_derivative(cfg, state64, ga64, gb64, rng)
    grad_rel = max_rel([(ga32[k], ga64[k]) for k in ga32] + [(gb32[k], gb64[k]) for k in gb32])
    logits_rel = max_rel([(base32, base64), (lora32, lora64)])

    t = dict(weights)
    for k in lora_a:
        t[f"lora.{k}.lora_a"], t[f"lora.{k}.lora_b"] = lora_a[k], lora_b[k]
        t[f"grad.{k}.lora_a"] = ga32[k].numpy().astype("<f4")
        t[f"grad.{k}.lora_b"] = gb32[k].numpy().astype("<f4")
    t["tokens"], t["lengths"], t["loss_mask"] = tokens.astype("<i4"), lengths.astype("<i4"), mask
    t["base_logits"] = base32.numpy().astype("<f4")
    t["lora_logits"] = lora32.numpy().astype("<f4")
    t["loss"] = np.array([loss32.item()], dtype="<f4")
    meta = {
        "arch": cfg.arch, "n_vocab": cfg.n_vocab, "n_embd": cfg.n_embd, "n_layer": cfg.n_layer,
        "n_head": cfg.n_head, "n_head_kv": cfg.n_head_kv, "head_dim": cfg.head_dim, "n_rot": cfg.n_rot,
        "n_ff": cfg.n_ff, "rope_theta": repr(cfg.rope_theta), "rms_eps": repr(cfg.rms_eps),
        "tied": str(cfg.tied).lower(), "qkv_bias": str(cfg.qkv_bias).lower(), "rank": RANK,
        "alpha": repr(ALPHA), "lora_scale": repr(ALPHA / RANK), "n_seq": len(lengths), "seed": seed,
        "grad_rel_err_f32": f"{grad_rel:.3e}", "logits_rel_err_f32": f"{logits_rel:.3e}",
        "loss_f64": repr(loss64.item()), "torch": torch.__version__,
    }
    meta = {k: str(v) for k, v in meta.items()}
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, f"grad_{name}.safetensors")
    save_safetensors(path, t, meta)
    print(f"{path}: {os.path.getsize(path)} bytes, loss {loss32.item():.6f} (f64 {loss64.item():.6f}), "
          f"grad rel err f32 {grad_rel:.2e}, logits rel err f32 {logits_rel:.2e}, "
          f"finite-difference rel err {fd_rel:.1e}")
    return path


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--out", default=os.path.join(here, "..", "tests", "data", "lora"))
    ap.add_argument("--seed", type=int, default=SEED)
    args = ap.parse_args()
    torch.manual_seed(0)          # nothing here draws from torch; pinned anyway
    torch.set_num_threads(1)      # deterministic reductions
    for name, spec in CASES.items():
        make_case(name, spec, args.seed, os.path.normpath(args.out))


if __name__ == "__main__":
    main()
