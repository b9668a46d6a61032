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
    )  # fmt: skip
    assert model_flops(model_repo["rgb"].onnx_path) == 2 * expected_macs


def test_profile_summary_ranks_self_and_own_inclusive_frames() -> None:
    collapsed = "\n".join(
        [
            "run (uvicorn/server.py);handle (service/routers/predict.py);run (onnxruntime/x.py) 60",
            "run (uvicorn/server.py);handle (service/routers/predict.py);decode (PIL/Image.py) 30",
            "run (uvicorn/server.py);parse (multipart/multipart.py) 10",
        ]
    )
    summary = summarise_collapsed(collapsed, top=5)
    assert summary["samples"] == 100
    assert summary["top_self"][0] == {"frame": "run (onnxruntime/x.py)", "percent": 60.0}
    assert summary["top_inclusive"] == [
        {"frame": "handle (service/routers/predict.py)", "percent": 90.0}
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
