"""Security properties the issue asks for, tried against the real server where they can be.

(The basic 401s and "keys are not logged" are in tests/service/test_auth.py; traversal
names are in the hostile corpus and tests/reliability/test_reload.py.)
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from service.app import auth
from tests.helpers.images import encode, png_bomb, scene
from tests.helpers.rawhttp import send_raw
from tests.helpers.server import REPO_ROOT, RunningServer, running_server

pytestmark = pytest.mark.e2e

KEYS = ("alpha-secret-0001", "bravo-secret-0002")
MIB = 1024 * 1024


@pytest.fixture(scope="module")
def secured(model_repo_dir: Path) -> Iterator[RunningServer]:
    env = {
        "RECTIFIER_API_KEYS": ",".join(KEYS),
        "RECTIFIER_LOG_LEVEL": "DEBUG",
        "RECTIFIER_ACCESS_LOG": "true",
        "RECTIFIER_MAX_UPLOAD_BYTES": str(2 * MIB),
    }
    with running_server(model_repo_dir, env=env) as server:
        yield server


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_reload_needs_a_key(secured: RunningServer) -> None:
    with httpx.Client(base_url=secured.url, timeout=30) as client:
        for headers in ({}, bearer("wrong-secret-key"), {"Authorization": "Basic eDp5"}):
            response = client.post("/v1/models/rgb/reload", headers=headers)
            assert response.status_code == 401
            assert response.json()["error"]["code"] == "unauthorized"
            assert response.headers["www-authenticate"].startswith('Bearer realm="rectifier"')
        assert client.post("/v1/models/rgb/reload", headers=bearer(KEYS[1])).status_code == 200


def test_keys_appear_in_no_log_and_no_response(secured: RunningServer) -> None:
    image = encode(scene(40, 40), "PNG")
    bodies = []
    with httpx.Client(base_url=secured.url, timeout=30) as client:
        for key in (*KEYS, KEYS[0][:-1] + "X", KEYS[0] + "extra"):
            for path in ("/v1/models", "/v1/models/rgb", "/v1/models/nosuch"):
                bodies.append(client.get(path, headers=bearer(key)).text)
            response = client.post(
                "/v1/models/rgb/predict",
                content=image,
                headers={**bearer(key), "Content-Type": "image/png"},
            )
            bodies.append(response.text)
        for path in ("/metrics", "/openapi.json", "/readyz", "/livez"):
            bodies.append(client.get(path).text)
    everything = "\n".join(bodies) + secured.logs()
    for key in KEYS:
        assert key not in everything
        assert key[:-1] not in everything  # not even the wrong key that differs by one


def test_every_key_is_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each candidate is compared with hmac.compare_digest against every configured key,
    with no early exit, so the time says nothing about which key matched (or how far)."""
    calls: list[tuple[bytes, bytes]] = []
    real = auth.hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", counting)
    keys = [key.encode() for key in KEYS]
    for candidate in (KEYS[0].encode(), KEYS[1].encode(), b"nope"):
        calls.clear()
        auth._matches(candidate, keys)
        assert calls == [(candidate, key) for key in keys]


def test_a_bad_key_setting_is_refused_without_echoing_it(model_repo_dir: Path) -> None:
    short = "short7!"
    result = subprocess.run(
        [sys.executable, "-m", "service", "serve", "--models", str(model_repo_dir), "--port", "0"],
        cwd=REPO_ROOT,
        env={"PATH": "/usr/bin:/bin", "RECTIFIER_API_KEYS": f"{KEYS[0]},{short}"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "RECTIFIER_API_KEYS" in result.stderr
    assert short not in result.stderr + result.stdout
    assert KEYS[0] not in result.stderr + result.stdout


def rss(server: RunningServer) -> int:
    for line in Path(f"/proc/{server.process.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def test_limits_hold_before_large_allocations(
    secured: RunningServer, figures: Callable[[str], None]
) -> None:
    """Bombs and oversize bodies are refused without the memory they would need: 20 PNGs
    of 900 megapixels (0.9 GB each decoded) and 20 bodies declaring 1 GB."""
    host, _, port = secured.url.removeprefix("http://").partition(":")
    bomb = png_bomb()
    before = rss(secured)
    started = time.monotonic()
    for _ in range(20):
        response = send_raw(
            host, int(port), "POST", "/v1/models/rgb/predict",
            [*bearer(KEYS[0]).items(), ("Content-Type", "image/png")], bomb, timeout_s=10,
        )  # fmt: skip
        assert response.status == 413 and response.json()["error"]["code"] == "image_too_large"
        huge = send_raw(
            host, int(port), "POST", "/v1/models/rgb/predict",
            [*bearer(KEYS[0]).items(), ("Content-Type", "image/png"),
             ("Content-Length", str(1024 * MIB))],
            b"", transfer="partial", timeout_s=10,
        )  # fmt: skip
        assert huge.status == 413 and huge.json()["error"]["code"] == "payload_too_large"
    elapsed = time.monotonic() - started
    grown = rss(secured) - before
    figures(f"limits: 40 refusals in {elapsed:.2f} s, RSS grew {grown / MIB:.1f} MiB")
    assert grown < 64 * MIB
    assert elapsed < 20
