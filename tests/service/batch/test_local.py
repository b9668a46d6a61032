"""``rectifier predict`` with the local engine: a folder of JPEGs, PNGs and bad files into
Parquet, CSV and JSON Lines, with the server's decoding and preprocessing."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from model.card import card_digest, read_card
from service.batch.output import columns_for
from tests.helpers.batch import DEMO_MODEL, GOOD_IMAGES, MODEL_FILE, served_probabilities
from tests.helpers.cli import flat


def test_a_folder_becomes_one_row_per_image_with_errors_as_rows(
    image_folder: Path, tmp_path: Path, predict
) -> None:
    out = tmp_path / "out.parquet"
    result = predict(image_folder, "--model", DEMO_MODEL, "--out", out)
    assert result.exit_code == 0, result.output
    table = pq.read_table(out)
    rows = {Path(r["path"]).name: r for r in table.to_pylist()}
    assert len(rows) == GOOD_IMAGES + 3 == table.num_rows
    card = read_card(MODEL_FILE)
    assert tuple(table.column_names) == columns_for(card)  # + ood_score... with a scorer
    assert rows["truncated.jpg"]["error"].startswith("invalid_image:")
    assert rows["notes.txt"]["error"].startswith("invalid_image: not a supported image")
    assert rows["anim.gif"]["error"].startswith("multiple_frames:")
    good = [r for r in rows.values() if not r["error"]]
    assert len(good) == GOOD_IMAGES and all(r["frame"] == 0 for r in good)
    card = read_card(MODEL_FILE)
    expected = served_probabilities(image_folder / "img03.jpg")
    row = rows["img03.jpg"]
    assert row["label"] == card.labels[int(expected.argmax())]
    assert row["probability"] == pytest.approx(float(expected.max()), abs=1e-6)
    assert [t["label"] for t in row["top_k"]][:1] == [row["label"]]
    assert len(row["top_k"]) == 5
    metadata = table.schema.metadata
    assert metadata[b"rectifier.model"] == b"demo"
    assert metadata[b"rectifier.version"] == b"1"
    assert metadata[b"rectifier.card_digest"] == card_digest(card).encode()
    output = flat(result.output)
    assert "errors: invalid_image 2, multiple_frames 1" in output
    assert "time per phase: read" in output and "inference" in output
    assert not (tmp_path / "out.parquet.parts").exists()


def test_every_frame_of_a_multi_frame_image_with_all_frames(tmp_path: Path, predict) -> None:
    from tests.helpers.images import animated_gif

    gif = tmp_path / "anim.gif"
    gif.write_bytes(animated_gif())
    out = tmp_path / "frames.jsonl"
    result = predict(gif, "--model", DEMO_MODEL, "--out", out, "--all-frames", "--top-k", "2")
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["frame"], r["error"]) for r in rows] == [(0, ""), (1, ""), (2, "")]
    assert all(len(r["top_k"]) == 2 for r in rows)
    meta = json.loads((tmp_path / "frames.jsonl.meta.json").read_text())
    assert meta["model"] == "demo" and meta["card_digest"] == card_digest(read_card(MODEL_FILE))


def test_csv_output_and_a_path_list(image_folder: Path, tmp_path: Path, predict) -> None:
    listing = tmp_path / "list.csv"
    listing.write_text("path,note\nimages/img00.jpg,a\nimages/missing.jpg,b\n")
    out = tmp_path / "out.csv"
    result = predict(listing, "--model", DEMO_MODEL, "--out", out, "--batch-size", "1")
    assert result.exit_code == 0, result.output
    with out.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [Path(r["path"]).name for r in rows] == ["img00.jpg", "missing.jpg"]
    assert rows[0]["error"] == "" and json.loads(rows[0]["top_k"])[0]["label"] == rows[0]["label"]
    assert rows[1]["error"].startswith("unreadable:")
    assert (tmp_path / "out.csv.meta.json").is_file()


def test_bad_flags_fail_before_any_work_naming_the_flag(
    image_folder: Path, tmp_path: Path, predict
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    empty = tmp_path / "empty"
    empty.mkdir()
    cases = [
        ((image_folder, "--model", tmp_path / "nope", "--out", tmp_path / "o.parquet"), "--model"),
        ((image_folder, "--model", DEMO_MODEL, "--out", blocker / "o.parquet"), "--out"),
        ((image_folder, "--model", DEMO_MODEL, "--out", tmp_path / "o.xlsx"), "--out"),
        ((empty, "--model", DEMO_MODEL, "--out", tmp_path / "o.parquet"), "SOURCE"),
        ((tmp_path / "absent", "--model", DEMO_MODEL, "--out", tmp_path / "o.csv"), "SOURCE"),
        (
            (image_folder, "--model", DEMO_MODEL, "--out", tmp_path / "o.csv", "--device", "tpu"),
            "--device",
        ),
    ]
    for args, flag in cases:
        result = predict(*args)
        assert result.exit_code == 2, (args, result.output)
        assert flag in flat(result.output), (flag, result.output)
    assert not list(tmp_path.glob("o.*"))


def test_a_missing_dependency_names_its_extra(
    image_folder: Path, tmp_path: Path, predict, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "pyarrow", None)  # import pyarrow now fails
    result = predict(image_folder, "--model", DEMO_MODEL, "--out", tmp_path / "o.parquet")
    assert result.exit_code == 2, result.output
    assert "pip install 'rectifier[batch]'" in flat(result.output)
    assert "--out" in flat(result.output)
    # CSV needs no pyarrow: the same run works.
    result = predict(image_folder, "--model", DEMO_MODEL, "--out", tmp_path / "o.csv")
    assert result.exit_code == 0, result.output
