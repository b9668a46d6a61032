"""The model repository: ``<root>/<name>/<version>/model.onnx`` (Triton's layout).

It owns the layout (found by ``model.layout.discover``) and the lookup: which versions
serve, which failed and why, the default model, the newest version of a name, readiness.
Each version is loaded by ``service.app.loading``. A model that fails to load is recorded
with its reason and the others still serve; the newest healthy version of a name serves by
default.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import Any, Literal

from model.layout import MODEL_FILE, discover
from service.app.loading import ModelFailure, ModelLoader
from service.inference.batching import stop_batchers
from service.inference.providers import ProviderError
from service.inference.served_model import ServedModel
from service.plumbing.errors import APIError
from service.plumbing.settings import Settings

log = logging.getLogger(__name__)

RepositoryState = Literal["loading", "ready", "failed"]
STILL_LOADING = "models are still loading"


class ModelRepository:
    """Every model version under ``root``; filled by ``load_all`` (blocking, in a thread)."""

    def __init__(self, settings: Settings, loader: ModelLoader) -> None:
        self.root = settings.models_dir
        self.settings = settings
        self.loader = loader
        self.state: RepositoryState = "loading"
        self.fatal_error: str | None = None
        self.models: dict[str, dict[int, ServedModel]] = {}
        self.failures: list[ModelFailure] = []
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
                model = self.loader.load(name, version, path, loop)
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
