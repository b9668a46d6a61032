"""Model repository: faulty models are reported and skipped, healthy ones serve."""

from __future__ import annotations

import shutil
import time

import pytest
from fastapi.testclient import TestClient

from service.app.factory import create_app
from service.app.state import state_of
from service.plumbing.settings import Settings
from tests.helpers.app import wait_loaded


def edit_card(src, dst, change) -> None:
    import json

    import onnx

    from model.card import CARD_METADATA_KEY

    proto = onnx.load(str(src))
    for prop in list(proto.metadata_props):
        if prop.key == CARD_METADATA_KEY:
            card = json.loads(prop.value)
            if change is None:
                proto.metadata_props.remove(prop)
            else:
                change(card)
                prop.value = json.dumps(card)
    dst.parent.mkdir(parents=True)
    onnx.save(proto, str(dst))


@pytest.fixture(scope="module")
def faulty_repo(tmp_path_factory, model_repo):
    root = tmp_path_factory.mktemp("faulty")
    good = model_repo["rgb"].onnx_path
    (root / "good" / "1").mkdir(parents=True)
    shutil.copy(good, root / "good" / "1" / "model.onnx")
    (root / "good" / "2").mkdir()
    shutil.copy(good, root / "good" / "2" / "model.onnx")
    (root / "cut" / "1").mkdir(parents=True)
    (root / "cut" / "1" / "model.onnx").write_bytes(good.read_bytes()[:500])
    edit_card(good, root / "nocard" / "1" / "model.onnx", None)
    edit_card(
        good,
        root / "mismatch" / "1" / "model.onnx",
        lambda card: card.update(labels=[*card["labels"], "extra"]),
    )
    (root / "empty" / "1").mkdir(parents=True)  # a version folder without a model file
    (root / "not-a-version" / "latest").mkdir(parents=True)
    return root


def test_faulty_models_are_listed_with_reasons_and_good_ones_serve(faulty_repo):
    with TestClient(create_app(Settings(models_dir=faulty_repo))) as client:
        wait_loaded(client)
        ready = client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["models"] == ["good:1", "good:2"]
        reasons = {f["model"]: f["reason"] for f in ready.json()["failed"]}
        assert set(reasons) == {"cut", "nocard", "mismatch", "empty"}
        assert "rectifier.card" in reasons["nocard"]
        assert "4 labels" in reasons["mismatch"] and "[" in reasons["mismatch"]
        assert "missing" in reasons["empty"]
        listing = client.get("/v1/models").json()
        assert [m["name"] for m in listing["models"]] == ["good"]
        assert {f["model"] for f in listing["failed"]} == set(reasons)
        good = client.get("/v1/models/good").json()
        assert good["default_version"] == 2
        assert [v["version"] for v in good["versions"]] == [2, 1]
        metrics = client.get("/metrics").text
        assert "rectifier_models_failed 4.0" in metrics


def test_empty_repository_is_not_ready(tmp_path):
    with TestClient(create_app(Settings(models_dir=tmp_path))) as client:
        wait_loaded(client)
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["error"]["code"] == "not_ready"
        assert "no model could be loaded" in ready.json()["error"]["message"]
        predict = client.post("/v1/predict", content=b"x", headers={"Content-Type": "image/png"})
        assert predict.json()["error"]["code"] == "model_not_found"


def test_readiness_waits_for_loading(model_repo_dir, monkeypatch):
    from service.app import repository

    original = repository.ModelRepository.load_all

    def slow_load(self, loop, should_stop):
        time.sleep(0.5)
        original(self, loop, should_stop)

    monkeypatch.setattr(repository.ModelRepository, "load_all", slow_load)
    with TestClient(create_app(Settings(models_dir=model_repo_dir))) as client:
        assert client.get("/livez").status_code == 200
        early = client.get("/readyz")
        assert early.status_code == 503
        assert "loading" in early.json()["error"]["message"]
        busy = client.post(
            "/v1/models/rgb/predict", content=b"x", headers={"Content-Type": "image/png"}
        )
        assert busy.status_code == 503
        wait_loaded(client)
        assert client.get("/readyz").status_code == 200


def test_provider_failure_while_loading_fails_start_up(model_repo_dir, monkeypatch):
    from service.app import loading
    from service.inference.providers import ProviderError

    def broken(*args, **kwargs):
        raise ProviderError("CUDAExecutionProvider failed to initialise (test)")

    monkeypatch.setattr(loading, "create_session", broken)
    app = create_app(Settings(models_dir=model_repo_dir))
    reasons: list[str] = []
    state_of(app).on_fatal = reasons.append
    with TestClient(app) as client:
        wait_loaded(client)
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert "start-up failed" in ready.json()["error"]["message"]
        assert "failed to initialise" in ready.json()["error"]["message"]
        busy = client.post("/v1/predict", content=b"x", headers={"Content-Type": "image/png"})
        assert busy.json()["error"]["code"] == "not_ready"
    assert reasons == ["CUDAExecutionProvider failed to initialise (test)"]


@pytest.mark.parametrize(("setting", "expected"), [(None, {1, 2}), (3, {3})])
def test_the_model_list_reports_the_streams_serving_it(model_repo_dir, setting, expected):
    settings = Settings(models_dir=model_repo_dir, inference_streams=setting)
    with TestClient(create_app(settings)) as client:
        wait_loaded(client)
        models = client.get("/v1/models").json()["models"]
        streams = {v["batching"]["streams"] for m in models for v in m["versions"]}
        assert streams and streams <= expected


def test_close_gives_all_batchers_one_shared_grace_period(tmp_path):
    """Three models with a batch stuck in ``session.run``: closing the repository waits one
    grace period in all, not one per model (the deadline is shared)."""
    import asyncio
    import threading

    import numpy as np

    from service.app.repository import ModelRepository
    from service.inference.batching import DynamicBatcher
    from service.inference.served_model import ServedModel

    grace_s = 1.0
    release = threading.Event()

    def blocked(inputs: np.ndarray) -> list[np.ndarray]:
        release.wait(30)
        return [inputs]

    loop = asyncio.new_event_loop()
    repository = ModelRepository(Settings(models_dir=tmp_path), loader=None)  # type: ignore[arg-type]
    running = []
    for name in ("a", "b", "c"):
        batcher = DynamicBatcher(blocked, name=f"{name}:1")
        batcher.start(loop)
        model = ServedModel(
            name=name,
            version=1,
            path=tmp_path / name,
            card=None,  # type: ignore[arg-type]
            session=None,  # type: ignore[arg-type]
            batcher=batcher,
            input_name="x",
            output_names=["y"],
            load_seconds=0.0,
        )
        repository.models[name] = {1: model}
        batcher.put(np.zeros((1, 1), np.float32), loop.create_future())
        running.append(batcher)
    try:
        deadline = time.monotonic() + 5
        while any(b.queue_depth for b in running):  # every batch is inside session.run
            assert time.monotonic() < deadline
            time.sleep(0.01)
        began = time.monotonic()
        repository.close(grace_s)
        elapsed = time.monotonic() - began
    finally:
        release.set()
        loop.close()
    assert elapsed < grace_s + 1.0, f"closing 3 blocked models took {elapsed:.2f}s"
