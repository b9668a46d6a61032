"""The MLflow model registry: register an exported ONNX file, pull a version back.

``register_onnx`` logs ``model.onnx`` with MLflow's ONNX flavour (the file unchanged, one
piece: no external-data split), the model card as the MLflow model's metadata, an input
example (a mid-grey image through the card's own preprocessing) and the signature MLflow
infers from it, and creates a new version of the registered model.

``pull_model`` downloads ``models:/NAME/VERSION`` (or an alias) and writes it into the model
repository as ``NAME/VERSION/model.onnx`` (``model.layout`` decides the path), its card's
name and version set to where it now lives, so ``rectifier serve`` serves it as it is. The
weights and the rest of the card are the registered ones.

Neither needs torch; both need the ``track`` extra (mlflow) and onnx.
"""

from __future__ import annotations

import logging
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from model.card import CARD_METADATA_KEY, CardError, ModelCard, read_card, write_card
from model.files import write_atomically
from model.layout import MODEL_FILE, beside_model, is_model_name, model_file
from model.mlflow_store import TrackingStoreError, connect, resolve_uri
from model.preprocess import preprocess_image

if TYPE_CHECKING:
    from mlflow.models import ModelSignature

log = logging.getLogger(__name__)

ARTIFACT_NAME = "model"
EXAMPLE_GREY = 128
# models:/NAME/VERSION, models:/NAME/ALIAS or models:/NAME@ALIAS
_MODEL_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:/(?P<ref>[^/@]+)|@(?P<alias>[^/@]+))$")


class RegistryError(RuntimeError):
    """A model cannot be registered or pulled; the message names the reason."""


@dataclass(frozen=True)
class RegisteredVersion:
    name: str
    version: int
    run_id: str
    tracking_uri: str

    @property
    def model_uri(self) -> str:
        return f"models:/{self.name}/{self.version}"


@dataclass(frozen=True)
class PulledModel:
    path: Path
    name: str
    version: int
    already_present: bool


def input_example(card: ModelCard) -> np.ndarray:
    """One preprocessed mid-grey image, shaped (1, C, H, W) as the graph takes it."""
    size = card.preprocessing.resize_size
    image = Image.new(card.preprocessing.color_mode, (size, size), EXAMPLE_GREY)
    return preprocess_image(image, card.preprocessing)[None]


def register_onnx(path: Path, name: str, tracking_uri: str | None) -> RegisteredVersion:
    """Log ``path`` to the registry as a new version of ``name``."""
    import mlflow
    import onnx

    if not is_model_name(name):
        raise RegistryError(f"{name!r} is not a model name: use letters, digits, '.', '_', '-'")
    card = read_card(path)
    uri = resolve_uri(tracking_uri)
    try:
        client, experiment_id = connect(uri)
    except TrackingStoreError as exc:
        raise RegistryError(str(exc)) from exc
    # log_model works on the fluent API's current run and store.
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    example = input_example(card)
    tags = {
        "architecture": card.architecture,
        "activation": card.activation,
        "dataset": card.dataset,
        "task": card.task,
    }
    try:
        with mlflow.start_run(
            experiment_id=experiment_id, run_name=f"register-{name}", tags=tags
        ) as run:
            info = mlflow.onnx.log_model(
                onnx.load(str(path)),
                name=ARTIFACT_NAME,
                registered_model_name=name,
                input_example=example,
                signature=_signature(path, card, example),
                metadata={CARD_METADATA_KEY: card.model_dump(mode="json")},
                save_as_external_data=False,
                onnx_execution_providers=["CPUExecutionProvider"],
                extra_files=_trust_files(path, card),  # the OOD statistics beside the model
            )
        version = info.registered_model_version
        if version is None:
            raise RegistryError(f"MLflow at {uri} created no version of {name}")
        for key, value in {**tags, "exported_as": f"{card.name}:{card.version}"}.items():
            client.set_model_version_tag(name, str(version), key, value)
    except RegistryError:
        raise
    except Exception as exc:  # MlflowException, store and HTTP errors
        raise RegistryError(f"registering {path} in MLflow at {uri} failed: {exc}") from exc
    log.info("registered %s as models:/%s/%s in %s", path, name, version, uri)
    return RegisteredVersion(name, int(version), run.info.run_id, uri)


def _trust_files(path: Path, card: ModelCard) -> list[str] | None:
    """The files the card names beside the model (its OOD statistics), to log with it."""
    statistics = card.trust.ood.statistics if card.trust and card.trust.ood else None
    return None if statistics is None else [str(beside_model(path, statistics.file))]


def _pulled_trust(card: ModelCard, download: Path) -> tuple[ModelCard, Path | None]:
    """The card to write and the statistics file to put beside the pulled model. A version
    registered without its statistics file loses its OOD section (with a warning), so it
    still serves: calibrated probabilities, no ood_score."""
    statistics = card.trust.ood.statistics if card.trust and card.trust.ood else None
    if card.trust is None or statistics is None:
        return card, None
    for candidate in (download / "extra_files" / statistics.file, download / statistics.file):
        if candidate.is_file():
            return card, candidate
    log.warning("%s is not in the registered model: pulled without its OOD score", statistics.file)
    return card.model_copy(update={"trust": card.trust.model_copy(update={"ood": None})}), None


def _signature(path: Path, card: ModelCard, example: np.ndarray) -> ModelSignature:
    """The graph's input and output as MLflow tensor specs, from one run of the example
    (the ONNX flavour does not infer one)."""
    import onnxruntime as ort
    from mlflow.models import infer_signature

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (output,) = session.run([card.output_name], {card.input_name: example})
    return infer_signature(example, output)


def parse_model_uri(model_uri: str) -> tuple[str, str]:
    """``models:/NAME/REF`` or ``models:/NAME@ALIAS`` -> (NAME, REF); REF a version or alias."""
    match = _MODEL_URI.match(model_uri)
    if not match:
        raise RegistryError(
            f"{model_uri!r} is not a registry model URI; write models:/NAME/VERSION, "
            "models:/NAME/ALIAS or models:/NAME@ALIAS"
        )
    name = match["name"]
    if not is_model_name(name):
        raise RegistryError(
            f"{name!r} cannot be served: model names use letters, digits, '.', '_', '-'"
        )
    return name, match["ref"] or match["alias"]


def pull_model(model_uri: str, out: Path, tracking_uri: str | None) -> PulledModel:
    """Write a registered version into the model repository ``out``."""
    import mlflow
    import onnx

    name, ref = parse_model_uri(model_uri)
    uri = resolve_uri(tracking_uri)
    try:
        client, _ = connect(uri)
    except TrackingStoreError as exc:
        raise RegistryError(str(exc)) from exc
    try:
        found = (
            client.get_model_version(name, ref)
            if ref.isdigit()
            else client.get_model_version_by_alias(name, ref)
        )
    except Exception as exc:
        raise RegistryError(f"{model_uri} is not in the registry at {uri}: {exc}") from exc
    version = int(found.version)
    target = model_file(out, name, version)
    with tempfile.TemporaryDirectory(prefix="rectifier-pull-") as tmp:
        try:
            local = mlflow.artifacts.download_artifacts(
                artifact_uri=client.get_model_version_download_uri(name, str(version)),
                dst_path=tmp,
                tracking_uri=uri,
            )
        except Exception as exc:
            raise RegistryError(f"downloading {model_uri} from {uri} failed: {exc}") from exc
        downloaded = Path(local) / MODEL_FILE
        try:
            card = read_card(downloaded)
        except CardError as exc:
            raise RegistryError(
                f"{model_uri} holds no Rectifier model ({exc}); register models with "
                "`rectifier export --register`"
            ) from exc
        card, stats_source = _pulled_trust(card, Path(local))
        stats = stats_source.read_bytes() if stats_source is not None else None
        proto = onnx.load(str(downloaded))
        write_card(proto, card.model_copy(update={"name": name, "version": version}))
        content = proto.SerializeToString()
    if target.exists():
        if target.read_bytes() == content:
            return PulledModel(target, name, version, already_present=True)
        raise RegistryError(
            f"{target} exists with other content; versions are immutable, so remove it or "
            "serve from another --out"
        )
    if stats is not None and card.trust is not None and card.trust.ood is not None:
        statistics = card.trust.ood.statistics
        assert statistics is not None
        write_atomically(beside_model(target, statistics.file), lambda h: h.write(stats))
    write_atomically(target, lambda handle: handle.write(content))
    log.info("pulled %s (version %d) into %s", model_uri, version, target)
    return PulledModel(target, name, version, already_present=False)
