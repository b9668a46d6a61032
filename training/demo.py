"""Build the bundled demo model: ``python -m training.demo --out models`` (``make demo-model``).

Generates the synthetic traffic signs from a fixed seed, trains ``simple_cnn`` with ReLU at
64 px on the CPU, exports ``OUT/demo/1/model.onnx`` with its card (replacing an existing
demo) and, fitted on the run's own splits, its calibration and OOD score (docs/trust.md), and
writes sample images for the README's curl examples.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from pathlib import Path

import typer

from model.layout import DEFAULT_ROOT
from model.log_setup import configure_text_logging, resolve_log_level
from training.config import TrainConfig

log = logging.getLogger("training.demo")

DEMO_NAME = "demo"
DEMO_VERSION = 1
TRAIN_PER_CLASS = 300
EXAMPLES = (
    ("stop", "stop.jpg"),
    ("yield", "yield.png"),
    ("no_entry", "no_entry.jpg"),
    ("speed_limit_30", "speed_limit_30.png"),
    ("speed_limit_50", "speed_limit_50.jpg"),
    ("priority_road", "priority_road.png"),
    ("ahead_only", "ahead_only.jpg"),
    ("keep_right", "keep_right.png"),
)


def demo_config(data_root: Path, run_root: Path) -> TrainConfig:
    return TrainConfig(
        data=f"synthetic-signs:{TRAIN_PER_CLASS}",
        data_root=str(data_root),
        arch="simple_cnn",
        arch_options={"width": 16, "depth": 3, "dropout": 0.1},
        activation="relu",
        img_size=64,
        epochs=5,
        batch_size=64,
        lr=3e-3,
        warmup_epochs=0.5,
        augment="light",
        patience=0,
        device="cpu",
        workers=0,
        seed=0,
        out=str(run_root),
        name="demo",
    )


def build_demo(out: Path, examples: Path | None, work: Path, *, progress: bool = True) -> Path:
    from model.checkpoint import load_checkpoint
    from model.export import export_checkpoint
    from training.datasets.synthetic_signs import render_examples
    from training.run import train
    from training.run_folder import RunFolder
    from training.trust_data import run_trust_images

    config = demo_config(work / "data", work / "runs")
    config.progress = progress
    start = time.perf_counter()
    result = train(config)
    wall = time.perf_counter() - start
    target = out / DEMO_NAME
    if target.exists():  # the demo is rebuilt in place: same path, version 1
        shutil.rmtree(target)
    spec = load_checkpoint(result.best_checkpoint).config.preprocessing
    trust = run_trust_images(RunFolder(result.run_dir), spec)
    exported = export_checkpoint(
        result.best_checkpoint, out, DEMO_NAME, version=DEMO_VERSION, trust=trust
    )
    # committed and served by a non-root container user (model.onnx and ood_stats.npz)
    for extra in exported.path.parent.iterdir():
        extra.chmod(0o644)
    log.info(
        "demo model %s: test accuracy %.4f, training %.0f s (%.0f s with data generation), %.0f kB",
        exported.path,
        result.test_metrics["acc"],
        result.train_seconds,
        wall,
        exported.path.stat().st_size / 1024,
    )
    if examples is not None:
        for path in render_examples(examples, EXAMPLES):
            log.info("wrote example %s", path)
    return exported.path


def main(
    out: Path = typer.Option(DEFAULT_ROOT, "--out", help="The model repository."),
    examples: Path = typer.Option(
        Path("examples/images"), "--examples", help="Where the sample images go."
    ),
    no_examples: bool = typer.Option(False, "--no-examples", help="Skip the sample images."),
    work_dir: Path | None = typer.Option(
        None, "--work-dir", help="Keep the data and run folder here (default: a temporary one)."
    ),
) -> None:
    """Train and export the bundled demo model."""
    configure_text_logging(resolve_log_level(None))  # RECTIFIER_LOG_LEVEL, else INFO
    example_dir = None if no_examples else examples
    if work_dir is not None:
        path = build_demo(out, example_dir, work_dir)
    else:
        with tempfile.TemporaryDirectory(prefix="rectifier-demo-") as work:
            path = build_demo(out, example_dir, Path(work))
    typer.echo(f"wrote {path}")


if __name__ == "__main__":
    typer.run(main)
