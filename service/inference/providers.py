"""Execution providers and session options for onnxruntime.

``auto`` takes CUDA when onnxruntime offers it and a session really initialises on it,
else CPU. An explicitly requested provider that cannot be used is a start-up error with
the reason, never a silent fallback: onnxruntime itself falls back to CPU with only a log
line when, say, the CUDA libraries are missing, so the providers a session actually got
are checked after it is created.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onnxruntime as ort

from model.cpus import available_cpus
from service.plumbing.settings import Settings

log = logging.getLogger(__name__)

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
TENSORRT = "TensorrtExecutionProvider"


class ProviderError(RuntimeError):
    """A requested execution provider cannot be used; the message says why."""


class ModelFileError(ValueError):
    """The model file itself cannot be loaded (corrupt, cut, invalid graph): that model is
    not served, the others are; unlike ``ProviderError`` it does not stop start-up."""


def _is_model_fault(exc: Exception) -> bool:
    names = ("InvalidProtobuf", "InvalidGraph", "NoSuchFile", "NoModel")
    faults = tuple(getattr(ort.capi.onnxruntime_pybind11_state, n, ()) for n in names)
    return isinstance(exc, tuple(f for f in faults if isinstance(f, type)))


ProviderSpec = tuple[str, dict[str, str]]


@dataclass(frozen=True)
class ProviderPlan:
    """What to ask onnxruntime for, and whether a missing provider is fatal."""

    providers: list[ProviderSpec]
    explicit: bool

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.providers]


def _provider_options(name: str, settings: Settings) -> dict[str, str]:
    if name == CUDA:
        options = {
            "device_id": str(settings.cuda_device_id),
            "cudnn_conv_algo_search": settings.cudnn_conv_algo_search,
            "do_copy_in_default_stream": "1",
        }
        if settings.cuda_mem_limit_bytes is not None:
            options["gpu_mem_limit"] = str(settings.cuda_mem_limit_bytes)
        return options
    if name == TENSORRT:
        options = {"device_id": str(settings.cuda_device_id)}
        if settings.tensorrt_cache_dir is not None:
            options["trt_engine_cache_enable"] = "1"
            options["trt_engine_cache_path"] = str(settings.tensorrt_cache_dir)
        return options
    return {}


def plan_providers(settings: Settings) -> ProviderPlan:
    """Turn the ``device`` setting into an ordered provider list, checked against this build.

    Raises ``ProviderError`` when an explicitly named provider is not in this onnxruntime
    build (for example CUDA with the CPU-only ``onnxruntime`` wheel).
    """
    available = ort.get_available_providers()
    requested = settings.provider_request
    if requested is None:  # auto
        names = [CUDA, CPU] if CUDA in available else [CPU]
        return ProviderPlan([(n, _provider_options(n, settings)) for n in names], explicit=False)
    missing = [name for name in requested if name not in available]
    if missing:
        hint = (
            " (install onnxruntime-gpu, `pip install -e '.[gpu]'`, on a machine with an NVIDIA "
            "driver)"
            if {CUDA, TENSORRT} & set(missing)
            else ""
        )
        raise ProviderError(
            f"execution provider(s) {', '.join(missing)} requested by RECTIFIER_DEVICE="
            f"{settings.device!r} are not available in this onnxruntime build "
            f"(available: {', '.join(available)}){hint}"
        )
    names = list(requested)
    if TENSORRT in names and CUDA not in names and CUDA in available:
        # TensorRT hands the nodes it cannot run to CUDA rather than straight to the CPU.
        names.insert(names.index(TENSORRT) + 1, CUDA)
    return ProviderPlan([(n, _provider_options(n, settings)) for n in names], explicit=True)


def intra_op_threads(settings: Settings) -> int:
    """Threads onnxruntime may use for one run: ``RECTIFIER_INTRA_OP_THREADS``, which
    ``--workers`` and Ray replicas set to their share of the cores, else every core."""
    return settings.intra_op_threads or available_cpus()


def session_options(settings: Settings) -> ort.SessionOptions:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.intra_op_num_threads = intra_op_threads(settings)
    options.inter_op_num_threads = settings.inter_op_threads
    spinning = "1" if settings.allow_spinning else "0"
    options.add_session_config_entry("session.intra_op.allow_spinning", spinning)
    options.add_session_config_entry("session.inter_op.allow_spinning", spinning)
    options.log_severity_level = 3  # errors only; provider failures are reported by us
    return options


def create_session(
    model_path: Path | str | bytes, settings: Settings, plan: ProviderPlan
) -> ort.InferenceSession:
    """One session on the planned providers, verified to have really got them."""
    source: Any = str(model_path) if isinstance(model_path, Path) else model_path
    options = session_options(settings)
    try:
        session = ort.InferenceSession(source, options, providers=plan.providers)
    except Exception as exc:
        # The CPU provider always exists, so a CPU-only failure is the file's fault.
        if _is_model_fault(exc) or plan.names == [CPU]:
            raise ModelFileError(f"cannot load the model: {exc}") from exc
        if plan.explicit:
            raise ProviderError(
                f"could not create a session on {', '.join(plan.names)}: {exc}"
            ) from exc
        log.warning("could not create a session on %s (%s); using the CPU", plan.names, exc)
        return ort.InferenceSession(source, options, providers=[CPU])
    got = session.get_providers()
    lost = [name for name in plan.names if name not in got]
    if lost and plan.explicit:
        raise ProviderError(
            f"execution provider(s) {', '.join(lost)} failed to initialise (onnxruntime fell "
            f"back to {', '.join(got)}); check the CUDA/cuDNN/TensorRT libraries and driver, "
            "or set RECTIFIER_DEVICE=cpu"
        )
    if lost:
        log.warning("auto device: %s not usable, serving on %s", ", ".join(lost), ", ".join(got))
    return session


def select_providers(settings: Settings) -> ProviderPlan:
    """The provider plan for ``settings`` (raises ``ProviderError`` for unusable requests)."""
    plan = plan_providers(settings)
    log.info(
        "execution providers: %s (%s); CPU intra-op threads %d, spinning %s",
        ", ".join(plan.names),
        "explicit" if plan.explicit else "auto",
        intra_op_threads(settings),
        "on" if settings.allow_spinning else "off",
    )
    return plan
