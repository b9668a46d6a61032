"""Loading one model version: its onnxruntime session, its card (read from the session's
metadata, so no onnx package is needed), the check that card and graph agree, the warm-up
and a ``DynamicBatcher`` with the streams the stream policy gives it."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from model.card import CardError, card_from_metadata
from service.app.warmup import warm_up
from service.inference.batching import BatchObserver, DynamicBatcher
from service.inference.providers import ProviderPlan, create_session, intra_op_threads
from service.inference.served_model import ServedModel, check_card_against_graph
from service.inference.streams import auto_streams
from service.inference.trust import load_trust
from service.plumbing.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelFailure:
    name: str
    version: int | None
    path: Path
    reason: str

    def __str__(self) -> str:
        return f"model {self.name} version {self.version} not served: {self.reason}"


class ModelLoader:
    """Loads model versions with the service's settings and execution providers."""

    def __init__(
        self,
        settings: Settings,
        plan: ProviderPlan,
        observer_for: Callable[[str], BatchObserver] | None = None,
    ) -> None:
        self.settings = settings
        self.plan = plan
        self._observer_for = observer_for

    def load(
        self, name: str, version: int, path: Path, loop: asyncio.AbstractEventLoop
    ) -> ServedModel:
        """One version, warmed up, its batcher started on ``loop`` (blocking: in a thread)."""
        settings = self.settings
        started = time.perf_counter()
        if not path.is_file():
            raise CardError(f"{path} is missing")
        session = create_session(path, settings, self.plan)
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
        trust = load_trust(card, path, output_names)  # a missing statistics file fails here
        single_run_s = (
            warm_up(session, card, output_names, settings.max_batch_size)
            if settings.warmup
            else None
        )
        streams = settings.inference_streams or auto_streams(
            session.get_providers(), single_run_s, intra_op_threads(settings)
        )
        holder: dict[str, ServedModel] = {}
        batcher = DynamicBatcher(
            lambda inputs: holder["model"].run(inputs),
            name=f"{name}:{version}",
            max_batch_size=settings.max_batch_size,
            max_queue=settings.max_queue,
            max_delay_s=settings.max_batch_delay_ms / 1000.0,
            retry_after_s=settings.retry_after_s,
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
            trust=trust,
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
