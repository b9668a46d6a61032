"""Where MLflow tracking and the model registry live, and a client that fails fast.

Shared by training (``--track mlflow``) and export (``--register``, ``rectifier pull``).
The default store is the one MLflow itself defaults to since 3.7: a SQLite database
``mlflow.db`` in the current folder, no server needed. Artifacts of a SQLite (or any local
database) store go beside the database in ``mlartifacts/``, so the two move together and
``mlflow ui --backend-store-uri sqlite:///mlflow.db`` in that folder shows everything.

mlflow is the optional ``track`` extra: it is imported inside the functions.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

if TYPE_CHECKING:
    from mlflow import MlflowClient

log = logging.getLogger(__name__)

DEFAULT_DATABASE = "mlflow.db"
DEFAULT_TRACKING_URI = f"sqlite:///{DEFAULT_DATABASE}"
DEFAULT_EXPERIMENT = "rectifier"
ARTIFACTS_BESIDE_DATABASE = "mlartifacts"
# How help texts state the default URI (``resolve_uri``), so it is spelled here alone.
DEFAULT_URI_HELP = f"$MLFLOW_TRACKING_URI, else {DEFAULT_TRACKING_URI}"
# MLflow retries a failed HTTP request 7 times with exponential backoff (minutes in all),
# made for rate-limited hosted servers. A local or team server that does not answer within
# these bounds is down: say so in seconds, not minutes. Explicit settings win.
HTTP_RETRIES = "2"
HTTP_TIMEOUT_S = "10"
TRACKING_URI_HELP = (
    "MLflow tracking/registry URI: http(s)://HOST:PORT for a server, sqlite:///FILE.db for a "
    f"local store (default: {DEFAULT_URI_HELP})."
)


class TrackingStoreError(RuntimeError):
    """The tracking store or registry cannot be reached or used."""


def install_hint() -> str:
    return "install the tracking extra: pip install 'rectifier[track]'"


def resolve_uri(uri: str | None) -> str:
    """The URI given, else ``MLFLOW_TRACKING_URI``, else the local SQLite default."""
    return uri or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


def is_remote(uri: str) -> bool:
    return urlparse(uri).scheme in ("http", "https")


def artifact_location(uri: str) -> str | None:
    """``mlartifacts/`` beside a SQLite database; None (the store decides) otherwise."""
    parsed = urlparse(uri)
    if parsed.scheme != "sqlite":
        return None
    database = Path(uri.removeprefix("sqlite:///"))
    return str(database.resolve().parent / ARTIFACTS_BESIDE_DATABASE)


def experiment_name() -> str:
    return os.environ.get("MLFLOW_EXPERIMENT_NAME") or DEFAULT_EXPERIMENT


def _bound_http_retries() -> None:
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", HTTP_RETRIES)
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", HTTP_TIMEOUT_S)


def connect(uri: str | None) -> tuple[MlflowClient, str]:
    """A client for ``uri`` (resolved) and the id of the Rectifier experiment in it.

    Raises TrackingStoreError, naming the URI, when mlflow is missing or the store cannot
    be reached or written (an unreachable server, an unwritable SQLite file).
    """
    resolved = resolve_uri(uri)
    try:
        from mlflow import MlflowClient
    except ImportError as exc:
        raise TrackingStoreError(f"mlflow is not installed; {install_hint()}") from exc
    _bound_http_retries()
    try:
        client = MlflowClient(tracking_uri=resolved, registry_uri=resolved)
        name = experiment_name()
        experiment = client.get_experiment_by_name(name)
        if experiment is not None:
            return client, experiment.experiment_id
        return client, client.create_experiment(name, artifact_location=artifact_location(resolved))
    except Exception as exc:  # mlflow raises MlflowException, requests and SQLAlchemy errors
        raise TrackingStoreError(f"MLflow at {resolved} is not usable: {_short(exc)}") from exc


def _short(exc: BaseException) -> str:
    """The first line of an error: SQLAlchemy and requests append pages of context."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
