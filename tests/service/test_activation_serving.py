"""Every registered activation serves: one model per activation, HTTP against PyTorch.

The registry tests in tests/model build, train and export every activation; this one puts
each exported model behind the real app (onnxruntime sessions, batcher, preprocessing) and
checks the served probabilities against the checkpoint, so a new activation (Maxout, which
changes the conv before it, included) is covered the moment it is registered.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from model.activations import ACTIVATIONS
from service.app.factory import create_app
from service.plumbing.settings import Settings
from tests.helpers.images import encode, pattern
from tests.helpers.models import make_checkpoint
from tests.helpers.predictions import TOLERANCE, served_probabilities, torch_probabilities

pytestmark = pytest.mark.heavy

NAMES = sorted(ACTIVATIONS)


@pytest.fixture(scope="module")
def activation_repo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Path]]:
    """A model repository with a model ``act-<name>`` per activation; name -> checkpoint."""
    from model.export import export_checkpoint

    root = tmp_path_factory.mktemp("activation-models")
    checkpoints = tmp_path_factory.mktemp("activation-checkpoints")
    made = {}
    for name in NAMES:
        ckpt = make_checkpoint(checkpoints / f"{name}.pt", activation=name)
        export_checkpoint(ckpt, root, f"act-{name}")
        made[name] = ckpt
    return root, made


@pytest.fixture(scope="module")
def client(activation_repo: tuple[Path, dict[str, Path]]):
    with TestClient(create_app(Settings(models_dir=activation_repo[0]))) as client:
        deadline = time.monotonic() + 60
        while client.get("/readyz").status_code != 200:
            assert time.monotonic() < deadline, client.get("/readyz").text
            time.sleep(0.05)
        yield client


@pytest.mark.parametrize("name", NAMES)
def test_every_activation_serves_the_pytorch_probabilities(
    client: TestClient, activation_repo: tuple[Path, dict[str, Path]], tmp_path: Path, name: str
) -> None:
    checkpoint = activation_repo[1][name]
    data = encode(pattern((50, 41), seed=len(name)), "PNG")
    image = tmp_path / "image.png"
    image.write_bytes(data)
    expected = torch_probabilities(checkpoint, image)
    got = served_probabilities(client, f"act-{name}", data, ("cat", "dog", "bird"))
    assert np.abs(got - expected).max() <= TOLERANCE
    info = client.get(f"/v1/models/act-{name}").json()
    assert info["versions"][0]["card"]["activation"] == name
