"""The serving benchmark in one command: ``python bench/run.py [--quick]``.

For simple_cnn at 64 px (overhead-bound) and resnet18 at 224 px (compute-bound), with
random weights (speed does not depend on them), it measures in one run:

1. the in-process onnxruntime limit (the service's session options) at batch 1, 8 and 32,
   with the achieved GFLOP/s next to the machine's SGEMM rate;
2. the HTTP floor: an empty FastAPI endpoint receiving the same multipart upload;
3. Rectifier (``rectifier serve``) at concurrency 1, 16 and 64, in one process and with
   ``--workers`` (one process per core), and for simple_cnn the same images over the Open
   Inference Protocol (binary tensor data and JSON) at concurrency 1 and 16;
4. peers on the same model file, image and client: a plain FastAPI + onnxruntime endpoint
   (one uvicorn process, and one per core), LitServe with its dynamic batching (max batch
   32) and BentoML with adaptive batching (installed into ``bench/.venv-bentoml``);
5. ratios to the limit and to Rectifier, the CPU each server and the load generator used,
   and the same-box ceiling those imply;

The servers are measured in alternating rounds: each round starts, drives and stops every
server once, in an order rotated each round, so ratios between servers can be taken within
a round on a machine shared with other jobs.

plus int8 against fp32 for resnet18 (speed, and top-1 agreement and accuracy on the trained
demo model), and a py-spy profile of Rectifier under load. Each server is started, measured
and stopped here, on 127.0.0.1 only. Results: ``bench/results/<timestamp>/results.json``,
the serving section of ``docs/BENCHMARKS.md`` and ``docs/benchmarks.png``.

Full run about 40 minutes on 2 cores; ``--quick`` (a few seconds per figure, one round)
about 5 minutes, plus the one-off BentoML install and synthetic data generation.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import shlex
import sys
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: the repository, not bench/, on the path
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from bench import environment, fixtures
from bench.limits import (
    Timing,
    decode_preprocess_ms,
    inference_limit,
    model_flops,
    service_session,
    sgemm_gflops,
)
from bench.profiling import profile_under_load
from bench.report import render_section, write_chart, write_markdown
from bench.servers import (
    REPO,
    BenchError,
    LoadSpec,
    Server,
    drive,
    free_port,
    litserve_command,
    rectifier_command,
    running,
    uvicorn_command,
)

log = logging.getLogger("bench")

BATCHES = (1, 8, 32)
PROFILE_CONCURRENCY = 16


@dataclass(frozen=True)
class Mode:
    name: str
    duration: float  # seconds per measured load level, overhead-bound model
    warmup: float
    slow_duration: float  # the same for the compute-bound model: a batch of 32 resnet18
    slow_warmup: float  # images takes over a second on 2 cores, so windows must be longer
    repeats: int
    limit_seconds: float
    profile_seconds: float
    sgemm_size: int
    calibration_images: int
    holdout_images: int
    levels: tuple[int, ...] = (1, 16, 64)

    def window(self, model: str) -> tuple[float, float]:
        """(duration, warm-up) of one load level for ``model``."""
        if model in SLOW_MODELS:
            return self.slow_duration, self.slow_warmup
        return self.duration, self.warmup


SLOW_MODELS = {"resnet18"}
FULL = Mode("full", 8.0, 2.0, 12.0, 4.0, 3, 3.0, 10.0, 2048, 300, 200)
QUICK = Mode("quick", 2.0, 0.5, 5.0, 2.0, 1, 1.0, 3.0, 1024, 64, 100)


def timing(values: list[float]) -> dict[str, Any]:
    return Timing(tuple(values)).as_dict()


def aggregate(passes: list[list[dict[str, Any]]]) -> dict[str, Any]:
    """Per level: medians and spread of req/s and latency percentiles over the passes."""
    levels: dict[str, Any] = {}
    for level_rows in zip(*passes, strict=True):
        level = str(level_rows[0]["concurrency"])
        levels[level] = {
            "rps": timing([r["requests_per_s"] for r in level_rows]),
            **{q: timing([r["latency_ms"][q] for r in level_rows]) for q in ("p50", "p90", "p99")},
            "errors": sum(r["errors"] for r in level_rows),
            "statuses": [r["statuses"] for r in level_rows],
            "server_cpu": timing([r.get("server_cpu", math.nan) for r in level_rows]),
            "loadgen_cpu": timing([r.get("cpu_cores", math.nan) for r in level_rows]),
        }
    return {"levels": levels}


@dataclass(frozen=True)
class ServerSpec:
    """One server under test: how to start it on a port, and the requests it gets."""

    command: Callable[[int], list[str]]
    ready_path: str
    load: LoadSpec
    options: dict[str, Any] = field(default_factory=dict)  # more keywords for ``running``
    levels: tuple[int, ...] | None = None  # None: the mode's levels

    def start(self, label: str, logs: Path) -> AbstractContextManager[Server]:
        port = free_port()
        return running(
            label,
            self.command(port),
            ready_path=self.ready_path,
            log_dir=logs,
            port=port,
            **self.options,
        )


def rectifier_spec(
    repo: Path,
    model: str,
    image: Path,
    workers: int = 1,
    protocol: str = "v1",
    levels: tuple[int, ...] | None = None,
) -> ServerSpec:
    path = f"/v1/models/{model}/predict" if protocol == "v1" else f"/v2/models/{model}/infer"
    return ServerSpec(
        lambda port: rectifier_command(repo, port, workers=workers),
        "/readyz",
        LoadSpec(image, path, protocol=protocol),
        levels=levels,
    )


def measure_pass(
    spec: ServerSpec, label: str, logs: Path, mode: Mode, levels: tuple[int, ...], model: str
) -> list[dict[str, Any]]:
    """Start a server, drive it once over ``levels``, stop it (``BenchError`` on failure)."""
    duration, warmup = mode.window(model)
    with spec.start(label, logs) as server:
        return drive(server, spec.load, levels, duration=duration, warmup=warmup)


def measure_alternating(
    specs: dict[str, ServerSpec], model: str, logs: Path, mode: Mode
) -> dict[str, Any]:
    """``mode.repeats`` rounds; each round starts, drives and stops every server once, in
    an order rotated by one each round, so load from other jobs on a shared machine falls
    on all of them alike. Pass ``i`` of every server comes from round ``i``, so ratios can
    be taken within a round. A server that fails once is dropped with its error."""
    passes: dict[str, list[list[dict[str, Any]]]] = {name: [] for name in specs}
    failed: dict[str, str] = {}
    order = list(specs)
    for index in range(mode.repeats):
        shift = index % len(order)
        for name in order[shift:] + order[:shift]:
            if name in failed:
                continue
            spec, label = specs[name], f"{model}-{name}-r{index + 1}"
            log.info("== %s: %s (round %d of %d)", model, name, index + 1, mode.repeats)
            levels = spec.levels or mode.levels
            try:
                passes[name].append(measure_pass(spec, label, logs, mode, levels, model))
            except BenchError as exc:
                log.error("%s", exc)
                failed[name] = str(exc).splitlines()[0]
    return {
        name: {"error": failed[name]} if name in failed else aggregate(passes[name])
        for name in specs
    }


def measure_server(
    spec: ServerSpec, label: str, logs: Path, mode: Mode, levels: tuple[int, ...], model: str
) -> dict[str, Any]:
    """One server alone: ``mode.repeats`` passes over ``levels`` in one start."""
    duration, warmup = mode.window(model)
    try:
        with spec.start(label, logs) as server:
            passes = [
                drive(server, spec.load, levels, duration=duration, warmup=warmup)
                for _ in range(mode.repeats)
            ]
    except BenchError as exc:
        log.error("%s", exc)
        return {"error": str(exc).splitlines()[0]}
    return aggregate(passes)


def measure_limit(model: Path, repo: Path, sample: Any, mode: Mode) -> dict[str, Any]:
    session = service_session(model, repo)
    limit = {}
    for batch in BATCHES:
        rate, latency = inference_limit(
            session, sample, batch, seconds=mode.limit_seconds, repeats=mode.repeats
        )
        limit[str(batch)] = {"images_per_s": rate.as_dict(), "latency_ms": latency.as_dict()}
        log.info("limit %s batch %d: %.1f images/s", model.parent.parent.name, batch, rate.median)
    return limit


def bench_model(
    prepared: fixtures.PreparedModel, mode: Mode, args: argparse.Namespace, logs: Path
) -> dict[str, Any]:
    name, repo, image = prepared.name, prepared.repo, prepared.image
    log.info("== %s: in-process limit", name)
    result: dict[str, Any] = {
        "image": str(image),
        "image_bytes": image.stat().st_size,
        "flops_per_image": model_flops(prepared.onnx),
        "decode_preprocess_ms": decode_preprocess_ms(image, prepared.onnx).as_dict(),
        "limit": measure_limit(prepared.onnx, repo, prepared.sample, mode),
        "servers": {},
    }
    cores = environment.cores()
    workers = max(2, cores)
    peer_env = {
        "PEER_MODEL": str(prepared.onnx),
        "PEER_THREADS": str(cores),
        "PEER_MAX_BATCH": "32",
    }
    plain_app = "bench.peers.plain_fastapi:app"
    servers = {
        "http_floor": ServerSpec(
            lambda port: uvicorn_command("bench.peers.http_floor:app", port, access_log=False),
            "/livez",
            LoadSpec(image, "/upload"),
        ),
        "rectifier": rectifier_spec(repo, name, image),
        "plain_fastapi": ServerSpec(
            lambda port: uvicorn_command(plain_app, port),
            "/livez",
            LoadSpec(image, "/predict"),
            {"env": peer_env},
        ),
        # Both again with one process per core, each with its share of the cores.
        "rectifier_workers": rectifier_spec(repo, name, image, workers=workers),
        "plain_fastapi_workers": ServerSpec(
            lambda port: uvicorn_command(plain_app, port, workers=workers),
            "/livez",
            LoadSpec(image, "/predict"),
            {"env": {**peer_env, "PEER_THREADS": str(max(1, cores // workers))}},
        ),
        "litserve": ServerSpec(
            lambda port: litserve_command(port),
            "/health",
            LoadSpec(image, "/predict"),
            {"env": peer_env},
        ),
        # The same images over the Open Inference Protocol (the per-request protocol cost
        # shows on the overhead-bound model only).
        **(
            {
                f"rectifier_{protocol.replace('-', '_')}": rectifier_spec(
                    repo, name, image, protocol=protocol, levels=(1, 16)
                )
                for protocol in ("v2-binary", "v2-json")
            }
            if name not in SLOW_MODELS
            else {}
        ),
        "bentoml": ServerSpec(
            environment.bentoml_command,
            "/readyz",
            LoadSpec(image, "/classify", field="images"),
            {"env": peer_env, "cwd": REPO / "bench" / "peers", "ready_timeout": 180.0},
        ),
    }
    if args.bentoml_error:
        del servers["bentoml"]
    result["servers"] = measure_alternating(servers, name, logs, mode)
    if args.bentoml_error:
        result["servers"]["bentoml"] = {"error": args.bentoml_error}
    if not args.no_profile:
        result["profile"] = profile_rectifier(prepared, mode, logs, servers["rectifier"])
    return result


def profile_rectifier(
    prepared: fixtures.PreparedModel, mode: Mode, logs: Path, spec: ServerSpec
) -> dict[str, Any]:
    log.info("== %s: profiling Rectifier under load", prepared.name)
    try:
        with spec.start(f"{prepared.name}-rectifier-profiled", logs) as server:
            return profile_under_load(
                server,
                spec.load,
                concurrency=PROFILE_CONCURRENCY,
                seconds=mode.profile_seconds,
                output=logs / f"{prepared.name}-py-spy.txt",
            )
    except BenchError as exc:
        log.error("%s", exc)
        return {"error": str(exc).splitlines()[0]}


def bench_int8(
    prepared: fixtures.PreparedModel,
    fp32_limit: dict[str, Any],
    mode: Mode,
    logs: Path,
    demo: dict[str, Any],
) -> dict[str, Any]:
    assert prepared.int8 is not None
    onnx_path, repo, report = prepared.int8
    log.info("== %s int8: in-process limit and Rectifier", prepared.name)
    limit = measure_limit(onnx_path, repo, prepared.sample, mode)
    best = max(row["images_per_s"]["median"] for row in limit.values())
    best_fp32 = max(row["images_per_s"]["median"] for row in fp32_limit.values())
    name = onnx_path.parent.parent.name
    served = measure_server(
        rectifier_spec(repo, name, prepared.image),
        f"{name}-rectifier",
        logs,
        mode,
        (16,),
        prepared.name,
    )
    return {
        "limit": limit,
        "speedup": best / best_fp32,
        "rectifier": served,
        "random": report,
        "demo": demo,
    }


def write_outputs(results: dict[str, Any], markdown: Path, chart: Path) -> None:
    chart.parent.mkdir(parents=True, exist_ok=True)
    write_chart(results, chart)
    write_markdown(markdown, render_section(results, chart.name))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short runs: checks the harness")
    parser.add_argument("--models", default="simple_cnn,resnet18", help="comma-separated")
    parser.add_argument("--no-bentoml", action="store_true", help="skip the BentoML peer")
    parser.add_argument("--no-profile", action="store_true", help="skip the py-spy profile")
    parser.add_argument("--no-int8", action="store_true", help="skip the int8 comparison")
    parser.add_argument("--markdown", type=Path, default=REPO / "docs" / "BENCHMARKS.md")
    parser.add_argument("--chart", type=Path, default=REPO / "docs" / "benchmarks.png")
    parser.add_argument("--results", type=Path, default=REPO / "bench" / "results")
    parser.add_argument(
        "--render", type=Path, metavar="RESULTS_JSON", help="only re-render a saved run"
    )
    args = parser.parse_args(argv)
    if args.render is not None:
        results = json.loads(args.render.read_text())
        write_outputs(results, args.markdown, args.chart)
        print(f"wrote {args.markdown} and {args.chart} from {args.render}")
        return 0
    # WARNING for libraries (onnxruntime's quantiser logs every tensor at INFO), INFO here.
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s")
    log.setLevel(logging.INFO)
    mode = QUICK if args.quick else FULL
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    unknown = set(names) - set(fixtures.MODELS)
    if unknown:
        parser.error(f"unknown model(s) {', '.join(sorted(unknown))}; choose from "
                     f"{', '.join(fixtures.MODELS)}")  # fmt: skip

    started = time.time()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    workdir = args.results / f"{stamp}-{mode.name}"
    logs = workdir / "logs"
    logs.mkdir(parents=True)
    args.bentoml_error = (
        "skipped (--no-bentoml)" if args.no_bentoml else environment.ensure_bentoml(logs)
    )

    with_int8 = not args.no_int8 and "resnet18" in names
    data = fixtures.synthetic_signs(args.results / "data")
    prepared = {
        name: fixtures.prepare_model(
            name,
            workdir,
            data,
            int8=with_int8 and name == "resnet18",
            calibration=mode.calibration_images,
            holdout=mode.holdout_images,
        )
        for name in names
    }
    log.info("== SGEMM")
    results: dict[str, Any] = {
        "sgemm_gflops": sgemm_gflops(mode.sgemm_size).as_dict(),
        "models": {},
    }
    for name in names:
        results["models"][name] = bench_model(prepared[name], mode, args, logs)
    profiles = {n: m.pop("profile") for n, m in results["models"].items() if "profile" in m}
    if profiles:
        results["profile"] = profiles
    if with_int8:
        demo = fixtures.demo_int8_report(data, workdir, mode.calibration_images)
        results["int8"] = bench_int8(
            prepared["resnet18"], results["models"]["resnet18"]["limit"], mode, logs, demo
        )
    results["gpu_note"] = environment.gpu_note()
    command = "python bench/run.py" + (" --quick" if args.quick else "")
    extra = [a for a in (argv if argv is not None else sys.argv[1:]) if a != "--quick"]
    results["meta"] = {
        "mode": mode.name,
        "command": command + "".join(f" {shlex.quote(a)}" for a in extra),
        "started": datetime.fromtimestamp(started, UTC).isoformat(timespec="seconds"),
        "duration_s": time.time() - started,
        "machine": environment.machine(),
        "versions": environment.versions(),
        "settings": environment.settings_summary(),
        "repeats": mode.repeats,
        "duration": mode.duration,
        "warmup": mode.warmup,
        "slow_duration": mode.slow_duration,
        "slow_warmup": mode.slow_warmup,
        "levels": list(mode.levels),
        "cores": environment.cores(),
        "sgemm_size": mode.sgemm_size,
        "mode_settings": asdict(mode),
    }
    (workdir / "results.json").write_text(json.dumps(results, indent=2, default=str))
    write_outputs(results, args.markdown, args.chart)
    print(f"wrote {args.markdown}, {args.chart} and {workdir / 'results.json'}")
    print(f"total {time.time() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
