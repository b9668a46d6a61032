"""Broken model files for fault tests, made from a healthy exported model.

Each function writes ``<repo>/<name>/<version>/model.onnx`` (or leaves it out) with one
specific fault: random bytes, a cut file, no card, a card that contradicts the graph, and a
graph that loads fine but fails at inference time on bright images.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from model.card import ModelCard, read_card
from model.export import write_card

# A bright image's normalised pixels exceed this (white is about 2.6 with ImageNet mean/std);
# a mid-grey image stays far below it.
EXPLODE_ABOVE = 2.0


def model_path(repo: Path, name: str, version: int = 1) -> Path:
    folder = repo / name / str(version)
    folder.mkdir(parents=True, exist_ok=True)
    return folder / "model.onnx"


def copy_model(source: Path, repo: Path, name: str, version: int = 1) -> Path:
    target = model_path(repo, name, version)
    shutil.copyfile(source, target)
    return target


def write_random_bytes(repo: Path, name: str, version: int = 1) -> Path:
    target = model_path(repo, name, version)
    target.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    return target


def write_truncated(source: Path, repo: Path, name: str, version: int = 1) -> Path:
    data = source.read_bytes()
    target = model_path(repo, name, version)
    target.write_bytes(data[: len(data) // 2])
    return target


def write_without_card(source: Path, repo: Path, name: str, version: int = 1) -> Path:
    proto = onnx.load(str(source))
    del proto.metadata_props[:]
    target = model_path(repo, name, version)
    onnx.save(proto, str(target))
    return target


def write_mismatched_card(source: Path, repo: Path, name: str, version: int = 1) -> Path:
    """The card lists one label more than the graph has outputs."""
    proto = onnx.load(str(source))
    card = read_card(source)
    wrong = card.model_copy(update={"labels": (*card.labels, "extra")})
    write_card(proto, wrong)
    target = model_path(repo, name, version)
    onnx.save(proto, str(target))
    return target


def save_graph(
    nodes: list[onnx.NodeProto],
    inits: list[onnx.TensorProto],
    card: ModelCard,
    target: Path,
    graph_name: str,
) -> Path:
    """A checked opset-18 model with the card's input and output, and the card itself."""
    channels, height, width = card.input_shape
    graph = helper.make_graph(
        nodes,
        graph_name,
        [
            helper.make_tensor_value_info(
                card.input_name, TensorProto.FLOAT, ["batch", channels, height, width]
            )
        ],
        [
            helper.make_tensor_value_info(
                card.output_name, TensorProto.FLOAT, ["batch", len(card.labels)]
            )
        ],
        inits,
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    proto.ir_version = 9
    onnx.checker.check_model(proto)
    write_card(proto, card)
    onnx.save(proto, str(target))
    return target


def write_exploding(card: ModelCard, repo: Path, name: str, version: int = 1) -> Path:
    """A model that answers for dark images and fails inside ``session.run`` for bright ones.

    probabilities = softmax(mean colour @ W) + 0 * sum(Reshape([1.0], [1 + (max(x) > T)])):
    the Reshape of one element to two elements raises at run time when any input pixel of
    the batch is brighter than ``EXPLODE_ABOVE``.
    """
    channels = card.input_shape[0]
    classes = len(card.labels)
    weights = np.random.default_rng(1).normal(size=(channels, classes)).astype(np.float32)
    inits = [
        numpy_helper.from_array(weights, "W"),
        numpy_helper.from_array(np.array(EXPLODE_ABOVE, np.float32), "T"),
        numpy_helper.from_array(np.array(1, np.int64), "one"),
        numpy_helper.from_array(np.array([0], np.int64), "axis0"),
        numpy_helper.from_array(np.array([1.0], np.float32), "single"),
        numpy_helper.from_array(np.array(0.0, np.float32), "zero"),
    ]
    nodes = [
        helper.make_node("GlobalAveragePool", [card.input_name], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["flat"]),
        helper.make_node("MatMul", ["flat", "W"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["soft"], axis=1),
        helper.make_node("ReduceMax", [card.input_name], ["brightest"], keepdims=0),
        helper.make_node("Greater", ["brightest", "T"], ["too_bright"]),
        helper.make_node("Cast", ["too_bright"], ["extra"], to=TensorProto.INT64),
        helper.make_node("Add", ["extra", "one"], ["count"]),
        helper.make_node("Unsqueeze", ["count", "axis0"], ["shape"]),
        helper.make_node("Reshape", ["single", "shape"], ["reshaped"]),
        helper.make_node("ReduceSum", ["reshaped"], ["total"], keepdims=0),
        helper.make_node("Mul", ["total", "zero"], ["nothing"]),
        helper.make_node("Add", ["soft", "nothing"], [card.output_name]),
    ]
    return save_graph(nodes, inits, card, model_path(repo, name, version), "exploding")


def write_slow(
    card: ModelCard, repo: Path, name: str, version: int = 1, *, layers: int = 200
) -> Path:
    """A model that takes tens of milliseconds per image: ``layers`` 1024x1024 MatMul+Tanh
    steps on the mean colour (one shared weight, so the file stays ~4 MB)."""
    channels = card.input_shape[0]
    classes = len(card.labels)
    rng = np.random.default_rng(2)
    inits = [
        numpy_helper.from_array(rng.normal(size=(channels, 1024)).astype(np.float32), "W_in"),
        numpy_helper.from_array(
            (rng.normal(size=(1024, 1024)) / 32).astype(np.float32), "W_hidden"
        ),
        numpy_helper.from_array(rng.normal(size=(1024, classes)).astype(np.float32), "W_out"),
    ]
    nodes = [
        helper.make_node("GlobalAveragePool", [card.input_name], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["flat"]),
        helper.make_node("MatMul", ["flat", "W_in"], ["h0"]),
    ]
    for layer in range(layers):
        nodes.append(helper.make_node("MatMul", [f"h{layer}", "W_hidden"], [f"m{layer}"]))
        nodes.append(helper.make_node("Tanh", [f"m{layer}"], [f"h{layer + 1}"]))
    nodes += [
        helper.make_node("MatMul", [f"h{layers}", "W_out"], ["logits"]),
        helper.make_node("Softmax", ["logits"], [card.output_name], axis=1),
    ]
    return save_graph(nodes, inits, card, model_path(repo, name, version), "slow")
