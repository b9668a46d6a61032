"""float16 conversion that keeps float32 inputs and outputs."""

from __future__ import annotations

from pathlib import Path

import onnx

from model.quantize.images import QuantizationError


def convert_fp16(fp32_model: Path, output: Path) -> dict[str, object]:
    """float16 weights and activations; float32 input and output tensors."""
    from onnxruntime.transformers.float16 import convert_float_to_float16

    proto = convert_float_to_float16(onnx.load(str(fp32_model)), keep_io_types=True)
    _sort_topologically(proto.graph)  # the converter appends its input casts at the end
    onnx.checker.check_model(proto)
    onnx.save(proto, str(output))
    return {"keep_io_types": True, "converter": "onnxruntime.transformers.float16"}


def _sort_topologically(graph: onnx.GraphProto) -> None:
    ready = {i.name for i in graph.input} | {t.name for t in graph.initializer} | {""}
    pending, ordered = list(graph.node), []
    while pending:
        runnable = [n for n in pending if all(i in ready for i in n.input)]
        if not runnable:
            raise QuantizationError("the fp16 graph has a cycle or a dangling input")
        for node in runnable:
            ready.update(node.output)
            ordered.append(node)
        pending = [n for n in pending if n not in runnable]
    copies = [onnx.NodeProto.FromString(n.SerializeToString()) for n in ordered]
    del graph.node[:]
    graph.node.extend(copies)
