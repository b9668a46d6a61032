"""The load generator against small local servers on 127.0.0.1 (bounded: well under a second
of load per test). Speeds are never asserted here; they belong in docs/BENCHMARKS.md."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from service.loadgen import client as loadgen
from service.loadgen.client import LoadgenError, Target


@pytest.fixture(scope="module")
def image_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from PIL import Image

    path = tmp_path_factory.mktemp("img") / "sample.jpg"
    Image.new("RGB", (48, 40), (200, 30, 90)).save(path, quality=90)
    return path


def _bound_socket() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    return sock


@pytest.fixture(scope="module")
def floor_url() -> Iterator[str]:
    """The HTTP-floor FastAPI app (real multipart parsing) under uvicorn in a thread."""
    import uvicorn

    from bench.peers.http_floor import app

    sock = _bound_socket()
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started, "uvicorn did not start"
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()


class RawServer:
    """A stdlib asyncio server answering every request with one canned response."""

    def __init__(self, response: bytes, close_after: bool = False) -> None:
        self.response = response
        self.close_after = close_after
        self.requests: list[bytes] = []
        self.sock = _bound_socket()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                self.requests.append(head + await reader.readexactly(length))
                writer.write(self.response)
                await writer.drain()
                if self.close_after:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    def __enter__(self) -> RawServer:
        self.thread.start()
        future = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._handle, sock=self.sock), self.loop
        )
        self.server = future.result(timeout=5)
        return self

    async def _shutdown(self) -> None:
        self.server.close()
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._shutdown(), self.loop).result(timeout=5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)
        self.loop.close()
        self.sock.close()


def _request_for(url: str, image: Path, path: str = "/upload") -> tuple[Target, bytes]:
    target = loadgen.parse_target(url, path)
    return target, loadgen.build_image_request(target, image)


def test_drives_a_real_fastapi_multipart_endpoint(floor_url: str, image_file: Path) -> None:
    target, request = _request_for(floor_url, image_file)
    (result,) = loadgen.run_levels(target, request, [4], duration=0.4, warmup=0.1)
    assert result.concurrency == 4
    assert result.requests > 0
    assert result.errors == 0
    assert result.statuses == {"200": result.requests}
    lat = result.latency_ms
    assert 0 < lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["max"]


def test_request_is_one_valid_multipart_upload(image_file: Path) -> None:
    response = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    with RawServer(response) as server:
        target, request = _request_for(server.url, image_file, "/v1/models/m/predict")
        assert asyncio.run(loadgen.probe(target, request)) == 200
    sent = server.requests[0]
    assert sent.startswith(b"POST /v1/models/m/predict HTTP/1.1\r\n")
    assert b'name="image"; filename="sample.jpg"' in sent
    assert b"Content-Type: image/jpeg" in sent
    assert image_file.read_bytes() in sent


@pytest.mark.parametrize(
    ("response", "close_after"),
    [
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
            False,
        ),
        (b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 3\r\n\r\nabc", True),
        (b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", True),
    ],
    ids=["chunked", "connection-close", "http-1.0"],
)
def test_reads_chunked_and_closing_responses(
    image_file: Path, response: bytes, close_after: bool
) -> None:
    with RawServer(response, close_after=close_after) as server:
        target, request = _request_for(server.url, image_file)
        (result,) = loadgen.run_levels(target, request, [2], duration=0.3, warmup=0.05)
    assert result.requests > 0
    assert result.errors == 0


def test_non_2xx_answers_are_errors_without_latency(image_file: Path) -> None:
    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
    busy = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\nbusy"
    with RawServer(ok) as server:
        target, request = _request_for(server.url, image_file)
        server.response = busy  # the probe got 200; the run itself sees only 503s
        result = loadgen.run_event_loop(
            loadgen.run_load(target, request, concurrency=2, duration=0.3, warmup=0.0)
        )
    assert result.requests == 0
    assert result.errors > 0
    assert set(result.statuses) == {"503"}


def test_a_failing_probe_stops_before_the_load(image_file: Path) -> None:
    not_found = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"
    with RawServer(not_found) as server:
        target, request = _request_for(server.url, image_file)
        with pytest.raises(LoadgenError, match="answered 404"):
            loadgen.run_levels(target, request, [1], duration=0.2)


def test_cli_json_output(floor_url: str, image_file: Path) -> None:
    app = typer.Typer()
    loadgen.register(app)
    app.command("noop")(lambda: None)  # two commands keep `bench` a named subcommand
    args = [
        "bench", floor_url, "--image", str(image_file), "--path", "/upload",
        "--concurrency", "1,3", "--duration", "0.3", "--warmup", "0.05", "--json",
    ]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert document["path"] == "/upload"
    assert [r["concurrency"] for r in document["results"]] == [1, 3]
    assert all(r["errors"] == 0 and r["requests"] > 0 for r in document["results"])


def test_cli_reports_an_unreachable_server(image_file: Path) -> None:
    app = typer.Typer()
    loadgen.register(app)
    app.command("noop")(lambda: None)
    port = _bound_socket().getsockname()[1]  # bound, never listening: connection refused
    args = ["bench", f"http://127.0.0.1:{port}", "--model", "m", "--image", str(image_file)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert "cannot connect" in result.output


def test_model_name_fills_the_default_path() -> None:
    target = loadgen.parse_target("http://localhost:9000/api/", "/v1/models/demo/predict")
    assert target == Target("localhost", 9000, "/api/v1/models/demo/predict")


@pytest.mark.parametrize("url", ["https://example.org", "127.0.0.1:8000", "ftp://host"])
def test_rejects_unsupported_urls(url: str) -> None:
    with pytest.raises(LoadgenError, match="http://"):
        loadgen.parse_target(url, "/x")


@pytest.mark.parametrize("text", ["", "0", "1,x", "-4"])
def test_rejects_bad_concurrency_levels(text: str) -> None:
    with pytest.raises(typer.BadParameter):
        loadgen.parse_levels(text)


def test_percentiles_use_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert loadgen.percentile(values, 50) == 50.0
    assert loadgen.percentile(values, 99) == 99.0
    assert loadgen.percentile(values, 100) == 100.0
    assert loadgen.percentile([7.0], 90) == 7.0
