#!/usr/bin/env python3
"""Load a GGUF in llama.cpp (llama-cpp-python) and sanity-check its predictions.

Why: byte-identical quantization is checked elsewhere; this answers the
user-level question "does llama.cpp accept the file, and does the model still
talk?". It tokenizes an English and a Japanese prompt (the Japanese one
exercises byte-level BPE merges), prints the top-5 next tokens and the mean
log-probability of a fixed continuation. Given two files (original and
quantized) it also compares their next-token distributions position by
position: mean/max KL(original || quantized) and top-1 agreement.

Usage:
  tools/check_llama_load.py MODEL.gguf
  tools/check_llama_load.py ORIGINAL.gguf QUANTIZED.gguf
Exit status: 1 if a model fails to load or evaluate, 0 otherwise.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

# (name, prompt, continuation scored by mean log-prob)
PROMPTS = [
    ("english", "The capital of France is", " Paris. It is famous for the Eiffel Tower."),
    ("japanese", "日本の首都は", "東京です。東京は日本で一番大きな都市です。"),
]
# Text for the two-model comparison: long enough for ~64 positions.
COMPARE_TEXT = (
    "Large language models are trained on vast amounts of text. They learn to predict the next word in a "
    "sentence, and in doing so they pick up grammar, facts about the world, and some ability to reason. "
    "Quantization stores their weights with fewer bits, which saves memory and makes inference faster on "
    "ordinary computers, at the cost of a small loss in accuracy. 量子化は重みを少ないビットで保存します。"
)


def load(path: Path, n_ctx: int, threads: int):
    """Open the model with logits for every position (needed for scoring)."""
    from llama_cpp import Llama
    return Llama(model_path=str(path), n_ctx=n_ctx, n_threads=threads, n_threads_batch=threads,
                 logits_all=True, verbose=False)


def tokenize(llm, text: str, bos: bool = True) -> list[int]:
    return llm.tokenize(text.encode("utf-8"), add_bos=bos, special=False)


def all_logits(llm, tokens: list[int]) -> np.ndarray:
    """Logits after each token, shape (len(tokens), n_vocab), in float64."""
    llm.reset()
    llm.eval(tokens)
    return np.array(llm.scores[: len(tokens)], dtype=np.float64)


def log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def piece(llm, tok: int) -> str:
    return llm.detokenize([tok]).decode("utf-8", errors="backslashreplace")


def report_prompts(llm, label: str) -> dict:
    """Top-5 next tokens and continuation mean log-prob for each prompt."""
    out = {}
    for name, prompt, cont in PROMPTS:
        p_tok = tokenize(llm, prompt)
        c_tok = tokenize(llm, prompt + cont)[len(p_tok):]
        toks = p_tok + c_tok
        lp = log_softmax(all_logits(llm, toks))
        nxt = lp[len(p_tok) - 1]
        top = np.argsort(-nxt)[:5]
        # log P(c_i | prefix): the logits at position j predict token j+1
        cont_lp = np.array([lp[len(p_tok) - 1 + i, t] for i, t in enumerate(c_tok)])
        out[name] = float(cont_lp.mean())
        print(f"[{label}] {name}: prompt {prompt!r} -> {len(p_tok)} tokens")
        print("   top-5: " + ", ".join(f"{piece(llm, int(t))!r} {np.exp(nxt[t]):.3f}" for t in top))
        print(f"   mean log-prob of {cont!r} ({len(c_tok)} tokens): {out[name]:.4f}")
    return out


def compare_models(a, b, positions: int) -> tuple[float, float, float]:
    """Mean KL(a || b), max KL and top-1 agreement over the first `positions` positions."""
    toks = tokenize(a, COMPARE_TEXT)
    if toks != tokenize(b, COMPARE_TEXT):
        print("warning: the two files tokenize differently", file=sys.stderr)
    toks = toks[:positions]
    la, lb = log_softmax(all_logits(a, toks)), log_softmax(all_logits(b, toks))
    kl = (np.exp(la) * (la - lb)).sum(axis=-1)
    top1 = (la.argmax(axis=-1) == lb.argmax(axis=-1)).mean()
    return float(kl.mean()), float(kl.max()), float(top1), len(toks)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", type=Path, nargs="+", help="one GGUF, or ORIGINAL QUANTIZED")
    ap.add_argument("--n-ctx", type=int, default=256)
    ap.add_argument("--positions", type=int, default=64, help="positions compared between two models")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    if len(args.models) > 2:
        ap.error("give one or two models")

    llms = []
    for path in args.models:
        try:
            llm = load(path, args.n_ctx, args.threads)
        except Exception as e:  # llama_cpp raises ValueError on a bad file
            print(f"FAILED to load {path}: {e}", file=sys.stderr)
            return 1
        print(f"loaded {path.name}: n_vocab {llm.n_vocab()}, n_embd {llm.n_embd()}")
        llms.append(llm)

    try:
        for path, llm in zip(args.models, llms):
            report_prompts(llm, path.name)
        if len(llms) == 2:
            kl_mean, kl_max, top1, n = compare_models(llms[0], llms[1], args.positions)
            print(f"\n{args.models[1].name} vs {args.models[0].name} over {n} positions: "
                  f"KL mean {kl_mean:.5f} nats, max {kl_max:.5f}; top-1 agreement {top1 * 100:.1f}%")
    except Exception as e:
        print(f"FAILED to evaluate: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
