"""The benchmark harness's pure parts: FLOP counting, profile summaries, and the markdown
section that must leave other sections of docs/BENCHMARKS.md alone."""

from __future__ import annotations

from pathlib import Path

from bench.limits import model_flops
from bench.profiling import summarise_collapsed
from bench.report import END, START, write_markdown


def test_flops_of_the_shared_rgb_model(model_repo) -> None:  # type: ignore[no-untyped-def]
    # simple_cnn width 8, depth 2 on 3x32x32: two Conv pairs and the classifier.
    expected_macs = (
        32 * 32 * 8 * 3 * 9 + 32 * 32 * 8 * 8 * 9  # stage 1 at 32 px
        + 16 * 16 * 16 * 8 * 9 + 16 * 16 * 16 * 16 * 9  # stage 2 at 16 px
        + 16 * 3  # Linear 16 -> 3
        + 8 * 8 * 16 * 3  # class_maps: the classifier at each of the 8 x 8 pooled positions
    )  # fmt: skip
    assert model_flops(model_repo["rgb"].onnx_path) == 2 * expected_macs


def test_profile_summary_ranks_self_and_own_inclusive_frames() -> None:
    collapsed = "\n".join(
        [
            "run (uvicorn/server.py);handle (service/v1/predict.py);run (onnxruntime/x.py) 60",
            "run (uvicorn/server.py);handle (service/v1/predict.py);decode (PIL/Image.py) 30",
            "run (uvicorn/server.py);parse (multipart/multipart.py) 10",
        ]
    )
    summary = summarise_collapsed(collapsed, top=5)
    assert summary["samples"] == 100
    assert summary["top_self"][0] == {"frame": "run (onnxruntime/x.py)", "percent": 60.0}
    assert summary["top_inclusive"] == [
        {"frame": "handle (service/v1/predict.py)", "percent": 90.0}
    ]


def test_markdown_section_is_replaced_in_place(tmp_path: Path) -> None:
    path = tmp_path / "BENCHMARKS.md"
    path.write_text(f"# Benchmarks\n\n{START}\nold\n{END}\n\n## Training throughput\nkept\n")
    write_markdown(path, f"{START}\nnew\n{END}\n")
    text = path.read_text()
    assert "new" in text and "old" not in text
    assert text.endswith("## Training throughput\nkept\n")
    assert text.count(START) == 1


def test_markdown_section_is_appended_when_absent(tmp_path: Path) -> None:
    path = tmp_path / "BENCHMARKS.md"
    path.write_text("# Benchmarks\n\n## Training throughput\nkept\n")
    write_markdown(path, f"{START}\nnew\n{END}\n")
    text = path.read_text()
    assert text.startswith("# Benchmarks\n\n## Training throughput\nkept\n")
    assert text.rstrip().endswith(END)


def test_scale_out_overhead_is_a_ratio_within_each_round() -> None:
    from bench.scale_out import overhead

    def row(rps: float, p50: float) -> list[dict[str, object]]:
        return [{"requests_per_s": rps, "latency_ms": {"p50": p50}}]

    rounds = [
        # a busy round halves everything; the within-round ratio stays 0.5
        {"workers_1": row(200, 4), "ray_1": row(100, 8), "workers_2": row(300, 4),
         "ray_2": row(150, 6)},
        {"workers_1": row(100, 8), "ray_1": row(50, 16), "workers_2": row(150, 8),
         "ray_2": row(75, 12)},
    ]  # fmt: skip
    ratios = overhead(rounds, [16])  # type: ignore[arg-type]
    assert ratios["1@16"]["rps"] == {"median": 0.5, "min": 0.5, "max": 0.5}
    assert ratios["1@16"]["p50"]["median"] == 2.0
    assert ratios["2@16"]["p50"]["median"] == 1.5


def test_scale_out_section_has_its_own_markers(tmp_path: Path) -> None:
    from bench import scale_out

    path = tmp_path / "BENCHMARKS.md"
    path.write_text(f"# Benchmarks\n\n{START}\nserving\n{END}\n")
    write_markdown(
        path, f"{scale_out.START}\nold\n{scale_out.END}\n", scale_out.START, scale_out.END
    )
    write_markdown(
        path, f"{scale_out.START}\nnew\n{scale_out.END}\n", scale_out.START, scale_out.END
    )
    text = path.read_text()
    assert "serving" in text and "new" in text and "old" not in text


def _level(runs: list[float], server_cpu: float = 1.0, loadgen_cpu: float = 0.5) -> dict:
    def timing(values: list[float]) -> dict:
        ordered = sorted(values)
        return {"median": ordered[len(ordered) // 2], "min": ordered[0], "max": ordered[-1],
                "runs": values}  # fmt: skip

    return {"rps": timing(runs), "p50": timing([1.0]), "p90": timing([1.0]),
            "p99": timing([1.0]), "errors": 0, "server_cpu": timing([server_cpu]),
            "loadgen_cpu": timing([loadgen_cpu])}  # fmt: skip


def test_litserve_and_v2_ratios_are_taken_within_each_round() -> None:
    from bench.report import round_ratios

    model = {"servers": {
        "rectifier": {"levels": {"16": _level([1000, 500, 800])}},
        "litserve": {"levels": {"16": _level([400, 250, 500])}},
    }}  # fmt: skip
    # A busy second round halves both servers: the ratio per round ignores it.
    assert round_ratios(model, "rectifier", "litserve", 16) == [2.5, 2.0, 1.6]
    assert round_ratios(model, "rectifier", "bentoml", 16) == []


def test_same_box_ceiling_adds_the_core_time_of_each_part_of_a_request() -> None:
    from bench.report import same_box_ceiling

    model = {
        # the floor: 4000 req/s using 1.5 server cores and 0.5 load-generator cores
        "servers": {"http_floor": {"levels": {"16": _level([4000], 1.5, 0.5)}}},
        "limit": {"32": {"images_per_s": {"median": 2000.0}}},  # 1 ms of 2 cores per image
        "decode_preprocess_ms": {"median": 0.5},
    }
    ceiling = same_box_ceiling(model, cores=2)
    assert ceiling is not None
    assert ceiling["http_ms"] == 0.5 and ceiling["inference_ms"] == 1.0
    assert ceiling["rps"] == 2 / 0.002  # 0.5 + 1.0 + 0.5 ms of core time per request
    assert ceiling["of_limit"] == 0.5


def test_server_cpu_counts_descendants_in_their_own_process_groups(tmp_path: Path) -> None:
    import subprocess
    import sys
    import time

    from bench.servers import tree_cpu_s

    ready = tmp_path / "ready"
    worker = (  # like a `rectifier serve --workers` worker: its own process group, busy
        "import os, time; os.setpgrp(); end = time.process_time() + 0.3\n"
        "while time.process_time() < end: pass\n"
        f"open({str(ready)!r}, 'w').close(); time.sleep(30)"
    )
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import subprocess, sys; subprocess.run([sys.executable, '-c', {worker!r}])",
        ]
    )
    try:
        deadline = time.monotonic() + 30
        while not ready.exists():
            assert time.monotonic() < deadline, "the worker never finished its busy spell"
            time.sleep(0.05)
        assert tree_cpu_s(parent.pid) >= 0.25
    finally:
        subprocess.run(["pkill", "-P", str(parent.pid)], check=False)
        parent.kill()
        parent.wait()
