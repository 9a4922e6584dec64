#!/usr/bin/env python3
"""Write tests/data/peft/tiny_llama_r4.<type>.gguf with llama.cpp's own converter.

Why: io/gguf_lora.hpp promises the file convert_lora_to_gguf.py writes for a
PEFT adapter (KVs, tensor names, order, types, the Q/K permutation of
lora_b, Q8_0 with its F16 fallback). tests/io/gguf_lora_test.cpp reads the
PEFT golden (tools/gen_peft_golden.py), writes it with our writer and
compares with these files byte for byte.

The converter needs the llama.cpp source tree at the version of the installed
llama-cpp-python (its sdist vendors it: `pip download --no-binary :all:
--no-deps llama-cpp-python==0.3.36` and unpack), plus torch and transformers:
    /tmp/peftvenv/bin/python tools/gen_gguf_lora_golden.py --llama-cpp DIR/vendor/llama.cpp
It is run on tests/data/peft/tiny_llama_r4 with a config.json for the tiny
llama made here (the converter reads only the config of the base model).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "peft"

# presets::tiny() as a transformers config (what --base points at).
TINY_CONFIG = {
    "architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 64, "hidden_size": 64,
    "intermediate_size": 96, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
    "head_dim": 16, "max_position_embeddings": 128, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
    "hidden_act": "silu", "tie_word_embeddings": False,
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--llama-cpp", required=True, type=Path, help="llama.cpp source tree (has convert_lora_to_gguf.py)")
    args = ap.parse_args()
    script = args.llama_cpp / "convert_lora_to_gguf.py"
    with tempfile.TemporaryDirectory() as base:
        (Path(base) / "config.json").write_text(json.dumps(TINY_CONFIG))
        for outtype in ("f32", "bf16", "q8_0"):
            out = DATA / f"tiny_llama_r4.{outtype}.gguf"
            log = subprocess.run([sys.executable, str(script), "--base", base, "--outtype", outtype,
                                  "--outfile", str(out), str(DATA / "tiny_llama_r4")],
                                 capture_output=True, text=True)
            if log.returncode != 0:
                print(log.stdout + log.stderr, file=sys.stderr)
                return 1
            print(f"wrote {out} ({out.stat().st_size} bytes)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
