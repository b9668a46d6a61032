"""Prometheus metrics, one registry per app (so several apps can live in one process).

Request counts by model and status, a histogram per timing phase, the batch size
histogram, queue depth, model load time, and the providers in use as labels of
``rectifier_model_info``. Queue depth and model facts are read at scrape time; under
``--workers`` counters and histograms are summed over the workers and each state gauge is
combined as ``STATE_GAUGES`` says.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from service.app.repository import ModelRepository

disable_created_metrics()  # the *_created series only add noise to every scrape

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

LATENCY_BUCKETS = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5, 5.0, 10.0,
)  # fmt: skip
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
# OOD scores: energies are negative, squared Mahalanobis distances reach the thousands.
OOD_BUCKETS = (
    -20.0, -10.0, -5.0, -2.0, -1.0, -0.5, 0.0, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0,
    500.0, 1000.0, 2000.0, 5000.0, 10000.0,
)  # fmt: skip
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


# The gauges read from the repository: name -> (help, label names, multiprocess mode). The
# mode says how ``--workers`` combines the workers' values (prometheus-client's multiprocess
# modes; "liveall" keeps one series per worker, labelled with its pid).
STATE_GAUGES: dict[str, tuple[str, tuple[str, ...], str]] = {
    "rectifier_queue_depth": (
        "Requests waiting in the batch queue",
        ("model", "version"),
        "livesum",
    ),
    "rectifier_requests_in_flight": (
        "Image API requests admitted and not yet answered (bounded by max_queue)",
        ("model", "version"),
        "livesum",
    ),
    "rectifier_model_load_seconds": (
        "Time to load, check and warm up the model",
        ("model", "version"),
        "livemax",
    ),
    "rectifier_model_info": (
        "Served models and the execution providers their session got",
        ("model", "version", "providers", "task"),
        "liveall",
    ),
    "rectifier_models_failed": ("Model versions that could not be loaded", (), "livemax"),
    "rectifier_ready": ("1 when the server reports ready", (), "livemin"),
}

StateSample = tuple[str, tuple[str, ...], float]


def state_samples(repository: ModelRepository | None) -> list[StateSample]:
    """The current value of every ``STATE_GAUGES`` series: (name, label values, value)."""
    if repository is None:
        return [("rectifier_ready", (), 0.0)]
    samples: list[StateSample] = []
    for model in repository.served():
        labels = (model.name, str(model.version))
        samples += [
            ("rectifier_queue_depth", labels, model.batcher.queue_depth),
            ("rectifier_requests_in_flight", labels, model.batcher.admitted),
            ("rectifier_model_load_seconds", labels, model.load_seconds),
            ("rectifier_model_info", (*labels, ",".join(model.providers), model.card.task), 1),
        ]
    samples += [
        ("rectifier_models_failed", (), len(repository.failures)),
        ("rectifier_ready", (), 1 if repository.ready else 0),
    ]
    return samples


class RepositoryCollector(Collector):
    """Model facts gathered at scrape time from the repository (one process)."""

    def __init__(self, repository: Callable[[], ModelRepository | None]) -> None:
        self._repository = repository

    def collect(self) -> Iterable[Metric]:
        families = {
            name: GaugeMetricFamily(name, help_text, labels=list(labels))
            for name, (help_text, labels, _) in STATE_GAUGES.items()
        }
        for name, labels, value in state_samples(self._repository()):
            families[name].add_metric(list(labels), value)
        yield from families.values()


class WorkerStateGauges:
    """The same facts under ``--workers``: each worker writes its values to
    prometheus-client's shared files (at every scrape it answers, and every second), and
    the scrape combines all workers' values by each gauge's multiprocess mode."""

    def __init__(
        self, repository: Callable[[], ModelRepository | None], registry: CollectorRegistry
    ) -> None:
        self._repository = repository
        self._gauges = {
            name: Gauge(name, help_text, labels, multiprocess_mode=mode, registry=registry)  # type: ignore[arg-type]
            for name, (help_text, labels, mode) in STATE_GAUGES.items()
        }

    def refresh(self) -> None:
        for name, labels, value in state_samples(self._repository()):
            gauge = self._gauges[name]
            (gauge.labels(*labels) if labels else gauge).set(value)

    async def refresh_every(self, seconds: float) -> None:
        while True:
            self.refresh()
            await asyncio.sleep(seconds)


class ServiceMetrics:
    def __init__(self) -> None:
        # Under ``--workers`` (service.run.workers sets the variable before the workers start)
        # the values live in files shared by the workers and a scrape sums them.
        self.multiprocess = MULTIPROC_ENV in os.environ
        self.worker_state: WorkerStateGauges | None = None
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}
        self.registry = CollectorRegistry(auto_describe=True)
        self.http_requests = Counter(
            "rectifier_http_requests",
            "HTTP requests by route and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.http_duration = Histogram(
            "rectifier_http_request_duration_seconds",
            "HTTP request duration, first byte in to last byte out",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.predictions = Counter(
            "rectifier_predictions",
            "Prediction requests by model and status",
            ["model", "version", "status"],
            registry=self.registry,
        )
        self.images = Counter(
            "rectifier_images", "Images classified", ["model", "version"], registry=self.registry
        )
        self.phase = Histogram(
            "rectifier_phase_seconds",
            "Time per phase of a prediction request",
            ["model", "phase"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.ood_score = Histogram(
            "rectifier_ood_score",
            "OOD score per image (higher = less like the training data), per model",
            ["model"],
            buckets=OOD_BUCKETS,
            registry=self.registry,
        )
        self.out_of_distribution = Counter(
            "rectifier_out_of_distribution",
            "Images answered as out of distribution (score over the card's threshold)",
            ["model"],
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "rectifier_batch_size",
            "Images per session.run",
            ["model"],
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self.batch_seconds = Histogram(
            "rectifier_batch_inference_seconds",
            "Duration of one session.run",
            ["model"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )

    def observe_ood(self, model: str, scores: Any, inside: Any) -> None:
        """One request's OOD scores and how many of its images were out of distribution."""
        histogram = self._child(self.ood_score, model)
        for score in scores.tolist():
            histogram.observe(score)
        outside = int(len(inside) - int(inside.sum()))
        counter = self._child(self.out_of_distribution, model)
        if outside:
            counter.inc(outside)

    def watch(self, repository: Callable[[], ModelRepository | None]) -> None:
        if self.multiprocess:
            self.worker_state = WorkerStateGauges(repository, self.registry)
        else:
            self.registry.register(RepositoryCollector(repository))

    def batch_observer(self, model: str) -> Callable[[int, float], None]:
        size = self.batch_size.labels(model)
        seconds = self.batch_seconds.labels(model)

        def observe(rows: int, elapsed: float) -> None:
            size.observe(rows)
            seconds.observe(elapsed)

        return observe

    def observe_prediction(
        self,
        model: str,
        version: int,
        status: int,
        timings_s: Mapping[str, float] | None = None,
        images: int = 0,
    ) -> None:
        self._child(self.predictions, model, str(version), str(status)).inc()
        if images:
            self._child(self.images, model, str(version)).inc(images)
        for phase, seconds in (timings_s or {}).items():
            self._child(self.phase, model, phase).observe(seconds)

    def observe_http(self, method: str, route: str, status: int, seconds: float) -> None:
        self._child(self.http_requests, method, route, str(status)).inc()
        self._child(self.http_duration, method, route).observe(seconds)

    def _child(self, metric: Any, *labels: str) -> Any:
        """``metric.labels(*labels)``, remembered: prometheus-client checks and locks on
        every ``labels`` call, and a request makes nine of them (label sets are few: models,
        phases, routes, statuses)."""
        key = (id(metric), labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def render(self) -> bytes:
        if not self.multiprocess:
            return generate_latest(self.registry)
        if self.worker_state is not None:
            self.worker_state.refresh()
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        return generate_latest(registry)
