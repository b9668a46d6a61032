"""``rectifier serve --engine ray`` on a real local Ray cluster (2 CPUs, one per module).

The test process starts the cluster (``ray.init``) and tears it down; the server is the
real CLI in a subprocess that joins it with ``--ray-address``, so killing a replica, the
deploy and the HTTP surface are all Ray's and Rectifier's own. Tests run in file order:
the broken-folder deploy runs before the served application exists, since one Serve
instance holds one ``rectifier`` application.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.helpers.images import encode, pattern
from tests.helpers.server import REPO_ROOT, RunningServer, free_port, running_server

ray = pytest.importorskip("ray")
serve = pytest.importorskip("ray.serve")

pytestmark = [pytest.mark.ray, pytest.mark.timeout(300)]

log = logging.getLogger(__name__)

REPLICAS = 2
IMAGES = [
    encode(pattern((64, 48)), "JPEG", quality=92),
    encode(pattern((40, 56), seed=1), "PNG"),
    encode(pattern((97, 61), seed=2), "JPEG", quality=80),
    encode(pattern((50, 50), seed=3), "WEBP", lossless=True),
]


@dataclass(frozen=True)
class Cluster:
    address: str  # for --ray-address
    port: int  # Serve's HTTP port: the cluster's, set once by serve.start
    metrics_port: int  # the node's Prometheus export (ray start --metrics-export-port)


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[Cluster]:
    """A local Ray cluster with 2 CPUs, Serve listening on 127.0.0.1 and a free port."""
    metrics_port = free_port()
    context = ray.init(
        address="local",  # a new cluster, never one `ray start` left running here
        num_cpus=2,
        include_dashboard=False,
        configure_logging=False,
        log_to_driver=False,
        _metrics_export_port=metrics_port,
    )
    try:
        port = free_port()
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        yield Cluster(context.address_info["gcs_address"], port, metrics_port)
    finally:
        serve.shutdown()
        ray.shutdown()


def ray_serve_args(cluster: Cluster, *extra: str) -> list[str]:
    return ["--engine", "ray", "--ray-address", cluster.address, "--replica-cpus", "1", *extra]


def run_cli(
    models: Path, *args: str, port: int | None = None, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "service", "serve", "--models", str(models), *args]
    return subprocess.run(
        [*command, "--host", "127.0.0.1", "--port", str(port or free_port())],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_replica_resources_follow_the_device_and_the_cpu_reservation(tmp_path):
    from service.plumbing.settings import Settings
    from service.run.ray_serve import Scaling, gpus_per_replica, replica_settings

    cpu, cuda = (
        Settings(models_dir=tmp_path, device="cpu"),
        Settings(models_dir=tmp_path, device="cuda,cpu"),
    )
    assert gpus_per_replica(cpu, Scaling()) == 0.0
    assert gpus_per_replica(cuda, Scaling()) == 1.0  # a CUDA provider asked for: one GPU
    assert gpus_per_replica(cuda, Scaling(num_gpus=0.5)) == 0.5  # --replica-gpus wins
    threads = replica_settings(cpu, 2.5)
    assert (threads.intra_op_threads, threads.decode_threads) == (2, 2)
    pinned = replica_settings(cpu.model_copy(update={"intra_op_threads": 6}), 1.0)
    assert (pinned.intra_op_threads, pinned.decode_threads) == (6, 1)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--engine", "ray", "--workers", "2"), "--workers applies to --engine uvicorn"),
        (("--engine", "ray", "--autoscale", "3:1"), "--autoscale needs 1 <= MIN <= MAX"),
        (("--engine", "ray", "--replicas", "2", "--autoscale", "1:2"), "not both"),
        (
            (
                "--replicas",
                "2",
            ),
            "applies to --engine ray only",
        ),
        (("--engine", "k8s"), "choose uvicorn or ray"),
    ],
    ids=["workers", "autoscale-order", "replicas-and-autoscale", "replicas-without-ray", "engine"],
)
def test_bad_engine_flags_are_refused_before_ray_starts(tmp_path, args, message):
    result = run_cli(tmp_path, *args)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr


@pytest.fixture(scope="module")
def broken_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("broken-models")
    (root / "broken" / "1").mkdir(parents=True)
    (root / "broken" / "1" / "model.onnx").write_bytes(b"this is not an ONNX file")
    return root


def test_missing_model_folder_is_refused_before_ray_starts(tmp_path):
    plain = run_cli(tmp_path / "absent")
    on_ray = run_cli(tmp_path / "absent", "--engine", "ray")
    assert plain.returncode == on_ray.returncode == 2
    assert "--models/--models-dir:" in on_ray.stderr and "not a directory" in on_ray.stderr
    assert on_ray.stderr.splitlines()[-1] == plain.stderr.splitlines()[-1]


def test_broken_model_folder_fails_the_deploy_with_the_plain_servers_reason(
    ray_cluster, broken_repo
):
    with running_server(broken_repo, wait_ready=False) as plain:
        deadline = time.monotonic() + 30
        while (readyz := httpx.get(f"{plain.url}/readyz")).json()["error"]["detail"][
            "state"
        ] == "loading":
            assert time.monotonic() < deadline
            time.sleep(0.1)
        reason = readyz.json()["error"]["message"]
        logs = plain.logs()
    failure = re.search(r"model broken version 1 not served: .*", logs)
    assert readyz.status_code == 503 and failure, logs
    assert reason == f"no model could be loaded from {broken_repo}"

    started = time.monotonic()
    result = run_cli(broken_repo, *ray_serve_args(ray_cluster), port=ray_cluster.port)
    assert result.returncode == 1, result.stderr[-3000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last == f"error: the Ray Serve deploy failed: {reason}; {failure.group(0)}"
    assert "Traceback" not in last
    assert time.monotonic() - started < 120
    assert "rectifier" not in serve.status().applications  # nothing left half-deployed


@pytest.fixture(scope="module")
def ray_server(ray_cluster: Cluster, model_repo_dir: Path) -> Iterator[RunningServer]:
    """The CLI serving the shared test models with 2 replicas on the module's cluster."""
    args = ray_serve_args(ray_cluster, "--replicas", str(REPLICAS))
    env = {"RECTIFIER_DEFAULT_MODEL": "rgb"}
    with running_server(
        model_repo_dir, env=env, args=args, ready_timeout=150, port=ray_cluster.port
    ) as server:
        deadline = time.monotonic() + 60
        while "ready: 2 replicas on Ray Serve" not in server.logs():
            assert server.running and time.monotonic() < deadline, server.logs()[-3000:]
            time.sleep(0.1)
        yield server
        assert server.terminate() == 0, server.logs()[-3000:]


def replica_names() -> set[str]:
    return {
        actor["name"]
        for actor in ray.util.list_named_actors(all_namespaces=True)
        if actor["namespace"] == "serve" and "RectifierReplica" in actor["name"]
    }


def probabilities(client: httpx.Client, url: str, model: str, image: bytes) -> list[float]:
    response = client.post(
        f"{url}/v1/models/{model}/predict", files={"image": ("x", image)}, params={"top_k": 100}
    )
    assert response.status_code == 200, response.text
    scores = response.json()["predictions"][0]["top_k"]
    return [s["probability"] for s in sorted(scores, key=lambda s: s["index"])]


def test_two_replicas_answer_exactly_as_the_single_process_service(ray_server, e2e_server):
    assert len(replica_names()) == REPLICAS
    with httpx.Client(timeout=30) as client:
        for model in ("rgb", "gray"):
            for image in IMAGES:
                for _ in range(REPLICAS):  # requests spread over the replicas
                    on_ray = probabilities(client, ray_server.url, model, image)
                    single = probabilities(client, e2e_server.url, model, image)
                    np.testing.assert_allclose(on_ray, single, rtol=0, atol=1e-6)
        ready = client.get(f"{ray_server.url}/readyz")
        assert ready.status_code == 200 and ready.json()["models"] == ["gray:1", "rgb:1"]
        assert client.get(f"{ray_server.url}/v2/health/ready").status_code == 200
        assert client.get(f"{ray_server.url}/openapi.json").json()["info"]["title"] == "Rectifier"
        metrics = client.get(f"{ray_server.url}/metrics").text
        assert 'rectifier_model_info{model="rgb"' in metrics
        # a hot reload would reach one replica: refused, as under --workers
        reload = client.post(f"{ray_server.url}/v1/models/rgb/reload")
        assert reload.status_code == 409 and "Ray Serve" in reload.json()["error"]["message"]


def test_ray_metrics_export_counts_every_replicas_requests(ray_server, ray_cluster):
    """The scrape docs/scale-out.md recommends: Ray's node export, per replica."""
    series = re.compile(
        r'^ray_serve_deployment_request_counter_total\{[^}]*deployment="RectifierReplica"'
        r'[^}]*replica="(\w+)"[^}]*\} (\S+)$',
        re.MULTILINE,
    )
    live = {name.rsplit("#", 1)[-1] for name in replica_names()}
    deadline = time.monotonic() + 45  # Ray reports metrics every few seconds
    counts: dict[str, float] = {}
    while time.monotonic() < deadline:
        text = httpx.get(f"http://127.0.0.1:{ray_cluster.metrics_port}/metrics").text
        counts = {replica: float(value) for replica, value in series.findall(text)}
        if sum(counts.values()) >= len(IMAGES) * 2 * REPLICAS:  # the parity test's requests
            break
        time.sleep(1.0)
    assert sum(counts.values()) >= len(IMAGES) * 2 * REPLICAS, counts
    assert set(counts) <= live, (counts, live)


@dataclass
class Outcome:
    started: float
    ended: float
    status: int | str  # the HTTP status, or the transport error's name


@contextmanager
def steady_load(url: str, clients: int) -> Iterator[list[Outcome]]:
    """``clients`` threads posting predictions back to back until the block ends."""
    outcomes: list[Outcome] = []
    stop = threading.Event()

    def client_loop() -> None:
        with httpx.Client(timeout=30) as client:
            while not stop.is_set():
                started = time.monotonic()
                try:
                    status: int | str = client.post(
                        f"{url}/v1/models/rgb/predict", files={"image": ("x", IMAGES[0])}
                    ).status_code
                except httpx.TransportError as exc:
                    status = type(exc).__name__
                outcomes.append(Outcome(started, time.monotonic(), status))

    threads = [threading.Thread(target=client_loop) for _ in range(clients)]
    for thread in threads:
        thread.start()
    try:
        yield outcomes
    finally:
        stop.set()
        for thread in threads:
            thread.join(60)


def test_requests_keep_succeeding_while_ray_replaces_a_killed_replica(ray_server):
    clients = 2
    before = replica_names()
    assert len(before) == REPLICAS
    victim = sorted(before)[0]
    with steady_load(ray_server.url, clients) as outcomes:
        time.sleep(1.0)
        killed_from = time.monotonic()
        ray.kill(ray.get_actor(victim, namespace="serve"), no_restart=True)
        killed_at = time.monotonic()
        deadline = killed_at + 90
        while True:  # Ray notices the dead replica and starts another one
            names = replica_names()
            status = serve.status().applications["rectifier"].deployments["RectifierReplica"]
            if victim not in names and len(names) == REPLICAS and status.status == "HEALTHY":
                break
            assert time.monotonic() < deadline, (names, status)
            time.sleep(0.2)
        replaced_at = time.monotonic()
        time.sleep(1.5)  # and the new replica serves
    failures = [o for o in outcomes if o.status != 200]
    # Only requests in flight when the replica died may fail: started before the kill
    # returned, ended after it began; at most one per client.
    in_flight = [o for o in failures if o.started <= killed_at and o.ended >= killed_from]
    assert failures == in_flight, failures
    assert len(failures) <= clients, failures
    after_kill = [o for o in outcomes if o.started > killed_at]
    assert after_kill and all(o.status == 200 for o in after_kill)
    assert any(o.started > replaced_at for o in after_kill)
    log.info(
        "%d requests, %d failed (in flight on the killed replica), replaced in %.1fs",
        len(outcomes),
        len(failures),
        replaced_at - killed_at,
    )
