#!/usr/bin/env bash
# CTest driver: install qlora into a temporary prefix, build the consumer with
# find_package, then build it again with add_subdirectory; run both.
set -euo pipefail
src="$1"      # qlora source dir
build="$2"    # qlora build dir (already configured)
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cmake --install "$build" --prefix "$work/prefix" >/dev/null
cmake -S "$src/tests/consumer" -B "$work/find" -DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null
cmake --build "$work/find" >/dev/null
"$work/find/consumer"
cmake -S "$src/tests/consumer" -B "$work/subdir" -DQLORA_SOURCE_DIR="$src" >/dev/null
cmake --build "$work/subdir" --target consumer >/dev/null
"$work/subdir/consumer"
echo "consumer builds with find_package and add_subdirectory"
