"""``ood_score`` and ``in_distribution`` columns: written when the card has an OOD scorer
(``card.trust.ood``), computed by ``model.trust`` from the graph's logits and features;
absent otherwise (``columns_for``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from model.card import (
    CalibrationFigures,
    ModelCard,
    OodDetection,
    Preprocessing,
    TemperatureScaling,
    Trust,
    write_card,
)
from model.decoding import decode_image
from model.preprocess import preprocess_image
from model.trust import energy_score

onnx = pytest.importorskip("onnx")
SIZE = 8


def trusted_model(root: Path, threshold: float) -> Path:
    """A tiny graph (pool -> features -> linear -> logits -> softmax) whose card has an
    energy-score OOD detector, written as root/trusty/1/model.onnx."""
    from onnx import TensorProto, helper, numpy_helper

    weight = np.array([[1.5, -2.0, 0.5], [-1.0, 2.5, -0.5]], dtype=np.float32)
    bias = np.array([0.1, -0.1], dtype=np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("GlobalAveragePool", ["image"], ["pooled"]),
            helper.make_node("Flatten", ["pooled"], ["features"], axis=1),
            helper.make_node("Gemm", ["features", "W", "B"], ["logits"], transB=1),
            helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
        ],
        "trusty",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, SIZE, SIZE])],
        [
            helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", 2]),
            helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 2]),
            helper.make_tensor_value_info("features", TensorProto.FLOAT, ["N", 3]),
        ],
        [numpy_helper.from_array(weight, "W"), numpy_helper.from_array(bias, "B")],
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    figures = CalibrationFigures(ece=0.1, nll=0.5, brier=0.2)
    card = ModelCard(
        name="trusty",
        version=1,
        task="multiclass",
        labels=("a", "b"),
        preprocessing=Preprocessing(
            color_mode="RGB", resize_size=SIZE, crop_size=SIZE, mean=(0.5,) * 3, std=(0.25,) * 3
        ),
        architecture="pool_linear",
        activation="relu",
        dataset="synthetic",
        trust=Trust(
            dataset="synthetic",
            calibration=TemperatureScaling(
                temperature=1.0, images=10, before=figures, after=figures
            ),
            ood=OodDetection(
                scorer="energy", threshold=threshold, train_images=10, validation_images=10
            ),
        ),
    )
    write_card(proto, card)
    path = root / "trusty" / "1" / "model.onnx"
    path.parent.mkdir(parents=True)
    onnx.save(proto, str(path))
    return path


def expected_scores(model: Path, files: list[Path]) -> np.ndarray:
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    spec = Preprocessing(
        color_mode="RGB", resize_size=SIZE, crop_size=SIZE, mean=(0.5,) * 3, std=(0.25,) * 3
    )
    images = [decode_image(f.read_bytes(), spec, 10**8) for f in files]
    batch = np.stack([preprocess_image(image, spec) for image in images])
    (logits,) = session.run(["logits"], {"image": batch})
    return energy_score(logits)


def test_ood_columns_come_from_the_cards_scorer(
    image_folder: Path, tmp_path: Path, predict
) -> None:
    files = sorted(image_folder.glob("*.jpg"))[:6]
    probe = trusted_model(tmp_path / "probe", threshold=0.0)
    scores = expected_scores(probe, files)
    threshold = float(np.median(scores))
    model = trusted_model(tmp_path / "models", threshold=threshold)
    out = tmp_path / "out.jsonl"
    sources = [*files, image_folder / "notes.txt"]
    result = predict(*sources, "--model", model.parent.parent, "--out", out)
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert list(rows[0]) == [
        "path", "frame", "timestamp", "label", "probability", "top_k", "error",
        "ood_score", "in_distribution",
    ]  # fmt: skip
    assert [r["ood_score"] for r in rows[:-1]] == pytest.approx(scores.tolist(), abs=1e-5)
    assert [r["in_distribution"] for r in rows[:-1]] == [bool(s <= threshold) for s in scores]
    assert rows[-1]["ood_score"] is None and rows[-1]["error"]
    assert {r["in_distribution"] for r in rows[:-1]} == {True, False}
    parquet = tmp_path / "out.parquet"
    assert predict(*files, "--model", model, "--out", parquet).exit_code == 0
    import pyarrow.parquet as pq

    table = pq.read_table(parquet)
    assert table.column("ood_score").to_pylist() == pytest.approx(scores.tolist(), abs=1e-5)
    assert table.schema.field("in_distribution").type == "bool"
