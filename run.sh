#!/usr/bin/env bash
# The two set-up commands of README.md:
#   ./run.sh        install dependencies, build, fetch SmolLM2-135M-Instruct and
#                   run the main job on it: `qlora pipeline` on the embedded
#                   default (the paper's three stages, scaled down; writes
#                   runs/default/report.md; a rerun resumes)
#   ./run.sh test   install dependencies, build everything and run every test
# Environment: BUILD_DIR (default build), QLORA_ENABLE_CUDA (AUTO|ON|OFF).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$root"
build="${BUILD_DIR:-build}"
mode="${1:-default}"

tools/install_deps.sh
model="$(tools/fetch_model.sh)"

# nvcc is often installed off PATH; point CMake at it so AUTO finds it.
if ! command -v nvcc >/dev/null 2>&1 && [[ -x /usr/local/cuda/bin/nvcc && -z "${CUDACXX:-}" ]]; then
  export CUDACXX=/usr/local/cuda/bin/nvcc
fi
jobs="$(nproc 2>/dev/null || echo 2)"
configure() {
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DQLORA_ENABLE_CUDA="${QLORA_ENABLE_CUDA:-AUTO}" "$@" >/dev/null
}

case "$mode" in
  default)
    configure -DQLORA_BUILD_TESTS=OFF -DQLORA_BUILD_BENCH=OFF -DQLORA_ENABLE_CUDA=OFF
    cmake --build "$build" -j"$jobs" --target qlora_cli
    "$build/apps/qlora/qlora" pipeline
    ;;
  test)
    configure -DQLORA_BUILD_TESTS=ON -DQLORA_BUILD_BENCH=ON
    cmake --build "$build" -j"$jobs"
    ctest --test-dir "$build" --output-on-failure -j"$jobs"
    ;;
  *)
    echo "usage: ./run.sh [test]" >&2
    exit 2
    ;;
esac
