"""Hot reload: load a model's versions afresh, without a restart (``POST
/v1/models/{name}/reload``, in ``service.protocols.v1.reload``).

The versions found under ``<models>/<name>/`` are loaded into new sessions and warmed up
(``service.app.loading.ModelLoader``) while the old ones keep serving. Only when every version
loaded does the swap happen, in one assignment under the repository's lock; a reload that
fails leaves the old versions serving and answers 409 ``reload_failed`` with the reasons.
Under ``--workers`` and on Ray Serve replicas it answers 409 ``reload_unavailable``: a request
reaches one process only.

Requests that already resolved the old model finish on it: its batcher is stopped (after
draining what is queued) only ``retire_after_s`` later, longer than a request may spend
reading its body and decoding before it reaches the queue. The model name from the URL is
only ever compared with the folder names the repository lists, never joined to a path, so
no request reaches the filesystem outside the models folder.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from model.layout import discover
from service.app.loading import ModelFailure
from service.app.repository import ModelRepository
from service.inference.batching import stop_batchers
from service.inference.served_model import ServedModel
from service.plumbing.errors import APIError

log = logging.getLogger(__name__)

RETIRE_MARGIN_S = 5.0


class ModelReloader:
    """Serialises reloads and retires the replaced versions once nothing can still use them."""

    def __init__(self, repository: ModelRepository, retire_after_s: float) -> None:
        self.repository = repository
        self.retire_after_s = retire_after_s
        self._lock = asyncio.Lock()
        self._retiring: set[asyncio.Task[None]] = set()

    async def reload(self, name: str) -> dict[str, Any]:
        async with self._lock:
            sources = [s for s in discover(self.repository.root) if s[0] == name]
            if not sources:
                raise APIError(
                    "model_not_found",
                    f"no model folder named {name!r} with versions under the model repository",
                    {"models": sorted(self.repository.models)},
                )
            started = time.perf_counter()
            loop = asyncio.get_running_loop()
            loaded, failures = await asyncio.to_thread(self._load, sources, loop)
            previous = self.repository.models.get(name, {})
            if failures:
                await asyncio.to_thread(stop_batchers, [m.batcher for m in loaded], 5.0)
                for failure in failures:
                    log.error(
                        "reload of %s version %s failed: %s; still serving versions %s",
                        name,
                        failure.version,
                        failure.reason,
                        sorted(previous) or "none",
                    )
                raise APIError(
                    "reload_failed",
                    f"model {name!r} was not reloaded: "
                    + "; ".join(f"version {f.version}: {f.reason}" for f in failures)
                    + f"; still serving versions {sorted(previous) or 'none'}",
                    {
                        "failed": [{"version": f.version, "reason": f.reason} for f in failures],
                        "serving": sorted(previous),
                    },
                )
            self.repository.replace_versions(name, loaded)
            self._retire(list(previous.values()))
            seconds = time.perf_counter() - started
            versions = sorted((m.version for m in loaded), reverse=True)
            log.info(
                "reloaded %s: serving versions %s (was %s) after %.2fs",
                name,
                versions,
                sorted(previous, reverse=True),
                seconds,
            )
            return {
                "model": name,
                "versions": versions,
                "previous_versions": sorted(previous, reverse=True),
                "load_seconds": seconds,
            }

    def _load(
        self, sources: list[tuple[str, int, Any]], loop: asyncio.AbstractEventLoop
    ) -> tuple[list[ServedModel], list[ModelFailure]]:
        loaded, failures = [], []
        for name, version, path in sources:
            try:
                loaded.append(self.repository.loader.load(name, version, path, loop))
            except Exception as exc:
                failures.append(ModelFailure(name, version, path, str(exc) or type(exc).__name__))
        return loaded, failures

    def _retire(self, models: list[ServedModel]) -> None:
        if not models:
            return
        task = asyncio.create_task(self._retire_later(models), name="retire-models")
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)

    async def _retire_later(self, models: list[ServedModel]) -> None:
        await asyncio.sleep(self.retire_after_s)
        await asyncio.to_thread(
            stop_batchers, [m.batcher for m in models], self.repository.settings.shutdown_grace_s
        )
        log.info("retired %s", ", ".join(f"{m.name}:{m.version}" for m in models))
