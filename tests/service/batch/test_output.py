"""Parts complete on disk, and ``--resume`` after Ctrl-C or SIGKILL: every row exactly once,
the output readable as it stands in between."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from service.batch.output import OutputSink
from tests.helpers.batch import DEMO_MODEL
from tests.helpers.images import encode, pattern

RECTIFIER = Path(sys.executable).parent / "rectifier"
IMAGES = 40


@pytest.fixture
def many_images(tmp_path: Path) -> Path:
    folder = tmp_path / "many"
    folder.mkdir()
    for index in range(IMAGES):
        image = pattern((96, 80), seed=index)
        (folder / f"{index:03d}.jpg").write_bytes(encode(image, "JPEG", quality=85))
    return folder


def start(folder: Path, out: Path, *extra: str) -> subprocess.Popen[str]:
    args = [str(RECTIFIER), "predict", str(folder), "--model", str(DEMO_MODEL), "--out", str(out)]
    args += ["--batch-size", "2", *extra]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def wait_for_first_part(process: subprocess.Popen[str], parts: Path) -> None:
    deadline = time.monotonic() + 60
    while not (parts / "part-00000.parquet").exists():
        assert process.poll() is None, process.communicate()[0]
        assert time.monotonic() < deadline, "no part was written"
        time.sleep(0.002)


def paths_of(table) -> list[str]:
    return sorted(Path(p).name for p in table.column("path").to_pylist())


EXPECTED = [f"{index:03d}.jpg" for index in range(IMAGES)]


def signalled_after_first_part(folder: Path, out: Path, signum: int) -> subprocess.Popen[str]:
    """A run writing a part every 4 rows, sent ``signum`` once its first part is on disk."""
    process = start(folder, out, "--chunk-rows", "4")
    wait_for_first_part(process, out.with_name(out.name + ".parts"))
    process.send_signal(signum)
    return process


def resumed_to_the_end(folder: Path, out: Path) -> str:
    """``--resume`` to completion; FILE then holds every image exactly once."""
    resumed = start(folder, out, "--resume")
    output = resumed.communicate(timeout=120)[0]
    assert resumed.returncode == 0, output
    assert paths_of(pq.read_table(out)) == EXPECTED
    assert not out.with_name(out.name + ".parts").exists()
    return output


@pytest.mark.heavy
@pytest.mark.slow  # two real runs of the command in subprocesses, one killed
def test_sigkill_mid_run_leaves_whole_parts_and_resume_loses_and_repeats_nothing(
    many_images: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out.parquet"
    process = signalled_after_first_part(many_images, out, signal.SIGKILL)
    process.wait(timeout=30)
    assert not out.exists(), "the run finished before it could be killed"
    # The output as it stands: the parts folder, read as one dataset.
    partial = ds.dataset(tmp_path / "out.parquet.parts", format="parquet").to_table()
    assert 0 < partial.num_rows < IMAGES
    assert len(set(paths_of(partial))) == partial.num_rows
    output = resumed_to_the_end(many_images, out)
    assert f"resumed: {partial.num_rows} rows were already written" in output


@pytest.mark.heavy
@pytest.mark.slow
def test_ctrl_c_finalises_what_is_done_and_resume_completes_it(
    many_images: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out.parquet"
    process = signalled_after_first_part(many_images, out, signal.SIGINT)
    output = process.communicate(timeout=60)[0]
    assert process.returncode == 130, output
    assert "--resume continues" in output
    partial = pq.read_table(out)  # readable as it stands
    assert 0 < partial.num_rows < IMAGES and (tmp_path / "out.parquet.parts").is_dir()
    resumed_to_the_end(many_images, out)


def test_an_unfinished_run_is_not_overwritten_without_resume(
    many_images: Path, tmp_path: Path, predict
) -> None:
    out = tmp_path / "out.jsonl"
    sink = OutputSink(out, {"model": "demo", "version": "1", "card_digest": "x"})
    sink.open(resume=False)
    result = predict(many_images, "--model", DEMO_MODEL, "--out", out)
    assert result.exit_code == 2 and "--resume" in result.output
    result = predict(many_images, "--model", DEMO_MODEL, "--out", out, "--resume")
    assert result.exit_code == 2 and "not by this model" in " ".join(result.output.split())


def test_resuming_a_finished_run_adds_only_the_new_files(
    many_images: Path, tmp_path: Path, predict
) -> None:
    out = tmp_path / "out.csv"
    first = sorted(many_images.iterdir())[:5]
    assert predict(*first, "--model", DEMO_MODEL, "--out", out).exit_code == 0
    result = predict(many_images, "--model", DEMO_MODEL, "--out", out, "--resume")
    assert result.exit_code == 0, result.output
    lines = out.read_text().splitlines()
    assert len(lines) == IMAGES + 1 and lines[0].startswith("path,frame")
    assert json.loads((tmp_path / "out.csv.meta.json").read_text())["format"] == "csv"
    os.remove(out)
