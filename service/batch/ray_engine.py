"""The Ray engine: the same per-batch function, in an actor pool of Ray Data.

``ray.data.from_items`` holds the work items (paths, so each actor reads the files where
they are); ``map_batches`` runs ``PredictActor`` (one ``BatchPredictor``, so one session,
per actor) over batches of ``--batch-size`` items with ``--actors`` actors of
``--actor-cpus``/``--actor-gpus`` each. Ray Data restarts an actor that dies and retries
its batch (its actor pools default to ``max_restarts=-1`` and ``max_task_retries=-1``);
a failed batch returns nothing, so each row still arrives once. The driver writes the
output exactly as the local engine does (``local.drain``), in the items' order.

``RECTIFIER_PREDICT_ACTOR_DIR``: a folder where each actor writes a file named after its
process id, with one line per batch (rows, seconds): where the work ran (monitoring, and
the test that kills an actor mid-run).
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from service.batch.errors import missing_extra
from service.batch.local import drain
from service.batch.output import OutputSink, columns_for, row_schema
from service.batch.predictor import PHASES, BatchPredictor, PredictorConfig, Row, expand_inputs
from service.batch.report import Summary
from service.batch.sources import WorkItem

ACTOR_DIR_VARIABLE = "RECTIFIER_PREDICT_ACTOR_DIR"
_SECONDS = tuple(f"_{phase}_s" for phase in PHASES)  # per-batch phase times, not output


@dataclass(frozen=True)
class RayOptions:
    address: str | None  # None: start a local cluster
    actors: int
    actor_cpus: float
    actor_gpus: float


class PredictActor:
    """One actor of the pool: a predictor, called on a pyarrow table of work items."""

    def __init__(self, config: PredictorConfig, actor_dir: str | None) -> None:
        self.predictor = BatchPredictor(config)
        self.log = Path(actor_dir) / str(os.getpid()) if actor_dir else None
        if self.log is not None:
            self.log.write_text("")

    def __call__(self, batch: Any) -> Any:
        import pyarrow as pa

        started = time.perf_counter()
        before = dict(self.predictor.seconds)
        items = [
            WorkItem(r["path"], r["frame"], bool(r["video"]), frozenset(r["skip"] or ()))
            for r in batch.to_pylist()
        ]
        rows = self.predictor.predict(expand_inputs(items, self.predictor.config.selection))
        table = pa.Table.from_pylist(rows, schema=row_schema(columns_for(self.predictor.card)))
        for phase, column in zip(PHASES, _SECONDS, strict=True):
            spent = self.predictor.seconds[phase] - before[phase]
            values = [spent] + [0.0] * (len(rows) - 1) if rows else []
            table = table.append_column(column, pa.array(values, pa.float64()))
        if self.log is not None:
            with self.log.open("a") as handle:
                handle.write(f"{len(rows)} {time.perf_counter() - started:.4f}\n")
        return table


def run_ray(
    items: list[WorkItem],
    config: PredictorConfig,
    sink: OutputSink,
    options: RayOptions,
    *,
    batch_size: int,
    chunk_rows: int,
    total: int | None,
    summary: Summary,
) -> Summary:
    """Predict ``items`` on Ray into ``sink``, joining ``options.address`` (or a new local
    cluster); the rows arrive in the items' order."""
    try:
        import ray
        import ray.data
    except ImportError as exc:
        raise missing_extra("--engine ray needs Ray", "ray") from exc
    started = time.perf_counter()
    started_ray = not ray.is_initialized()
    if started_ray:
        ray.init(
            address=options.address,
            include_dashboard=False,
            configure_logging=False,
            log_to_driver=False,
        )
    try:
        if items:
            batches = _predicted(ray, items, config, options, batch_size, summary)
            drain(batches, sink, summary, chunk_rows=chunk_rows, total=total)
        else:
            sink.finalise(complete=True)
    finally:
        if started_ray:
            ray.shutdown()
    summary.add_seconds({"write": sink.write_seconds})
    summary.wall_seconds = time.perf_counter() - started
    return summary


def _predicted(
    ray: Any,
    items: list[WorkItem],
    config: PredictorConfig,
    options: RayOptions,
    batch_size: int,
    summary: Summary,
) -> Iterator[list[Row]]:
    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True
    context.enable_progress_bars = False
    records = [
        {"path": i.path, "frame": i.frame, "video": i.video, "skip": sorted(i.skip_frames)}
        for i in items
    ]
    dataset = ray.data.from_items(records, override_num_blocks=-(-len(records) // batch_size))
    threads = config.intra_op_threads or max(1, int(options.actor_cpus))
    actor_config = dataclasses.replace(config, intra_op_threads=threads, batch_size=batch_size)
    predicted = dataset.map_batches(
        PredictActor,
        fn_constructor_kwargs={
            "config": actor_config,
            "actor_dir": os.environ.get(ACTOR_DIR_VARIABLE),
        },
        batch_size=batch_size,
        batch_format="pyarrow",
        compute=ray.data.ActorPoolStrategy(size=options.actors),
        num_cpus=options.actor_cpus,
        num_gpus=options.actor_gpus,
    )
    for table in predicted.iter_batches(batch_size=None, batch_format="pyarrow"):
        phases = zip(PHASES, _SECONDS, strict=True)
        summary.add_seconds({phase: sum(table.column(c).to_pylist()) for phase, c in phases})
        yield table.drop_columns(list(_SECONDS)).to_pylist()
