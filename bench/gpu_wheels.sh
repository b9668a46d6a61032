#!/usr/bin/env bash
# The wheels bench/gpu_check.sh installs on the GPU machine, which reaches no package index:
# the `api` and `gpu` extras of pyproject.toml with their dependencies, for CPython 3.12 on
# x86-64 Linux (that machine's Python), minus what its image already holds (torch's stack:
# numpy, protobuf, sympy...). One device call carries at most 64 MiB with the working tree,
# so the wheels are packed into .gpuwheels/1 ... .gpuwheels/N of at most PART_MIB each, a
# wheel larger than that cut into NAME.whl.part-00, -01, ... (joined again by gpu_check.sh),
# and .gpuwheels/N/MANIFEST.sha256 lists every whole wheel (.gitignore keeps it out of git).
#
#   bash bench/gpu_wheels.sh      # then see bench/gpu_check.sh for the device calls
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DEST=$REPO/.gpuwheels
PART_MIB=${PART_MIB:-56}
PY=${PYTHON:-python3}
# In the GPU machine's image already (its package list in the device notes); a second copy
# of any of these would only cost transfer size.
PRESENT="numpy pillow protobuf sympy mpmath packaging flatbuffers typer click rich shellingham
markdown-it-py mdurl pygments typing-extensions anyio idna h11 uvloop prometheus-client
pyyaml certifi httpx httpcore annotated-doc setuptools wheel"

requirements=$("$PY" - "$REPO/pyproject.toml" <<'EOF'
import re, sys, tomllib

extras = tomllib.load(open(sys.argv[1], "rb"))["project"]["optional-dependencies"]
for requirement in extras["api"] + extras["gpu"]:
    if not requirement.startswith("rectifier["):
        print(requirement)
EOF
)
download=$(mktemp -d)
trap 'rm -rf "$download"' EXIT
platforms=()
for tag in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 \
           manylinux1_x86_64 linux_x86_64; do
  platforms+=(--platform "$tag")
done
# shellcheck disable=SC2086
"$PY" -m pip download --quiet --only-binary=:all: --python-version 3.12 --implementation cp \
  "${platforms[@]}" -d "$download" $requirements
for name in $PRESENT; do
  pattern=$(echo "$name" | tr '-' '_')
  rm -f "$download"/"$pattern"-[0-9]*.whl "$download"/"$name"-[0-9]*.whl
done

rm -rf "$DEST"
mkdir -p "$DEST"
(cd "$download" && sha256sum ./*.whl) > "$download/MANIFEST.sha256"
limit=$((PART_MIB * 1024 * 1024))
folder=1 used=0
place() {  # place FILE: into the current folder, or the next when it would overflow
  local size
  size=$(stat -c %s "$1")
  if [ $((used + size)) -gt "$limit" ] && [ "$used" -gt 0 ]; then
    folder=$((folder + 1)) used=0
  fi
  mkdir -p "$DEST/$folder"
  mv "$1" "$DEST/$folder/"
  used=$((used + size))
}
for wheel in "$download"/*.whl; do
  if [ "$(stat -c %s "$wheel")" -gt "$limit" ]; then
    split -b "$((limit - 1024 * 1024))" -d -a 2 "$wheel" "$wheel.part-"
    rm "$wheel"
    for part in "$wheel".part-*; do place "$part"; done
  fi
done
for wheel in "$download"/*.whl; do [ -e "$wheel" ] && place "$wheel"; done
mv "$download/MANIFEST.sha256" "$DEST/$folder/"
du -sh "$DEST"/*
echo "carry .gpuwheels/1 ... .gpuwheels/$folder, one folder a device call (bench/gpu_check.sh)"
