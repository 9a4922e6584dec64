#!/usr/bin/env python3
"""Compare qlora's generation and llama-perplexity-protocol perplexity with
llama.cpp's (through llama-cpp-python) on the same GGUF files.

  python3 tools/compare_llama_eval.py --qlora build/apps/qlora/qlora \
      MODEL.f16.gguf MODEL.q8_0.gguf MODEL.q4_k_m.gguf [--out results.json]

(a) Greedy continuations: 10 fixed chat prompts (5 Japanese, 5 English) in
    SmolLM2's ChatML template, 32 new tokens each with end-of-generation
    ignored, so both sides produce exactly 32 ids. llama.cpp: the prompt ids
    are evaluated, then arg-max stepping on its logits, with only the last
    position's logits requested (llama.cpp's default, as in llama-cli: its
    graph then runs the last layer's feed-forward block for that row only,
    which our decoder does too; logits_all=True would run it for every
    prompt row and, with Q4_K/Q6_K weights there, round differently); qlora:
    `qlora generate --chat --temp 0 --ignore-eos -n 32 --json`. A prompt counts
    as identical when all 32 ids agree; the first differing step is reported.
    The prompt ids of both sides are compared first (a tokenizer difference
    would make the comparison meaningless).
(b) Perplexity over tests/data/eval/ppl_text.txt with llama-perplexity's
    protocol, computed here from llama.cpp's logits: tokenize with
    add_special (BOS only if the vocabulary adds it), floor(n / n_ctx) chunks,
    each evaluated from an empty cache with its first token replaced by BOS
    when the vocabulary adds BOS, and the tokens at positions
    n_ctx/2 + 1 .. n_ctx - 1 scored (log-softmax in float64, as
    llama-perplexity's double-precision sum). qlora: `qlora nll --protocol
    llama-perplexity --file ... --ctx N --json`. The target is |diff| < 1 %.
"""
import argparse
import json
import math
import os
import subprocess
import sys
import tempfile

import numpy as np
from llama_cpp import Llama

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_TEXT = os.path.join(HERE, "..", "tests", "data", "eval", "ppl_text.txt")

PROMPTS = [
    "砂防堰堤の役割を簡単に説明してください。",
    "土石流とはどのような現象ですか？",
    "雨量計を設置する場所を選ぶときの注意点を教えてください。",
    "日本の川が急流である理由は何ですか？",
    "ハザードマップは何のために作られますか？",
    "What is a check dam and why is it built in mountain streams?",
    "Explain in two sentences how a rating curve converts water level to discharge.",
    "Write a short haiku about a river after heavy rain.",
    "List three ways to reduce soil erosion on a steep slope.",
    "What is the capital of France?",
]
SMOLLM_SYSTEM = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"


def chatml(user):
    return (f"<|im_start|>system\n{SMOLLM_SYSTEM}<|im_end|>\n"
            f"<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n")


def last_logits(llm):
    """The last evaluated position's logits (llama-cpp-python keeps `scores`
    only with logits_all=True; otherwise read llama_get_logits_ith(ctx, -1))."""
    if llm._logits_all:
        return llm.scores[llm.n_tokens - 1]
    return np.ctypeslib.as_array(llm._ctx.get_logits_ith(-1), shape=(llm.n_vocab(),))


def llama_greedy(llm, prompt_ids, n):
    llm.reset()
    llm.eval(prompt_ids)
    out = []
    for _ in range(n):
        tok = int(np.argmax(last_logits(llm)))
        out.append(tok)
        llm.eval([tok])
    return out


def qlora_generate(qlora, model, user, n, threads):
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        path = f.name
    try:
        subprocess.run([qlora, "generate", model, "-p", user, "--chat", "--temp", "0", "--ignore-eos",
                        "-n", str(n), "-t", str(threads), "-q", "--json", path],
                       check=True, stdout=subprocess.DEVNULL)
        with open(path) as f:
            return json.load(f)
    finally:
        os.unlink(path)


def llama_perplexity(llm, text, n_ctx):
    """llama-perplexity's perplexity() protocol, from llama.cpp's logits."""
    add_bos = bool(llm._model.add_bos_token()) if hasattr(llm._model, "add_bos_token") else False
    tokens = llm.tokenize(text.encode("utf-8"), add_bos=True, special=False)  # add_special: BOS iff vocab says
    if len(tokens) < 2 * n_ctx:
        raise SystemExit(f"text has {len(tokens)} tokens; need {2 * n_ctx}")
    n_chunk = len(tokens) // n_ctx
    first = n_ctx // 2
    nll = nll2 = 0.0
    count = 0
    for c in range(n_chunk):
        chunk = list(tokens[c * n_ctx:(c + 1) * n_ctx])
        if add_bos:
            chunk[0] = llm.token_bos()
        llm.reset()
        llm.eval(chunk)
        logits = np.asarray(llm.scores[:n_ctx], dtype=np.float64)
        for p in range(first, n_ctx - 1):
            row = logits[p]
            mx = row.max()
            lse = mx + math.log(np.exp(row - mx).sum())
            x = lse - row[chunk[p + 1]]
            nll += x
            nll2 += x * x
            count += 1
    mean = nll / count
    ppl = math.exp(mean)
    var = nll2 / count - mean * mean
    err = math.sqrt(var / (count - 1)) * ppl if var > 0 else 0.0
    return {"tokens": len(tokens), "chunks": n_chunk, "scored": count, "bos": add_bos, "ppl": ppl,
            "ppl_stderr": err, "mean_nll": mean}


def qlora_perplexity(qlora, model, text_path, n_ctx, threads):
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        path = f.name
    try:
        subprocess.run([qlora, "nll", model, "--protocol", "llama-perplexity", "--file", text_path,
                        "--ctx", str(n_ctx), "-t", str(threads), "-q", "--json", path],
                       check=True, stdout=subprocess.DEVNULL)
        with open(path) as f:
            return json.load(f)
    finally:
        os.unlink(path)


def qlora_token_ids(qlora, model, text_path):
    out = subprocess.run([qlora, "tokenize", model, "-f", text_path, "--ids-only"], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="+", help="GGUF files")
    ap.add_argument("--qlora", required=True, help="path to the qlora binary")
    ap.add_argument("--text", default=DEFAULT_TEXT)
    ap.add_argument("--ctx", type=int, default=512)
    ap.add_argument("-n", type=int, default=32, help="greedy tokens per prompt")
    ap.add_argument("-t", "--threads", type=int, default=2)
    ap.add_argument("--skip-generate", action="store_true")
    ap.add_argument("--skip-perplexity", action="store_true")
    ap.add_argument("--out", help="write the results as JSON here")
    args = ap.parse_args()
    with open(args.text, encoding="utf-8") as f:
        text = f.read()

    results = []
    for model in args.models:
        name = os.path.basename(model)
        llm = Llama(model, n_ctx=max(args.ctx, 256), n_batch=max(args.ctx, 256), logits_all=True,
                    n_threads=args.threads, verbose=False)
        r = {"model": name}
        if not args.skip_generate:
            gen = Llama(model, n_ctx=max(args.ctx, 256), n_batch=max(args.ctx, 256), logits_all=False,
                        n_threads=args.threads, verbose=False)
            same = 0
            rows = []
            for user in PROMPTS:
                q = qlora_generate(args.qlora, model, user, args.n, args.threads)
                prompt_ids = llm.tokenize(chatml(user).encode("utf-8"), add_bos=False, special=True)
                if list(prompt_ids) != q["prompt_ids"]:
                    raise SystemExit(f"{name}: prompt ids differ for {user!r}:\n {prompt_ids}\n {q['prompt_ids']}")
                ref = llama_greedy(gen, prompt_ids, args.n)
                ours = q["tokens"]
                diff = next((i for i, (a, b) in enumerate(zip(ref, ours)) if a != b), None)
                if diff is None and len(ref) != len(ours):
                    diff = min(len(ref), len(ours))
                same += diff is None
                rows.append({"prompt": user, "identical": diff is None, "first_diff": diff,
                             "llama": llm.detokenize(ref).decode("utf-8", "replace"), "qlora": q["text"]})
                print(f"  [{name}] {'same' if diff is None else f'differs at {diff:2d}'}  {user[:40]}",
                      flush=True)
            del gen
            r["greedy_identical"] = same
            r["greedy_prompts"] = len(PROMPTS)
            r["greedy"] = rows
            print(f"{name}: greedy {args.n}-token continuations identical for {same}/{len(PROMPTS)} prompts",
                  flush=True)
        if not args.skip_perplexity:
            ids_q = qlora_token_ids(args.qlora, model, args.text)
            ids_l = list(llm.tokenize(text.encode("utf-8"), add_bos=True, special=False))
            if ids_q != ids_l:
                raise SystemExit(f"{name}: the text tokenizes differently ({len(ids_q)} vs {len(ids_l)} ids)")
            ref = llama_perplexity(llm, text, args.ctx)
            ours = qlora_perplexity(args.qlora, model, args.text, args.ctx, args.threads)
            if ours["scored_tokens"] != ref["scored"] or ours["chunks"] != ref["chunks"]:
                raise SystemExit(f"{name}: protocol mismatch: {ours} vs {ref}")
            rel = (ours["ppl"] - ref["ppl"]) / ref["ppl"]
            r["perplexity"] = {"ctx": args.ctx, "text_tokens": ref["tokens"], "chunks": ref["chunks"],
                               "scored_tokens": ref["scored"], "bos": ref["bos"],
                               "llama_ppl": ref["ppl"], "llama_ppl_stderr": ref["ppl_stderr"],
                               "qlora_ppl": ours["ppl"], "qlora_ppl_stderr": ours["ppl_stderr"],
                               "relative_diff": rel, "within_1_percent": abs(rel) < 0.01}
            print(f"{name}: perplexity (llama-perplexity protocol, ctx {args.ctx}, {ref['chunks']} chunks, "
                  f"{ref['scored']} tokens scored): llama.cpp {ref['ppl']:.4f} +/- {ref['ppl_stderr']:.4f}, "
                  f"qlora {ours['ppl']:.4f} +/- {ours['ppl_stderr']:.4f}, diff {100 * rel:+.3f} %", flush=True)
        results.append(r)
        del llm

    print("\n| model | greedy identical | llama.cpp PPL | qlora PPL | diff |")
    print("|---|---|---|---|---|")
    for r in results:
        g = f"{r['greedy_identical']}/{r['greedy_prompts']}" if "greedy_identical" in r else "-"
        p = r.get("perplexity")
        if p:
            print(f"| {r['model']} | {g} | {p['llama_ppl']:.4f} | {p['qlora_ppl']:.4f} | "
                  f"{100 * p['relative_diff']:+.3f} % |")
        else:
            print(f"| {r['model']} | {g} | - | - | - |")
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump(results, f, ensure_ascii=False, indent=2)
            f.write("\n")
    ok = all(r.get("greedy_identical", 10) >= 9 and r.get("perplexity", {}).get("within_1_percent", True)
             for r in results)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
