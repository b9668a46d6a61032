"""export --register and pull, against a real MLflow SQLite store on disk (no server)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from typer.testing import CliRunner

from model.card import CARD_METADATA_KEY, read_card
from model.cli import app
from model.decoding import load_and_preprocess
from model.layout import model_file
from tests.helpers.cli import flat
from tests.helpers.images import encode, pattern
from tests.helpers.models import make_checkpoint
from tests.helpers.predictions import TOLERANCE, served_probabilities
from tests.helpers.server import free_port, running_server

pytestmark = pytest.mark.tracking

runner = CliRunner()
REGISTERED = "colours"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """One store for the module (creating the SQLite schema takes seconds): a checkpoint
    exported and registered once through the CLI."""
    root = tmp_path_factory.mktemp("registry")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    checkpoint = make_checkpoint(root / "model.pt", resize_size=36, crop_size=32)
    result = runner.invoke(
        app,
        [
            "export", str(checkpoint), "--name", "local", "--out", str(root / "exported"),
            "--register", REGISTERED, "--tracking-uri", uri,
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert f"registered models:/{REGISTERED}/1" in result.output
    return {"root": root, "uri": uri, "exported": model_file(root / "exported", "local", 1)}


def test_registered_version_carries_the_card_and_an_input_example(store) -> None:
    from mlflow import MlflowClient
    from mlflow.models import Model

    client = MlflowClient(tracking_uri=store["uri"], registry_uri=store["uri"])
    version = client.get_model_version(REGISTERED, "1")
    assert version.tags["architecture"] == "simple_cnn"
    assert version.tags["exported_as"] == "local:1"
    mlmodel = Model.load(client.get_model_version_download_uri(REGISTERED, "1"))
    assert "onnx" in mlmodel.flavors
    card = read_card(store["exported"])
    assert mlmodel.metadata[CARD_METADATA_KEY] == card.model_dump(mode="json")
    assert mlmodel.saved_input_example_info is not None
    assert mlmodel.signature is not None


def test_pulled_version_serves_the_exported_predictions(store, tmp_path: Path) -> None:
    served = tmp_path / "models"
    result = runner.invoke(
        app,
        ["pull", f"models:/{REGISTERED}/1", "--out", str(served), "--tracking-uri", store["uri"]],
    )
    assert result.exit_code == 0, result.output
    pulled = model_file(served, REGISTERED, 1)
    card = read_card(pulled)
    assert (card.name, card.version) == (REGISTERED, 1)
    exported_card = read_card(store["exported"])
    assert card.export == exported_card.export  # same source checkpoint, same export

    image = tmp_path / "image.png"
    image.write_bytes(encode(pattern((50, 41), seed=3), "PNG"))
    session = ort.InferenceSession(str(store["exported"]), providers=["CPUExecutionProvider"])
    batch = load_and_preprocess(str(image), exported_card.preprocessing)[None]
    (expected,) = session.run(["probabilities"], {"image": batch})

    import httpx

    with running_server(served) as server, httpx.Client(base_url=server.url) as http:
        got = served_probabilities(http, REGISTERED, image.read_bytes(), card.labels)
    assert np.abs(got - expected[0]).max() <= TOLERANCE
    assert expected.max() - expected.min() > 1e-3  # the model really discriminates


def test_pull_by_alias_and_again_is_a_no_op(store, tmp_path: Path) -> None:
    from mlflow import MlflowClient

    MlflowClient(tracking_uri=store["uri"], registry_uri=store["uri"]).set_registered_model_alias(
        REGISTERED, "champion", "1"
    )
    args = ["pull", f"models:/{REGISTERED}@champion", "--out", str(tmp_path), "--tracking-uri"]
    first = runner.invoke(app, [*args, store["uri"]])
    assert first.exit_code == 0, first.output
    second = runner.invoke(app, [*args, store["uri"]])
    assert second.exit_code == 0, second.output
    assert "already present" in second.output


def test_pull_refuses_to_overwrite_a_different_version(store, tmp_path: Path) -> None:
    target = model_file(tmp_path, REGISTERED, 1)
    target.parent.mkdir(parents=True)
    target.write_bytes(b"another model")
    result = runner.invoke(
        app,
        ["pull", f"models:/{REGISTERED}/1", "--out", str(tmp_path), "--tracking-uri", store["uri"]],
    )
    assert result.exit_code == 2
    assert "versions are immutable" in flat(result.output)
    assert target.read_bytes() == b"another model"


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("runs:/abc/model", "is not a registry model URI"),
        (f"models:/{REGISTERED}/7", "is not in the registry"),
        ("models:/nobody/1", "is not in the registry"),
    ],
)
def test_pull_errors_name_the_model_uri(store, tmp_path: Path, uri: str, message: str) -> None:
    result = runner.invoke(
        app, ["pull", uri, "--out", str(tmp_path), "--tracking-uri", store["uri"]]
    )
    assert result.exit_code == 2
    assert "MODEL_URI" in flat(result.output) and message in flat(result.output)
    assert not any(tmp_path.iterdir())


def test_register_with_no_server_fails_fast_and_keeps_the_export(tmp_path: Path) -> None:
    checkpoint = make_checkpoint(tmp_path / "model.pt", resize_size=32, crop_size=32)
    uri = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    result = runner.invoke(
        app,
        [
            "export", str(checkpoint), "--name", "m", "--out", str(tmp_path / "models"),
            "--register", "m", "--tracking-uri", uri,
        ],
    )  # fmt: skip
    assert result.exit_code == 1
    assert f"MLflow at {uri} is not usable" in result.output
    assert "was exported but not registered" in result.output
    assert time.monotonic() - started < 60  # bounded retries, not MLflow's minutes
    assert read_card(model_file(tmp_path / "models", "m", 1)).name == "m"


def test_tracking_uri_without_register_names_the_flag(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["export", str(tmp_path), "--name", "m", "--tracking-uri", "sqlite:///x.db"]
    )
    assert result.exit_code == 2
    assert "--tracking-uri" in flat(result.output)


def test_a_trusted_model_round_trips_with_its_statistics(store, tmp_path: Path) -> None:
    from model.mlflow_registry import pull_model, register_onnx
    from model.trust import TrustStats

    demo = Path(__file__).resolve().parents[2] / "models" / "demo" / "1" / "model.onnx"
    register_onnx(demo, "trusted", str(store["uri"]))
    pulled = pull_model("models:/trusted/1", tmp_path / "models", str(store["uri"])).path
    trust = read_card(pulled).trust
    assert trust is not None and trust.ood is not None and trust.ood.statistics is not None
    TrustStats.load(pulled.parent / trust.ood.statistics.file, trust.ood.statistics.sha256)
