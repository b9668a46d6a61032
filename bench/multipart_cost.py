"""Per-request multipart parse cost: the hand-written parser in ``service/protocols/v1/uploads.py``
against python-multipart's (``bench/multipart_library.py``), on the same bodies.

    python bench/multipart_cost.py [--rounds 7] [--instructions]

Bodies as a client encodes them (httpx): one small image (a 64 px JPEG, the demo model's
upload), one large image (a 2048 px noise JPEG, a few MB) and eight small images. Both
parsers must return the same parts before anything is timed. Timing: ``--rounds`` rounds,
each timing both parsers back to back in alternating order (so drift and a neighbour's load
hit both alike); the median per-parse cost and the min-max spread over the rounds are
reported. ``--instructions`` also counts instructions per parse under valgrind's callgrind:
a count that a busy machine cannot disturb. Collection is on only inside
``functools.reduce`` (``--toggle-collect=functools_reduce``), which the child process calls
for the measured parses alone, after warm-up parses; start-up, imports and building the
bodies are not counted.
"""

from __future__ import annotations

import argparse
import functools
import io
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: the repository, not bench/, on the path
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import httpx
import numpy as np
from PIL import Image

from bench.multipart_library import parse_multipart_library
from service.protocols.v1.uploads import Part, parse_multipart

Parser = Callable[[bytes, str], list[Part]]
PARSERS: dict[str, Parser] = {
    "hand_written": parse_multipart,
    "python_multipart": parse_multipart_library,
}
# Parses per timed batch: enough for each batch to last a few milliseconds at least.
REPEATS = {"small": 2000, "large": 20, "eight_small": 500}
INSTRUCTION_REPEATS = {"small": 200, "large": 5, "eight_small": 50}


def _jpeg(size: int, seed: int, noise: float) -> bytes:
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 255, size, dtype=np.float32)
    pixels = (ramp[None, :, None] + noise * rng.standard_normal((size, size, 3))).clip(0, 255)
    out = io.BytesIO()
    Image.fromarray(pixels.astype(np.uint8), "RGB").save(out, "JPEG", quality=90)
    return out.getvalue()


def bodies() -> dict[str, tuple[bytes, str]]:
    """name -> (multipart body, Content-Type), encoded by httpx like a real client."""
    small = _jpeg(64, 0, 20.0)
    large = _jpeg(2048, 1, 80.0)
    forms = {
        "small": [("image", ("small.jpg", small, "image/jpeg"))],
        "large": [("image", ("large.jpg", large, "image/jpeg"))],
        "eight_small": [("image", (f"{i}.jpg", small, "image/jpeg")) for i in range(8)],
    }
    encoded = {}
    for name, files in forms.items():
        request = httpx.Request("POST", "http://127.0.0.1/", files=files)
        encoded[name] = (request.read(), request.headers["content-type"])
    return encoded


def check_agreement(cases: dict[str, tuple[bytes, str]]) -> None:
    for name, (body, content_type) in cases.items():
        results = {parser: parse(body, content_type) for parser, parse in PARSERS.items()}
        if len({repr(r) for r in results.values()}) != 1:
            raise SystemExit(f"the parsers disagree on the {name!r} body")


def per_parse_us(parse: Parser, body: bytes, content_type: str, repeats: int) -> float:
    start = time.perf_counter()
    for _ in range(repeats):
        parse(body, content_type)
    return (time.perf_counter() - start) / repeats * 1e6


def summary(values: list[float]) -> dict[str, Any]:
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "runs": values,
    }


def time_parsers(cases: dict[str, tuple[bytes, str]], rounds: int) -> dict[str, Any]:
    results: dict[str, Any] = {}
    names = list(PARSERS)
    for case, (body, content_type) in cases.items():
        runs: dict[str, list[float]] = {name: [] for name in names}
        for name in names:  # warm-up: first-call costs stay out of the figures
            per_parse_us(PARSERS[name], body, content_type, max(1, REPEATS[case] // 10))
        for round_index in range(rounds):
            order = names if round_index % 2 == 0 else names[::-1]
            for name in order:
                runs[name].append(per_parse_us(PARSERS[name], body, content_type, REPEATS[case]))
        ratios = [
            lib / own
            for lib, own in zip(runs["python_multipart"], runs["hand_written"], strict=True)
        ]
        results[case] = {
            "body_bytes": len(body),
            "us_per_parse": {name: summary(values) for name, values in runs.items()},
            "library_over_hand_written": summary(ratios),
        }
    return results


def _instructions(parser: str, case: str, repeats: int) -> float:
    """Instructions per parse: callgrind collecting inside functools.reduce only."""
    command = [
        "valgrind", "--tool=callgrind", "--collect-atstart=no",
        "--toggle-collect=functools_reduce", "--callgrind-out-file=/dev/null",
        sys.executable, __file__, "--count-child", parser, case, str(repeats),
    ]  # fmt: skip
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
    match = re.search(r"Collected\s*:\s*(\d+)", done.stderr)
    if match is None:
        raise SystemExit(f"no instruction count in valgrind's output:\n{done.stderr[-2000:]}")
    return int(match.group(1)) / repeats


def count_instructions(cases: dict[str, tuple[bytes, str]]) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for case in cases:
        counts = {
            parser: _instructions(parser, case, INSTRUCTION_REPEATS[case]) for parser in PARSERS
        }
        counts["library_over_hand_written"] = counts["python_multipart"] / counts["hand_written"]
        results[case] = counts
    return results


def _count_child(parser: str, case: str, repeats: int) -> None:
    """What runs under valgrind: warm-up parses, then ``repeats`` parses inside
    functools.reduce, the only place where callgrind collects."""
    body, content_type = bodies()[case]
    parse = PARSERS[parser]
    for _ in range(3):
        parse(body, content_type)
    functools.reduce(lambda _, __: parse(body, content_type), range(repeats), None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7, help="alternating timing rounds")
    parser.add_argument(
        "--instructions", action="store_true", help="also count instructions under valgrind"
    )
    parser.add_argument(
        "--count-child", nargs=3, metavar=("PARSER", "CASE", "N"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.count_child:
        name, case, repeats = args.count_child
        _count_child(name, case, int(repeats))
        return 0
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if args.instructions and shutil.which("valgrind") is None:
        parser.error("--instructions needs valgrind on the PATH (apt-get install valgrind)")
    cases = bodies()
    check_agreement(cases)
    results: dict[str, Any] = {
        "command": "python bench/multipart_cost.py " + " ".join(argv or sys.argv[1:]),
        "load_average": os.getloadavg(),
        "timing": time_parsers(cases, args.rounds),
    }
    if args.instructions:
        results["instructions_per_parse"] = count_instructions(cases)
    results["load_average_after"] = os.getloadavg()
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
