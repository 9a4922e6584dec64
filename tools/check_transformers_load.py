#!/usr/bin/env python3
"""Check that transformers + bitsandbytes load a qlora NF4 export as a 4-bit model.

Why: the C++ tests prove the exported bytes equal our own NF4 encoding; this
answers the user-level questions "does transformers accept the directory as a
bitsandbytes 4-bit checkpoint, does bitsandbytes decode the weights the way we
do, and does the model still compute what llama.cpp computes from the GGUF it
came from?".

What it does:
  1. AutoModelForCausalLM.from_pretrained(HF_DIR, device_map="cpu"); every
     q/k/v/o/gate/up/down projection must be a bnb Linear4bit whose weight is
     a Params4bit with quant_type nf4 (double-quantized, blocksize 64).
  2. For every projection, bitsandbytes.functional.dequantize_4bit of the
     loaded weight vs qlora's decoding of the same safetensors bytes done here
     in numpy (codebook, double-quant absmax, nibble order): max |delta|.
  3. A forward pass on a few token ids vs llama.cpp on the ORIGINAL GGUF
     (llama_cpp.Llama(..., logits_all=True)): max |delta logit| and top-1
     agreement. llama_cpp lives in the system python3, not in the venv that
     has torch + bitsandbytes, so that part runs in a subprocess (this same
     file with --worker) that also decodes every GGUF tensor to f32 with
     gguf-py.
  4. A float32 reference: the same config without quantization, loaded with
     the decoded GGUF weights (llama Q/K un-permuted here, independently of
     the C++ code). reference vs llama.cpp isolates the conversion (names,
     shapes, permutation, config); NF4 vs reference isolates quantization.

Usage (from the venv with torch, bitsandbytes, transformers, safetensors):
  /tmp/bnbvenv/bin/python tools/check_transformers_load.py HF_DIR ORIGINAL.gguf
Exit status: 1 if loading fails, a projection is not NF4 Params4bit,
bitsandbytes and qlora decode a weight differently, or the float32 reference
disagrees with llama.cpp (top-1 agreement < 0.9), which would mean the
conversion is wrong; 0 otherwise.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

TEXT = (
    "Large language models are trained on vast amounts of text. They learn to predict the next word in a "
    "sentence, and in doing so they pick up grammar, facts about the world, and some ability to reason. "
    "Quantization stores their weights with fewer bits."
)
GGUF_ROLE = {"self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
             "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
             "mlp.down_proj": "ffn_down"}
PROJECTIONS = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
               "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj")


# ---------------------------------------------------------------------------
# Worker (system python3: llama_cpp + gguf-py, no torch)
# ---------------------------------------------------------------------------

def worker(gguf_path: str, out_npz: str, text: str, threads: int) -> None:
    """llama.cpp logits for `text`, plus every GGUF tensor decoded to f32."""
    from llama_cpp import Llama
    import gguf

    llm = Llama(model_path=gguf_path, n_ctx=512, n_threads=threads, n_threads_batch=threads,
                logits_all=True, verbose=False)
    tokens = llm.tokenize(text.encode("utf-8"), add_bos=True, special=False)
    llm.reset()
    llm.eval(tokens)
    logits = np.array(llm.scores[: len(tokens)], dtype=np.float32)
    arrays = {"__tokens": np.array(tokens, dtype=np.int64), "__logits": logits}
    reader = gguf.GGUFReader(gguf_path)
    for t in reader.tensors:
        # numpy shape = reversed ne; dequantize returns it for quantized types.
        x = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32)
        arrays[t.name] = x.reshape([int(d) for d in reversed(t.shape)])
    np.savez(out_npz, **arrays)


def run_worker(python: str, gguf_path: str, text: str, threads: int) -> dict[str, np.ndarray]:
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "ref.npz")
        # Without torch's env the subprocess must not see the venv's packages.
        env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
        subprocess.run([python, __file__, "--worker", gguf_path, out, "--threads", str(threads), "--text", text],
                       check=True, env=env)
        with np.load(out) as z:
            return {k: z[k] for k in z.files}


# ---------------------------------------------------------------------------
# qlora's NF4 decoding, in numpy (bitsandbytes' serialized layout)
# ---------------------------------------------------------------------------

def decode_nf4(f, base: str) -> np.ndarray:
    """fp32 weight of `<base>` (e.g. model.layers.0.mlp.up_proj.weight)."""
    state = json.loads(bytes(f.get_tensor(base + ".quant_state.bitsandbytes__nf4")).decode("utf-8"))
    packed = f.get_tensor(base).reshape(-1)
    n = int(np.prod(state["shape"]))
    idx = np.empty(packed.size * 2, dtype=np.uint8)
    idx[0::2] = packed >> 4          # first element in the high nibble
    idx[1::2] = packed & 0x0F
    idx = idx[:n]
    qmap = f.get_tensor(base + ".quant_map").astype(np.float32)
    bs = state["blocksize"]
    nblocks = (n + bs - 1) // bs
    if "nested_blocksize" in state:
        code = f.get_tensor(base + ".absmax")
        nested = f.get_tensor(base + ".nested_absmax").astype(np.float32)
        nmap = f.get_tensor(base + ".nested_quant_map").astype(np.float32)
        nbs = state["nested_blocksize"]
        # fp32 multiply, then fp32 add of the stored offset (formats.md §6.4).
        absmax = nmap[code] * np.repeat(nested, nbs)[:nblocks] + np.float32(state["nested_offset"])
    else:
        absmax = f.get_tensor(base + ".absmax").astype(np.float32)
    y = qmap[idx] * np.repeat(absmax.astype(np.float32), bs)[:n]
    return y.reshape(state["shape"])


# ---------------------------------------------------------------------------
# Checks (venv: torch + bitsandbytes + transformers)
# ---------------------------------------------------------------------------

def unpermute(w: np.ndarray, n_head: int) -> np.ndarray:
    """Inverse of llama.cpp's LlamaModel.permute (reshape(n_head, 2, hd/2, ...).swapaxes(1, 2))."""
    hd = w.shape[0] // n_head
    return w.reshape(n_head, hd // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def hf_name(gguf_name: str) -> str:
    glob = {"token_embd": "model.embed_tokens", "output_norm": "model.norm", "output": "lm_head"}
    blk = {"attn_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm", "attn_q": "self_attn.q_proj",
           "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj", "attn_output": "self_attn.o_proj",
           "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj"}
    base, param = gguf_name.rsplit(".", 1)
    if base in glob:
        return f"{glob[base]}.{param}"
    _, layer, role = base.split(".", 2)
    return f"model.layers.{layer}.{blk[role]}.{param}"


def compare_logits(a: np.ndarray, b: np.ndarray) -> dict:
    d = np.abs(a.astype(np.float64) - b.astype(np.float64))
    return {"max_abs": float(d.max()), "mean_abs": float(d.mean()),
            "top1_agree": float((a.argmax(-1) == b.argmax(-1)).mean())}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("hf_dir", nargs="?")
    ap.add_argument("gguf", nargs="?")
    ap.add_argument("--system-python", default="python3", help="interpreter that has llama_cpp and gguf")
    ap.add_argument("--threads", type=int, default=max(1, (os.cpu_count() or 2) // 2))
    ap.add_argument("--text", default=TEXT)
    ap.add_argument("--worker", nargs=2, metavar=("GGUF", "OUT_NPZ"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args.worker[0], args.worker[1], args.text, args.threads)
        return 0
    if not args.hf_dir or not args.gguf:
        ap.error("HF_DIR and ORIGINAL.gguf are required")

    import torch
    import bitsandbytes as bnb
    import bitsandbytes.functional as bnbf
    import transformers
    from safetensors import safe_open
    from transformers import AutoConfig, AutoModelForCausalLM

    torch.manual_seed(0)
    print(f"torch {torch.__version__}, bitsandbytes {bnb.__version__}, transformers {transformers.__version__}")
    ok = True

    # 1. Load as a bitsandbytes 4-bit model.
    try:
        model = AutoModelForCausalLM.from_pretrained(args.hf_dir, device_map="cpu")
    except Exception as e:  # noqa: BLE001 - any failure to load is the verdict
        print(f"FAIL: from_pretrained raised {type(e).__name__}: {e}")
        return 1
    model.eval()
    cfg = model.config
    print(f"loaded {type(model).__name__}: {cfg.num_hidden_layers} layers, dtype {model.dtype}, "
          f"is_loaded_in_4bit={getattr(model, 'is_loaded_in_4bit', None)}, "
          f"tied={model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()}")
    n4 = 0
    for i, layer in enumerate(model.model.layers):
        for p in PROJECTIONS:
            mod = layer.get_submodule(p)
            w = mod.weight
            qs = getattr(w, "quant_state", None)
            good = (isinstance(mod, bnb.nn.Linear4bit) and isinstance(w, bnb.nn.Params4bit) and qs is not None
                    and qs.quant_type == "nf4" and qs.nested and qs.blocksize == 64)
            if not good:
                print(f"FAIL: model.layers.{i}.{p} is {type(mod).__name__}/{type(w).__name__}, "
                      f"quant_state={qs and (qs.quant_type, qs.nested, qs.blocksize)}")
                ok = False
            n4 += good
    print(f"{n4} projections are Linear4bit + Params4bit (nf4, double quant, blocksize 64)")

    ref = run_worker(args.system_python, args.gguf, args.text, args.threads)
    tokens, lcpp = ref.pop("__tokens"), ref.pop("__logits")
    permute = cfg.model_type == "llama"

    def hf_layout(gname: str) -> np.ndarray:
        x = ref[gname]
        if permute and (".attn_q." in gname or ".attn_k." in gname):
            x = unpermute(x, cfg.num_attention_heads if ".attn_q." in gname else cfg.num_key_value_heads)
        return np.ascontiguousarray(x)

    # 2. bitsandbytes' dequantization vs ours, every projection.
    worst = (0.0, "")
    same_bytes = total_bytes = 0
    diff_codes = total_codes = max_code_step = 0
    max_rel_nested = 0.0
    worst_bf16 = 0.0
    st_path = os.path.join(args.hf_dir, "model.safetensors")
    with safe_open(st_path, framework="np") as f:
        for i, layer in enumerate(model.model.layers):
            for p in PROJECTIONS:
                name = f"model.layers.{i}.{p}.weight"
                w = layer.get_submodule(p).weight
                theirs = bnbf.dequantize_4bit(w.data, w.quant_state).float().numpy()
                # 2b. bitsandbytes' own quantize_4bit of the same (decoded GGUF, HF-layout) weight.
                src = torch.from_numpy(hf_layout(f"blk.{i}.{GGUF_ROLE[p]}.weight"))
                packed, qs = bnbf.quantize_4bit(src, blocksize=64, compress_statistics=True, quant_type="nf4")
                mine = f.get_tensor(name)
                same_bytes += int((packed.numpy().reshape(-1) == mine.reshape(-1)).sum())
                total_bytes += mine.size
                # Double-quant statistics can differ by an ulp: torch's mean() (the offset) reduces in
                # another order than ours (formats.md §6.4), which can move an absmax code by one.
                codes = f.get_tensor(name + ".absmax")
                diff_codes += int((qs.absmax.numpy() != codes).sum())
                max_code_step = max(max_code_step, int(np.abs(qs.absmax.numpy().astype(int) - codes.astype(int)).max()))
                total_codes += codes.size
                nested = f.get_tensor(name + ".nested_absmax")
                max_rel_nested = max(max_rel_nested, float(np.abs(qs.state2.absmax.numpy() / nested - 1).max()))
                ours = decode_nf4(f, name)
                d = float(np.abs(theirs - ours).max())
                ours_bf16 = torch.from_numpy(ours).to(torch.bfloat16).float().numpy()
                worst_bf16 = max(worst_bf16, float(np.abs(theirs - ours_bf16).max()))
                if d > worst[0] or not worst[1]:
                    worst = (d, name)
    print(f"dequantize_4bit vs qlora numpy decode: max |delta| {worst[0]:.3g} (at {worst[1]}); "
          f"after rounding ours to {w.quant_state.dtype}: {worst_bf16:.3g}")
    print(f"bitsandbytes quantize_4bit(decoded GGUF weight) vs our file: {same_bytes}/{total_bytes} packed bytes "
          f"identical ({100.0 * same_bytes / total_bytes:.4f}%); double-quant absmax codes differing: "
          f"{diff_codes}/{total_codes} (by at most {max_code_step} code steps), nested absmax max rel. diff {max_rel_nested:.2g}")
    if worst_bf16 != 0.0:
        print("FAIL: bitsandbytes decodes the weights differently from qlora")
        ok = False

    # 3. Forward pass vs llama.cpp on the original GGUF.
    ids = torch.from_numpy(tokens).unsqueeze(0)
    with torch.no_grad():
        nf4_logits = model(ids).logits[0].float().numpy()
    c = compare_logits(nf4_logits, lcpp)
    print(f"{len(tokens)} tokens. NF4 (transformers+bnb, bf16 compute) vs llama.cpp (GGUF): "
          f"max |dlogit| {c['max_abs']:.3f}, mean {c['mean_abs']:.3f}, top-1 agreement {c['top1_agree']:.3f}")

    # 4. float32 reference built from the decoded GGUF weights.
    ref_cfg = AutoConfig.from_pretrained(args.hf_dir)
    if hasattr(ref_cfg, "quantization_config"):
        del ref_cfg.quantization_config
    ref_cfg.dtype = torch.float32
    ref_model = AutoModelForCausalLM.from_config(ref_cfg, dtype=torch.float32).eval()
    state = {hf_name(g): torch.from_numpy(hf_layout(g)) for g in ref}
    missing, unexpected = ref_model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not (k == "lm_head.weight" and ref_cfg.tie_word_embeddings)]
    if missing or unexpected:
        print(f"FAIL: reference state dict: missing {missing[:5]}, unexpected {unexpected[:5]}")
        ok = False
    if ref_cfg.tie_word_embeddings:
        ref_model.tie_weights()
    with torch.no_grad():
        f32_logits = ref_model(ids).logits[0].float().numpy()
    r = compare_logits(f32_logits, lcpp)
    q = compare_logits(nf4_logits, f32_logits)
    print(f"float32 reference (decoded GGUF) vs llama.cpp: max |dlogit| {r['max_abs']:.3f}, mean {r['mean_abs']:.3f}, "
          f"top-1 agreement {r['top1_agree']:.3f}   <- conversion check")
    print(f"NF4 vs float32 reference: max |dlogit| {q['max_abs']:.3f}, mean {q['mean_abs']:.3f}, "
          f"top-1 agreement {q['top1_agree']:.3f}   <- quantization effect")
    with torch.no_grad():
        bf16_logits = ref_model.to(torch.bfloat16)(ids).logits[0].float().numpy()
    b = compare_logits(bf16_logits, f32_logits)
    print(f"bf16 reference vs float32 reference: max |dlogit| {b['max_abs']:.3f}, mean {b['mean_abs']:.3f}, "
          f"top-1 agreement {b['top1_agree']:.3f}   <- bf16 compute alone, for scale")
    if r["top1_agree"] < 0.9:
        print("FAIL: the float32 reference disagrees with llama.cpp: names, permutation or config are wrong")
        ok = False
    print("OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
