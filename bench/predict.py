"""``rectifier predict`` against the same-box limit, the served model, and itself on Ray.

For each model (the bundled demo model, 64 px; a random-weight resnet18, 224 px) on one
folder of JPEGs (320x240 scenes, quality 90):

- **limit**: the in-process core time per image, decode + preprocess (``model.decoding``,
  ``model.preprocess``) of bytes already in memory plus ``session.run`` at batch 32 (the
  session as ``serve`` makes it), one after the other: what one process can do at best;
- **local**: ``rectifier predict FOLDER --out X.parquet`` (the local engine, in process:
  reading the files, writing Parquet), images per second over the run;
- **served**: ``rectifier serve`` on the same model, the load generator posting one of the
  folder's JPEGs at concurrency 1, 4 and 16; the best level's requests per second (the
  generator shares the two cores, as it does in the serving benchmark).

Rounds alternate limit / local (A B A B ...), so the box's noise hits both alike; the
table gives the median ratio and the spread (min-max) over rounds. Then the Ray engine
(one node, 2 actors of 1 CPU, Ray started once beforehand) against the local engine
(alternating again), end to end and in steady state (after the first batch: actor
start-up excluded), and a 10,000-frame video (and a 1,000-frame one, to show memory is
flat) through ``rectifier predict`` in a subprocess with its peak RSS.

    .venv/bin/python bench/predict.py              # ~5 minutes on the 2-core box
    .venv/bin/python bench/predict.py --quick      # fewer images and rounds
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parents[1])  # the repository root, as run.py does

import argparse  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

from bench.servers import LoadSpec, drive, free_port, rectifier_command, running  # noqa: E402
from model.decoding import decode_image  # noqa: E402
from model.preprocess import preprocess_image  # noqa: E402
from service.batch.predictor import BatchPredictor, PredictorConfig  # noqa: E402
from service.batch.run import PredictRequest, run_predict  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "models" / "demo"
BATCH = 32


def jpeg_folder(root: Path, count: int) -> Path:
    from tests.helpers.images import encode, scene

    folder = root / f"jpegs-{count}"
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        data = encode(scene(320, 240, seed=index), "JPEG", quality=90)
        (folder / f"{index:05d}.jpg").write_bytes(data)
    return folder


def resnet18_repo(root: Path) -> Path:
    """A random-weight resnet18 (speed does not depend on the weights), exported."""
    from bench.fixtures import random_checkpoint
    from model.export import export_checkpoint

    repo = root / "repo"
    export_checkpoint(random_checkpoint("resnet18", root), repo, "resnet18", version=1)
    return repo / "resnet18"


def limit_rate(model_dir: Path, folder: Path) -> float:
    """Images per second of decode + preprocess + inference (batch 32), in process."""
    predictor = BatchPredictor(PredictorConfig(model_file=str(model_dir / "1" / "model.onnx")))
    card, session = predictor.card, predictor.session
    spec = card.preprocessing
    files = [p.read_bytes() for p in sorted(folder.iterdir())]
    batch = np.empty((BATCH, *card.input_shape), dtype=np.float32)
    session.run([card.output_name], {card.input_name: batch})  # first-run allocations
    started = time.perf_counter()
    for start in range(0, len(files), BATCH):
        chunk = files[start : start + BATCH]
        for slot, data in enumerate(chunk):
            image = decode_image(data, spec, predictor.max_pixels)
            preprocess_image(image, spec, out=batch[slot])
            image.close()
        session.run([card.output_name], {card.input_name: batch[: len(chunk)]})
    rate = len(files) / (time.perf_counter() - started)
    predictor.close()
    return rate


def engine_rate(model_dir: Path, folder: Path, out: Path, engine: str = "local") -> Any:
    request = PredictRequest(
        sources=[str(folder)],
        model=model_dir,
        out=out,
        engine=engine,
        actors=2,
        actor_cpus=1.0,
        chunk_rows=4096,
    )
    summary = run_predict(request, echo=lambda line: None)
    out.unlink()
    assert not summary.errors, summary.errors
    return summary


def served_rate(model_dir: Path, image: Path, logs: Path, duration: float) -> dict[str, Any]:
    port = free_port()
    command = rectifier_command(model_dir.parent, port)
    with running("serve", command, ready_path="/readyz", log_dir=logs, port=port) as server:
        load = LoadSpec(image=image, path=f"/v1/models/{model_dir.name}/predict")
        rows = drive(server, load, [1, 4, 16], duration=duration, warmup=1.0)
    best = max(rows, key=lambda r: r["requests_per_s"])
    return {"requests_per_s": best["requests_per_s"], "concurrency": best["concurrency"]}


def video_run(root: Path, frames: int) -> dict[str, Any]:
    from tests.helpers.batch import write_video

    clip = write_video(root / f"clip-{frames}.mp4", frames=frames, rate=25)
    out = root / f"clip-{frames}.parquet"
    # The command's own code path (run_predict) in a fresh process, so its peak RSS is the
    # run's alone; not through `rectifier`, whose other commands' imports are not measured.
    args = [sys.executable, __file__, "--video-child", str(clip), str(out)]
    started = time.perf_counter()
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(done.stderr)
    peak_kib = int(done.stdout.split("VmHWM")[-1].split()[0])
    import pyarrow.parquet as pq

    rows = pq.read_metadata(out).num_rows
    return {
        "frames": frames,
        "rows": rows,
        "seconds": elapsed,
        "frames_per_s": rows / elapsed,
        "peak_rss_mib": peak_kib / 1024,
    }


def spread(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", type=Path, default=None, help="Also write the results here.")
    parser.add_argument("--rounds", type=int, default=None, help="Alternating rounds.")
    parser.add_argument(
        "--sections", default="models,ray,video", help="Which of models, ray, video to run."
    )
    parser.add_argument(
        "--ray-images", type=int, default=512, help="JPEGs in the Ray against local folder."
    )
    parser.add_argument("--video-child", nargs=2, type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.video_child:
        clip, out = args.video_child
        run_predict(PredictRequest(sources=[str(clip)], model=DEMO, out=out), echo=print)
        # This process's own high-water mark (ru_maxrss would carry the parent's across
        # exec on Linux): VmHWM, in kB.
        status = Path("/proc/self/status").read_text()
        print("VmHWM", next(line.split()[1] for line in status.splitlines() if "VmHWM" in line))
        return 0
    rounds = args.rounds or (2 if args.quick else 3)
    results: dict[str, Any] = {"batch": BATCH, "models": {}}
    with tempfile.TemporaryDirectory(prefix="bench-predict-") as tmp:
        root = Path(tmp)
        logs = root / "logs"
        logs.mkdir()
        sections = set(args.sections.split(","))
        if "models" in sections:
            results["models"] = bench_models(root, logs, rounds, args.quick, args.json, results)
        if "ray" in sections:
            folder = jpeg_folder(root / "ray", args.ray_images)
            results["ray"] = ray_rounds(root, DEMO, folder, rounds=rounds)
            save(results, args.json)
        if "video" in sections:
            results["video"] = [video_run(root, 1000), video_run(root, 10_000)]
    text = json.dumps(results, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 0


def bench_models(
    root: Path, logs: Path, rounds: int, quick: bool, json_path: Path | None, results: Any
) -> dict[str, Any]:
    """Limit, local engine and served model for the demo model and resnet18."""
    measured: dict[str, Any] = {}
    models = {"demo": (DEMO, jpeg_folder(root / "demo", 256 if quick else 512))}
    models["resnet18"] = (resnet18_repo(root / "r18"), jpeg_folder(root / "r18", 64))
    for name, (model_dir, folder) in models.items():
        limits, locals_, ratios = [], [], []
        for _ in range(rounds):
            limit = limit_rate(model_dir, folder)
            local = engine_rate(model_dir, folder, root / "local.parquet")
            rate = local.rows / local.wall_seconds
            limits.append(limit)
            locals_.append(rate)
            ratios.append(rate / limit)
            print(f"{name}: limit {limit:.1f}/s, local {rate:.1f}/s", file=sys.stderr)
        image = sorted(folder.iterdir())[0]
        served = served_rate(model_dir, image, logs, duration=3.0 if quick else 5.0)
        measured[name] = {
            "images": len(list(folder.iterdir())),
            "limit_per_s": spread(limits),
            "local_per_s": spread(locals_),
            "local_over_limit": spread(ratios),
            "served": served,
            "served_over_limit": served["requests_per_s"] / statistics.median(limits),
        }
        save({**results, "models": measured}, json_path)
    return measured


def save(results: dict[str, Any], path: Path | None) -> None:
    """What is measured so far (a later section failing keeps the earlier ones)."""
    if path:
        path.write_text(json.dumps(results, indent=2) + "\n")


def ray_rounds(root: Path, model_dir: Path, folder: Path, rounds: int) -> dict[str, Any]:
    import ray

    ray.init(num_cpus=2, include_dashboard=False, configure_logging=False, log_to_driver=False)
    try:
        ends, steadies, locals_ = [], [], []
        for _ in range(rounds):
            local = engine_rate(model_dir, folder, root / "local.parquet")
            remote = engine_rate(model_dir, folder, root / "ray.parquet", engine="ray")
            local_rate = local.rows / local.wall_seconds
            locals_.append(local_rate)
            ends.append(remote.rows / remote.wall_seconds / local_rate)
            steady = remote.steady_rate
            steadies.append((steady or 0.0) / (local.steady_rate or local_rate))
            print(f"ray: end-to-end {ends[-1]:.2f}, steady {steadies[-1]:.2f}", file=sys.stderr)
    finally:
        ray.shutdown()
    return {
        "local_per_s": spread(locals_),
        "ray_over_local_end_to_end": spread(ends),
        "ray_over_local_steady": spread(steadies),
        "driver_peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


if __name__ == "__main__":
    raise SystemExit(main())
