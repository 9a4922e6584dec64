"""A readable PyTorch version of qlora's llama/qwen2 decoder, in GGUF conventions,
with LoRA on the seven projections of every block.

It is the reference the LoRA trainer is checked against (tools/gen_lora_grad_golden.py
writes golden losses and gradients with it) and the PyTorch baseline of the
training benchmark (bench/bench_train_torch.py). It follows
include/qlora/model/decoder.hpp equation by equation, in plain fp32 (or fp64)
without the fp16 roundings the inference engine copies from llama.cpp:

  x = token_embd[tokens]
  per block:  h = rmsnorm(x) * attn_norm
              q, k, v = h Wq^T (+bq), h Wk^T (+bk), h Wv^T (+bv);  rope(q), rope(k)
              x += causal_softmax(q k^T / sqrt(head_dim)) v  Wo^T     (GQA: query head
                                                    h reads KV head h // (n_head / n_head_kv))
              h = rmsnorm(x) * ffn_norm;  x += (silu(h Wgate^T) * h Wup^T) Wdown^T
  logits = (rmsnorm(x) * output_norm) output^T      (token_embd when tied)

Weights are named and shaped as GGUF stores them: a projection W is a numpy
array [out, in] (GGUF ne = [in, out]) and y = x W^T. RoPE rotates, with
theta_i = pos * base^(-2i/n_rot), the pairs (x[2i], x[2i+1]) for llama (whose
converter permuted the Q/K rows for that) and (x[i], x[i + n_rot/2]) for qwen2.
LoRA on a projection, with A [r, in] and B [out, r] as PEFT orients them:
y = x W^T (+ bias) + (alpha / r) (x A^T) B^T, without dropout.

Runs on Debian's python3-torch (tools/install_peers.sh); gguf is needed only by
load_gguf().
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

# The seven LoRA targets of a block, by GGUF tensor base name, in PEFT's module
# order (q, k, v, o, gate, up, down) — the order of include/qlora/lora/lora_config.hpp.
TARGETS = ("attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down")


@dataclass
class Config:
    arch: str            # "llama" (NORM RoPE) or "qwen2" (NEOX RoPE)
    n_vocab: int
    n_embd: int
    n_layer: int
    n_head: int
    n_head_kv: int
    head_dim: int
    n_ff: int
    rope_theta: float
    rms_eps: float
    tied: bool           # logits use token_embd.weight (no output.weight)
    qkv_bias: bool       # blk.N.attn_{q,k,v}.bias present (qwen2)
    n_rot: int = 0       # dimensions rotated by RoPE; 0 means head_dim

    def __post_init__(self):
        if self.arch not in ("llama", "qwen2"):
            raise ValueError(f"architecture {self.arch!r} is not supported (llama, qwen2)")
        if self.n_rot == 0:
            self.n_rot = self.head_dim
        if self.n_head % self.n_head_kv:
            raise ValueError(f"{self.n_head} query heads are not a multiple of {self.n_head_kv} KV heads")

    @property
    def q_dim(self) -> int:
        return self.n_head * self.head_dim

    @property
    def kv_dim(self) -> int:
        return self.n_head_kv * self.head_dim

    @property
    def neox(self) -> bool:
        return self.arch == "qwen2"


def proj_shape(cfg: Config, target: str) -> tuple[int, int]:
    """(out, in) of a block projection: the numpy shape of its GGUF weight."""
    E, Q, KV, Fd = cfg.n_embd, cfg.q_dim, cfg.kv_dim, cfg.n_ff
    return {"attn_q": (Q, E), "attn_k": (KV, E), "attn_v": (KV, E), "attn_output": (E, Q),
            "ffn_gate": (Fd, E), "ffn_up": (Fd, E), "ffn_down": (E, Fd)}[target]


def weight_shapes(cfg: Config) -> dict[str, tuple[int, ...]]:
    """Every base tensor of the model: GGUF name -> numpy shape ([out, in] for matrices)."""
    shapes = {"token_embd.weight": (cfg.n_vocab, cfg.n_embd), "output_norm.weight": (cfg.n_embd,)}
    if not cfg.tied:
        shapes["output.weight"] = (cfg.n_vocab, cfg.n_embd)
    for l in range(cfg.n_layer):
        b = f"blk.{l}."
        shapes[b + "attn_norm.weight"] = (cfg.n_embd,)
        shapes[b + "ffn_norm.weight"] = (cfg.n_embd,)
        for t in TARGETS:
            shapes[b + t + ".weight"] = proj_shape(cfg, t)
        if cfg.qkv_bias:
            shapes[b + "attn_q.bias"] = (cfg.q_dim,)
            shapes[b + "attn_k.bias"] = (cfg.kv_dim,)
            shapes[b + "attn_v.bias"] = (cfg.kv_dim,)
    return shapes


@dataclass
class Lora:
    """LoRA matrices keyed by projection base name ("blk.3.attn_q"): a[...] is
    A [r, in], b[...] is B [out, r]. The factor on B A is alpha / rank."""
    rank: int
    alpha: float
    a: dict[str, torch.Tensor]
    b: dict[str, torch.Tensor]

    @property
    def scale(self) -> float:
        return self.alpha / self.rank

    def parameters(self) -> list[torch.Tensor]:
        return [m for key in self.a for m in (self.a[key], self.b[key])]


def rms_norm(x: torch.Tensor, w: torch.Tensor, eps: float) -> torch.Tensor:
    """y = x / sqrt(mean(x^2) + eps) * w, over the last dimension."""
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def rope_cos_sin(n_pos: int, cfg: Config, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin of theta[pos, i] = pos * base^(-2i/n_rot), each [n_pos, n_rot/2].
    The angles are computed in float64 whatever the model's dtype."""
    i = torch.arange(cfg.n_rot // 2, dtype=torch.float64)
    inv_freq = cfg.rope_theta ** (-2.0 * i / cfg.n_rot)
    theta = torch.arange(n_pos, dtype=torch.float64)[:, None] * inv_freq[None, :]
    return theta.cos().to(dtype), theta.sin().to(dtype)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, cfg: Config) -> torch.Tensor:
    """Rotate x [T, heads, head_dim]; dimensions past n_rot pass through."""
    T, H, D = x.shape
    rot, rest = x[..., :cfg.n_rot], x[..., cfg.n_rot:]
    c, s = cos[:, None, :], sin[:, None, :]   # broadcast over heads
    if cfg.neox:    # pairs (x[i], x[i + n_rot/2])
        x0, x1 = rot[..., :cfg.n_rot // 2], rot[..., cfg.n_rot // 2:]
        out = torch.cat([x0 * c - x1 * s, x0 * s + x1 * c], dim=-1)
    else:           # pairs (x[2i], x[2i+1])
        pairs = rot.reshape(T, H, cfg.n_rot // 2, 2)
        x0, x1 = pairs[..., 0], pairs[..., 1]
        out = torch.stack([x0 * c - x1 * s, x0 * s + x1 * c], dim=-1).reshape(T, H, cfg.n_rot)
    return torch.cat([out, rest], dim=-1) if rest.shape[-1] else out


def linear(x: torch.Tensor, weights: dict, base: str, lora: Lora | None) -> torch.Tensor:
    """y = x W^T (+ bias) (+ scale (x A^T) B^T) for the projection `base` ("blk.0.attn_q")."""
    y = x @ weights[base + ".weight"].T
    bias = weights.get(base + ".bias")
    if bias is not None:
        y = y + bias
    if lora is not None and base in lora.a:
        y = y + lora.scale * ((x @ lora.a[base].T) @ lora.b[base].T)
    return y


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, cfg: Config) -> torch.Tensor:
    """Causal softmax attention. q [T, n_head, hd], k/v [T, n_head_kv, hd] -> [T, q_dim]."""
    T = q.shape[0]
    group = cfg.n_head // cfg.n_head_kv
    # GQA: query head h reads KV head h // group, i.e. each KV head repeated `group` times.
    k = k.repeat_interleave(group, dim=1)
    v = v.repeat_interleave(group, dim=1)
    qh, kh, vh = q.transpose(0, 1), k.transpose(0, 1), v.transpose(0, 1)   # [heads, T, hd]
    scores = (qh @ kh.transpose(1, 2)) / math.sqrt(cfg.head_dim)
    future = torch.ones(T, T, dtype=torch.bool, device=q.device).triu(1)
    probs = torch.softmax(scores.masked_fill(future, float("-inf")), dim=-1)
    return (probs @ vh).transpose(0, 1).reshape(T, cfg.q_dim)


def forward(cfg: Config, weights: dict, tokens: torch.Tensor, lora: Lora | None = None) -> torch.Tensor:
    """Logits [T, n_vocab] for the token ids `tokens` [T] at positions 0..T-1."""
    T = tokens.shape[0]
    x = weights["token_embd.weight"][tokens]
    cos, sin = rope_cos_sin(T, cfg, x.dtype)
    for l in range(cfg.n_layer):
        b = f"blk.{l}."
        h = rms_norm(x, weights[b + "attn_norm.weight"], cfg.rms_eps)
        q = linear(h, weights, b + "attn_q", lora).view(T, cfg.n_head, cfg.head_dim)
        k = linear(h, weights, b + "attn_k", lora).view(T, cfg.n_head_kv, cfg.head_dim)
        v = linear(h, weights, b + "attn_v", lora).view(T, cfg.n_head_kv, cfg.head_dim)
        q, k = apply_rope(q, cos, sin, cfg), apply_rope(k, cos, sin, cfg)
        x = x + linear(attention(q, k, v, cfg), weights, b + "attn_output", lora)
        h = rms_norm(x, weights[b + "ffn_norm.weight"], cfg.rms_eps)
        gate = linear(h, weights, b + "ffn_gate", lora)
        up = linear(h, weights, b + "ffn_up", lora)
        x = x + linear(F.silu(gate) * up, weights, b + "ffn_down", lora)
    h = rms_norm(x, weights["output_norm.weight"], cfg.rms_eps)
    out = weights["token_embd.weight"] if cfg.tied else weights["output.weight"]
    return h @ out.T


def masked_loss(cfg: Config, weights: dict, sequences: list[tuple[torch.Tensor, torch.Tensor]],
                lora: Lora | None = None) -> torch.Tensor:
    """Mean next-token cross-entropy over the answer positions of a batch.

    Each sequence is (tokens [T], mask [T]): position t < T-1 predicts
    tokens[t+1] and counts when mask[t] == 1 (mask[T-1] is ignored). The
    loss is the sum over the counted positions of all sequences divided by
    their total number — a sequence weighs by its answer length."""
    total, count = None, 0
    for tokens, mask in sequences:
        logits = forward(cfg, weights, tokens, lora)
        ce = F.cross_entropy(logits[:-1], tokens[1:], reduction="none")
        m = mask[:-1].to(ce.dtype)
        s = (ce * m).sum()
        total = s if total is None else total + s
        count += int(mask[:-1].sum())
    if count == 0:
        raise ValueError("masked_loss: no answer position in the batch")
    return total / count


def load_gguf(path: str, dtype: torch.dtype = torch.float32) -> tuple[Config, dict[str, torch.Tensor]]:
    """Read a llama/qwen2 GGUF with gguf-py, dequantizing every tensor to `dtype`.
    Matrices come out as numpy [ne1, ne0] = [out, in], as this module wants."""
    import gguf
    import numpy as np

    reader = gguf.GGUFReader(path)

    def field(key, default=None):
        f = reader.fields.get(key)
        return default if f is None else f.contents()

    arch = field("general.architecture")
    p = arch + "."
    weights = {}
    for t in reader.tensors:
        a = gguf.dequantize(t.data, t.tensor_type)
        if not a.flags.writeable:   # F32 tensors come back as views of the read-only mapping
            a = a.copy()
        shape = tuple(int(n) for n in reversed(t.shape))   # ne order -> numpy order
        weights[t.name] = torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32).reshape(shape)).to(dtype)
    n_embd, n_head = field(p + "embedding_length"), field(p + "attention.head_count")
    head_dim = field(p + "attention.key_length", n_embd // n_head)
    cfg = Config(arch=arch, n_vocab=weights["token_embd.weight"].shape[0], n_embd=n_embd,
                 n_layer=field(p + "block_count"), n_head=n_head,
                 n_head_kv=field(p + "attention.head_count_kv", n_head), head_dim=head_dim,
                 n_ff=field(p + "feed_forward_length"), rope_theta=float(field(p + "rope.freq_base", 10000.0)),
                 rms_eps=float(field(p + "attention.layer_norm_rms_epsilon")),
                 tied="output.weight" not in weights, qkv_bias="blk.0.attn_q.bias" in weights,
                 n_rot=field(p + "rope.dimension_count", head_dim))
    if "rope_freqs.weight" in weights:
        raise ValueError(f"{path}: llama3 rope scaling (rope_freqs.weight) is not implemented here")
    return cfg, weights
