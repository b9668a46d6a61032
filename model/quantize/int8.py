"""Static int8 quantisation: QDQ format, per-channel int8 weights, uint8 activations."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import numpy as np
import onnx

from model.quantize.images import QuantizationError

CALIBRATION_BATCH = 16
# Output non-linearities stay in float: quantising probabilities would tie top classes.
FLOAT_OUTPUT_OPS = {"Softmax", "Sigmoid"}


def cpu_has_vnni() -> bool:
    """Whether this x86 CPU has 8-bit dot-product instructions (no saturation risk)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return re.search(r"\b(avx512_vnni|avx_vnni|amx_int8)\b", flags) is not None


def quantize_int8(
    fp32_model: Path,
    output: Path,
    calibration: np.ndarray,
    *,
    reduce_range: bool | None = None,
    calibrate_method: str = "MinMax",
) -> dict[str, object]:
    """Static QDQ quantisation with per-channel int8 weights and uint8 activations.

    ``reduce_range`` (7-bit weights) defaults to on for CPUs without VNNI, where uint8 x int8
    products can saturate; onnxruntime recommends it there. Returns the settings used.
    """
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if len(calibration) == 0:
        raise QuantizationError("no calibration images")
    if reduce_range is None:
        reduce_range = not cpu_has_vnni()
    proto = onnx.load(str(fp32_model))
    input_name = proto.graph.input[0].name
    float_nodes = [n.name for n in proto.graph.node if n.op_type in FLOAT_OUTPUT_OPS]

    # Equal batches: the histogram calibrators cannot stack a ragged last batch.
    batch = min(CALIBRATION_BATCH, len(calibration))
    calibration = calibration[: len(calibration) - len(calibration) % batch]

    class Batches(CalibrationDataReader):
        """Equal batches; with ``CalibStridedMinMax`` the calibrator reduces each range of
        batches to min/max before the next, so memory holds one batch of activations."""

        def __init__(self) -> None:
            self.starts = list(range(0, len(calibration), batch))
            self.set_range(0, len(self.starts))

        def __len__(self) -> int:
            return len(self.starts)

        def set_range(self, start_index: int, end_index: int) -> None:
            self.pending = iter(self.starts[start_index:end_index])

        def get_next(self) -> dict[str, np.ndarray] | None:
            start = next(self.pending, None)
            return None if start is None else {input_name: calibration[start : start + batch]}

    settings: dict[str, object] = {
        "format": "QDQ",
        "per_channel": True,
        "activation_type": "uint8",
        "weight_type": "int8",
        "reduce_range": reduce_range,
        "calibrate_method": calibrate_method,
        "calibration_images": len(calibration),
        "float_nodes": float_nodes,
    }
    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(fp32_model), str(prepared))
        quantize_static(
            str(prepared),
            str(output),
            Batches(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            reduce_range=reduce_range,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            nodes_to_exclude=float_nodes,
            calibrate_method=CalibrationMethod[calibrate_method],
            extra_options={"CalibStridedMinMax": 1},
        )
    return settings
