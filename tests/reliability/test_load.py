"""Load, overload and client disconnects against the real server.

- Sustained load: the demo model at concurrency 64 for ``SUSTAINED_S`` seconds with the
  benchmark's load generator: zero errors, bounded p99, resident memory that stops growing.
- Overload: a slow model (about 30 ms per image, batches of one) behind a queue of 4: the
  excess gets 503 ``queue_full`` with ``Retry-After`` at once, every accepted request
  succeeds, and the latency comes back when the burst is over.
- Client disconnects, mid-request and mid-upload: no queue slot and no memory is leaked.
"""

from __future__ import annotations

import concurrent.futures
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from model.card import read_card
from service.loadgen.client import LoadResult, Target, build_image_request, run_event_loop, run_load
from tests.helpers.images import encode, scene
from tests.helpers.models import ExportedModel
from tests.helpers.rawhttp import send_raw
from tests.helpers.server import REPO_ROOT, RunningServer, running_server
from tests.reliability import faults

pytestmark = pytest.mark.e2e

DEMO_MODELS = REPO_ROOT / "models"
DEMO_IMAGE = REPO_ROOT / "examples" / "images" / "keep_right.png"
SUSTAINED_S = 30.0
CONCURRENCY = 64
P99_LIMIT_MS = 2000.0
MIB = 1024 * 1024


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


class RssSampler:
    """Samples a process's resident memory every ``interval_s`` in a thread."""

    def __init__(self, pid: int, interval_s: float = 0.25) -> None:
        self.pid = pid
        self.interval_s = interval_s
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.monotonic(), rss_bytes(self.pid)))
            self._stop.wait(self.interval_s)

    def peak_between(self, start: float, end: float) -> int:
        return max(rss for t, rss in self.samples if start <= t <= end)


def address(server: RunningServer) -> tuple[str, int]:
    host, _, port = server.url.removeprefix("http://").partition(":")
    return host, int(port)


# ---------------------------------------------------------------------------- sustained


@pytest.mark.slow
def test_sustained_load_has_no_errors_and_flat_memory(figures: Callable[[str], None]) -> None:
    with running_server(DEMO_MODELS, env={"RECTIFIER_ACCESS_LOG": "false"}) as server:
        host, port = address(server)
        target = Target(host, port, "/v1/models/demo/predict")
        request = build_image_request(target, DEMO_IMAGE)
        pid = server.process.pid
        rss_start = rss_bytes(pid)
        with RssSampler(pid) as sampler:
            began = time.monotonic()
            result: LoadResult = run_event_loop(
                run_load(target, request, concurrency=CONCURRENCY, duration=SUSTAINED_S, warmup=2.0)
            )
            ended = time.monotonic()
        time.sleep(1.0)
        rss_end = rss_bytes(pid)
        assert server.running
    third = (ended - began) / 3
    rss_peak = max(rss for _, rss in sampler.samples)
    rss_middle = sampler.peak_between(began + third, began + 2 * third)
    rss_last = sampler.peak_between(began + 2 * third, ended)
    figures(
        f"\nsustained load: {result.requests} requests in {result.duration_s:.1f} s at "
        f"concurrency {CONCURRENCY} ({result.requests_per_s:.0f}/s), {result.errors} errors, "
        f"p50 {result.latency_ms['p50']:.1f} ms, p99 {result.latency_ms['p99']:.1f} ms, "
        f"max {result.latency_ms['max']:.1f} ms; RSS start {rss_start / MIB:.1f} MiB, "
        f"peak {rss_peak / MIB:.1f} MiB, end {rss_end / MIB:.1f} MiB "
        f"(middle third peak {rss_middle / MIB:.1f}, last third peak {rss_last / MIB:.1f})"
    )
    assert result.errors == 0, result.statuses
    assert result.statuses == {"200": result.requests}
    assert result.requests > CONCURRENCY * 10
    assert result.latency_ms["p99"] < P99_LIMIT_MS
    # Flat memory: the last third of the run peaks no higher than the middle third (plus
    # allocator noise), and the process does not end far above where the load began.
    assert rss_last <= rss_middle * 1.05 + 16 * MIB
    assert rss_end <= rss_start + 64 * MIB


# ----------------------------------------------------------------------------- overload


@pytest.fixture(scope="module")
def slow_server(
    model_repo: dict[str, ExportedModel], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    repo = tmp_path_factory.mktemp("slow-models")
    faults.write_slow(read_card(model_repo["rgb"].onnx_path), repo, "slow")
    env = {
        "RECTIFIER_MAX_QUEUE": "4",
        "RECTIFIER_MAX_BATCH_SIZE": "1",
        "RECTIFIER_RETRY_AFTER_S": "2",
        "RECTIFIER_INTRA_OP_THREADS": "1",
        "RECTIFIER_ACCESS_LOG": "false",
    }
    with running_server(repo, env=env) as server:
        yield server


IMAGE = encode(scene(40, 40, seed=21), "PNG")


def timed_predict(client: httpx.Client) -> tuple[int, float, httpx.Response]:
    started = time.monotonic()
    response = client.post(
        "/v1/models/slow/predict", content=IMAGE, headers={"Content-Type": "image/png"}
    )
    return response.status_code, time.monotonic() - started, response


def sequential_latency(server: RunningServer, count: int = 5) -> float:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        latencies = []
        for _ in range(count):
            status, seconds, _ = timed_predict(client)
            assert status == 200
            latencies.append(seconds)
    return sorted(latencies)[count // 2]


def queue_depth(server: RunningServer) -> int:
    info = httpx.get(f"{server.url}/v1/models/slow", timeout=10).json()
    return int(info["versions"][0]["batching"]["queue_depth"])


def test_overload_sheds_at_once_and_recovers(
    slow_server: RunningServer, figures: Callable[[str], None]
) -> None:
    baseline = sequential_latency(slow_server)
    burst = 48
    clients = [httpx.Client(base_url=slow_server.url, timeout=60) for _ in range(burst)]
    try:
        with concurrent.futures.ThreadPoolExecutor(burst) as pool:
            outcomes = list(pool.map(timed_predict, clients))
    finally:
        for client in clients:
            client.close()
    accepted = [(s, t) for s, t, _ in outcomes if s == 200]
    shed = [(t, r) for s, t, r in outcomes if s == 503]
    assert len(accepted) + len(shed) == burst, [s for s, _, _ in outcomes]
    assert accepted and shed
    for _, response in shed:
        assert response.json()["error"]["code"] == "queue_full"
        assert response.headers["retry-after"] == "2"
    slowest_refusal = max(t for t, _ in shed)
    slowest_accepted = max(t for _, t in accepted)
    after = sequential_latency(slow_server)
    figures(
        f"\noverload: burst of {burst} on a queue of 4: {len(accepted)} accepted (all 200, "
        f"slowest {slowest_accepted * 1000:.0f} ms), {len(shed)} refused with 503 + "
        f"Retry-After (slowest refusal {slowest_refusal * 1000:.0f} ms); median latency "
        f"{baseline * 1000:.0f} ms before, {after * 1000:.0f} ms after"
    )
    # Refused at once: well under the time of one inference queue.
    assert slowest_refusal < 1.0
    assert after < baseline * 2 + 0.1  # back to the unloaded latency (with noise allowance)
    assert queue_depth(slow_server) == 0


# -------------------------------------------------------------------------- disconnects


def abandon_requests(server: RunningServer, count: int, *, upload_fraction: float) -> None:
    """Open ``count`` connections, send all (1.0) or part of a request, and hang up."""
    host, port = address(server)
    big = encode(scene(400, 400, seed=5), "BMP")  # ~480 KB
    body = big if upload_fraction < 1.0 else IMAGE
    head = (
        f"POST /v1/models/slow/predict HTTP/1.1\r\nHost: {host}\r\n"
        f"Content-Type: image/bmp\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    sockets = []
    for _ in range(count):
        sock = socket.create_connection((host, port), timeout=5)
        sock.sendall(head + body[: int(len(body) * upload_fraction)])
        sockets.append(sock)
    time.sleep(0.2)  # let the server read them
    for sock in sockets:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        sock.close()  # RST: the client is gone


def wait_for(condition: object, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return True
        time.sleep(0.1)
    return False


def test_disconnects_leak_no_queue_slots_or_memory(
    slow_server: RunningServer, figures: Callable[[str], None]
) -> None:
    pid = slow_server.process.pid
    sequential_latency(slow_server, 2)
    rss_before = rss_bytes(pid)
    for _ in range(10):
        abandon_requests(slow_server, 12, upload_fraction=1.0)  # mid-request (queued)
        abandon_requests(slow_server, 12, upload_fraction=0.5)  # mid-upload
    assert wait_for(lambda: queue_depth(slow_server) == 0, 15), "queue slots leaked"
    # Every slot is free again: a full queue's worth of concurrent requests is accepted.
    clients = [httpx.Client(base_url=slow_server.url, timeout=60) for _ in range(4)]
    try:
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            statuses = [s for s, _, _ in pool.map(timed_predict, clients)]
    finally:
        for client in clients:
            client.close()
    rss_after = rss_bytes(pid)
    figures(
        f"\ndisconnects: 240 abandoned requests (120 mid-request, 120 mid-upload of 480 KB); "
        f"queue depth back to 0; RSS {rss_before / MIB:.1f} -> {rss_after / MIB:.1f} MiB"
    )
    assert statuses == [200] * 4
    assert rss_after < rss_before + 48 * MIB
    response = send_raw(*address(slow_server), "GET", "/readyz", timeout_s=5)
    assert response.status == 200
