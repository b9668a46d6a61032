"""The parts of bench/gpu_check.py that run without a GPU, the LitServe peer, and the
multipart benchmark's bodies (a full ``bench/gpu_check.sh --cpu-dry-run`` takes minutes)."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import onnxruntime as ort
import pytest

from bench.gpu_check import check_providers, fp16_copy, parity
from bench.multipart_cost import bodies, check_agreement
from bench.peers.common import load_peer_model
from bench.servers import free_port, litserve_command, running
from tests.helpers.images import encode, scene
from tests.helpers.multipart import multipart

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "images" / "stop.jpg"


@pytest.mark.skipif(
    "CUDAExecutionProvider" in ort.get_available_providers(), reason="this build has CUDA"
)
def test_explicit_cuda_on_a_cpu_build_is_refused_with_the_reason(model_repo) -> None:  # type: ignore[no-untyped-def]
    model = model_repo["rgb"].onnx_path
    result = check_providers(True, model, model.parents[2])
    assert result["ok"]
    assert result["cuda"]["loaded"] is False
    assert "CUDAExecutionProvider" in result["cuda"]["error"]
    assert "not available" in result["cuda"]["error"]
    # The same result in the GPU mode is a failed check, not a silent CPU run.
    assert check_providers(False, model, model.parents[2])["ok"] is False


def test_fp16_copy_is_served_under_its_own_name_and_stays_close(model_repo, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from bench.fixtures import PreparedModel
    from model.card import read_card
    from model.decoding import load_and_preprocess

    exported = model_repo["rgb"]
    spec = read_card(exported.onnx_path).preprocessing
    sample = load_and_preprocess(str(EXAMPLE), spec)
    prepared = PreparedModel(
        "rgb", exported.onnx_path.parents[2], exported.onnx_path, EXAMPLE, sample
    )
    name, repo, path = fp16_copy(prepared, tmp_path)
    assert name == "rgb_fp16" and read_card(path).name == "rgb_fp16"
    assert path == repo / "rgb_fp16" / "1" / "model.onnx"
    # CPU against CPU here; on the GPU machine the same call compares CUDA with the CPU.
    assert parity(path, repo, sample, "cpu", 1e-3)["ok"]


def test_multipart_benchmark_bodies_parse_alike() -> None:
    cases = bodies()
    assert set(cases) == {"small", "large", "eight_small"}
    assert len(cases["large"][0]) > 1_000_000
    check_agreement(cases)  # raises SystemExit when the two parsers differ


@pytest.mark.e2e
def test_litserve_peer_answers_top5_like_the_other_peers(model_repo, tmp_path) -> None:  # type: ignore[no-untyped-def]
    model = model_repo["rgb"].onnx_path
    port = free_port()
    env = {"PEER_MODEL": str(model), "PEER_THREADS": "1", "PEER_MAX_BATCH": "4"}
    png = encode(scene(40, 30, seed=1), "PNG")
    boundary = "rectifier-hostile-boundary"
    body = multipart([("image", "a.png", "image/png", png)], boundary)
    with running(
        "litserve",
        litserve_command(port),
        ready_path="/health",
        log_dir=tmp_path,
        port=port,
        env=env,
        ready_timeout=90.0,
    ) as server:
        request = urllib.request.Request(
            server.url + "/predict",
            data=body,
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            answer = json.loads(response.read())
    labels = load_peer_model(str(model), threads=1).labels
    (top,) = answer["predictions"]
    assert len(top) == min(5, len(labels))
    assert {entry["label"] for entry in top} <= set(labels)
    probabilities = [entry["probability"] for entry in top]
    assert probabilities == sorted(probabilities, reverse=True)
    assert all(0.0 <= p <= 1.0 for p in probabilities) and sum(probabilities) <= 1.0 + 1e-5
