#!/usr/bin/env bash
# Install the reference Hugging Face -> GGUF converter that
# tools/check_convert_hf.py compares `qlora convert` with:
#   llama.cpp's convert_hf_to_gguf.py   from the llama-cpp-python sdist (the
#                                       source tree it vendors, with its own
#                                       gguf-py), unpacked, not built
#   a venv with what that script imports: torch (>= 2; Debian's 1.13 lacks
#                                       the float8 dtypes it names), transformers
#                                       (the version llama.cpp pins), safetensors,
#                                       numpy, sentencepiece, protobuf
# Not needed to build or test qlora: CI checks against the golden files this
# produces (tests/data/convert). torch's wheel pulls CUDA libraries: several GB.
# Prints the venv's python and the llama.cpp directory on the last two lines.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VENV="${QLORA_CONVERT_VENV:-$ROOT/.cache/convert-venv}"
SRC="${QLORA_LLAMA_CPP_SRC:-$ROOT/.cache/llama.cpp-src}"
LLAMA_CPP_PYTHON_VERSION="${LLAMA_CPP_PYTHON_VERSION:-0.3.36}"
TRANSFORMERS_VERSION="${TRANSFORMERS_VERSION:-4.57.6}"

if [[ ! -x "$VENV/bin/python" ]]; then
  python3 -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c "import torch, transformers, safetensors, sentencepiece" 2>/dev/null; then
  echo "installing torch, transformers==$TRANSFORMERS_VERSION ... into $VENV" >&2
  "$VENV/bin/pip" install --quiet torch "transformers==$TRANSFORMERS_VERSION" safetensors numpy sentencepiece \
    protobuf jinja2 >&2
else
  echo "ok: $VENV has the converter's imports" >&2
fi

if [[ ! -f "$SRC/convert_hf_to_gguf.py" ]]; then
  tmp="$(mktemp -d)"
  python3 -m pip download --quiet --no-deps --no-binary :all: "llama-cpp-python==$LLAMA_CPP_PYTHON_VERSION" -d "$tmp" >&2
  tar -xzf "$tmp"/llama_cpp_python-*.tar.gz -C "$tmp"
  mkdir -p "$(dirname "$SRC")"
  rm -rf "$SRC"
  mv "$tmp"/llama_cpp_python-*/vendor/llama.cpp "$SRC"
  rm -rf "$tmp"
else
  echo "ok: $SRC has convert_hf_to_gguf.py" >&2
fi
echo "$VENV/bin/python"
echo "$SRC"
