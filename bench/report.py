"""Turn a results document (``bench/run.py``) into the serving section of docs/BENCHMARKS.md
and a PNG chart. The section sits between two markers; the rest of the file (other
benchmarks, such as training throughput) is kept as it is."""

from __future__ import annotations

import math
import statistics
from itertools import zip_longest
from pathlib import Path
from typing import Any

from bench.profiling import ROOT_FRAMES

START = "<!-- bench/run.py: serving benchmarks start -->"
END = "<!-- bench/run.py: serving benchmarks end -->"
SERVER_LABELS = {
    "http_floor": "HTTP floor (empty FastAPI multipart endpoint)",
    "rectifier": "Rectifier",
    "rectifier_v2_binary": "Rectifier, V2 binary tensor",
    "rectifier_v2_json": "Rectifier, V2 JSON (base64)",
    "plain_fastapi": "plain FastAPI + onnxruntime",
    "rectifier_workers": "Rectifier, workers",
    "plain_fastapi_workers": "plain FastAPI + onnxruntime, workers",
    "litserve": "LitServe (dynamic batching, max batch 32)",
    "bentoml": "BentoML (adaptive batching)",
}
MODEL_LABELS = {"simple_cnn": "simple_cnn, 64 px", "resnet18": "resnet18, 224 px"}


def spread(timing: dict[str, Any], digits: int = 1) -> str:
    """``median [min-max]`` of a Timing dict; ``-`` where nothing completed."""
    if any(math.isnan(v) for v in timing["runs"]):
        return "-"
    if len(timing["runs"]) == 1:
        return f"{timing['median']:.{digits}f}"
    return f"{timing['median']:.{digits}f} [{timing['min']:.{digits}f}-{timing['max']:.{digits}f}]"


def best_limit(model: dict[str, Any]) -> tuple[str, float]:
    """(batch size, images/s) of the best in-process batch size."""
    batch, row = max(model["limit"].items(), key=lambda kv: kv[1]["images_per_s"]["median"])
    return batch, row["images_per_s"]["median"]


def server_rps(model: dict[str, Any], server: str, level: int) -> float | None:
    row = model["servers"].get(server, {}).get("levels", {}).get(str(level))
    return None if row is None else float(row["rps"]["median"])


def _ratio(value: float | None, reference: float | None) -> str:
    if value is None or not reference:
        return "-"
    return f"{value / reference:.2f}"


def _cores(row: dict[str, Any], key: str) -> str:
    timing = row.get(key)
    return "-" if timing is None else f"{timing['median']:.2f}"


def round_ratios(model: dict[str, Any], server: str, reference: str, level: int) -> list[float]:
    """``server`` over ``reference`` at ``level``, one ratio per round (both measured in the
    same round, minutes apart at most: bench/run.py alternates them)."""
    rows = [
        model["servers"].get(s, {}).get("levels", {}).get(str(level)) for s in (server, reference)
    ]
    if rows[0] is None or rows[1] is None:
        return []
    runs = [row["rps"]["runs"] for row in rows]
    return [a / b for a, b in zip(*runs, strict=False) if b]


def _ratio_spread(ratios: list[float]) -> str:
    spread_text = f" [{min(ratios):.2f}-{max(ratios):.2f}]" if len(ratios) > 1 else ""
    return f"{statistics.median(ratios):.2f}x{spread_text}"


def same_box_ceiling(model: dict[str, Any], cores: int) -> dict[str, float] | None:
    """What ``cores`` can serve when server and load generator share them: per request, the
    HTTP floor's core time (server and generator, measured at c=16), the in-process batch-32
    inference time on all cores, and one decode + preprocess. Requests/s and as a fraction
    of the batch-32 limit; None when a figure is missing."""
    floor = model["servers"].get("http_floor", {}).get("levels", {}).get("16")
    limit32 = model["limit"].get("32", {}).get("images_per_s", {}).get("median")
    if floor is None or not limit32 or "server_cpu" not in floor:
        return None
    floor_rps = floor["rps"]["median"]
    http_s = (floor["server_cpu"]["median"] + floor["loadgen_cpu"]["median"]) / floor_rps
    inference_s = cores / limit32
    decode_s = model["decode_preprocess_ms"]["median"] / 1000.0
    rps = cores / (http_s + inference_s + decode_s)
    return {
        "http_ms": http_s * 1000,
        "inference_ms": inference_s * 1000,
        "decode_ms": decode_s * 1000,
        "rps": rps,
        "of_limit": rps / limit32,
    }


def limit_table(results: dict[str, Any]) -> list[str]:
    sgemm = results["sgemm_gflops"]["max"]  # the machine's capacity: its best run
    lines = [
        "| model | batch | images/s | ms per batch | achieved GFLOP/s | of SGEMM |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, model in results["models"].items():
        for batch, row in model["limit"].items():
            rate = row["images_per_s"]["median"]
            gflops = rate * model["flops_per_image"] / 1e9
            lines.append(
                f"| {MODEL_LABELS.get(name, name)} | {batch} | {spread(row['images_per_s'])} | "
                f"{spread(row['latency_ms'], 2)} | {gflops:.1f} | {gflops / sgemm:.0%} |"
            )
    return lines


def server_table(results: dict[str, Any]) -> list[str]:
    lines = [
        "| model | server | conc. | requests/s | p50 ms | p90 ms | p99 ms | errors "
        "| / limit | / Rectifier | server cores | load gen. cores |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, model in results["models"].items():
        _, limit = best_limit(model)
        for server, measured in model["servers"].items():
            label = SERVER_LABELS.get(server, server)
            if "error" in measured:
                lines.append(
                    f"| {MODEL_LABELS.get(name, name)} | {label} | - | not measured: "
                    f"{measured['error']} | | | | | | |"
                )
                continue
            for level, row in measured["levels"].items():
                rps = row["rps"]["median"]
                rectifier = server_rps(model, "rectifier", int(level))
                lines.append(
                    f"| {MODEL_LABELS.get(name, name)} | {label} | {level} | {spread(row['rps'])} "
                    f"| {spread(row['p50'], 2)} | {spread(row['p90'], 2)} | "
                    f"{spread(row['p99'], 2)} | {row['errors']} | {_ratio(rps, limit)} | "
                    f"{_ratio(rps, rectifier)} | {_cores(row, 'server_cpu')} | "
                    f"{_cores(row, 'loadgen_cpu')} |"
                )
    return lines


def target_rows(results: dict[str, Any]) -> list[str]:
    """The issue's targets, each with the figure from this run."""
    rows = ["| target | measured | met |", "|---|---|:---:|"]

    def add(text: str, value: str, ok: bool | None) -> None:
        rows.append(f"| {text} | {value} | {'-' if ok is None else ('yes' if ok else 'no')} |")

    models = results["models"]
    cores = results["meta"].get("cores", 2)
    if "simple_cnn" in models:
        model = models["simple_cnn"]
        limit32 = model["limit"].get("32", {}).get("images_per_s", {}).get("median")
        rps = server_rps(model, "rectifier", 16)
        ceiling = same_box_ceiling(model, cores)
        if rps is not None and limit32:
            shown = f"{rps / limit32:.2f} of the limit ({rps:.0f} vs {limit32:.0f})"
            if ceiling:
                shown += (
                    f"; same-box ceiling {ceiling['of_limit']:.2f} of the limit "
                    f"({ceiling['rps']:.0f} req/s: {ceiling['http_ms']:.2f} ms HTTP + "
                    f"{ceiling['inference_ms']:.2f} ms inference + {ceiling['decode_ms']:.2f} ms "
                    f"decode of core time per request on {cores} cores), Rectifier at "
                    f"{rps / ceiling['rps']:.2f} of it"
                )
            add(
                "simple_cnn c=16, one process: >= 0.45 of the in-process limit at batch 32",
                shown,
                rps / limit32 >= 0.45,
            )
        for protocol in ("v2_binary", "v2_json"):
            for level in (1, 16):
                ratios = round_ratios(model, f"rectifier_{protocol}", "rectifier", level)
                if ratios:
                    add(
                        f"simple_cnn c={level}: V2 {protocol[3:]} requests/s within 10% of V1 "
                        "(ratio per round)",
                        _ratio_spread(ratios),
                        statistics.median(ratios) >= 0.9,
                    )
    if "resnet18" in models:
        model = models["resnet18"]
        batch, limit = best_limit(model)
        rps = server_rps(model, "rectifier", 16)
        ratio = None if rps is None else rps / limit
        add(
            "resnet18 c=16: Rectifier >= 95% of the in-process limit at its best batch",
            "-"
            if ratio is None
            else f"{ratio:.0%} ({rps:.1f} vs {limit:.1f} img/s, batch {batch})",
            None if ratio is None else ratio >= 0.95,
        )
    if "simple_cnn" in models:
        model = models["simple_cnn"]
        # One process each, then one process per core each (BentoML stays at its default).
        for ours, plain, suffix in (
            ("rectifier", "plain_fastapi", ""),
            ("rectifier_workers", "plain_fastapi_workers", " (workers: both servers)"),
        ):
            if "levels" not in model["servers"].get(ours, {}):
                continue
            rps = server_rps(model, ours, 16)
            for text, reference, floor in (
                (
                    "simple_cnn c=16: >= 1.4x plain FastAPI + onnxruntime",
                    server_rps(model, plain, 16),
                    1.4,
                ),
                ("simple_cnn c=16: >= 3x BentoML", server_rps(model, "bentoml", 16), 3.0),
            ):
                ratio = None if rps is None or not reference else rps / reference
                add(
                    text + suffix,
                    "-" if ratio is None else f"{ratio:.2f}x ({rps:.0f} vs {reference:.0f})",
                    None if ratio is None else ratio >= floor,
                )
            row = model["servers"][ours]["levels"].get("16")
            if row:
                p99 = row["p99"]["median"]
                add(f"simple_cnn c=16: p99 under 50 ms{suffix}", f"{p99:.1f} ms", p99 < 50)
    if "simple_cnn" in models:
        model = models["simple_cnn"]
        for level in (16, 1):
            ratios = round_ratios(model, "rectifier", "litserve", level)
            add(
                f"simple_cnn c={level}: Rectifier >= 2x LitServe (ratio per round)",
                _ratio_spread(ratios) if ratios else "-",
                statistics.median(ratios) >= 2.0 if ratios else None,
            )
    for name, model in models.items():
        floor = model["servers"].get("http_floor", {}).get("levels", {}).get("1")
        rect = model["servers"].get("rectifier", {}).get("levels", {}).get("1")
        if not floor or not rect:
            continue
        budget = (
            floor["p50"]["median"]
            + model["decode_preprocess_ms"]["median"]
            + model["limit"]["1"]["latency_ms"]["median"]
        )
        p50 = rect["p50"]["median"]
        add(
            f"{name} c=1: p50 <= HTTP floor + decode/preprocess + batch-1 inference + 0.5 ms",
            f"{p50:.2f} ms vs {budget:.2f} + 0.5 ms",
            p50 <= budget + 0.5,
        )
    int8 = results.get("int8", {})
    if "speedup" in int8:
        add(
            "resnet18 int8 >= 1.7x fp32 throughput (in-process, best batch of each)",
            f"{int8['speedup']:.2f}x",
            int8["speedup"] >= 1.7,
        )
    demo = int8.get("demo")
    if demo and "top1_agreement" in demo:
        add(
            "int8 top-1 agreement with fp32 >= 99% (demo model, test images)",
            f"{demo['top1_agreement']:.2%}",
            demo["top1_agreement"] >= 0.99,
        )
        if demo.get("accuracy_fp32") is not None:
            loss = 100 * (demo["accuracy_fp32"] - demo["accuracy_reduced"])
            add("int8 test-accuracy loss <= 0.5 points", f"{loss:.2f} points", loss <= 0.5)
    return rows


def int8_lines(results: dict[str, Any]) -> list[str]:
    int8 = results.get("int8")
    if not int8:
        return []
    if "error" in int8:
        return [f"int8 not measured: {int8['error']}"]
    lines = [
        "| resnet18, 224 px | batch | fp32 images/s | int8 images/s | int8 / fp32 |",
        "|---|---:|---:|---:|---:|",
    ]
    for batch, row in int8["limit"].items():
        fp32 = results["models"]["resnet18"]["limit"][batch]["images_per_s"]
        lines.append(
            f"| in-process | {batch} | {spread(fp32)} | {spread(row['images_per_s'])} | "
            f"{row['images_per_s']['median'] / fp32['median']:.2f} |"
        )
    served = int8.get("rectifier")
    if served and "levels" in served:
        for level, row in served["levels"].items():
            fp32_rps = server_rps(results["models"]["resnet18"], "rectifier", int(level))
            lines.append(
                f"| Rectifier, c={level} | - | {fp32_rps or 0:.1f} | {spread(row['rps'])} | "
                f"{_ratio(row['rps']['median'], fp32_rps)} |"
            )
    lines += ["", f"Best-batch speed-up: **{int8['speedup']:.2f}x**."]
    for key, what in (
        ("random", "resnet18 with random weights (speed model)"),
        ("demo", "the demo model (trained simple_cnn)"),
    ):
        report = int8.get(key)
        if not report:
            continue
        if "error" in report:
            lines.append(f"- {what}: not measured: {report['error']}")
            continue
        accuracy = ""
        if report.get("accuracy_fp32") is not None:
            accuracy = (
                f", test accuracy fp32 {report['accuracy_fp32']:.2%} vs int8 "
                f"{report['accuracy_reduced']:.2%}"
            )
        lines.append(
            f"- {what}: top-1 agreement with fp32 {report['top1_agreement']:.2%} on "
            f"{report['images']} images ({report['image_source']}){accuracy}; max abs "
            f"probability difference {report['max_abs_diff']:.3g}."
        )
    if "random" in int8:
        lines.append(
            "  A randomly initialised network's top-2 probabilities are often within a few "
            "thousandths of each other, so its agreement measures noise, not quantisation "
            "quality; the demo model's figure is the one that counts."
        )
    return lines


PROFILE_NOTE = (
    "py-spy samples every thread of the running server at 100 Hz while the load generator "
    "drives it, without idle frames. Self time in `Session.run` is onnxruntime's kernels; "
    "in `Runner.run` it is uvloop's C event loop (socket I/O and httptools parsing); in "
    "`_worker` and `Condition.wait` it is pool threads parked between jobs (py-spy does not "
    "always see a blocked C wait as idle). Inclusive shares are listed for this repository's "
    "own frames."
)


def profile_lines(results: dict[str, Any]) -> list[str]:
    lines: list[str] = ["", PROFILE_NOTE] if results.get("profile") else []
    for name, profile in results.get("profile", {}).items():
        if "error" in profile:
            lines.append(f"- {name}: not profiled: {profile['error']}")
            continue
        lines += [
            "",
            f"**{MODEL_LABELS.get(name, name)}, concurrency {profile['concurrency']}** "
            f"({profile['samples']} samples by {profile['tool']}, all threads; "
            f"% of samples):",
            "",
            "| self % | function | | inclusive % | function |",
            "|---:|---|---|---:|---|",
        ]
        inclusive = [f for f in profile["top_inclusive"] if f["frame"] not in ROOT_FRAMES]
        for own, incl in zip_longest(profile["top_self"], inclusive):
            left = f"| {own['percent']:.1f} | `{own['frame']}` |" if own else "| | |"
            right = f" {incl['percent']:.1f} | `{incl['frame']}` |" if incl else " | |"
            lines.append(f"{left} |{right}")
    return lines


def render_section(results: dict[str, Any], chart_name: str) -> str:
    meta = results["meta"]
    quick = meta["mode"] == "quick"
    lines = [
        START,
        "## Serving: Rectifier against the in-process limit and peer servers",
        "",
    ]
    if quick:
        lines += [
            "> **Quick run**: a few seconds per measurement, one repeat. The figures show that "
            "the harness works; run `python bench/run.py` on a quiet machine for numbers to "
            "quote.",
            "",
        ]
    lines += [
        f"Produced by `{meta['command']}` on {meta['started']} in {meta['duration_s']:.0f} s.",
        "",
        f"- Machine: {meta['machine']}",
        f"- Versions: {', '.join(f'{k} {v}' for k, v in meta['versions'].items())}",
        f"- Settings: {meta['settings']}",
        f"- Figures are medians of {meta['repeats']} alternating round(s) of "
        f"{meta['duration']:g} s (resnet18: {meta['slow_duration']:g} s) after "
        f"{meta['warmup']:g} s ({meta['slow_warmup']:g} s) of warm-up, with [min-max] "
        "across rounds; each round starts, measures and stops every server once, in a "
        "rotated order. The load generator (`rectifier bench`, closed loop, keep-alive) runs "
        'on the same cores as the server it measures; "server cores" and "load gen. cores" '
        "are the CPU each used (1.00 = one core busy).",
        "",
        "### Targets",
        "",
        *target_rows(results),
        "",
        f"![throughput]({chart_name})",
        "",
        "### In-process limit",
        "",
        f"onnxruntime with the service's session options, back-to-back `session.run` on one "
        f"preprocessed image repeated to the batch size. Machine SGEMM (NumPy, "
        f"{meta['sgemm_size']}², all cores): {spread(results['sgemm_gflops'])} GFLOP/s; "
        '"of SGEMM" divides by its best run. FLOPs per image '
        "(Conv, Gemm; 2 per multiply-add): "
        + ", ".join(
            f"{MODEL_LABELS.get(n, n)} {m['flops_per_image'] / 1e9:.3f} GFLOP"
            for n, m in results["models"].items()
        )
        + ".",
        "",
        *limit_table(results),
        "",
        "Decode + preprocess of the upload (the service's `decode_into`), ms: "
        + ", ".join(
            f"{MODEL_LABELS.get(n, n)} {spread(m['decode_preprocess_ms'], 3)}"
            for n, m in results["models"].items()
        )
        + ".",
        "",
        "### Servers, same model file, same image, same client",
        "",
        "/ limit: requests/s over the in-process images/s at the best batch size.",
        "",
        *server_table(results),
        "",
        "### int8 (static QDQ, per-channel) against fp32",
        "",
        *int8_lines(results),
        "",
        "### Where the time goes",
        *profile_lines(results),
        "",
        "### GPU",
        "",
        results.get("gpu_note", "Not measured."),
        "",
        "### How to reproduce",
        "",
        "```",
        "python bench/run.py          # full run, about 40 minutes on 2 cores",
        "python bench/run.py --quick  # about 5 minutes: checks the harness, figures indicative",
        "```",
        "",
        "Raw results: `bench/results/<timestamp>/results.json` (not committed); server logs "
        "beside it. Peers: `bench/peers/`.",
        END,
    ]
    return "\n".join(lines) + "\n"


def write_markdown(path: Path, section: str, start: str = START, end: str = END) -> None:
    """Replace the section between ``start`` and ``end`` in ``path`` (by default the
    serving section), keeping everything else."""
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    if start in text and end in text:
        before, rest = text.split(start, 1)
        after = rest.split(end, 1)[1]
        text = before + section.rstrip("\n") + after
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text)


def write_chart(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = results["models"]
    figure, axes = plt.subplots(1, len(models), figsize=(6.5 * len(models), 4.5), squeeze=False)
    levels = results["meta"]["levels"]
    # One colour per server in every panel (the V2 rows exist for simple_cnn only).
    colours = dict(zip(SERVER_LABELS, plt.get_cmap("tab10").colors, strict=False))
    for axis, (name, model) in zip(axes[0], models.items(), strict=True):
        servers = [s for s in SERVER_LABELS if "levels" in model["servers"].get(s, {})]
        width = 0.8 / max(1, len(servers))
        for index, server in enumerate(servers):
            values = [server_rps(model, server, level) or 0.0 for level in levels]
            positions = [i + (index - (len(servers) - 1) / 2) * width for i in range(len(levels))]
            axis.bar(positions, values, width, label=SERVER_LABELS[server], color=colours[server])
        batch, limit = best_limit(model)
        axis.axhline(limit, color="black", linestyle="--", linewidth=1)
        axis.text(
            len(levels) - 0.5,
            limit,
            f"in-process limit (batch {batch})",
            ha="right",
            va="bottom",
            fontsize=8,
        )
        axis.set_xticks(range(len(levels)), [f"c={level}" for level in levels])
        axis.set_yscale("log")  # the HTTP floor is 100x resnet18's rate
        axis.set_ylabel("requests/s (images/s), log scale")
        axis.set_title(MODEL_LABELS.get(name, name))
    title = "Throughput by concurrency" + (
        " (quick run)" if results["meta"]["mode"] == "quick" else ""
    )
    figure.suptitle(title)
    legend = {}  # every server of every panel, once
    for axis in axes[0]:
        legend.update(zip(*reversed(axis.get_legend_handles_labels()), strict=True))
    figure.legend(legend.values(), legend.keys(), loc="lower center", ncol=4, fontsize=8)
    figure.tight_layout(rect=(0, 0.12, 1, 1))
    figure.savefig(path, dpi=110)
    plt.close(figure)
