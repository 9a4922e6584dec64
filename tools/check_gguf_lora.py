#!/usr/bin/env python3
"""Prove that `qlora export-adapter --to gguf` makes adapters llama.cpp applies correctly.

1. Base: the SmolLM2 GGUF decoded to an F32 GGUF with gguf-py (so neither
   path below adds weight quantization of its own).
2. A random PEFT adapter in HF coordinates, made with numpy: r = 8,
   lora_alpha = 16, all seven projections of every layer, A and B nonzero;
   adapter_model.safetensors is written by hand (8-byte header length, JSON
   header, raw little-endian F32), adapter_config.json as PEFT names the
   fields.
3. OUR converter: qlora export-adapter PEFT_DIR --to gguf --base BASE.
4. The reference, built here independently of qlora: in HF space
   W' = W + (alpha / r) * B @ A for every projection, with W taken from the
   GGUF (q/k rows un-permuted to HF order first, llama.cpp's permutation
   re-applied after the merge), written as a merged F32 GGUF with gguf-py.
5. llama-cpp-python runs a fixed prompt on base + our adapter
   (Llama(lora_path=...)) and on the merged model; the script prints the max
   |delta logit| over all positions and the top-1 agreement, plus the same
   figures for the base model without the adapter (the adapter matters) and
   for a merge that skips llama's q/k permutation (the check would catch a
   permutation bug).

With --trained ADAPTER (a checkpoint of `qlora train`, a PEFT directory or a
GGUF LoRA), the adapter is that trained one instead and the prediction is OUR
engine's: `qlora merge --target original --type f16` of base + adapter.
llama.cpp then runs base + adapter.gguf (runtime LoRA) and our merged file;
our decoder's logits on that merged F16 file equal llama.cpp's bit for bit
(tests/model/decoder_test.cpp), so agreement here closes the chain trained
adapter -> GGUF LoRA -> llama.cpp == our engine. The prompt is then a Japanese
question from the test set as the chat template renders it.

Run (a Python with numpy, gguf and llama-cpp-python; tools/install_peers.sh):
    python3 tools/check_gguf_lora.py --qlora build/apps/qlora/qlora \\
        --model .cache/models/SmolLM2-135M-Instruct.Q4_1.gguf [--work /tmp/check_gguf_lora]
Exit status 0 when max |delta| <= --tolerance and top-1 agreement is 100%.
"""
from __future__ import annotations

import argparse
import json
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import gguf

TARGETS = [("q_proj", "self_attn", "attn_q"), ("k_proj", "self_attn", "attn_k"), ("v_proj", "self_attn", "attn_v"),
           ("o_proj", "self_attn", "attn_output"), ("gate_proj", "mlp", "ffn_gate"), ("up_proj", "mlp", "ffn_up"),
           ("down_proj", "mlp", "ffn_down")]
PROMPT = "The capital of France is Paris. The capital of Japan is Tokyo. The capital of Italy is"


def copy_kvs(reader: gguf.GGUFReader, writer: gguf.GGUFWriter, overrides: dict) -> None:
    """Every KV of `reader` except the ones the writer adds itself."""
    for key, field in reader.fields.items():
        if key.startswith("GGUF.") or key == "general.architecture":
            continue
        if key in overrides:
            value, vtype = overrides[key]
            writer.add_key_value(key, value, vtype)
            continue
        vtype = field.types[0]
        if vtype == gguf.GGUFValueType.ARRAY:
            writer.add_key_value(key, field.contents(), vtype, sub_type=field.types[-1])
        else:
            writer.add_key_value(key, field.contents(), vtype)


def load_f32(reader: gguf.GGUFReader) -> dict[str, np.ndarray]:
    """Every tensor decoded to float32, numpy (torch) shape."""
    out = {}
    for t in reader.tensors:
        out[t.name] = np.ascontiguousarray(gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32))
    return out


def write_gguf(path: Path, reader: gguf.GGUFReader, tensors: dict[str, np.ndarray], name: str) -> None:
    w = gguf.GGUFWriter(str(path), arch=reader.fields["general.architecture"].contents())
    copy_kvs(reader, w, {"general.file_type": (int(gguf.LlamaFileType.ALL_F32), gguf.GGUFValueType.UINT32),
                         "general.name": (name, gguf.GGUFValueType.STRING)})
    for t in reader.tensors:  # keep the source order
        w.add_tensor(t.name, tensors[t.name])
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


# llama.cpp's HF -> GGUF row permutation of q/k (and its inverse), written here
# from the converter's definition, not taken from qlora.
def permute(w: np.ndarray, n_head: int) -> np.ndarray:
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def unpermute(w: np.ndarray, n_head: int) -> np.ndarray:
    return w.reshape(n_head, w.shape[0] // n_head // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def write_safetensors(path: Path, tensors: dict[str, np.ndarray]) -> None:
    """safetensors by hand: tensors sorted by name (all F32), data 8-aligned."""
    header, offset, blobs = {"__metadata__": {"format": "pt"}}, 0, []
    for name in sorted(tensors):
        data = np.ascontiguousarray(tensors[name], dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(tensors[name].shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text)
        for b in blobs:
            f.write(b)


def make_peft_adapter(out: Path, cfg: dict, rank: int, alpha: float, seed: int, b_std: float) -> dict:
    """Random A (PEFT's init range) and B (nonzero), HF coordinates."""
    rng = np.random.default_rng(seed)
    n_embd, n_ff = cfg["n_embd"], cfg["n_ff"]
    q_dim, kv_dim = cfg["n_head"] * cfg["head_dim"], cfg["n_head_kv"] * cfg["head_dim"]
    shapes = {"q_proj": (n_embd, q_dim), "k_proj": (n_embd, kv_dim), "v_proj": (n_embd, kv_dim),
              "o_proj": (q_dim, n_embd), "gate_proj": (n_embd, n_ff), "up_proj": (n_embd, n_ff),
              "down_proj": (n_ff, n_embd)}
    tensors = {}
    for layer in range(cfg["n_layer"]):
        for peft_name, module, _ in TARGETS:
            fin, fout = shapes[peft_name]
            base = f"base_model.model.model.layers.{layer}.{module}.{peft_name}"
            tensors[base + ".lora_A.weight"] = rng.uniform(-1, 1, (rank, fin)).astype(np.float32) / np.sqrt(fin)
            tensors[base + ".lora_B.weight"] = rng.normal(0, b_std, (fout, rank)).astype(np.float32)
    out.mkdir(parents=True, exist_ok=True)
    write_safetensors(out / "adapter_model.safetensors", tensors)
    config = {"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": rank, "lora_alpha": alpha, "lora_dropout": 0.0,
              "target_modules": [t[0] for t in TARGETS], "bias": "none", "fan_in_fan_out": False,
              "use_rslora": False, "use_dora": False, "rank_pattern": {}, "alpha_pattern": {},
              "modules_to_save": None, "layers_to_transform": None, "base_model_name_or_path": None,
              "inference_mode": True, "init_lora_weights": True}
    (out / "adapter_config.json").write_text(json.dumps(config, indent=2, sort_keys=True))
    return tensors


def logits(model: Path, tokens: list[int], lora: Path | None = None) -> np.ndarray:
    from llama_cpp import Llama

    kw = {"lora_path": str(lora)} if lora else {}
    llm = Llama(model_path=str(model), n_ctx=256, n_batch=256, logits_all=True, verbose=False, n_threads=2,
                seed=0, **kw)
    llm.eval(tokens)
    out = np.array(llm.scores[: len(tokens)], dtype=np.float64)
    del llm
    return out


def compare(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float]:
    d = np.abs(a - b)
    return float(d.max()), float(d.mean()), float(np.mean(a.argmax(-1) == b.argmax(-1)))


def run(cmd: list[str]) -> bool:
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        print(" ".join(cmd) + "\n" + r.stderr, file=sys.stderr)
    return r.returncode == 0


def check_trained(args, work: Path, base: Path) -> int:
    """llama.cpp's runtime LoRA with a trained adapter vs our engine's merge of it."""
    adapter = work / "trained_adapter.gguf"
    merged = work / "trained_merged.f16.gguf"
    if not run([args.qlora, "export-adapter", args.trained, "--to", "gguf", "--out", str(adapter), "--base", str(base)]):
        return 1
    if not run([args.qlora, "merge", "--model", str(base), "--adapter", args.trained, "--out", str(merged),
                "--type", "f16", "--target", "original", "--quiet"]):
        return 1
    from llama_cpp import Llama
    tok = Llama(model_path=str(base), vocab_only=True, verbose=False)
    prompt = ("<|im_start|>user\n砂防基本計画において、土砂生産抑制計画の目的は何ですか？<|im_end|>\n"
              "<|im_start|>assistant\n")
    tokens = tok.tokenize(prompt.encode(), add_bos=False, special=True)
    del tok
    print(f"running llama.cpp on {len(tokens)} tokens ...", file=sys.stderr)
    # The merged file is F16, so F16 weight rounding alone moves the logits;
    # measure that floor on the base itself (F32 vs its F16 copy).
    base16 = work / "base.f16.gguf"
    if not run([args.qlora, "quantize", str(base), str(base16), "--type", "f16"]):
        return 1
    with_adapter = logits(base, tokens, adapter)
    ours = logits(merged, tokens)
    without = logits(base, tokens)
    fmx, fmean, ftop1 = compare(without, logits(base16, tokens))
    mx, mean, top1 = compare(with_adapter, ours)
    bmx, bmean, btop1 = compare(without, ours)
    print(f"trained adapter {args.trained}: prompt {len(tokens)} tokens x {with_adapter.shape[1]} logits")
    print(f"base + GGUF LoRA (llama.cpp) vs our merge (F16): max |dlogit| {mx:.3e}, mean {mean:.3e}, "
          f"top-1 agreement {100 * top1:.1f}%")
    print(f"base without adapter         vs our merge:       max |dlogit| {bmx:.3f}, mean {bmean:.3f}, "
          f"top-1 agreement {100 * btop1:.1f}%")
    print(f"floor: base F32 vs its F16 copy (no adapter):    max |dlogit| {fmx:.3e}, mean {fmean:.3e}, "
          f"top-1 agreement {100 * ftop1:.1f}%")
    ok = mx <= max(args.tolerance, 2 * fmx) and top1 == 1.0 and bmx > 20 * mx
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--qlora", required=True, help="the qlora binary")
    ap.add_argument("--model", required=True, help="base GGUF (llama arch), any weight type gguf-py decodes")
    ap.add_argument("--work", default="/tmp/check_gguf_lora", help="scratch directory")
    ap.add_argument("--rank", type=int, default=8)
    ap.add_argument("--alpha", type=float, default=16.0)
    ap.add_argument("--b-std", type=float, default=0.04, help="std of B's entries")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--tolerance", type=float, default=5e-2, help="max |delta logit| accepted")
    ap.add_argument("--trained", help="a trained adapter (checkpoint, PEFT dir or GGUF LoRA): compare with our merge")
    args = ap.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)

    reader = gguf.GGUFReader(args.model)
    arch = reader.fields["general.architecture"].contents()
    if arch != "llama":
        print(f"{args.model}: arch {arch}; this check permutes q/k as for llama", file=sys.stderr)
        return 2
    f = lambda k: int(reader.fields[f"llama.{k}"].contents())
    cfg = {"n_layer": f("block_count"), "n_embd": f("embedding_length"), "n_ff": f("feed_forward_length"),
           "n_head": f("attention.head_count"), "n_head_kv": f("attention.head_count_kv")}
    cfg["head_dim"] = cfg["n_embd"] // cfg["n_head"]

    print("decoding the base to F32 ...", file=sys.stderr)
    weights = load_f32(reader)
    base = work / "base.f32.gguf"
    write_gguf(base, reader, weights, "base f32")

    if args.trained:
        return check_trained(args, work, base)

    peft_dir = work / "peft"
    lora = make_peft_adapter(peft_dir, cfg, args.rank, args.alpha, args.seed, args.b_std)

    adapter = work / "adapter.gguf"
    conv = subprocess.run([args.qlora, "export-adapter", str(peft_dir), "--to", "gguf", "--out", str(adapter),
                           "--base", str(base)], capture_output=True, text=True)
    print(conv.stdout.strip(), file=sys.stderr)
    if conv.returncode != 0:
        print(conv.stderr, file=sys.stderr)
        return 1

    print("merging in HF space ...", file=sys.stderr)
    scale = args.alpha / args.rank
    merged = dict(weights)
    # Control: the merge a converter that forgot llama's q/k permutation of
    # lora_b would imply (delta added in HF row order to GGUF-ordered rows).
    unpermuted = dict(weights)
    for layer in range(cfg["n_layer"]):
        for peft_name, module, gguf_name in TARGETS:
            name = f"blk.{layer}.{gguf_name}.weight"
            heads = {"q_proj": cfg["n_head"], "k_proj": cfg["n_head_kv"]}.get(peft_name)
            w_hf = unpermute(weights[name], heads) if heads else weights[name]
            base_name = f"base_model.model.model.layers.{layer}.{module}.{peft_name}"
            delta = scale * (lora[base_name + ".lora_B.weight"].astype(np.float64) @
                             lora[base_name + ".lora_A.weight"].astype(np.float64))
            w_hf = (w_hf.astype(np.float64) + delta).astype(np.float32)
            merged[name] = permute(w_hf, heads) if heads else w_hf
            unpermuted[name] = (weights[name].astype(np.float64) + delta).astype(np.float32)
    merged_path = work / "merged.f32.gguf"
    write_gguf(merged_path, reader, merged, "merged f32")
    control_path = work / "merged_no_qk_permutation.f32.gguf"
    write_gguf(control_path, reader, unpermuted, "merged f32, q/k delta not permuted")
    del weights, merged, unpermuted

    from llama_cpp import Llama
    tok = Llama(model_path=str(base), vocab_only=True, verbose=False)
    tokens = tok.tokenize(PROMPT.encode(), add_bos=True)
    del tok
    print(f"running llama.cpp on {len(tokens)} tokens ...", file=sys.stderr)
    with_adapter = logits(base, tokens, adapter)
    reference = logits(merged_path, tokens)
    without = logits(base, tokens)
    control = logits(control_path, tokens)

    mx, mean, top1 = compare(with_adapter, reference)
    bmx, bmean, btop1 = compare(without, reference)
    cmx, cmean, ctop1 = compare(with_adapter, control)
    print(f"prompt: {len(tokens)} tokens x {with_adapter.shape[1]} logits; adapter r={args.rank} alpha={args.alpha} "
          f"on all 7 projections of {cfg['n_layer']} layers")
    print(f"base + our GGUF adapter vs merged (HF-space) model: max |dlogit| {mx:.3e}, mean {mean:.3e}, "
          f"top-1 agreement {100 * top1:.1f}%")
    print(f"base without adapter     vs merged model:           max |dlogit| {bmx:.3f}, mean {bmean:.3f}, "
          f"top-1 agreement {100 * btop1:.1f}%")
    print(f"base + our GGUF adapter vs merge without q/k permutation: max |dlogit| {cmx:.3f}, mean {cmean:.3f}, "
          f"top-1 agreement {100 * ctop1:.1f}%  (control: a permutation bug would look like this)")
    ok = mx <= args.tolerance and top1 == 1.0 and bmx > 20 * mx and cmx > 20 * mx
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
