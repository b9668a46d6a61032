"""Explain latency against predict latency, same server, same image, alternating rounds.

    python bench/explain.py [--rounds 5] [--requests 20]

Serves the bundled demo model and a random-weight resnet18 (224 px; speed does not depend
on the weights) from one Rectifier server on 127.0.0.1, then, per round and per model,
sends ``--requests`` sequential requests to predict, explain (JSON grid) and explain (PNG
overlay) in turn, so drift on a shared machine hits all three alike. Prints the
markdown table that docs/BENCHMARKS.md records: medians over all requests of the client-
side latency, the spread of the per-round medians, and explain/predict ratios per round.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

if __package__ in (None, ""):  # run as a script: the repository, not bench/, on the path
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from bench.fixtures import DEMO_MODEL, random_checkpoint, sign_upload
from bench.servers import free_port, rectifier_command, running

log = logging.getLogger("bench.explain")

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "images" / "stop.jpg"
KINDS = {
    "predict": ("predict", {}),
    "explain (JSON)": ("explain", {}),
    "explain (PNG)": ("explain", {"format": "png"}),
}


def prepare_repo(workdir: Path) -> dict[str, Path]:
    """A repository with the demo model and resnet18; model name -> upload to send."""
    from model.export import export_checkpoint

    repo = workdir / "models"
    shutil.copytree(DEMO_MODEL.parent.parent, repo / "demo")
    export_checkpoint(random_checkpoint("resnet18", workdir), repo, "resnet18", version=1)
    return {"demo": EXAMPLE, "resnet18": sign_upload("resnet18", workdir, 224)}


def timed(client: httpx.Client, url: str, params: dict[str, str], body: bytes) -> float:
    started = time.perf_counter()
    response = client.post(url, params=params, content=body, headers={"Content-Type": "image/jpeg"})
    elapsed = time.perf_counter() - started
    if response.status_code != 200:
        raise RuntimeError(f"{url} answered {response.status_code}: {response.text}")
    return elapsed * 1000.0


def measure(url: str, uploads: dict[str, Path], rounds: int, requests: int) -> dict[str, Any]:
    results: dict[str, Any] = {}
    with httpx.Client(base_url=url, timeout=60.0) as client:
        for model, image in uploads.items():
            body = image.read_bytes()
            samples: dict[str, list[list[float]]] = {kind: [] for kind in KINDS}
            for route, params in KINDS.values():  # warm every path once
                timed(client, f"/v1/models/{model}/{route}", params, body)
            for _ in range(rounds):
                for kind, (route, params) in KINDS.items():
                    samples[kind].append(
                        [
                            timed(client, f"/v1/models/{model}/{route}", params, body)
                            for _ in range(requests)
                        ]
                    )
            results[model] = samples
    return results


def table(results: dict[str, Any]) -> str:
    lines = [
        "| model | request | median ms | per-round medians | vs predict (per-round range) |",
        "|---|---|---|---|---|",
    ]
    for model, samples in results.items():
        predict_rounds = [statistics.median(r) for r in samples["predict"]]
        for kind, rounds in samples.items():
            medians = [statistics.median(r) for r in rounds]
            overall = statistics.median([v for r in rounds for v in r])
            ratios = [m / p for m, p in zip(medians, predict_rounds, strict=True)]
            ratio = (
                "1"
                if kind == "predict"
                else f"{statistics.median(ratios):.2f}x ({min(ratios):.2f}-{max(ratios):.2f})"
            )
            lines.append(
                f"| {model} | {kind} | {overall:.2f} | {min(medians):.2f}-{max(medians):.2f} "
                f"| {ratio} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=20, help="per kind and round")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    with tempfile.TemporaryDirectory(prefix="rectifier-bench-explain-") as tmp:
        workdir = Path(tmp)
        uploads = prepare_repo(workdir)
        port = free_port()
        command = rectifier_command(workdir / "models", port)
        with running(
            "rectifier", command, ready_path="/readyz", log_dir=workdir, port=port
        ) as server:
            results = measure(server.url, uploads, args.rounds, args.requests)
    print(table(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
