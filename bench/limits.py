"""What the machine can do without any server: in-process onnxruntime throughput per batch
size (with the service's own session options), the model's FLOPs from its ONNX graph, the
machine's SGEMM rate, and the cost of decoding and preprocessing one upload."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import shape_inference


@dataclass(frozen=True)
class Timing:
    """Repeated measurements of one quantity: the median and the spread."""

    values: tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def low(self) -> float:
        return min(self.values)

    @property
    def high(self) -> float:
        return max(self.values)

    def as_dict(self) -> dict[str, float | list[float]]:
        return {"median": self.median, "min": self.low, "max": self.high, "runs": list(self.values)}


def service_session(model: Path, models_dir: Path) -> ort.InferenceSession:
    """A CPU session built with the service's own ``session_options`` and default settings."""
    from service.inference.providers import session_options
    from service.plumbing.settings import load_settings

    options = session_options(load_settings(models_dir=models_dir, device="cpu"))
    return ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])


def inference_limit(
    session: ort.InferenceSession,
    sample: np.ndarray,
    batch: int,
    *,
    seconds: float,
    repeats: int,
) -> tuple[Timing, Timing]:
    """(images/s, ms per batch call) of back-to-back ``session.run`` calls on one batch."""
    name = session.get_inputs()[0].name
    inputs = {name: np.ascontiguousarray(np.repeat(sample[None], batch, axis=0))}
    session.run(None, inputs)  # first-call allocations stay out of the figures
    rates, latencies = [], []
    for _ in range(repeats):
        calls, start = 0, time.perf_counter()
        per_call = []
        while (now := time.perf_counter()) - start < seconds or calls < 3:
            session.run(None, inputs)
            per_call.append(time.perf_counter() - now)
            calls += 1
        elapsed = time.perf_counter() - start
        rates.append(calls * batch / elapsed)
        latencies.append(statistics.median(per_call) * 1e3)
    return Timing(tuple(rates)), Timing(tuple(latencies))


def model_flops(path: Path) -> float:
    """Floating-point operations for one image (2 per multiply-add) of Conv, Gemm and MatMul
    nodes, from shapes inferred with the batch axis fixed to 1."""
    proto = onnx.load(str(path))
    for tensor in (*proto.graph.input, *proto.graph.output):
        dim = tensor.type.tensor_type.shape.dim[0]
        dim.ClearField("dim_param")
        dim.dim_value = 1
    del proto.graph.value_info[:]
    inferred = shape_inference.infer_shapes(proto)
    shapes = {
        info.name: [d.dim_value for d in info.type.tensor_type.shape.dim]
        for info in (*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output)
    }
    shapes.update({t.name: list(t.dims) for t in inferred.graph.initializer})
    total = 0.0
    for node in inferred.graph.node:
        if node.op_type == "Conv":
            weight, output = shapes[node.input[1]], shapes[node.output[0]]
            # weight: (out, in / groups, kh, kw); each output element costs in/groups*kh*kw MACs
            total += 2.0 * float(np.prod(output)) * float(np.prod(weight[1:]))
        elif node.op_type in ("Gemm", "MatMul"):
            a, output = shapes[node.input[0]], shapes[node.output[0]]
            transposed = any(a.name == "transA" and a.i for a in node.attribute)
            inner = a[-2] if transposed else a[-1]
            total += 2.0 * float(np.prod(output)) * inner
    return total


def sgemm_gflops(size: int = 2048, repeats: int = 5) -> Timing:
    """float32 matrix multiply rate through NumPy's BLAS on all its threads."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size), dtype=np.float32)
    b = rng.standard_normal((size, size), dtype=np.float32)
    a @ b  # BLAS thread start-up
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        rates.append(2.0 * size**3 / (time.perf_counter() - start) / 1e9)
    return Timing(tuple(rates))


def decode_preprocess_ms(image: Path, model: Path, repeats: int = 200) -> Timing:
    """Median ms per run of the service's own decode + preprocess (``decode_into``)."""
    from model.card import read_card
    from service.inference.decode_upload import decode_into
    from service.plumbing.settings import Settings

    spec = read_card(model).preprocessing
    payload = image.read_bytes()
    max_pixels = Settings.model_fields["max_image_pixels"].default
    out = np.empty((spec.channels, spec.crop_size, spec.crop_size), np.float32)
    runs = []
    for _ in range(3):
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            decode_into(payload, spec, max_pixels, out)
            times.append(time.perf_counter() - start)
        runs.append(statistics.median(times) * 1e3)
    return Timing(tuple(runs))
