#!/usr/bin/env python3
"""Reference logits from llama.cpp for the decoder tests.

For SmolLM2-135M-Instruct in four formats -- the shipped Q4_1 file and the
F16, Q8_0 and Q4_K_M files that llama.cpp's own quantizer makes from it
(qlora's quantizer writes byte-identical files, so the test can make them
itself) -- evaluate one fixed 64-token prompt with llama-cpp-python and store,
per position: the argmax, the log-sum-exp, and the logits of 32 token ids
(the 16 best of that position plus 16 fixed ids). Full logits would be 12 MB
per format; this keeps the golden data small while pinning both the ranking
and the absolute scale. Also per format: llama.cpp's greedy 32-token
continuations of four of tools/compare_llama_eval.py's chat prompts (prompt
ids stored, so the test needs no tokenizer), and the peer's CPU feature line
(llama_print_system_info): its kernels, and so its last bits, depend on it.

Writes tests/data/logits/smollm2.json. Run: python3 tools/gen_logits_golden.py
"""
import argparse
import ctypes
import json
import os
import sys
import tempfile

import numpy as np
import llama_cpp

from compare_llama_eval import PROMPTS, chatml, llama_greedy

PROMPT = ("河川砂防技術基準の維持管理編（ダム編）によれば、ダムの定期点検では堤体の変状、漏水量、"
          "揚圧力を確認する。The levee design flood is based on the planned high-water discharge.")
N_TOKENS = 64
FIXED_IDS = [0, 1, 2, 198, 216, 253, 260, 282, 314, 504, 1000, 2000, 5000, 10000, 30000, 49151]
FTYPES = {"f16": 1, "q8_0": 7, "q4_k_m": 15}
GREEDY_PROMPTS = [PROMPTS[i] for i in (0, 1, 5, 9)]
GREEDY_TOKENS = 32


def quantize(src, dst, ftype):
    p = llama_cpp.llama_model_quantize_default_params()
    p.ftype = ftype
    p.nthread = 2
    p.allow_requantize = True
    if llama_cpp.llama_model_quantize(src.encode(), dst.encode(), ctypes.byref(p)) != 0:
        sys.exit(f"llama.cpp failed to quantize {src} to ftype {ftype}")


def reference(path, tokens):
    llm = llama_cpp.Llama(model_path=path, n_ctx=256, logits_all=True, verbose=False, n_threads=2, n_batch=64)
    llm.eval(tokens)
    logits = np.array(llm.scores[: len(tokens)], dtype=np.float64)
    out = []
    for row in logits:
        top = np.argsort(-row)[:16].tolist()
        ids = top + [i for i in FIXED_IDS if i not in top]
        m = row.max()
        lse = float(m + np.log(np.exp(row - m).sum()))
        out.append({"argmax": int(row.argmax()), "logsumexp": lse, "ids": ids,
                    "logits": [float(row[i]) for i in ids]})
    return out


def greedy(path):
    """llama.cpp's arg-max continuations, stepped as compare_llama_eval.py does (last-row logits only)."""
    llm = llama_cpp.Llama(model_path=path, n_ctx=512, n_batch=512, logits_all=False, verbose=False, n_threads=2)
    out = []
    for user in GREEDY_PROMPTS:
        ids = llm.tokenize(chatml(user).encode("utf-8"), add_bos=False, special=True)
        out.append({"prompt": user, "prompt_ids": list(ids), "tokens": llama_greedy(llm, ids, GREEDY_TOKENS)})
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=os.path.join(os.path.dirname(__file__), "..", ".cache", "models",
                                                    "SmolLM2-135M-Instruct.Q4_1.gguf"))
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "tests", "data", "logits",
                                                  "smollm2.json"))
    args = ap.parse_args()
    vocab = llama_cpp.Llama(model_path=args.model, vocab_only=True, verbose=False)
    tokens = vocab.tokenize(PROMPT.encode(), add_bos=False, special=False)[:N_TOKENS]
    if len(tokens) < N_TOKENS:
        sys.exit(f"prompt gives only {len(tokens)} tokens")
    formats = {"q4_1": reference(args.model, tokens)}
    continuations = {"q4_1": greedy(args.model)}
    with tempfile.TemporaryDirectory() as tmp:
        for name, ftype in FTYPES.items():
            path = os.path.join(tmp, f"smollm2.{name}.gguf")
            quantize(args.model, path, ftype)
            formats[name] = reference(path, tokens)
            continuations[name] = greedy(path)
    doc = {"about": __doc__.strip().splitlines()[0], "peer": f"llama-cpp-python {llama_cpp.__version__}",
           "peer_cpu": llama_cpp.llama_print_system_info().decode().strip(),
           "prompt": PROMPT, "tokens": tokens, "formats": formats, "greedy": continuations}
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=False, indent=0)
        f.write("\n")
    print(f"wrote {args.out}: {len(tokens)} tokens x {len(formats)} formats")


if __name__ == "__main__":
    main()
