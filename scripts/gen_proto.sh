#!/usr/bin/env bash
# Regenerates service/_generated/ from proto/. Run after editing a .proto file.
# The output is committed and never edited by hand; tests/test_generated_code.py
# fails when it is out of date.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-service/_generated}
rm -rf "$out/hashguard"
mkdir -p "$out"
python -m grpc_tools.protoc -I proto \
  --python_out="$out" --grpc_python_out="$out" --pyi_out="$out" \
  proto/hashguard/v1/*.proto
touch "$out/hashguard/__init__.py" "$out/hashguard/v1/__init__.py"
