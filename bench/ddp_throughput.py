"""Data-parallel training throughput: 1 process against N, through Rectifier's real path.

Each round is a whole training run on the same in-memory MedMNIST-format file, same seed
and global batch: ``training.run.train`` in this process (torch's default thread count, and
one thread), and ``training.launch.launch_on_this_node`` with 1 and N DDP processes (gloo
or NCCL), which split the cores between them. A round's figure is the training images/s
of its epochs after the first (the first pays for start-up), as the run records it: all
images of all ranks over the slowest rank's time. Wall time, process start-up and
evaluation included, is reported too. Every variant runs once per round, in turn, so that
load from other processes on a shared machine hits them alike; medians and the min-max
spread are reported.

    .venv/bin/python bench/ddp_throughput.py                      # CPU, 2 processes
    .venv/bin/python bench/ddp_throughput.py --nproc 4 --device cuda
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this folder would come first on sys.path and a sibling module could
# shadow the standard library's; the repository root takes its place.
sys.path[0] = str(Path(__file__).resolve().parents[1])

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from model.cpus import available_cpus  # noqa: E402
from training.config import TrainConfig  # noqa: E402
from training.launch import TrainingJob, launch_on_this_node  # noqa: E402
from training.run import RunResult, train  # noqa: E402


def write_dataset(root: Path, images: int, size: int) -> None:
    """``pneumoniamnist_SIZE.npz``: two classes told apart by brightness, plus noise."""
    rng = np.random.default_rng(0)
    arrays = {}
    for split, count in (("train", images), ("val", images // 8), ("test", images // 8)):
        labels = np.arange(count) % 2
        pixels = rng.normal(70 + 60 * labels[:, None, None], 40, (count, size, size))
        arrays[f"{split}_images"] = pixels.clip(0, 255).astype(np.uint8)
        arrays[f"{split}_labels"] = labels.reshape(-1, 1).astype(np.uint8)
    name = "pneumoniamnist.npz" if size == 28 else f"pneumoniamnist_{size}.npz"
    np.savez_compressed(root / name, **arrays)


def steady_images_per_second(result: RunResult) -> float:
    return statistics.median(epoch["images_per_second"] for epoch in result.history[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nproc", type=int, default=2, help="processes of the DDP variant")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--images", type=int, default=1024, help="training images")
    parser.add_argument("--img-size", type=int, default=28)
    parser.add_argument("--batch-size", type=int, default=64, help="the global batch")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2, help="timed rounds per variant")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="rectifier-ddp-bench-") as folder:
        root = Path(folder)
        write_dataset(root, args.images, args.img_size)

        def config(label: str) -> TrainConfig:
            return TrainConfig(
                data="medmnist:pneumoniamnist",
                data_root=str(root),
                img_size=args.img_size,
                epochs=args.epochs,
                batch_size=args.batch_size,
                augment="none",
                patience=0,
                device=args.device,
                workers=0,
                progress=False,
                out=str(root / "runs"),
                name=label,
            ).validate()

        def one_thread() -> RunResult:
            threads = torch.get_num_threads()
            torch.set_num_threads(1)
            try:
                return train(config("plain1"))
            finally:
                torch.set_num_threads(threads)

        variants: dict[str, Callable[[], RunResult]] = {
            f"1 process (plain, {torch.get_num_threads()} threads)": lambda: train(config("plain")),
            "1 process (plain, 1 thread)": one_thread,
            "1 process (DDP)": lambda: launch_on_this_node(TrainingJob(config("ddp1")), 1)[0],
            f"{args.nproc} processes (DDP)": lambda: launch_on_this_node(
                TrainingJob(config(f"ddp{args.nproc}")), args.nproc
            )[0],
        }
        rates: dict[str, list[float]] = {name: [] for name in variants}
        walls: dict[str, list[float]] = {name: [] for name in variants}
        for _ in range(args.rounds):
            for name, run in variants.items():
                start = time.perf_counter()
                result = run()
                walls[name].append(time.perf_counter() - start)
                rates[name].append(steady_images_per_second(result))
                print(f"{name}: {rates[name][-1]:.0f} img/s, {walls[name][-1]:.1f} s", flush=True)

    baseline = statistics.median(next(iter(rates.values())))
    report = {
        "device": args.device,
        "cpus": available_cpus(),
        "images": args.images,
        "img_size": args.img_size,
        "global_batch": args.batch_size,
        "epochs": args.epochs,
        "rounds": args.rounds,
        "variants": {
            name: {
                "images_per_s": [round(v, 1) for v in rates[name]],
                "median_images_per_s": round(statistics.median(rates[name]), 1),
                "wall_s": [round(v, 1) for v in walls[name]],
                "ratio_to_first": round(statistics.median(rates[name]) / baseline, 3),
            }
            for name in variants
        },
    }
    print(json.dumps(report, indent=2))
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
