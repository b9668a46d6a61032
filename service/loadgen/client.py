"""A light HTTP load generator: ``rectifier bench``.

It shares the machine with the server it measures, so it does as little as it can: one
asyncio event loop (uvloop when installed), raw keep-alive HTTP/1.1 connections, one request
byte string built once (a multipart upload of the image), and a response parser that reads
the status line and a ``Content-Length`` (or chunked) body and nothing else. A fixed number of
connections each send a request as soon as the previous answer arrived (closed loop), for a
bounded time. Torch-free and server-agnostic: ``--path`` points it at any peer.
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
import mimetypes
import struct
import time
import uuid
from collections import Counter
from collections.abc import Coroutine
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import typer

T = TypeVar("T")

WARMUP_SECONDS = 1.0
REQUEST_TIMEOUT_SECONDS = 30.0
# Requests still in flight when the time is up get this long to finish before they are
# cancelled (and counted as errors), so a stalled server cannot stretch a run.
DRAIN_SECONDS = 10.0


class LoadgenError(RuntimeError):
    """The target cannot be driven (bad URL, refused connection, unreadable image)."""


@dataclass(frozen=True)
class Target:
    host: str
    port: int
    path: str


def parse_target(url: str, path: str) -> Target:
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise LoadgenError(f"{url!r}: only plain http://HOST[:PORT] URLs are supported")
    prefix = parts.path.rstrip("/")
    return Target(parts.hostname, parts.port or 80, prefix + "/" + path.lstrip("/"))


class Protocol(StrEnum):
    """How the image travels: the image API's multipart form, or the Open Inference
    Protocol's ``encoded_image`` BYTES input, as binary tensor data or base64 JSON."""

    V1 = "v1"
    V2_BINARY = "v2-binary"
    V2_JSON = "v2-json"


DEFAULT_PATHS = {
    Protocol.V1: "/v1/models/{model}/predict",
    Protocol.V2_BINARY: "/v2/models/{model}/infer",
    Protocol.V2_JSON: "/v2/models/{model}/infer",
}


def post_request(
    target: Target, content_type: str, body: bytes, headers: dict[str, str] | None = None
) -> bytes:
    """A complete HTTP/1.1 POST (head and body) as one byte string."""
    extra = "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
    head = (
        f"POST {target.path} HTTP/1.1\r\n"
        f"Host: {target.host}:{target.port}\r\n"
        "User-Agent: rectifier-bench\r\n"
        "Accept: */*\r\n"
        "Connection: keep-alive\r\n"
        f"Content-Type: {content_type}\r\n"
        f"{extra}"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("ascii") + body


def build_multipart_request(
    target: Target, field_name: str, filename: str, payload: bytes, content_type: str
) -> bytes:
    """The request with the image as a multipart form field."""
    boundary = f"rectifier-bench-{uuid.uuid4().hex}"
    body = b"".join(
        (
            f"--{boundary}\r\n".encode(),
            (
                f'Content-Disposition: form-data; name="{field_name}"; filename="{filename}"\r\n'
                f"Content-Type: {content_type}\r\n\r\n"
            ).encode(),
            payload,
            f"\r\n--{boundary}--\r\n".encode(),
        )
    )
    return post_request(target, f"multipart/form-data; boundary={boundary}", body)


def build_v2_request(target: Target, payload: bytes, *, binary: bool, output: str) -> bytes:
    """An Open Inference Protocol request: one ``encoded_image`` element, asking for the top 5
    classes of ``output`` (the classification extension), as the image API answers."""
    image_input: dict[str, Any] = {"name": "encoded_image", "datatype": "BYTES", "shape": [1]}
    outputs = [{"name": output, "parameters": {"classification": 5}}]
    if not binary:
        image_input["data"] = [base64.b64encode(payload).decode("ascii")]
        document = {"inputs": [image_input], "outputs": outputs}
        return post_request(target, "application/json", json.dumps(document).encode())
    # A binary BYTES element is its 4-byte little-endian length, then its bytes.
    element = struct.pack("<I", len(payload)) + payload
    image_input["parameters"] = {"binary_data_size": len(element)}
    header = json.dumps({"inputs": [image_input], "outputs": outputs}).encode()
    return post_request(
        target,
        "application/octet-stream",
        header + element,
        {"Inference-Header-Content-Length": str(len(header))},
    )


def build_image_request(
    target: Target,
    image: Path,
    field_name: str = "image",
    protocol: Protocol = Protocol.V1,
    output: str = "probabilities",
) -> bytes:
    try:
        payload = image.read_bytes()
    except OSError as exc:
        raise LoadgenError(f"cannot read image {image}: {exc}") from exc
    if protocol is not Protocol.V1:
        return build_v2_request(
            target, payload, binary=protocol is Protocol.V2_BINARY, output=output
        )
    content_type = mimetypes.guess_type(image.name)[0] or "application/octet-stream"
    return build_multipart_request(target, field_name, image.name, payload, content_type)


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """Read one response; return its status and whether the connection stays open."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length, chunked, keep_alive = 0, False, not lines[0].startswith(b"HTTP/1.0")
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding":
            chunked = b"chunked" in value.lower()
        elif name == b"connection":
            keep_alive = value.strip().lower() != b"close"
    if chunked:
        await _read_chunked(reader)
    elif length:
        await reader.readexactly(length)
    return status, keep_alive


async def _read_chunked(reader: asyncio.StreamReader) -> None:
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";", 1)[0], 16)
        if size == 0:
            await reader.readuntil(b"\r\n")  # no trailers are expected: the closing CRLF
            return
        await reader.readexactly(size + 2)


@dataclass
class _Tally:
    """What the workers of one run record; shared by reference, never locked (one loop)."""

    measuring: bool = False
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True)
class LoadResult:
    concurrency: int
    duration_s: float
    requests: int
    errors: int
    requests_per_s: float
    latency_ms: dict[str, float]
    statuses: dict[str, int]
    # The generator's own CPU time over the window, in cores: its share of a machine it
    # shares with the server (the benchmark counts it in the same-box ceiling).
    cpu_cores: float = 0.0


async def _worker(target: Target, request: bytes, stop_at: float, tally: _Tally) -> None:
    reader: asyncio.StreamReader | None = None
    writer: asyncio.StreamWriter | None = None
    try:
        while time.perf_counter() < stop_at:
            if writer is None:
                try:
                    reader, writer = await asyncio.open_connection(target.host, target.port)
                except OSError:
                    if tally.measuring:
                        tally.statuses["connect-error"] += 1
                    await asyncio.sleep(0.05)
                    continue
            assert reader is not None
            started = time.perf_counter()
            try:
                writer.write(request)
                async with asyncio.timeout(REQUEST_TIMEOUT_SECONDS):
                    status, keep_alive = await read_response(reader)
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
                status, keep_alive = -1, False
            except TimeoutError:
                status, keep_alive = -2, False
            if tally.measuring:
                tally.statuses[_status_name(status)] += 1
                if 200 <= status < 300:
                    tally.latencies.append(time.perf_counter() - started)
            if not keep_alive:
                writer.close()
                reader = writer = None
    finally:
        if writer is not None:
            writer.close()


def _status_name(status: int) -> str:
    return {-1: "io-error", -2: "timeout"}.get(status, str(status))


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list (q in 0..100)."""
    if not sorted_values:
        return float("nan")
    rank = max(1, min(len(sorted_values), math.ceil(q / 100 * len(sorted_values))))
    return sorted_values[rank - 1]


async def run_load(
    target: Target,
    request: bytes,
    *,
    concurrency: int,
    duration: float,
    warmup: float = WARMUP_SECONDS,
) -> LoadResult:
    """Keep ``concurrency`` requests in flight for ``warmup + duration`` seconds.

    Only requests that complete inside the measured window count; the rate is completions
    in the window divided by its length.
    """
    if concurrency < 1 or duration <= 0:
        raise LoadgenError("concurrency must be >= 1 and duration > 0")
    tally = _Tally()
    start = time.perf_counter()
    measure_from, stop_at = start + warmup, start + warmup + duration
    workers = [
        asyncio.create_task(_worker(target, request, stop_at, tally)) for _ in range(concurrency)
    ]
    await asyncio.sleep(max(0.0, measure_from - time.perf_counter()))
    tally.measuring = True
    window_start, cpu_start = time.perf_counter(), time.process_time()
    await asyncio.sleep(max(0.0, stop_at - time.perf_counter()))
    tally.measuring = False
    window, cpu = time.perf_counter() - window_start, time.process_time() - cpu_start
    _, pending = await asyncio.wait(workers, timeout=DRAIN_SECONDS)
    for task in pending:
        task.cancel()
    await asyncio.gather(*workers, return_exceptions=True)
    return summarise(concurrency, window, tally, cpu)


def summarise(concurrency: int, window: float, tally: _Tally, cpu_s: float = 0.0) -> LoadResult:
    latencies = sorted(tally.latencies)
    ok = len(latencies)
    errors = sum(tally.statuses.values()) - ok
    ms = {
        name: round(percentile(latencies, q) * 1e3, 3)
        for name, q in (("p50", 50), ("p90", 90), ("p99", 99))
    }
    ms["mean"] = round(sum(latencies) / ok * 1e3, 3) if ok else float("nan")
    ms["max"] = round(latencies[-1] * 1e3, 3) if ok else float("nan")
    return LoadResult(
        concurrency=concurrency,
        duration_s=round(window, 3),
        requests=ok,
        errors=errors,
        requests_per_s=round(ok / window, 2) if window > 0 else 0.0,
        latency_ms=ms,
        statuses=dict(sorted(tally.statuses.items())),
        cpu_cores=round(cpu_s / window, 3) if window > 0 else 0.0,
    )


async def probe(target: Target, request: bytes) -> int:
    """Send one request and return its status; raises LoadgenError when nothing answers."""
    try:
        reader, writer = await asyncio.open_connection(target.host, target.port)
    except OSError as exc:
        raise LoadgenError(f"cannot connect to {target.host}:{target.port}: {exc}") from exc
    try:
        writer.write(request)
        status, _ = await asyncio.wait_for(read_response(reader), REQUEST_TIMEOUT_SECONDS)
        return status
    except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError) as exc:
        raise LoadgenError(f"{target.host}:{target.port} gave no valid response: {exc}") from exc
    finally:
        writer.close()


def run_levels(
    target: Target,
    request: bytes,
    levels: list[int],
    *,
    duration: float,
    warmup: float = WARMUP_SECONDS,
) -> list[LoadResult]:
    """Probe the target once, then run each concurrency level in turn on a fresh loop."""

    async def all_levels() -> list[LoadResult]:
        status = await probe(target, request)
        if not 200 <= status < 300:
            raise LoadgenError(
                f"POST {target.path} answered {status}; check --model, --path and the image"
            )
        return [
            await run_load(target, request, concurrency=c, duration=duration, warmup=warmup)
            for c in levels
        ]

    return run_event_loop(all_levels())


def run_event_loop(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` on uvloop when it is installed (it parses and schedules faster)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


def parse_levels(text: str) -> list[int]:
    try:
        levels = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        levels = []
    if not levels or min(levels) < 1:
        raise typer.BadParameter(
            f"{text!r}: give positive integers separated by commas, e.g. 1,16,64",
            param_hint="--concurrency",
        )
    return levels


def format_table(results: list[LoadResult]) -> str:
    header = f"{'conc':>5} {'req/s':>10} {'p50 ms':>9} {'p90 ms':>9} {'p99 ms':>9} {'errors':>7}"
    rows = [
        f"{r.concurrency:>5} {r.requests_per_s:>10.1f} {r.latency_ms['p50']:>9.2f} "
        f"{r.latency_ms['p90']:>9.2f} {r.latency_ms['p99']:>9.2f} {r.errors:>7}"
        for r in results
    ]
    return "\n".join([header, *rows])


def bench(
    url: str = typer.Argument(..., help="The server, e.g. http://127.0.0.1:8000"),
    model: str = typer.Option("", "--model", help="Model name, substituted into --path."),
    image: Path = typer.Option(..., "--image", exists=True, dir_okay=False, help="Image to send."),
    concurrency: str = typer.Option("1,16,64", "--concurrency", help="Levels, comma-separated."),
    duration: float = typer.Option(15.0, "--duration", min=0.1, help="Seconds per level."),
    warmup: float = typer.Option(WARMUP_SECONDS, "--warmup", min=0.0, help="Unmeasured seconds."),
    path: str | None = typer.Option(
        None,
        "--path",
        help="Request path; {model} is replaced. Default: the protocol's inference path.",
    ),
    field_name: str = typer.Option("image", "--field", help="Multipart field name (v1)."),
    protocol: Protocol = typer.Option(Protocol.V1, "--protocol", help="How to send the image."),
    output: str = typer.Option(
        "probabilities", "--output", help="The output whose top 5 classes v2 requests ask for."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document."),
) -> None:
    """Drive a server with a fixed number of keep-alive connections and report req/s and
    latency percentiles per concurrency level."""
    levels = parse_levels(concurrency)
    path = path or DEFAULT_PATHS[protocol]
    if "{model}" in path and not model:
        raise typer.BadParameter("the path needs a model name", param_hint="--model")
    try:
        target = parse_target(url, path.format(model=model))
        request = build_image_request(target, image, field_name, protocol, output)
        results = run_levels(target, request, levels, duration=duration, warmup=warmup)
    except LoadgenError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    if as_json:
        document = {
            "url": url,
            "path": target.path,
            "model": model,
            "image": str(image),
            "image_bytes": image.stat().st_size,
            "protocol": protocol.value,
            "duration_s": duration,
            "warmup_s": warmup,
            "results": [asdict(r) for r in results],
        }
        typer.echo(json.dumps(document, indent=2))
    else:
        typer.echo(f"POST {url.rstrip('/')}{target.path}  ({image.name}, {duration:g} s/level)")
        typer.echo(format_table(results))


def register(app: typer.Typer) -> None:
    app.command("bench")(bench)


def main() -> None:
    """``python -m service.loadgen.client``: the same command without the rest of the CLI."""
    standalone = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    standalone.command()(bench)
    standalone()


if __name__ == "__main__":
    main()
