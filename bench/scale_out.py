"""Ray Serve against the plain server, in one run: ``python bench/scale_out.py``.

Four servers on the same model repository, image and load generator (``service.loadgen.client``
through ``bench.servers.drive``): ``rectifier serve`` with 1 and 2 ``--workers``, and
``rectifier serve --engine ray`` with 1 and 2 replicas (each on its own local Ray
instance, a replica reserving its share of the cores, as a worker gets its share). Rounds
alternate: every round starts, measures and stops each server once, in a rotated order, so
load from other processes on a shared machine falls on all of them alike. The proxy
overhead is the ratio of Ray Serve to the plain server with the same number of processes,
taken within each round; the report gives its median and its spread over the rounds.

Results: ``bench/results/<timestamp>-scale-out/results.json`` and the scale-out section
of ``docs/BENCHMARKS.md``.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: the repository, not bench/, on the path
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from bench import environment
from bench.report import write_markdown
from bench.run import ServerSpec, aggregate, rectifier_spec
from bench.servers import PYTHON, REPO, BenchError, LoadSpec, add_load_arguments, drive

log = logging.getLogger("bench.scale_out")

START = "<!-- bench/scale_out.py: scale-out benchmarks start -->"
END = "<!-- bench/scale_out.py: scale-out benchmarks end -->"
MODEL = "demo"
PAIRS = {1: ("workers_1", "ray_1"), 2: ("workers_2", "ray_2")}  # processes -> (plain, ray)


def ray_command(repo: Path, port: int, replicas: int, cpus: int) -> list[str]:
    return [
        PYTHON, "-m", "service", "serve", "--engine", "ray", "--models", str(repo),
        "--host", "127.0.0.1", "--port", str(port),
        "--replicas", str(replicas), "--replica-cpus", str(cpus),
    ]  # fmt: skip


def ray_spec(repo: Path, image: Path, replicas: int, cores: int) -> ServerSpec:
    cpus = max(1, cores // replicas)
    return ServerSpec(
        lambda port: ray_command(repo, port, replicas, cpus),
        "/readyz",
        LoadSpec(image, f"/v1/models/{MODEL}/predict"),
        {"ready_timeout": 180.0},
    )


def servers(repo: Path, image: Path, cores: int) -> dict[str, ServerSpec]:
    return {
        "workers_1": rectifier_spec(repo, MODEL, image, workers=1),
        "workers_2": rectifier_spec(repo, MODEL, image, workers=2),
        "ray_1": ray_spec(repo, image, 1, cores),
        "ray_2": ray_spec(repo, image, 2, cores),
    }


def wait_for_all_replicas(log_path: Path, timeout: float = 120.0) -> None:
    """``/readyz`` answers from the first replica up; the CLI logs once every one is."""
    deadline = time.monotonic() + timeout
    while "ready: " not in log_path.read_text(errors="replace"):
        if time.monotonic() > deadline:
            raise BenchError(f"{log_path.name}: not every replica ready in {timeout:g}s")
        time.sleep(0.2)


def measure_round(
    specs: dict[str, ServerSpec], order: list[str], logs: Path, args: argparse.Namespace
) -> dict[str, list[dict[str, Any]]]:
    rows = {}
    for name in order:
        log.info("   %s", name)
        with specs[name].start(f"{name}-r{len(list(logs.iterdir()))}", logs) as server:
            if name.startswith("ray"):
                wait_for_all_replicas(server.log_path)
            rows[name] = drive(
                server, specs[name].load, args.levels, duration=args.duration, warmup=args.warmup
            )
    return rows


def overhead(rounds: list[dict[str, list[dict[str, Any]]]], levels: list[int]) -> dict[str, Any]:
    """Per process count and level: Ray's req/s and p50 latency over the plain server's,
    each ratio taken within one round."""
    ratios: dict[str, Any] = {}
    for processes, (plain, ray) in PAIRS.items():
        for index, level in enumerate(levels):
            rps = [
                r[ray][index]["requests_per_s"] / r[plain][index]["requests_per_s"] for r in rounds
            ]
            p50 = [
                r[ray][index]["latency_ms"]["p50"] / r[plain][index]["latency_ms"]["p50"]
                for r in rounds
            ]
            ratios[f"{processes}@{level}"] = {
                "rps": {"median": statistics.median(rps), "min": min(rps), "max": max(rps)},
                "p50": {"median": statistics.median(p50), "min": min(p50), "max": max(p50)},
            }
    return ratios


LABELS = {
    "workers_1": "`rectifier serve` (1 process)",
    "workers_2": "`rectifier serve --workers 2`",
    "ray_1": "`--engine ray --replicas 1`",
    "ray_2": "`--engine ray --replicas 2`",
}


def render(results: dict[str, Any]) -> str:
    meta, levels = results["meta"], results["meta"]["levels"]
    lines = [
        START,
        "## Scale-out: Ray Serve against the plain server (bench/scale_out.py)",
        "",
        f"`{meta['command']}`, {meta['started']}, {meta['machine']}, {meta['rounds']} "
        f"alternating rounds of {meta['duration']:g} s per level ({meta['warmup']:g} s warm-up), "
        f"model `{MODEL}` (the demo simple_cnn, 64 px), one JPEG upload "
        f"({results['image_bytes']} bytes) to `/v1/models/{MODEL}/predict`. "
        "**The machine was shared with other jobs during this run**: the figures move from "
        "round to round; the ratios are taken within a round, where the servers ran minutes "
        "apart under similar load. Medians over the rounds, spread as min-max.",
        "",
        "| server | " + " | ".join(f"req/s @{c}" for c in levels)
        + " | " + " | ".join(f"p50 ms @{c}" for c in levels) + " | errors |",
        "| --- |" + " --- |" * (2 * len(levels) + 1),
    ]  # fmt: skip
    for name, label in LABELS.items():
        server = results["servers"][name]["levels"]
        cells = [
            f"{server[str(c)]['rps']['median']:.0f} ({server[str(c)]['rps']['min']:.0f}-"
            f"{server[str(c)]['rps']['max']:.0f})"
            for c in levels
        ]
        cells += [f"{server[str(c)]['p50']['median']:.1f}" for c in levels]
        errors = sum(server[str(c)]["errors"] for c in levels)
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {errors} |")
    lines += [
        "",
        "Ray Serve over the plain server with as many processes (ratio within each round; "
        "median, min-max):",
        "",
        "| processes @ concurrency | req/s ratio | p50 latency ratio |",
        "| --- | --- | --- |",
    ]
    for key, ratio in results["overhead"].items():
        processes, level = key.split("@")
        rps, p50 = ratio["rps"], ratio["p50"]
        lines.append(
            f"| {processes} @ {level} | {rps['median']:.2f} ({rps['min']:.2f}-{rps['max']:.2f}) "
            f"| {p50['median']:.2f} ({p50['min']:.2f}-{p50['max']:.2f}) |"
        )
    lines += ["", END, ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, default=REPO / "models", help="[models]")
    add_load_arguments(parser, duration=4.0)
    parser.add_argument("--markdown", type=Path, default=REPO / "docs" / "BENCHMARKS.md")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s")
    log.setLevel(logging.INFO)

    started = time.time()
    workdir = args.results / f"{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}-scale-out"
    logs = workdir / "logs"
    logs.mkdir(parents=True)
    specs = servers(args.models, args.image, environment.cores())
    names = list(specs)
    rounds = []
    for index in range(args.rounds):
        order = names[index % len(names) :] + names[: index % len(names)]
        log.info("== round %d: %s", index + 1, ", ".join(order))
        rounds.append(measure_round(specs, order, logs, args))
    command = "python bench/scale_out.py" + "".join(
        f" {a}" for a in (argv if argv is not None else sys.argv[1:])
    )
    results = {
        "image_bytes": args.image.stat().st_size,
        "servers": {name: aggregate([r[name] for r in rounds]) for name in names},
        "overhead": overhead(rounds, args.levels),
        "rounds": rounds,
        "meta": {
            "command": command,
            "started": datetime.fromtimestamp(started, UTC).isoformat(timespec="seconds"),
            "duration_s": time.time() - started,
            "machine": environment.machine(),
            "rounds": args.rounds,
            "duration": args.duration,
            "warmup": args.warmup,
            "levels": args.levels,
        },
    }
    (workdir / "results.json").write_text(json.dumps(results, indent=2, default=str))
    write_markdown(args.markdown, render(results), START, END)
    print(f"wrote {args.markdown} and {workdir / 'results.json'} in {time.time() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
