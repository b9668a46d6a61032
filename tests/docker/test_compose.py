"""The real Dockerfile and docker-compose.yml, built and run on this machine.

Starts dockerd when none runs (and stops it after), builds debian:bookworm-slim locally when
no registry answers, builds the ``serve`` target, brings the ``api`` service up with the
real compose file on a free 127.0.0.1 port, classifies the sample images through it, reads
/metrics, and finally stops the stack while a request is in flight.

Skips when Docker cannot be had here (not root, packages not installable), unless
RECTIFIER_DOCKER_TEST_REQUIRED=1 (as `make docker-test` and CI set), where it fails instead.
"""

from __future__ import annotations

import json
import os
import socket
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.docker import harness
from tests.docker.harness import REPORT
from tests.helpers.server import free_port, model_info_pids

pytestmark = [pytest.mark.docker, pytest.mark.timeout(1800)]

MAX_SERVE_IMAGE_MB = 600
READY_TIMEOUT_S = 180
MODELS = Path(os.environ.get("RECTIFIER_DOCKER_TEST_MODELS", harness.REPO / "models"))
IMAGES = Path(os.environ.get("RECTIFIER_DOCKER_TEST_IMAGES", harness.REPO / "examples/images"))
IMAGE_TYPES = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png"}


@pytest.fixture(scope="session")
def docker_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """dockerd answering and debian:bookworm-slim present, or a skip."""
    try:
        harness.ensure_packages()
        with harness.docker_daemon(tmp_path_factory.mktemp("dockerd")):
            started = time.monotonic()
            harness.ensure_base_image()
            REPORT["base image ready (s)"] = round(time.monotonic() - started, 1)
            yield
    except harness.DockerUnavailable as exc:
        if os.environ.get("RECTIFIER_DOCKER_TEST_REQUIRED") == "1":
            pytest.fail(f"Docker is required here but unavailable: {exc}")
        pytest.skip(f"Docker unavailable: {exc}")


@pytest.fixture(scope="module")
def project(docker_host: None) -> Iterator[Path]:
    """A copy of the build context, compose file and model repository."""
    if not any(MODELS.glob("*/*/model.onnx")):
        pytest.fail(f"no model under {MODELS} (expected <name>/<version>/model.onnx)")
    with tempfile.TemporaryDirectory(prefix="rectifier-compose-") as tmp:
        yield harness.copy_project(Path(tmp) / "project", MODELS)


@pytest.fixture(scope="module")
def serve_image(project: Path) -> str:
    seconds = harness.build_image(project, "serve", harness.SERVE_IMAGE)
    REPORT["serve build (s)"] = round(seconds, 1)
    REPORT["serve image (MB)"] = round(harness.image_size_bytes(harness.SERVE_IMAGE) / 1e6)
    return harness.SERVE_IMAGE


@dataclass
class Stack:
    compose: harness.ComposeProject
    base_url: str
    port: int


@pytest.fixture(scope="module")
def stack(project: Path, serve_image: str) -> Iterator[Stack]:
    port = free_port()
    compose = harness.ComposeProject(
        directory=project,
        name=f"rectifier-test-{uuid.uuid4().hex[:8]}",
        env={
            "RECTIFIER_PUBLISH": f"127.0.0.1:{port}",
            # Readiness turns 503 at SIGTERM and the listener stays open this long, so the
            # shutdown test can see the drain begin before it finishes its request.
            "RECTIFIER_SHUTDOWN_DELAY_S": "2",
        },
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        started = time.monotonic()
        compose("up", "-d", "--no-build", "api", timeout=300)
        harness.wait_until_ready(base_url, READY_TIMEOUT_S)
        REPORT["up -> ready (s)"] = round(time.monotonic() - started, 1)
        harness.wait_until_healthy(compose, "api", READY_TIMEOUT_S)
        REPORT["up -> healthy (s)"] = round(time.monotonic() - started, 1)
        yield Stack(compose, base_url, port)
    except Exception:
        print(compose("logs", "--no-color", timeout=60, check=False)[-6000:])
        raise
    finally:
        compose("down", "--remove-orphans", "--volumes", "-t", "10", timeout=180, check=False)


def sample_images() -> list[Path]:
    """The sample images, named after their true label (``stop.jpg``)."""
    if not IMAGES.is_dir():
        return []
    return sorted(p for p in IMAGES.iterdir() if p.suffix.lower() in IMAGE_TYPES)


def model_name() -> str:
    names = sorted({path.parts[-3] for path in MODELS.glob("*/*/model.onnx")})
    return "demo" if "demo" in names else names[0]


def multipart(image: Path) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    head = (
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="image"; filename="{image.name}"\r\n'
        f"Content-Type: {IMAGE_TYPES[image.suffix.lower()]}\r\n\r\n"
    ).encode()
    body = head + image.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def predict(base_url: str, image: Path) -> dict[str, object]:
    body, content_type = multipart(image)
    request = urllib.request.Request(
        f"{base_url}/v1/models/{model_name()}/predict",
        data=body,
        headers={"Content-Type": content_type},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200
        assert "Server-Timing" in response.headers
        result: dict[str, object] = json.load(response)
        return result


def top_label(result: dict[str, object]) -> str:
    predictions = result["predictions"]
    assert isinstance(predictions, list) and len(predictions) == 1
    return str(predictions[0]["top_k"][0]["label"])


# --- the image --------------------------------------------------------------------------


def test_serve_image_is_small(serve_image: str) -> None:
    size_mb = harness.image_size_bytes(serve_image) / 1e6
    assert size_mb < MAX_SERVE_IMAGE_MB, f"{serve_image} is {size_mb:.0f} MB"


def test_serve_image_runs_as_non_root(serve_image: str) -> None:
    code, out = harness.run_in_image(serve_image, "id", "-u")
    assert code == 0, out
    assert int(out.strip()) != 0


def test_serve_image_holds_no_torch_compiler_or_pip_cache(serve_image: str) -> None:
    code, out = harness.run_in_image(serve_image, "python", "-c", "import torch")
    assert code != 0 and "No module named 'torch'" in out, out
    code, out = harness.run_in_image(
        serve_image,
        "sh",
        "-c",
        "command -v gcc cc c++ g++ clang; ls -A /root/.cache 2>/dev/null",
        user="0",
    )
    assert out.strip() == "", f"compilers or caches in the image: {out}"
    code, out = harness.run_in_image(serve_image, "rectifier", "--help")
    assert code == 0 and "serve" in out, out


def test_serve_image_leaves_out_the_load_generator(serve_image: str) -> None:
    """``rectifier bench`` is a client: not in the serving image, and not listed there."""
    code, out = harness.run_in_image(serve_image, "python", "-c", "import service.loadgen")
    assert code != 0 and "No module named 'service.loadgen'" in out, out
    code, out = harness.run_in_image(serve_image, "rectifier", "--help")
    assert code == 0 and " bench " not in out, out


def test_compose_profiles_are_valid(project: Path) -> None:
    compose = harness.ComposeProject(directory=project, name="rectifier-config-check")
    compose("config", "-q", timeout=60)
    profiles = ("--profile", "gpu", "--profile", "train", "--profile", "pacs")
    services = compose(*profiles, "config", "--services")
    assert set(services.split()) == {"api", "api-gpu", "train", "orthanc"}
    pacs = compose("--profile", "pacs", "config", timeout=60)
    assert "docker/orthanc/Dockerfile" in pacs and "http://orthanc:8042/dicom-web" in pacs
    gpu = compose("--profile", "gpu", "config", timeout=60)
    assert "target: serve-gpu" in gpu and "driver: nvidia" in gpu and "- gpu" in gpu
    train = compose("--profile", "train", "config", timeout=60)
    assert "target: train" in train and "/work/runs" in train and "/work/data" in train


# --- the running stack ------------------------------------------------------------------------


def test_container_is_healthy_read_only_and_unprivileged(stack: Stack) -> None:
    cid = stack.compose.container_id("api")
    out = harness.run(
        [
            "docker",
            "inspect",
            "-f",
            "{{.State.Health.Status}} {{.HostConfig.ReadonlyRootfs}} {{.Config.User}}",
            cid,
        ],
        timeout=30,
    ).stdout.split()
    assert out == ["healthy", "true", "rectifier"]


def test_sample_images_exist() -> None:
    assert sample_images(), f"no sample images in {IMAGES}"


@pytest.mark.parametrize("image", sample_images(), ids=lambda p: p.name)
def test_predicts_sample_image(stack: Stack, image: Path) -> None:
    assert top_label(predict(stack.base_url, image)) == image.stem


def test_metrics_count_predictions(stack: Stack) -> None:
    predict(stack.base_url, sample_images()[0])
    with urllib.request.urlopen(f"{stack.base_url}/metrics", timeout=10) as response:
        assert response.status == 200
        text = response.read().decode()
    ok = [
        line
        for line in text.splitlines()
        if line.startswith("rectifier_predictions_total{") and 'status="200"' in line
    ]
    assert ok and float(ok[0].rsplit(" ", 1)[1]) >= 1, text[:2000]
    assert "rectifier_ready 1.0" in text


def test_stop_drains_in_flight_request_and_exits_zero(stack: Stack) -> None:
    """Half a request is sent, the stack is stopped, readiness turns 503, the rest of the
    request is sent and answered, and the container exits 0 well inside its grace period."""
    image = sample_images()[0]
    body, content_type = multipart(image)
    head = (
        f"POST /v1/models/{model_name()}/predict HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{stack.port}\r\n"
        f"Content-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    half = len(body) // 2
    with socket.create_connection(("127.0.0.1", stack.port), timeout=30) as conn:
        conn.sendall(head + body[:half])
        time.sleep(0.5)  # the server has the request's head: it is in flight
        started = time.monotonic()
        stopper = stack.compose.popen("stop", "api")
        try:
            assert wait_for_draining(stack.base_url, timeout=60), "readiness never turned 503"
            conn.sendall(body[half:])
            status, payload = read_response(conn)
        finally:
            out, _ = stopper.communicate(timeout=120)
    stop_seconds = time.monotonic() - started
    REPORT["stop with a request in flight (s)"] = round(stop_seconds, 1)
    assert stopper.returncode == 0, out
    assert status == 200, payload[:500]
    assert top_label(json.loads(payload)) == image.stem
    state = stack.compose.container_state("api")
    assert state["Status"] == "exited"
    assert state["ExitCode"] == 0, stack.compose("logs", "--no-color", timeout=60)[-4000:]
    assert not state["OOMKilled"]
    assert stop_seconds < 40, "stopped only by SIGKILL at the end of the grace period"
    logs = stack.compose("logs", "--no-color", "api", timeout=60)
    assert "Traceback" not in logs, logs[-4000:]


def wait_for_draining(base_url: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{base_url}/readyz", timeout=5):
                pass
        except urllib.error.HTTPError as exc:
            if exc.code == 503:
                return True
        except OSError:
            return False  # the listener closed: too late to tell
        time.sleep(0.05)
    return False


def read_response(conn: socket.socket) -> tuple[int, bytes]:
    """Read one HTTP/1.1 response with a Content-Length body."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            raise ConnectionError(f"connection closed mid-response: {data[:300]!r}")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {
        k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])
    }
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        body += chunk
    return status, body


def test_two_workers_serve_in_the_read_only_container(project: Path, serve_image: str) -> None:
    """``RECTIFIER_WORKERS=2``: both workers start under read_only with the tmpfs /tmp
    (their shared metrics files go there), serve, and stop cleanly."""
    port = free_port()
    compose = harness.ComposeProject(
        directory=project,
        name=f"rectifier-workers-{uuid.uuid4().hex[:8]}",
        env={"RECTIFIER_PUBLISH": f"127.0.0.1:{port}", "RECTIFIER_WORKERS": "2"},
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        compose("up", "-d", "--no-build", "api", timeout=300)
        harness.wait_until_ready(base_url, READY_TIMEOUT_S)
        for image in sample_images():
            assert top_label(predict(base_url, image)) == image.stem
        deadline = time.monotonic() + 30
        while True:
            with urllib.request.urlopen(f"{base_url}/metrics", timeout=10) as response:
                text = response.read().decode()
            pids = model_info_pids(text, model_name())
            if len(pids) == 2 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert len(pids) == 2, text[-2000:]
        compose("stop", "api", timeout=120)
        state = compose.container_state("api")
        assert state["ExitCode"] == 0, compose("logs", "--no-color", timeout=60)[-4000:]
        logs = compose("logs", "--no-color", "api", timeout=60)
        assert "Traceback" not in logs, logs[-4000:]
    finally:
        compose("down", "--remove-orphans", "--volumes", "-t", "10", timeout=180, check=False)
