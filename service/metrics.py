"""Prometheus metrics, one registry per app (so several apps can live in one process).

Request counts by model and status, a histogram per timing phase, the batch size
histogram, queue depth, model load time, and the providers in use as labels of
``rectifier_model_info``. Queue depth and model facts are read at scrape time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from service.repository import ModelRepository

disable_created_metrics()  # the *_created series only add noise to every scrape

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

LATENCY_BUCKETS = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5, 5.0, 10.0,
)  # fmt: skip
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
PHASES = ("decode", "preprocess", "queue", "inference", "total")


class RepositoryCollector(Collector):
    """Model facts gathered at scrape time from the repository."""

    def __init__(self, repository: Callable[[], ModelRepository | None]) -> None:
        self._repository = repository

    def collect(self) -> Iterable[Metric]:
        repository = self._repository()
        depth = GaugeMetricFamily(
            "rectifier_queue_depth",
            "Requests waiting in the batch queue",
            labels=["model", "version"],
        )
        in_flight = GaugeMetricFamily(
            "rectifier_requests_in_flight",
            "Image API requests admitted and not yet answered (bounded by max_queue)",
            labels=["model", "version"],
        )
        load = GaugeMetricFamily(
            "rectifier_model_load_seconds",
            "Time to load, check and warm up the model",
            labels=["model", "version"],
        )
        info = GaugeMetricFamily(
            "rectifier_model_info",
            "Served models and the execution providers their session got",
            labels=["model", "version", "providers", "task"],
        )
        failed = GaugeMetricFamily(
            "rectifier_models_failed", "Model versions that could not be loaded"
        )
        ready = GaugeMetricFamily("rectifier_ready", "1 when the server reports ready")
        if repository is not None:
            for model in repository.served():
                labels = [model.name, str(model.version)]
                depth.add_metric(labels, model.batcher.queue_depth)
                in_flight.add_metric(labels, model.batcher.admitted)
                load.add_metric(labels, model.load_seconds)
                info.add_metric([*labels, ",".join(model.providers), model.card.task], 1)
            failed.add_metric([], len(repository.failures))
            ready.add_metric([], 1 if repository.ready else 0)
        yield from (depth, in_flight, load, info, failed, ready)


class ServiceMetrics:
    def __init__(self) -> None:
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

    def watch(self, repository: Callable[[], ModelRepository | None]) -> None:
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
        self.predictions.labels(model, str(version), str(status)).inc()
        if images:
            self.images.labels(model, str(version)).inc(images)
        for phase, seconds in (timings_s or {}).items():
            self.phase.labels(model, phase).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
