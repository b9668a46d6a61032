"""``rectifier predict --engine ray`` on a real local Ray cluster (2 CPUs, 2 actors): the
same rows as the local engine, the work in actor processes, and one actor killed mid-run
without losing or repeating a row."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.helpers.batch import DEMO_MODEL
from tests.helpers.images import encode, pattern

ray = pytest.importorskip("ray")

pytestmark = [pytest.mark.ray, pytest.mark.timeout(300)]

RECTIFIER = Path(sys.executable).parent / "rectifier"
IMAGES = 96
BATCH = 4
VIDEO_FRAMES = 12


@pytest.fixture(scope="module")
def ray_address() -> Iterator[str]:
    context = ray.init(
        address="local",  # a new cluster, never one `ray start` left running here
        num_cpus=2,
        include_dashboard=False,
        configure_logging=False,
        log_to_driver=False,
    )
    try:
        yield context.address_info["gcs_address"]
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ray-images")
    for index in range(IMAGES):
        image = pattern((72 + index % 9, 64), seed=index)
        (root / f"{index:03d}.jpg").write_bytes(encode(image, "JPEG", quality=88))
    (root / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    if importlib.util.find_spec("av"):  # a clip: its frames stream inside one actor
        from tests.helpers.batch import write_video

        write_video(root / "clip.mp4", frames=VIDEO_FRAMES)
    return root


def predict(folder: Path, out: Path, *extra: str, env: dict[str, str] | None = None):
    args = [str(RECTIFIER), "predict", str(folder), "--model", str(DEMO_MODEL), "--out", str(out)]
    return subprocess.Popen(
        [*args, "--batch-size", str(BATCH), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, **(env or {})},
    )


def actor_pids(actor_dir: Path) -> list[int]:
    return sorted(int(p.name) for p in actor_dir.iterdir())


def test_ray_engine_matches_local_and_survives_a_killed_actor(
    ray_address: str, folder: Path, tmp_path: Path
) -> None:
    local_out = tmp_path / "local.parquet"
    local = predict(folder, local_out)
    ray_out = tmp_path / "ray.parquet"
    actor_dir = tmp_path / "actors"
    actor_dir.mkdir()
    remote = predict(
        folder,
        ray_out,
        *("--engine", "ray", "--ray-address", ray_address, "--actors", "2"),
        *("--actor-cpus", "1", "--chunk-rows", str(BATCH)),
        env={"RECTIFIER_PREDICT_ACTOR_DIR": str(actor_dir)},
    )
    parts = tmp_path / "ray.parquet.parts"
    deadline = time.monotonic() + 180
    while not list(parts.glob("part-*.parquet")):
        assert remote.poll() is None, remote.communicate()[0]
        assert time.monotonic() < deadline, "no part was written"
        time.sleep(0.005)
    pids = actor_pids(actor_dir)
    for pid in pids:  # hold the pool still while we look
        os.kill(pid, signal.SIGSTOP)
    written = len(list(parts.glob("part-*.parquet")))
    expected_parts = -(-(IMAGES + 1) // BATCH)
    assert 1 <= written < expected_parts, "the job was over before an actor could be killed"
    victim = pids[0]
    os.kill(victim, signal.SIGKILL)
    for pid in pids[1:]:
        os.kill(pid, signal.SIGCONT)
    output = remote.communicate(timeout=240)[0]
    assert remote.returncode == 0, output
    assert local.wait(timeout=120) == 0, local.communicate()[0]

    local_rows = pq.read_table(local_out).to_pylist()
    ray_rows = pq.read_table(ray_out).to_pylist()
    key = [(r["path"], r["frame"]) for r in local_rows]
    assert [(r["path"], r["frame"]) for r in ray_rows] == key  # every row, each once
    assert len(set(key)) == len(key) == IMAGES + 1 + VIDEO_FRAMES * (folder / "clip.mp4").exists()
    for mine, theirs in zip(ray_rows, local_rows, strict=True):
        assert (mine["label"], mine["timestamp"], mine["error"]) == (
            theirs["label"],
            theirs["timestamp"],
            theirs["error"],
        )
        if not mine["error"]:
            assert mine["probability"] == pytest.approx(theirs["probability"], abs=1e-6)
            if "ood_score" in mine:  # a card with an OOD scorer
                assert mine["ood_score"] == pytest.approx(theirs["ood_score"], rel=1e-6)
                assert mine["in_distribution"] == theirs["in_distribution"]
            for a, b in zip(mine["top_k"], theirs["top_k"], strict=True):
                assert a["label"] == b["label"]
                assert a["probability"] == pytest.approx(b["probability"], abs=1e-6)
    # The work ran in actor processes (two at least), not in the driver.
    logged = {int(p.name): p.read_text().split("\n") for p in actor_dir.iterdir()}
    assert remote.pid not in logged and os.getpid() not in logged
    batches = [line for lines in logged.values() for line in lines if line]
    assert sum(int(line.split()[0]) for line in batches) >= len(key)
    assert victim in logged and len([pid for pid, lines in logged.items() if lines[0]]) >= 2
