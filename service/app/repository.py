"""The model repository: ``<root>/<name>/<version>/model.onnx`` (Triton's layout).

Each model gets one onnxruntime session, its card (read from the session's metadata, so
no onnx package is needed), a check that card and graph agree, a warm-up run and a
``DynamicBatcher``. A model that fails to load is recorded with its reason and the others
still serve; the newest healthy version of a name serves by default.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import onnxruntime as ort

from model.card import CardError, ModelCard, card_from_metadata
from model.layout import MODEL_FILE, discover
from service.inference.batching import BatchObserver, DynamicBatcher, stop_batchers
from service.inference.providers import (
    CPU,
    ProviderError,
    ProviderPlan,
    create_session,
    intra_op_threads,
)
from service.plumbing.errors import APIError
from service.plumbing.settings import Settings

log = logging.getLogger(__name__)

RepositoryState = Literal["loading", "ready", "failed"]
STILL_LOADING = "models are still loading"


class LatencyWindow:
    """The last ``size`` request latencies of a model, for live percentiles."""

    def __init__(self, size: int = 2048) -> None:
        self._values: deque[float] = deque(maxlen=size)

    def add(self, seconds: float) -> None:
        self._values.append(seconds)

    def percentiles_ms(self) -> dict[str, float | int | None]:
        values = np.fromiter(self._values, dtype=np.float64)
        if values.size == 0:
            return {"count": 0, "p50": None, "p90": None, "p99": None}
        p50, p90, p99 = np.percentile(values, [50, 90, 99]) * 1000.0
        return {"count": int(values.size), "p50": p50, "p90": p90, "p99": p99}


def auto_streams(providers: list[str], single_run_s: float | None, cpus: int) -> int:
    """Concurrent batches for a model when ``RECTIFIER_INFERENCE_STREAMS`` is not set.

    ``cpus``: the cores this process's onnxruntime may use (``intra_op_threads``, a worker's
    or a Ray replica's share). Two on the CPU, with two ``cpus`` or more, when a batch-1 run
    is shorter than the GIL switch interval: such a model's batches are so short that the
    GIL, not the cores, paces a single worker, and a second worker runs a batch while the
    first waits to win the GIL back from the event loop. One otherwise: a long run
    (resnet18 on the CPU, any GPU) gains nothing, and two would split the cores between two
    runs, slowing a lone request. docs/BENCHMARKS.md ("Levers") has the measurements.
    """
    if single_run_s is None or providers[:1] != [CPU] or cpus < 2:
        return 1
    return 2 if single_run_s < sys.getswitchinterval() else 1


@dataclass(eq=False)
class ServedModel:
    """One loaded model version: what the routers (V1 and V2) work with."""

    name: str
    version: int
    path: Path
    card: ModelCard
    session: ort.InferenceSession
    batcher: DynamicBatcher
    input_name: str
    output_names: list[str]
    load_seconds: float
    latency: LatencyWindow = field(default_factory=LatencyWindow)

    @property
    def providers(self) -> list[str]:
        return list(self.session.get_providers())

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return self.card.input_shape

    def run(self, inputs: np.ndarray) -> list[np.ndarray]:
        """Synchronous ``session.run`` (the batcher's worker calls this)."""
        return self.session.run(self.output_names, {self.input_name: inputs})


@dataclass(frozen=True)
class ModelFailure:
    name: str
    version: int | None
    path: Path
    reason: str

    def __str__(self) -> str:
        return f"model {self.name} version {self.version} not served: {self.reason}"


def check_card_against_graph(card: ModelCard, session: ort.InferenceSession) -> None:
    """The card's input/output names and shapes must match the graph."""
    inputs = {i.name: i for i in session.get_inputs()}
    outputs = {o.name: o for o in session.get_outputs()}
    if card.input_name not in inputs:
        raise CardError(f"the card names input {card.input_name!r}; the graph has {sorted(inputs)}")
    if card.output_name not in outputs:
        raise CardError(
            f"the card names output {card.output_name!r}; the graph has {sorted(outputs)}"
        )
    shape = list(inputs[card.input_name].shape)
    expected = card.input_shape
    if len(shape) != 4 or any(
        isinstance(dim, int) and dim != want for dim, want in zip(shape[1:], expected, strict=True)
    ):
        raise CardError(
            f"the card says input (N, {', '.join(map(str, expected))}); the graph has {shape}"
        )
    out_shape = list(outputs[card.output_name].shape)
    if len(out_shape) != 2 or (isinstance(out_shape[1], int) and out_shape[1] != card.num_classes):
        raise CardError(
            f"the card lists {card.num_classes} labels; the graph output has shape {out_shape}"
        )


class ModelRepository:
    """Every model version under ``root``; filled by ``load_all`` (blocking, in a thread)."""

    def __init__(
        self,
        settings: Settings,
        plan: ProviderPlan,
        *,
        observer_for: Callable[[str], BatchObserver] | None = None,
    ) -> None:
        self.root = settings.models_dir
        self.settings = settings
        self.plan = plan
        self.state: RepositoryState = "loading"
        self.fatal_error: str | None = None
        self.models: dict[str, dict[int, ServedModel]] = {}
        self.failures: list[ModelFailure] = []
        self._observer_for = observer_for
        self._lock = threading.Lock()

    # -- loading -----------------------------------------------------------------------

    def load_all(
        self, loop: asyncio.AbstractEventLoop, should_stop: Callable[[], bool] = lambda: False
    ) -> None:
        """Load every model found; ``should_stop`` (the server is shutting down) ends it early."""
        sources = discover(self.root)
        if not sources:
            log.warning("no models under %s (expected <name>/<version>/%s)", self.root, MODEL_FILE)
        for name, version, path in sources:
            if should_stop():
                return
            try:
                model = self.load_one(name, version, path, loop)
            except ProviderError as exc:
                self.fatal_error = str(exc)
                self.state = "failed"
                log.error("start-up failed: %s", exc)
                return
            except Exception as exc:
                failure = ModelFailure(name, version, path, str(exc) or type(exc).__name__)
                log.error("%s", failure)
                self.failures.append(failure)
                continue
            with self._lock:
                self.models.setdefault(name, {})[version] = model
        if self.state == "loading":
            self.state = "ready"
            log.info("ready: serving %s", ", ".join(self.describe()) or "no models")
        default = self.settings.default_model
        if default and default not in self.models:
            log.error(
                "RECTIFIER_DEFAULT_MODEL=%s is not among the served models (%s): "
                "/v1/predict will answer 404",
                default,
                ", ".join(sorted(self.models)) or "none",
            )

    def load_one(
        self, name: str, version: int, path: Path, loop: asyncio.AbstractEventLoop
    ) -> ServedModel:
        started = time.perf_counter()
        if not path.is_file():
            raise CardError(f"{path} is missing")
        session = create_session(path, self.settings, self.plan)
        card = card_from_metadata(session.get_modelmeta().custom_metadata_map)
        check_card_against_graph(card, session)
        if card.name != name or card.version != version:
            log.warning(
                "%s: card says %s version %d; serving it as %s version %d (the folder decides)",
                path,
                card.name,
                card.version,
                name,
                version,
            )
        output_names = [o.name for o in session.get_outputs()]
        single_run_s = self._warm_up(session, card, output_names) if self.settings.warmup else None
        streams = self.settings.inference_streams or auto_streams(
            session.get_providers(), single_run_s, intra_op_threads(self.settings)
        )
        holder: dict[str, ServedModel] = {}
        batcher = DynamicBatcher(
            lambda inputs: holder["model"].run(inputs),
            name=f"{name}:{version}",
            max_batch_size=self.settings.max_batch_size,
            max_queue=self.settings.max_queue,
            max_delay_s=self.settings.max_batch_delay_ms / 1000.0,
            retry_after_s=self.settings.retry_after_s,
            on_batch=self._observer_for(name) if self._observer_for else None,
            streams=streams,
        )
        model = ServedModel(
            name=name,
            version=version,
            path=path,
            card=card,
            session=session,
            batcher=batcher,
            input_name=card.input_name,
            output_names=output_names,
            load_seconds=time.perf_counter() - started,
        )
        holder["model"] = model
        batcher.start(loop)
        log.info(
            "loaded %s version %d in %.2fs on %s, %d inference stream%s%s",
            name,
            version,
            model.load_seconds,
            ", ".join(model.providers),
            streams,
            "" if streams == 1 else "s",
            f" (batch-1 run {single_run_s * 1000:.2f} ms)" if single_run_s is not None else "",
        )
        return model

    def _warm_up(self, session: ort.InferenceSession, card: ModelCard, outputs: list[str]) -> float:
        """Run every batch size once (first-run allocations happen here, not in a request);
        return the fastest of three batch-1 runs after that, in seconds."""
        for rows in sorted({1, self.settings.max_batch_size}):
            batch = np.zeros((rows, *card.input_shape), dtype=np.float32)
            session.run(outputs, {card.input_name: batch})
        single = {card.input_name: np.zeros((1, *card.input_shape), dtype=np.float32)}
        times = []
        for _ in range(3):
            started = time.perf_counter()
            session.run(outputs, single)
            times.append(time.perf_counter() - started)
        return min(times)

    def replace_versions(self, name: str, models: list[ServedModel]) -> None:
        """Serve ``models`` as every version of ``name`` from now on, in one swap (hot
        reload); the name's old load failures are forgotten."""
        with self._lock:
            self.models[name] = {model.version: model for model in models}
            self.failures[:] = [f for f in self.failures if f.name != name]

    # -- lookup ------------------------------------------------------------------------

    def get(self, name: str, version: int | None = None) -> ServedModel:
        versions = self.models.get(name)
        if not versions:
            raise APIError(
                "model_not_found",
                f"no model named {name!r}; known models: "
                f"{', '.join(sorted(self.models)) or 'none'}",
                {"models": sorted(self.models)},
            )
        if version is None:
            return versions[max(versions)]
        if version not in versions:
            raise APIError(
                "version_not_found",
                f"model {name!r} has no version {version}; versions: "
                f"{', '.join(map(str, sorted(versions)))}",
                {"model": name, "versions": sorted(versions)},
            )
        return versions[version]

    def default(self) -> ServedModel:
        """``RECTIFIER_DEFAULT_MODEL``, or the only model when there is just one."""
        if self.settings.default_model:
            return self.get(self.settings.default_model)
        if len(self.models) == 1:
            return self.get(next(iter(self.models)))
        raise APIError(
            "model_not_found",
            "there is no default model: the server has "
            f"{len(self.models)} models ({', '.join(sorted(self.models)) or 'none'}); "
            "name one in the URL or set RECTIFIER_DEFAULT_MODEL",
            {"models": sorted(self.models)},
        )

    def served(self) -> list[ServedModel]:
        return [m for versions in self.models.values() for m in versions.values()]

    def describe(self) -> list[str]:
        return [f"{m.name}:{m.version}" for m in self.served()]

    @property
    def ready(self) -> bool:
        return self.state == "ready" and bool(self.models)

    def not_ready_reason(self) -> str:
        """Why the repository does not serve (the ``/readyz`` message; the Ray engine's
        deploy error). Meaningful while ``ready`` is false."""
        if self.state == "ready":
            return f"no model could be loaded from {self.root}"
        if self.state == "failed":
            return f"start-up failed: {self.fatal_error}"
        return STILL_LOADING

    def readiness(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "models": self.describe(),
            "failed": [
                {"model": f.name, "version": f.version, "reason": f.reason} for f in self.failures
            ],
            **({"error": self.fatal_error} if self.fatal_error else {}),
        }

    # -- shutdown ----------------------------------------------------------------------

    def close(self, timeout: float = 30.0) -> None:
        """Finish queued work, stop the batchers and drop the sessions; ``timeout`` bounds
        the whole wait, whatever the number of models."""
        stop_batchers((model.batcher for model in self.served()), timeout)
        with self._lock:
            self.models.clear()
