"""Sample a running server with py-spy while the load generator drives it, and rank where
its threads spend their (non-idle) time."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from bench.servers import BenchError, LoadSpec, Server, drive

PY_SPY = Path(sys.executable).with_name("py-spy")
# Inclusive shares are ranked for this repository's frames: the thread and event-loop roots
# above them are near 100% and say nothing.
OWN_CODE = ("service/", "model/")
ROOT_FRAMES = {
    "<module> (service/__main__.py)",
    "main (model/cli.py)",
    "serve (service/run/cli.py)",
}


def py_spy() -> str | None:
    return str(PY_SPY) if PY_SPY.exists() else shutil.which("py-spy")


def profile_under_load(
    server: Server,
    load: LoadSpec,
    *,
    concurrency: int,
    seconds: float,
    output: Path,
    top: int = 12,
) -> dict[str, Any]:
    """Record ``seconds`` of py-spy samples (100 Hz, every thread, no idle frames) while the
    load runs; return the top frames by self and inclusive share."""
    tool = py_spy()
    if tool is None:
        raise BenchError("py-spy is not installed (pip install -e '.[dev]')")
    command = [
        tool, "record", "--pid", str(server.process.pid), "--duration", str(round(seconds)),
        "--rate", "100", "--format", "raw", "--nolineno", "--nonblocking",
        "--output", str(output),
    ]  # fmt: skip
    recorder = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        drive(server, load, [concurrency], duration=seconds + 2, warmup=0.5)
        recorder.wait(timeout=seconds + 30)
    finally:
        if recorder.poll() is None:
            recorder.kill()
            recorder.wait(5)
    if recorder.returncode != 0 or not output.exists():
        message = recorder.stdout.read().decode(errors="replace") if recorder.stdout else ""
        raise BenchError(f"py-spy failed ({recorder.returncode}): {message.strip()[-300:]}")
    return summarise_collapsed(output.read_text(), top=top) | {
        "concurrency": concurrency,
        "tool": "py-spy",
        "raw": str(output),
    }


def short_frame(frame: str) -> str:
    """``func (/long/path/site-packages/pkg/mod.py)`` -> ``func (pkg/mod.py)``."""
    name, _, location = frame.partition(" (")
    location = location.rstrip(")")
    for marker in ("site-packages/", "lib/python3.11/", "/work/main/"):
        if marker in location:
            location = location.split(marker, 1)[1]
            break
    return f"{name} ({location})" if location else name


def summarise_collapsed(text: str, *, top: int) -> dict[str, Any]:
    """Self shares of every frame and inclusive shares of this repository's frames, from
    py-spy's collapsed-stack output."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in text.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [short_frame(f) for f in stack.split(";") if not f.startswith("thread ")]
        if not frames:
            continue
        total += count
        own[frames[-1]] += count
        for frame in set(frames):
            if frame.partition(" (")[2].startswith(OWN_CODE) and frame not in ROOT_FRAMES:
                inclusive[frame] += count
    if total == 0:
        raise BenchError("py-spy recorded no samples")

    def ranked(counter: Counter[str]) -> list[dict[str, Any]]:
        return [
            {"frame": frame, "percent": 100.0 * count / total}
            for frame, count in counter.most_common(top)
        ]

    return {"samples": total, "top_self": ranked(own), "top_inclusive": ranked(inclusive)}
