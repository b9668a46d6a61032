"""Compare ``rectifier serve`` variants in alternating rounds: ``python bench/ab.py``.

Each variant is ``NAME=SPEC``, where SPEC holds environment assignments (``KEY=VALUE``)
and extra ``rectifier serve`` arguments, e.g.::

    python bench/ab.py --variant base= --variant two_sessions='--sessions 2 --threads 1'

Every round starts, measures and stops each variant once, in a rotated order, so load
from other processes on a shared machine falls on all of them alike. Per level it records
req/s, latency percentiles, and the CPU the server (its whole process group) and the load
generator used, as a share of one core. The report gives each variant's median and spread
over the rounds, and its req/s and p50 relative to the first variant, taken within each
round. This is how the levers of docs/BENCHMARKS.md ("Levers measured") were measured.
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import statistics
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: the repository, not bench/, on the path
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from bench import environment
from bench.servers import (
    REPO,
    BenchError,
    LoadSpec,
    add_load_arguments,
    drive,
    free_port,
    rectifier_command,
    running,
)

log = logging.getLogger("bench.ab")


@dataclass(frozen=True)
class Variant:
    name: str
    env: dict[str, str]
    args: list[str]

    @classmethod
    def parse(cls, text: str) -> Variant:
        name, sep, spec = text.partition("=")
        if not sep or not name:
            raise argparse.ArgumentTypeError(f"{text!r}: give NAME=SPEC, e.g. base=")
        env, args = {}, []
        for token in shlex.split(spec):
            key, eq, value = token.partition("=")
            if eq and key.isidentifier() and key.isupper():
                env[key] = value
            else:
                args.append(token)
        return cls(name, env, args)


def measure(variant: Variant, args: argparse.Namespace, logs: Path, tag: str) -> list[dict]:
    port = free_port()
    command = rectifier_command(args.models, port) + variant.args
    load = LoadSpec(args.image, f"/v1/models/{args.model}/predict")
    rows = []
    with running(
        f"{variant.name}-{tag}", command, ready_path="/readyz", log_dir=logs, port=port,
        env=variant.env,
    ) as server:  # fmt: skip
        drive(server, load, [1], duration=0.5, warmup=0.5)  # first requests: warm caches
        for level in args.levels:
            (row,) = drive(server, load, [level], duration=args.duration, warmup=args.warmup)
            row["loadgen_cpu"] = row["cpu_cores"]
            rows.append(row)
            log.info(
                "   %-14s c=%-3d %7.1f req/s  p50 %.2f ms  p99 %.2f ms  server %.0f %%  "
                "loadgen %.0f %%", variant.name, level, row["requests_per_s"],
                row["latency_ms"]["p50"], row["latency_ms"]["p99"], 100 * row["server_cpu"],
                100 * row["loadgen_cpu"],
            )  # fmt: skip
    return rows


def spread(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def summarise(rounds: list[dict[str, list[dict]]], variants: list[Variant], levels: list[int]):
    base = variants[0].name
    summary: dict[str, Any] = {}
    for variant in variants:
        per_level = {}
        for index, level in enumerate(levels):
            rows = [r[variant.name][index] for r in rounds]
            per_level[str(level)] = {
                "rps": spread([row["requests_per_s"] for row in rows]),
                "p50": spread([row["latency_ms"]["p50"] for row in rows]),
                "p99": spread([row["latency_ms"]["p99"] for row in rows]),
                "server_cpu": spread([row["server_cpu"] for row in rows]),
                "loadgen_cpu": spread([row["loadgen_cpu"] for row in rows]),
                "errors": sum(row["errors"] for row in rows),
                "rps_vs_base": spread(
                    [
                        r[variant.name][index]["requests_per_s"] / r[base][index]["requests_per_s"]
                        for r in rounds
                    ]
                ),
                "p50_vs_base": spread(
                    [
                        r[variant.name][index]["latency_ms"]["p50"]
                        / r[base][index]["latency_ms"]["p50"]
                        for r in rounds
                    ]
                ),
            }
        summary[variant.name] = per_level
    return summary


def render(summary: dict[str, Any], levels: list[int]) -> str:
    lines = [
        "| variant | c | req/s | vs first | p50 ms | p50 vs first | p99 ms | server CPU "
        "| loadgen CPU | errors |",
        "| --- |" + " --- |" * 9,
    ]
    for name, per_level in summary.items():
        for level in levels:
            row = per_level[str(level)]

            def cell(key: str, fmt: str, row: dict = row) -> str:
                s = row[key]
                return f"{s['median']:{fmt}} ({s['min']:{fmt}}-{s['max']:{fmt}})"

            lines.append(
                f"| {name} | {level} | {cell('rps', '.0f')} | {cell('rps_vs_base', '.2f')} "
                f"| {cell('p50', '.2f')} | {cell('p50_vs_base', '.2f')} | {cell('p99', '.1f')} "
                f"| {100 * row['server_cpu']['median']:.0f} % "
                f"| {100 * row['loadgen_cpu']['median']:.0f} % | {row['errors']} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", type=Variant.parse, action="append", required=True,
                        help="NAME=SPEC (environment KEY=VALUE and serve arguments); "
                        "the first is the base of the ratios")  # fmt: skip
    parser.add_argument("--models", type=Path, default=REPO / "models")
    parser.add_argument("--model", default="demo")
    add_load_arguments(parser, duration=5.0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s")
    log.setLevel(logging.INFO)
    names = [v.name for v in args.variant]
    if len(set(names)) != len(names):
        parser.error(f"--variant names must differ: {', '.join(names)}")

    started = time.time()
    workdir = args.results / f"{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}-ab"
    logs = workdir / "logs"
    logs.mkdir(parents=True)
    rounds = []
    try:
        for index in range(args.rounds):
            shift = index % len(args.variant)
            order = args.variant[shift:] + args.variant[:shift]
            log.info("== round %d: %s", index + 1, ", ".join(v.name for v in order))
            rounds.append({v.name: measure(v, args, logs, f"r{index + 1}") for v in order})
    except BenchError as exc:
        log.error("%s", exc)
        return 1
    summary = summarise(rounds, args.variant, args.levels)
    table = render(summary, args.levels)
    results = {
        "command": "python bench/ab.py " + " ".join(
            shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])
        ),
        "started": datetime.fromtimestamp(started, UTC).isoformat(timespec="seconds"),
        "machine": environment.machine(),
        "summary": summary,
        "rounds": rounds,
        "table": table,
    }  # fmt: skip
    (workdir / "results.json").write_text(json.dumps(results, indent=2, default=str))
    print(table)
    print(f"\n{workdir / 'results.json'}, {time.time() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
