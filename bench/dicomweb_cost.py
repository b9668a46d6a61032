"""Cost of a DICOMweb pull per study: a 1-instance and a 50-instance CT study (512x512,
uncompressed, written with pydicom like the tests' files) in a real Orthanc on 127.0.0.1,
pulled, classified and reported (SR stored back by STOW-RS) by a real Rectifier server,
with the study's fetches overlapping (``--fetch-threads``, default 8) and, for comparison,
one by one (a second server with 1 fetch thread). The phases are the pull's own
``timings_ms`` (search = QIDO-RS count + WADO-RS metadata; fetch = first fetch to last;
decode/preprocess/queue/inference summed over the study's chunks; report = building the SR;
store = STOW-RS), plus the client's wall time. Each round's report is deleted from Orthanc
after it, so every round pulls the study as it was sent. Rounds alternate over studies and servers;
the table gives the median over rounds.

    .venv/bin/python bench/dicomweb_cost.py                  # ~2 min on 2 cores
    .venv/bin/python bench/dicomweb_cost.py --rounds 9
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parents[1])  # the repository root, as run.py does

import argparse  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from contextlib import ExitStack  # noqa: E402

import httpx  # noqa: E402
from pydicom.uid import generate_uid  # noqa: E402

from tests.helpers.dicom_studies import series  # noqa: E402
from tests.helpers.models import make_checkpoint  # noqa: E402
from tests.helpers.orthanc import PASSWORD, USER, running_orthanc  # noqa: E402
from tests.helpers.server import running_server  # noqa: E402

PHASES = ("search", "fetch", "decode", "preprocess", "inference", "report", "store", "total")
SIZES = (1, 50)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--fetch-threads", type=int, default=8)
    args = parser.parse_args()
    from model.export import export_checkpoint

    with tempfile.TemporaryDirectory() as folder, ExitStack() as stack:
        root = Path(folder)
        checkpoint = make_checkpoint(
            root / "ct.pt", color_mode="L", labels=("normal", "nodule"), resize_size=256,
            crop_size=224, window=(-600.0, 1500.0),
        )  # fmt: skip
        export_checkpoint(checkpoint, root / "models", "ct")
        pacs = stack.enter_context(running_orthanc(root / "orthanc", lua=False))
        servers = {}
        for threads in (args.fetch_threads, 1):
            env = {
                "RECTIFIER_DICOMWEB_URL": pacs.dicomweb_url,
                "RECTIFIER_DICOMWEB_USERNAME": USER,
                "RECTIFIER_DICOMWEB_PASSWORD": PASSWORD,
                "RECTIFIER_DICOMWEB_FETCH_THREADS": str(threads),
                "RECTIFIER_ACCESS_LOG": "false",
            }
            servers[threads] = stack.enter_context(running_server(root / "models", env=env))
        studies = {}
        with pacs.client() as http:
            for size in SIZES:
                uid = generate_uid()
                for instance in series(uid, size, size=512, seed=size):
                    assert http.post("/instances", content=instance.data).status_code == 200
                studies[size] = uid
        samples: dict[tuple[int, int], list[dict[str, float]]] = {}
        with httpx.Client(timeout=300.0) as client, pacs.client() as pacs_http:
            for round_index in range(args.rounds + 1):  # round 0 warms up
                for size, uid in studies.items():
                    for threads, server in servers.items():
                        started = time.perf_counter()
                        answer = client.post(f"{server.url}/v1/models/ct/dicomweb/studies/{uid}")
                        wall_ms = (time.perf_counter() - started) * 1000.0
                        answer.raise_for_status()
                        body = answer.json()
                        assert len(body["instances"]) == size and body["report"]["stored"]
                        remove_report(pacs_http, body["report"]["sop_instance_uid"])
                        if round_index:
                            timings = {**body["timings_ms"], "client wall": wall_ms}
                            samples.setdefault((size, threads), []).append(timings)
    print(table(samples))


def remove_report(pacs_http: httpx.Client, sop_uid: str) -> None:
    """Each round pulls the study as it was sent: the last round's report is deleted."""
    (found,) = pacs_http.post("/tools/lookup", content=sop_uid).json()
    pacs_http.delete(f"/instances/{found['ID']}").raise_for_status()


def table(samples: dict[tuple[int, int], list[dict[str, float]]]) -> str:
    columns = (*PHASES, "client wall")
    lines = [
        "| study | fetch threads | " + " | ".join(f"{c} ms" for c in columns) + " |",
        "| --- | ---: | " + " | ".join("---:" for _ in columns) + " |",
    ]
    for (size, threads), rows in sorted(samples.items(), key=lambda kv: (kv[0][0], -kv[0][1])):
        medians = [statistics.median(row.get(c, 0.0) for row in rows) for c in columns]
        cells = " | ".join(f"{m:.1f}" for m in medians)
        lines.append(f"| {size} instance{'s' if size > 1 else ''} | {threads} | {cells} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
