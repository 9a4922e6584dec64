#!/usr/bin/env bash
# Install the reference peers used by tools/*.py and the benches:
#   llama-cpp-python  llama.cpp + ggml shared libraries (libggml-base.so holds the
#                     reference quantizers gen_golden.py calls through ctypes;
#                     libllama.so runs llama_model_quantize and inference)
#   gguf              gguf-py: GGUFReader and numpy quantizers for cross-checks
#   numpy
#   python3-torch     Debian's PyTorch 1.13 (CPU) for the LoRA gradient reference
#   libopenblas0-openmp  (tools/gen_lora_grad_golden.py) and the training baseline
#                     (bench/bench_train_torch.py); OpenBLAS replaces the reference
#                     BLAS that torch would otherwise load through libblas.so.3.
#                     Debian's torch lives in the system python ($TORCH_PYTHON,
#                     /usr/bin/python3), which also gets gguf (without its
#                     optional deps: numpy and yaml come from Debian).
# Versions are pinned to the ones the committed golden vectors were made with
# (see tests/data/golden/MANIFEST.json "peers"); override with the env vars
# below. Idempotent: a package already at its pinned version is skipped, so a
# second run does no network access. llama-cpp-python is an sdist that compiles
# llama.cpp with cmake: the first install takes several minutes.
# Prints the directory holding libggml-base.so on the last line.
set -euo pipefail

LLAMA_CPP_PYTHON_VERSION="${LLAMA_CPP_PYTHON_VERSION:-0.3.36}"
GGUF_VERSION="${GGUF_VERSION:-0.19.0}"
NUMPY_VERSION="${NUMPY_VERSION:-2.4.6}"
PYTHON="${PYTHON:-python3}"
TORCH_PYTHON="${TORCH_PYTHON:-/usr/bin/python3}"

# installed_version DIST -> prints the installed version or nothing.
installed_version() {
  "$PYTHON" - "$1" <<'PY' 2>/dev/null || true
import sys
from importlib.metadata import version, PackageNotFoundError
try:
    print(version(sys.argv[1]))
except PackageNotFoundError:
    pass
PY
}

want=()
for spec in "numpy==$NUMPY_VERSION" "gguf==$GGUF_VERSION" "llama-cpp-python==$LLAMA_CPP_PYTHON_VERSION"; do
  name="${spec%%==*}"
  have="$(installed_version "$name")"
  if [[ "$have" == "${spec##*==}" ]]; then
    echo "ok: $name $have already installed" >&2
  else
    echo "need: $spec (have: ${have:-none})" >&2
    want+=("$spec")
  fi
done

if ((${#want[@]})); then
  # cmake and a compiler are needed to build llama-cpp-python from source.
  if [[ " ${want[*]} " == *" llama-cpp-python=="* ]] && ! command -v cmake >/dev/null; then
    echo "cmake not found: run tools/install_deps.sh first" >&2
    exit 1
  fi
  echo "installing: ${want[*]}" >&2
  # llama.cpp for AVX-512 without AMX: a CPU may advertise AMX in cpuid while
  # the VM never grants the tile state, and ggml's AMX matmuls (q8_0, q4_K
  # prompt batches) then die with SIGILL at the first tileloadd. Our kernels
  # are AVX-512 too, so this is also the like-for-like comparison.
  export CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON \
-DGGML_AVX512=ON -DGGML_AVX512_VBMI=ON -DGGML_AVX512_VNNI=ON -DGGML_AVX512_BF16=ON -DGGML_AVX_VNNI=ON}"
  "$PYTHON" -m pip install --quiet "${want[@]}" >&2
fi

# Debian packages for the PyTorch reference: root or sudo, as install_deps.sh.
apt_packages=(python3-torch libopenblas0-openmp python3-yaml)
apt_missing=()
for p in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || apt_missing+=("$p")
done
if ((${#apt_missing[@]})); then
  sudo_cmd=""
  [[ $(id -u) -ne 0 ]] && sudo_cmd="sudo"
  echo "installing: ${apt_missing[*]}" >&2
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${apt_missing[@]}" >&2
else
  echo "ok: ${apt_packages[*]} already installed" >&2
fi
have="$(PYTHON="$TORCH_PYTHON" installed_version gguf)"
if [[ "$have" == "$GGUF_VERSION" ]]; then
  echo "ok: gguf $have already installed for $TORCH_PYTHON" >&2
else
  echo "installing: gguf==$GGUF_VERSION for $TORCH_PYTHON (have: ${have:-none})" >&2
  "$TORCH_PYTHON" -m pip install --quiet --break-system-packages --no-deps "gguf==$GGUF_VERSION" >&2
fi

libdir="$("$PYTHON" -c 'import llama_cpp, os; print(os.path.join(os.path.dirname(llama_cpp.__file__), "lib"))')"
if [[ ! -e "$libdir/libggml-base.so" ]]; then
  echo "libggml-base.so not found under $libdir" >&2
  exit 1
fi
# The reference quantizers must come from a build without FMA contraction
# (ggml compiles ggml-base without -march flags); warn if this one has FMAs.
if command -v objdump >/dev/null && objdump -d "$libdir/libggml-base.so" | grep -qE 'vfn?m(add|sub)'; then
  echo "warning: $libdir/libggml-base.so contains FMA instructions; goldens may differ" >&2
fi
"$PYTHON" - <<'PY' >&2
import gguf, numpy, llama_cpp
from importlib.metadata import version
print(f"peers: llama_cpp {llama_cpp.__version__}, gguf {version('gguf')}, numpy {numpy.__version__}")
PY
"$TORCH_PYTHON" -c 'import torch, gguf; print(f"torch peer: torch {torch.__version__} ({torch.__file__})")' >&2
echo "$libdir"
