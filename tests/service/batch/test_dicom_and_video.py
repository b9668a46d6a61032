"""DICOM folders (the card's windowing and frame policy, as served) and video files (PyAV:
every frame, ``--every N``, ``--fps F``, with index and timestamp)."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from model.card import read_card
from tests.helpers.batch import (
    DEMO_MODEL,
    FRAMES,
    MODEL_FILE,
    RATE,
    served_probabilities,
    write_video,
)
from tests.helpers.dicom import ct_bytes, multi_frame, without_pixel_data

pytest.importorskip("av")


def test_a_dicom_folder_is_decoded_as_served(tmp_path: Path, predict) -> None:
    folder = tmp_path / "series"
    folder.mkdir()
    for index in range(3):
        (folder / f"slice{index}.dcm").write_bytes(ct_bytes())
    (folder / "cine.dcm").write_bytes(multi_frame(3))
    (folder / "nopixels.dcm").write_bytes(without_pixel_data(ct_bytes()))
    out = tmp_path / "series.jsonl"
    result = predict(folder, "--model", DEMO_MODEL, "--out", out)
    assert result.exit_code == 0, result.output
    rows = {Path(r["path"]).name: r for r in map(json.loads, out.read_text().splitlines())}
    assert rows["cine.dcm"]["error"].startswith("multiple_frames:")
    assert rows["nopixels.dcm"]["error"].startswith("invalid_image:")
    expected = served_probabilities(folder / "slice0.dcm")
    assert rows["slice0.dcm"]["probability"] == pytest.approx(float(expected.max()), abs=1e-6)
    every = tmp_path / "frames.jsonl"
    result = predict(folder / "cine.dcm", "--model", DEMO_MODEL, "--out", every, "--all-frames")
    assert result.exit_code == 0, result.output
    frames = [json.loads(line) for line in every.read_text().splitlines()]
    assert [(r["frame"], r["error"]) for r in frames] == [(0, ""), (1, ""), (2, "")]


def test_a_video_every_frame_every_nth_and_by_fps(tmp_path: Path, predict) -> None:
    clip = write_video(tmp_path / "drive.mp4")
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(clip.read_bytes()[:600])
    labels = set(read_card(MODEL_FILE).labels)

    out = tmp_path / "all.parquet"
    assert predict(clip, broken, "--model", DEMO_MODEL, "--out", out).exit_code == 0
    rows = pq.read_table(out).to_pylist()
    video = [r for r in rows if r["path"].endswith("drive.mp4")]
    assert [r["frame"] for r in video] == list(range(FRAMES))
    assert [r["timestamp"] for r in video] == pytest.approx([i / RATE for i in range(FRAMES)])
    assert all(r["label"] in labels and not r["error"] for r in video)
    (bad,) = [r for r in rows if r["path"].endswith("broken.mp4")]
    assert bad["error"].startswith("invalid_video:") and bad["label"] is None

    out = tmp_path / "every.csv"
    assert predict(clip, "--model", DEMO_MODEL, "--out", out, "--every", "7").exit_code == 0
    frames = [line.split(",")[1] for line in out.read_text().splitlines()[1:]]
    assert frames == ["0", "7", "14", "21", "28"]

    out = tmp_path / "fps.parquet"
    assert predict(clip, "--model", DEMO_MODEL, "--out", out, "--fps", "2").exit_code == 0
    table = pq.read_table(out)
    assert table.column("frame").to_pylist() == [0, 5, 10, 15, 20, 25]
    assert table.column("timestamp").to_pylist() == pytest.approx([0, 0.5, 1, 1.5, 2, 2.5])


def test_a_resumed_video_skips_the_frames_already_written(tmp_path: Path) -> None:
    from service.batch.output import DoneKeys
    from service.batch.sources import WorkItem

    done = DoneKeys()
    for frame in range(4):
        done.add("/v.mp4", frame, frame / RATE)
    done.add("/a.jpg", 0, None)
    items = [WorkItem("/v.mp4", video=True), WorkItem("/a.jpg"), WorkItem("/b.jpg")]
    left = done.remaining(items)
    assert [(i.path, i.skip_frames) for i in left] == [
        ("/v.mp4", frozenset(range(4))),
        ("/b.jpg", frozenset()),
    ]
