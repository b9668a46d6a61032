"""The machine, the versions and settings a benchmark ran with, and the BentoML venv."""

from __future__ import annotations

import logging
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from bench.servers import REPO

log = logging.getLogger("bench")

BENTOML_VENV = REPO / "bench" / ".venv-bentoml"
BENTOML_REQUIREMENTS = ("bentoml>=1.4,<1.5", "pillow", "numpy")
INSTALL_TIMEOUT_S = 900


def cores() -> int:
    from model.cpus import available_cpus

    return available_cpus()


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        flags = Path("/proc/cpuinfo").read_text()
        isa = [
            f
            for f in ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8")
            if f" {f}" in flags
        ]
    except OSError:
        isa = []
    try:
        pages = Path("/proc/meminfo").read_text().splitlines()[0].split()[1]
        memory = f"{int(pages) / 1024**2:.0f} GiB RAM"
    except (OSError, IndexError, ValueError):
        memory = "unknown RAM"
    return (
        f"{cpu}, {cores()} cores available to the process ({', '.join(isa) or 'no AVX2'}), "
        f"{memory}, {platform.system()} {platform.release()}, Python {platform.python_version()}"
    )


def versions() -> dict[str, str]:
    found = {}
    for package in (
        "onnxruntime", "numpy", "pillow", "fastapi", "starlette", "uvicorn", "uvloop",
        "httptools", "python-multipart", "orjson", "torch", "onnx", "litserve",
    ):  # fmt: skip
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    bentoml = _bentoml_version()
    if bentoml:
        found["bentoml"] = bentoml
    return found


def settings_summary() -> str:
    from service.plumbing.settings import load_settings

    settings = load_settings(models_dir=REPO, device="cpu")
    threads = settings.intra_op_threads or cores()
    spinning = "on" if settings.allow_spinning else "off"
    decode = settings.decode_threads or cores()
    return (
        f"Rectifier defaults (uvicorn 1 worker, uvloop + httptools; intra-op threads {threads}, "
        f"inter-op {settings.inter_op_threads}, spinning {spinning}, decode threads {decode}, "
        f"uploads up to {settings.inline_decode_max_pixels} pixels decoded on the event loop, "
        "inference streams "
        f"{settings.inference_streams or 'auto (per model, from its batch-1 run time)'}, "
        f"max batch {settings.max_batch_size}, batch delay {settings.max_batch_delay_ms:g} ms, "
        f"access log {'on' if settings.access_log else 'off'}); peers: onnxruntime intra-op "
        f"threads {cores()} "
        "with its default spinning, uvicorn 1 worker with uvloop + httptools and its access log "
        "(plain FastAPI), LitServe with 1 inference worker, max batch 32 and a 5 ms batch "
        "timeout, BentoML defaults with 1 worker and max batch 32 (BentoML); the HTTP "
        f'floor without access log. The "workers" rows run {max(2, cores())} processes '
        "(`rectifier serve --workers`, `uvicorn --workers`), each with its share of the cores "
        "for onnxruntime and decoding"
    )


def bentoml_command(port: int) -> list[str]:
    return [
        str(BENTOML_VENV / "bin" / "bentoml"), "serve", "bentoml_service:Classifier",
        "--host", "127.0.0.1", "--port", str(port),
    ]  # fmt: skip


def _bentoml_version() -> str | None:
    python = BENTOML_VENV / "bin" / "python"
    if not python.exists():
        return None
    done = subprocess.run(
        [str(python), "-c", "import bentoml; print(bentoml.__version__)"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return done.stdout.strip() or None if done.returncode == 0 else None


def ensure_bentoml(logs: Path) -> str | None:
    """Create ``bench/.venv-bentoml`` when missing; None when usable, else why not."""
    if _bentoml_version() and (BENTOML_VENV / "bin" / "bentoml").exists():
        return None
    log.info("installing BentoML into %s (once)", BENTOML_VENV)
    ort = metadata.version("onnxruntime")
    steps = [
        [sys.executable, "-m", "venv", str(BENTOML_VENV)],
        [
            str(BENTOML_VENV / "bin" / "pip"), "install", "--quiet",
            *BENTOML_REQUIREMENTS, f"onnxruntime=={ort}",
        ],
    ]  # fmt: skip
    with (logs / "bentoml-install.log").open("w") as output:
        for step in steps:
            try:
                done = subprocess.run(
                    step, stdout=output, stderr=subprocess.STDOUT, timeout=INSTALL_TIMEOUT_S
                )
            except subprocess.TimeoutExpired:
                return f"BentoML install ran past {INSTALL_TIMEOUT_S} s"
            if done.returncode != 0:
                return f"BentoML install failed (see {logs / 'bentoml-install.log'})"
    return None if _bentoml_version() else "BentoML installed but does not import"


def gpu_note() -> str:
    import onnxruntime as ort

    providers = ort.get_available_providers()
    if "CUDAExecutionProvider" not in providers:
        return (
            "Not measured: this machine has no GPU (onnxruntime offers "
            f"{', '.join(providers)}). The fp16 export's GPU parity is therefore unchecked "
            "here too; see its precision_report.json. On a GPU machine, `bench/gpu_check.sh` "
            "checks the providers and GPU-CPU parity and measures in-process against served."
        )
    return (
        "onnxruntime offers CUDA here, but this harness measures the CPU path only; "
        "`bench/gpu_check.sh` measures the GPU (in-process onnxruntime-gpu against "
        "`rectifier serve`, simple_cnn and resnet18, fp32 and fp16)."
    )
