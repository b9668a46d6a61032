#!/usr/bin/env bash
# The GPU check, one prepared script for a lent NVIDIA H100/H200 machine (under 5 minutes):
#   1. a venv over the machine's own Python (torch, onnx are there) with the GPU extra
#      (`pip install -e '.[gpu]'`: onnxruntime-gpu) installed from carried wheels;
#   2. CUDA (and TensorRT when the build has it) must load through the service's own
#      provider selection, which refuses a silent fallback to the CPU;
#   3. GPU against CPU outputs (max abs diff <= 1e-3), in-process onnxruntime-gpu against
#      `rectifier serve` on 127.0.0.1 at c=1/16/64, for simple_cnn (models/demo) and resnet18,
#      fp32 and fp16 (bench/gpu_check.py).
# Results: $OUT/gpu_check.json, $OUT/gpu_check.md and $OUT/gpu_check.log. Exit 1 when a check
# failed, 2 when the environment is not usable (no wheels, no driver).
#
#   bench/gpu_check.sh                # on the GPU machine
#   bench/gpu_check.sh --cpu-dry-run  # anywhere: the same steps on the CPU provider, tiny
#                                     # durations, with the repository's .venv (no install)
#
# The GPU machine reaches no package index, and one device call carries at most 64 MiB, while
# the onnxruntime-gpu wheel alone is about 250 MB. So, here first: `bash bench/gpu_wheels.sh`
# puts the wheels in .gpuwheels/1 ... .gpuwheels/N (each under the limit, the big wheel cut
# in parts, with a SHA-256 manifest); then, on the device, one short call per folder, each
# within the machine's warm window of the previous one:
#   run(command="mkdir -p /tmp/rectifier-wheels && cp .gpuwheels/K/* /tmp/rectifier-wheels/",
#       carry=[".gpuwheels/K"])
# the last folder travelling with the check itself:
#   run(command="cp .gpuwheels/N/* /tmp/rectifier-wheels/ && bash bench/gpu_check.sh",
#       carry=[".gpuwheels/N"], timeout_s=420)
# The parts are joined and checked against the manifest here. When the machine's own
# onnxruntime already offers CUDA, no onnxruntime-gpu wheel is needed. Only the GPU path
# was never run (no GPU was lent to the task that wrote this); --cpu-dry-run was.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DRY_RUN=0
case "${1:-}" in
  "") ;;
  --cpu-dry-run) DRY_RUN=1 ;;
  *) echo "usage: bench/gpu_check.sh [--cpu-dry-run] (got '$1')" >&2; exit 2 ;;
esac
OUT=${OUT:-$REPO/bench/results/gpu-check-$(date -u +%Y%m%dT%H%M%SZ)}
WHEELS=${GPU_WHEELS:-/tmp/rectifier-wheels}
VENV=${GPU_VENV:-/tmp/rectifier-gpu-venv}
mkdir -p "$OUT"
exec > >(tee "$OUT/gpu_check.log") 2>&1
cd "$REPO"
started=$(date +%s)

if [ "$DRY_RUN" = 1 ]; then
  PY=${PYTHON:-$REPO/.venv/bin/python}
  [ -x "$PY" ] || { echo "no $PY: run 'make .venv/.installed-all' first" >&2; exit 2; }
  MACHINE="CPU dry run on $(uname -n), $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "== dry run: $PY (the GPU extra is not installed; CUDA must be refused loudly)"
else
  command -v nvidia-smi >/dev/null || { echo "nvidia-smi not found: no NVIDIA driver here" >&2; exit 2; }
  MACHINE=$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | head -1)
  echo "== GPU: $MACHINE"
  BASE=${PYTHON:-python3}
  # The machine's python3 is itself a venv (/opt/torch/.venv) holding torch, onnx and
  # NVIDIA's CUDA libraries; a venv made from it sees the base interpreter's packages, not
  # those, so a .pth file puts the parent's site-packages behind the new venv's own. The
  # venv's onnxruntime-gpu then shadows the parent's CPU onnxruntime.
  site=$("$BASE" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  # Without pip of its own (the base interpreter may lack ensurepip): the parent's pip
  # installs into it with --python.
  "$BASE" -m venv --without-pip "$VENV"
  PY=$VENV/bin/python
  pip=("$BASE" -m pip --python "$PY")
  echo "$site" > "$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/parent-site.pth"
  # onnxruntime-gpu's CUDA provider dlopens cuDNN/cuBLAS/cuFFT/cuRAND; the machine has them
  # as NVIDIA's pip packages (the ones PyTorch uses), so their lib folders go on the path.
  if [ -d "$site/nvidia" ]; then
    libs=$(find "$site/nvidia" -name 'lib*.so*' -printf '%h\n' | sort -u | paste -sd: -)
    export LD_LIBRARY_PATH="$libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  fi
  mkdir -p "$WHEELS"
  if [ -f "$WHEELS/MANIFEST.sha256" ]; then
    # Join the parts of a cut wheel (NAME.whl.part-00, -01, ...), then check every wheel.
    for first in "$WHEELS"/*.whl.part-00; do
      [ -e "$first" ] || continue
      cat "${first%.part-00}".part-* > "${first%.part-00}"
      rm "${first%.part-00}".part-*
    done
    (cd "$WHEELS" && sha256sum --quiet -c MANIFEST.sha256) \
      || { echo "carried wheels are incomplete or damaged (MANIFEST.sha256)" >&2; exit 2; }
  fi
  has_cuda=0
  "$BASE" -c 'import onnxruntime as o, sys; sys.exit("CUDAExecutionProvider" not in o.get_available_providers())' 2>/dev/null \
    && has_cuda=1 && echo "== the machine's onnxruntime offers CUDA; onnxruntime-gpu is not installed"
  wheels=()
  for wheel in "$WHEELS"/*.whl; do
    [ -e "$wheel" ] || continue
    # With CUDA already there, only the server's packages are needed.
    [ "$has_cuda" = 1 ] && [[ $(basename "$wheel") == onnxruntime_gpu-* ]] && continue
    wheels+=("$wheel")
  done
  [ -e "${wheels[0]:-}" ] || { echo "no wheels in $WHEELS: see bench/gpu_wheels.sh" >&2; exit 2; }
  # The wheels are the api and gpu extras already resolved by bench/gpu_wheels.sh for this
  # machine (what its image lacks), so no resolver runs here; the project itself is used
  # from the checkout (PYTHONPATH), as bench/servers.py starts `python -m service`.
  echo "== installing the gpu extra (${#wheels[@]} wheels from $WHEELS) into $VENV"
  "${pip[@]}" install --quiet --no-index --no-deps --no-compile "${wheels[@]}" \
    || { echo "installing the gpu extra's wheels failed" >&2; exit 2; }
  "${pip[@]}" check || echo "== pip check found unmet requirements (above); going on"
  export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
fi

echo "== onnxruntime $("$PY" -c 'import onnxruntime as o; print(o.__version__, o.get_available_providers())')"
args=(--out "$OUT" --machine "$MACHINE")
[ "$DRY_RUN" = 1 ] && args+=(--cpu-dry-run)
status=0
PYTHONUNBUFFERED=1 "$PY" bench/gpu_check.py "${args[@]}" || status=$?
# The device returns at most 8 files, 2 folders deep: the server logs go back as one file,
# the exported models not at all.
tail -n 40 "$OUT"/work/logs/*.log > "$OUT/server_logs.txt" 2>/dev/null || true
rm -rf "$OUT/work"
echo "== gpu check finished in $(( $(date +%s) - started )) s with status $status; results in $OUT"
exit "$status"
