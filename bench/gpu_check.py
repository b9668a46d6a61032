"""The GPU check's measurements (``bench/gpu_check.sh`` runs this inside the GPU venv).

1. Providers: an explicitly requested CUDA (and TensorRT, when the build has it) session
   must really run on it. The service's own ``create_session`` refuses a silent fallback;
   this also proves that a provider that cannot load is a loud ``ProviderError``.
2. Parity: GPU and CPU probabilities of the same graph on the same batch, max abs
   difference at most ``--tolerance`` (1e-3).
3. Speed: in-process onnxruntime (the service's session options, on the GPU) at batch 1, 8,
   32 and 64 against ``rectifier serve`` on 127.0.0.1 driven by the repository's load
   generator at c=1/16/64, for simple_cnn (the demo model) and resnet18 (random weights,
   exported as ``bench/fixtures.py`` does), each in fp32 and fp16.

``--cpu-dry-run`` runs every step on the CPU provider with tiny durations (CUDA must then be
refused loudly), to prove the script on a machine without a GPU. The results go to
``OUT/gpu_check.json`` and ``OUT/gpu_check.md``; the exit status is 1 when a check failed.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: the repository, not bench/, on the path
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import numpy as np

from bench import fixtures
from bench.limits import inference_limit
from bench.servers import BenchError, LoadSpec, drive, free_port, rectifier_command, running

log = logging.getLogger("bench.gpu")

BATCHES = (1, 8, 32, 64)
LEVELS = (1, 16, 64)
PARITY_BATCH = 8


@dataclass(frozen=True)
class Durations:
    limit_seconds: float
    duration: float
    warmup: float


GPU_RUN = Durations(limit_seconds=1.5, duration=4.0, warmup=1.0)
DRY_RUN = Durations(limit_seconds=0.2, duration=0.5, warmup=0.2)


def settings_for(device: str, models_dir: Path) -> Any:
    from service.plumbing.settings import load_settings

    return load_settings(models_dir=models_dir, device=device)


def session_on(device: str, model: Path, models_dir: Path) -> Any:
    """A session built exactly as the service builds it (explicit device: no fallback)."""
    from service.inference.providers import create_session, select_providers

    settings = settings_for(device, models_dir)
    return create_session(model, settings, select_providers(settings))


def check_providers(dry_run: bool, model: Path, models_dir: Path) -> dict[str, Any]:
    """Which providers load; in a dry run, that CUDA is refused loudly instead."""
    import onnxruntime as ort

    from service.inference.providers import CUDA, TENSORRT, ProviderError

    available = ort.get_available_providers()
    result: dict[str, Any] = {"onnxruntime": ort.__version__, "available": available}
    try:
        cuda = session_on("cuda", model, models_dir)
    except ProviderError as exc:
        result["cuda"] = {"loaded": False, "error": str(exc)}
    else:
        result["cuda"] = {"loaded": cuda.get_providers()[0] == CUDA, "got": cuda.get_providers()}
    if TENSORRT in available:
        try:
            trt = session_on("tensorrt", model, models_dir)
            result["tensorrt"] = {"loaded": True, "got": trt.get_providers()}
        except ProviderError as exc:  # in the build, but its libraries may be absent
            result["tensorrt"] = {"loaded": False, "error": str(exc)}
    else:
        result["tensorrt"] = {"loaded": False, "error": "not in this onnxruntime build"}
    if dry_run:
        # Without a GPU the explicit request must fail with a reason, never fall back.
        result["ok"] = not result["cuda"]["loaded"] and "error" in result["cuda"]
    else:
        result["ok"] = bool(result["cuda"]["loaded"])
    return result


def parity(model: Path, models_dir: Path, sample: np.ndarray, gpu: str, tolerance: float) -> Any:
    """Max abs difference of the GPU and CPU probabilities on one batch."""
    rng = np.random.default_rng(0)
    noise = rng.normal(0.0, 0.1, (PARITY_BATCH, *sample.shape)).astype(np.float32)
    batch = np.ascontiguousarray(sample[None] + noise)
    outputs = []
    for device in (gpu, "cpu"):
        session = session_on(device, model, models_dir)
        # The first output is the probabilities (an explainable export adds class maps).
        probabilities = session.run(None, {session.get_inputs()[0].name: batch})[0]
        outputs.append(np.asarray(probabilities, np.float32))
    diff = float(np.abs(outputs[0] - outputs[1]).max())
    return {"max_abs_diff": diff, "tolerance": tolerance, "ok": diff <= tolerance}


def in_process(
    model: Path, models_dir: Path, sample: np.ndarray, device: str, durations: Durations
) -> dict[str, Any]:
    session = session_on(device, model, models_dir)
    rows = {}
    for batch in BATCHES:
        rate, latency = inference_limit(
            session, sample, batch, seconds=durations.limit_seconds, repeats=1
        )
        rows[str(batch)] = {"images_per_s": rate.median, "latency_ms": latency.median}
    return rows


def served(
    prepared: fixtures.PreparedModel, name: str, device: str, logs: Path, durations: Durations
) -> dict[str, Any]:
    port = free_port()
    env = {"RECTIFIER_DEVICE": device}
    load = LoadSpec(prepared.image, f"/v1/models/{name}/predict")
    try:
        with running(
            f"gpu-{name}",
            rectifier_command(prepared.repo, port),
            ready_path="/readyz",
            log_dir=logs,
            port=port,
            env=env,
            ready_timeout=300.0,  # TensorRT/cuDNN autotuning can make the first load slow
        ) as server:
            rows = drive(server, load, LEVELS, duration=durations.duration, warmup=durations.warmup)
    except BenchError as exc:
        return {"error": str(exc)}
    return {
        str(row["concurrency"]): {
            "requests_per_s": row["requests_per_s"],
            "p50_ms": row["latency_ms"]["p50"],
            "p99_ms": row["latency_ms"]["p99"],
            "errors": row["errors"],
        }
        for row in rows
    }


def fp16_copy(prepared: fixtures.PreparedModel, workdir: Path) -> tuple[str, Path, Path]:
    """(name, repository, onnx) of a float16 copy served under ``<name>_fp16``."""
    from model.quantize import convert_fp16

    name = f"{prepared.name}_fp16"
    path = workdir / "repos" / name / name / "1" / "model.onnx"
    path.parent.mkdir(parents=True, exist_ok=True)
    convert_fp16(prepared.onnx, path)
    fixtures.rename_card(path, name)
    return name, path.parents[2], path


def variants(workdir: Path) -> list[tuple[str, str, fixtures.PreparedModel]]:
    """(label, served name, prepared) for each model and precision."""
    from dataclasses import replace

    found = []
    for prepared in (
        fixtures.demo_model(workdir),
        fixtures.prepare_model("resnet18", workdir, None, int8=False, calibration=0, holdout=0),
    ):
        label = "simple_cnn" if prepared.name != "resnet18" else "resnet18"
        found.append((f"{label} fp32", prepared.name, prepared))
        name, repo, onnx_path = fp16_copy(prepared, workdir)
        found.append(
            (f"{label} fp16", name, replace(prepared, name=name, repo=repo, onnx=onnx_path))
        )
    return found


def render(results: dict[str, Any]) -> str:
    lines = [
        f"# GPU check ({results['mode']}), {results['started']}",
        "",
        f"Machine: {results['machine']}",
        f"Providers: {json.dumps(results['providers'])}",
        "",
        "| model | parity max abs diff | in-process best img/s (batch) "
        "| served req/s c=1 / 16 / 64 | p99 ms c=64 | served c=64 / in-process best |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for label, row in results["models"].items():
        best_batch, best = max(
            ((b, r["images_per_s"]) for b, r in row["in_process"].items()), key=lambda x: x[1]
        )
        srv = row["served"]
        if "error" in srv:
            cells = f"error: {srv['error'].splitlines()[0]} | | "
        else:
            rps = " / ".join(f"{srv[str(c)]['requests_per_s']:.0f}" for c in LEVELS)
            top = srv[str(LEVELS[-1])]
            cells = f"{rps} | {top['p99_ms']:.1f} | {top['requests_per_s'] / best:.2f}"
        diff = row["parity"]["max_abs_diff"]
        lines.append(f"| {label} | {diff:.2e} | {best:.0f} ({best_batch}) | {cells} |")
    lines += ["", f"Checks passed: {results['ok']}", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for the results")
    parser.add_argument("--cpu-dry-run", action="store_true", help="CPU provider, tiny runs")
    parser.add_argument("--tolerance", type=float, default=1e-3, help="GPU-CPU max abs diff")
    parser.add_argument("--machine", default="", help="what the machine is (nvidia-smi line)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s")
    log.setLevel(logging.INFO)
    durations = DRY_RUN if args.cpu_dry_run else GPU_RUN
    device = "cpu" if args.cpu_dry_run else "cuda"
    args.out.mkdir(parents=True, exist_ok=True)
    workdir = args.out / "work"
    logs = workdir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    started = time.time()
    found = variants(workdir)
    first = found[0][2]
    results: dict[str, Any] = {
        "mode": "cpu-dry-run" if args.cpu_dry_run else "gpu",
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "machine": args.machine,
        "durations": durations.__dict__,
        "providers": check_providers(args.cpu_dry_run, first.onnx, first.repo),
        "models": {},
    }
    log.info("providers: %s", results["providers"])
    if not results["providers"]["ok"]:
        log.error("the provider check failed; no figures are taken")
    else:
        for label, name, prepared in found:
            log.info("== %s", label)
            results["models"][label] = {
                "parity": parity(
                    prepared.onnx, prepared.repo, prepared.sample, device, args.tolerance
                ),
                "in_process": in_process(
                    prepared.onnx, prepared.repo, prepared.sample, device, durations
                ),
                "served": served(prepared, name, device, logs, durations),
            }
    models = results["models"].values()
    results["ok"] = bool(
        results["providers"]["ok"]
        and models
        and all(m["parity"]["ok"] and "error" not in m["served"] for m in models)
    )
    results["duration_s"] = time.time() - started
    (args.out / "gpu_check.json").write_text(json.dumps(results, indent=2))
    (args.out / "gpu_check.md").write_text(render(results) if models else json.dumps(results))
    print((args.out / "gpu_check.md").read_text())
    return 0 if results["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
