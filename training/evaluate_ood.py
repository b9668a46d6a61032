"""``rectifier evaluate-ood RUN_OR_MODEL --ood SPEC ...``: how well each OOD score separates
the model's own test images from other images, and how calibrated its probabilities are.

RUN_OR_MODEL is a run folder (its ``best.pt``, with trust fitted here exactly as export fits
it, from the run's training and validation splits) or an exported model (``model.onnx`` or
its version folder, scored through onnxruntime with the card's T and statistics). The
in-distribution images are the test split of the training data; each ``--ood`` SPEC is a
dataset spec training reads (every split of it) or ``noise[:N]`` (uniform pixel noise).

For every scorer: FPR at 95 % TPR, AUROC and AUPR (OOD images as positives); ECE, NLL and
Brier before and after T; a table, ``ood.json``, a score histogram and a reliability diagram.
Everything is computed before anything is written, so bad input leaves no half report.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import typer

from model.card import Preprocessing
from model.files import write_atomically
from model.trust import (
    SCORERS,
    TrustStats,
    aupr,
    auroc,
    fpr_at_tpr,
    ood_scores,
)
from training.run_folder import RunFolder

NOISE = "noise"
DEFAULT_LIMIT = 500
Outputs = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]  # images -> logits, features


class OodInputError(ValueError):
    """An OOD set that is empty, unreadable, or the training data itself."""


@dataclass(frozen=True)
class Scored:
    """A model ready to score: its outputs, T, statistics and in-distribution test images."""

    outputs: Outputs
    temperature: float
    stats: TrustStats
    preprocessing: Preprocessing
    test_images: np.ndarray
    test_labels: np.ndarray
    dataset: str
    data_root: str | None
    served_scorer: str
    report_dir: Path
    run: RunFolder | None


def noise_images(argument: str, spec: Preprocessing, seed: int = 0) -> np.ndarray:
    """``noise[:N]``: N images of uniform 8-bit RGB noise at the model's resize size."""
    from PIL import Image

    from model.preprocess import preprocess_image

    if argument and not (argument.isdigit() and int(argument) > 0):
        raise OodInputError(f"noise takes a positive image count, got {argument!r}")
    count = int(argument) if argument else DEFAULT_LIMIT
    rng = np.random.default_rng(seed)
    size = spec.resize_size
    return np.stack(
        [
            preprocess_image(Image.fromarray(rng.integers(0, 256, (size, size, 3), np.uint8)), spec)
            for _ in range(count)
        ]
    )


def ood_images(
    text: str,
    spec: Preprocessing,
    data_root: str | None,
    limit: int,
    training: tuple[str, str | None],
) -> np.ndarray:
    """The preprocessed images of one ``--ood`` SPEC (at most ``limit``, drawn at random)."""
    from training.datasets import DatasetError, load_dataset, parse_data_spec
    from training.trust_data import split_images

    name, _, argument = text.strip().partition(":")
    if name.lower() == NOISE:
        images = noise_images(argument, spec)[:limit]
    else:
        try:
            if parse_data_spec(text) == parse_data_spec(training[0]) and data_root == training[1]:
                raise OodInputError(
                    f"--ood {text} is the training data itself: its images are in distribution"
                )
            bundle = load_dataset(text, data_root)
        except DatasetError as exc:
            raise OodInputError(f"--ood {text}: {exc}") from exc
        except ValueError as exc:  # a loader that finds nothing to stack
            raise OodInputError(f"--ood {text} holds no readable images (empty?): {exc}") from exc
        rng = np.random.default_rng(0)
        parts = [bundle.test, bundle.val, bundle.train]
        images = np.concatenate(
            [split_images(s, spec, limit, rng)[0] for s in parts if len(s)] or [np.empty((0,))]
        )
        images = images[rng.permutation(len(images))[:limit]] if len(images) else images
    if len(images) == 0:
        raise OodInputError(f"--ood {text} holds no images: an empty OOD set")
    return images.astype(np.float32)


def evaluate_sets(scored: Scored, sets: dict[str, np.ndarray]) -> dict[str, Any]:
    """Every scorer's FPR95/AUROC/AUPR per OOD set, and the calibration figures."""
    from model.trust_fit import calibration_figures

    logits, features = scored.outputs(scored.test_images)
    inside: dict[str, np.ndarray] = {
        s: ood_scores(s, logits, features, scored.stats) for s in SCORERS
    }
    results: dict[str, Any] = {
        "dataset": scored.dataset,
        "test_images": len(scored.test_images),
        "temperature": scored.temperature,
        "served_scorer": scored.served_scorer,
        "calibration": {
            "before": calibration_figures(logits, scored.test_labels, 1.0).model_dump(),
            "after": calibration_figures(
                logits, scored.test_labels, scored.temperature
            ).model_dump(),
        },
        "sets": {},
    }
    outside_served: dict[str, np.ndarray] = {}
    for name, images in sets.items():
        out_logits, out_features = scored.outputs(images)
        figures = {}
        for scorer in SCORERS:
            outside = ood_scores(scorer, out_logits, out_features, scored.stats)
            figures[scorer] = {
                "fpr95": fpr_at_tpr(inside[scorer], outside),
                "auroc": auroc(inside[scorer], outside),
                "aupr": aupr(inside[scorer], outside),
            }
            if scorer == scored.served_scorer:
                outside_served[name] = outside
        results["sets"][name] = {"images": len(images), "scores": figures}
    results["_histograms"] = (inside[scored.served_scorer], outside_served, logits)
    return results


def markdown(results: dict[str, Any]) -> str:
    c = results["calibration"]
    lines = [
        "## Out of distribution",
        "",
        f"In distribution: {results['test_images']} test images of {results['dataset']}; "
        f"served scorer {results['served_scorer']}; T = {results['temperature']:.3f}.",
        "",
        "| OOD set | images | scorer | FPR95 | AUROC | AUPR |",
        "|---|---:|---|---:|---:|---:|",
    ]
    for name, entry in results["sets"].items():
        for scorer, f in entry["scores"].items():
            mark = " (served)" if scorer == results["served_scorer"] else ""
            lines.append(
                f"| {name} | {entry['images']} | {scorer}{mark} | {f['fpr95']:.3f} | "
                f"{f['auroc']:.3f} | {f['aupr']:.3f} |"
            )
    lines += [
        "",
        "| calibration (test split) | ECE (15 bins) | NLL | Brier |",
        "|---|---:|---:|---:|",
        *(
            f"| {when} | {c[when]['ece']:.4f} | {c[when]['nll']:.4f} | {c[when]['brier']:.4f} |"
            for when in ("before", "after")
        ),
        "",
        "![OOD scores](ood_scores.png) ![reliability](ood_reliability.png)",
        "",
    ]
    return "\n".join(lines)


def write_report(scored: Scored, results: dict[str, Any]) -> list[Path]:
    """ood.md, ood.json and the two plots, each renamed into place only once all exist."""
    from training.trust_plots import score_histograms, temperature_reliability

    inside, outside, logits = results.pop("_histograms")
    target = scored.report_dir
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target, prefix=".ood-") as tmp:
        staging = Path(tmp)
        score_histograms(scored.served_scorer, inside, outside, staging / "ood_scores.png")
        temperature_reliability(
            logits, scored.test_labels, scored.temperature, staging / "ood_reliability.png"
        )
        (staging / "ood.md").write_text(markdown(results))
        (staging / "ood.json").write_text(json.dumps(results, indent=2))
        written = []
        for name in ("ood_scores.png", "ood_reliability.png", "ood.json", "ood.md"):
            shutil.move(str(staging / name), target / name)
            written.append(target / name)
    if scored.run is not None:
        append_to_run_report(scored.run, markdown(results))
    return written


def append_to_run_report(run: RunFolder, section: str) -> None:
    """Replace the run report's OOD section (or add it)."""
    text = run.report.read_text() if run.report.is_file() else ""
    head, marker, _ = text.partition("## Out of distribution")
    body = (head if marker else text).rstrip() + "\n\n" + section
    write_atomically(run.report, lambda handle: handle.write(body.encode()))


# --- the two kinds of RUN_OR_MODEL --------------------------------------------------------


def scored_run(run: RunFolder, limit: int) -> Scored:
    from model.checkpoint import load_checkpoint
    from model.export import output_head
    from model.trust_fit import DEFAULT_SCORER, WithTrustOutputs, collect, fit_trust
    from training.config import read_config_file
    from training.datasets import load_dataset
    from training.trust_data import bundle_trust_images, split_images

    ckpt = load_checkpoint(run.best)
    config = read_config_file(run.config)
    spec = ckpt.config.preprocessing
    bundle = load_dataset(
        config["data"],
        config.get("data_root"),
        seed=config.get("seed", 0),
        img_size=config.get("img_size"),
    )
    images = bundle_trust_images(bundle, spec, str(config["data"]))
    head = output_head(ckpt.config.task)
    fitted = fit_trust(ckpt.model, head, images, num_classes=len(ckpt.config.labels))
    wrapper = WithTrustOutputs(ckpt.model.eval(), head).eval()
    test_images, test_labels = split_images(bundle.test, spec, limit, np.random.default_rng(0))
    return Scored(
        lambda x: collect(wrapper, x),
        fitted.calibration.temperature,
        fitted.stats,
        spec,
        test_images,
        test_labels,
        str(config["data"]),
        config.get("data_root"),
        DEFAULT_SCORER,
        run.path,
        run,
    )


def scored_model(
    path: Path, data: str | None, data_root: str | None, limit: int, out: Path | None
) -> Scored:
    import onnxruntime as ort

    from model.card import read_card
    from model.layout import MODEL_FILE, beside_model
    from training.datasets import load_dataset
    from training.trust_data import split_images

    model_path = path / MODEL_FILE if path.is_dir() else path
    card = read_card(model_path)
    trust = card.trust
    if trust is None or trust.ood is None or trust.ood.statistics is None:
        raise OodInputError(
            f"{model_path} was exported without trust (re-export its run without --no-trust)"
        )
    stats = TrustStats.load(
        beside_model(model_path, trust.ood.statistics.file), trust.ood.statistics.sha256
    )
    session = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    names = [trust.logits_output, trust.features_output]

    def outputs(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        parts = [
            session.run(names, {card.input_name: images[i : i + 256]})
            for i in range(0, len(images), 256)
        ]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

    dataset = data or trust.dataset
    bundle = load_dataset(dataset, data_root)
    test_images, test_labels = split_images(
        bundle.test, card.preprocessing, limit, np.random.default_rng(0)
    )
    if out is None:
        raise OodInputError("an exported model needs --out: where the report goes")
    return Scored(
        outputs,
        trust.calibration.temperature,
        stats,
        card.preprocessing,
        test_images,
        test_labels,
        dataset,
        data_root,
        trust.ood.scorer,
        out,
        None,
    )


def evaluate_ood_command(
    target: Path = typer.Argument(..., help="A run folder, or an exported model.onnx."),
    ood: list[str] = typer.Option(
        ...,
        "--ood",
        help="An OOD set: a dataset spec training reads (imagefolder:DIR, synthetic-signs[:N], "
        "medmnist:FLAG, dicom:...) or noise[:N]; repeat for several.",
    ),
    data_root: str | None = typer.Option(
        None, "--data-root", help="Where the --ood datasets' files live (medmnist: the .npz)."
    ),
    data: str | None = typer.Option(
        None, "--data", help="For a model: its in-distribution data (default: the card's)."
    ),
    model_data_root: str | None = typer.Option(
        None, "--model-data-root", help="For a model: where --data's files live."
    ),
    limit: int = typer.Option(DEFAULT_LIMIT, "--limit", min=10, help="Images per set, at most."),
    out: Path | None = typer.Option(
        None, "--out", help="Report folder (default: the run folder; required for a model)."
    ),
) -> None:
    """FPR95, AUROC and AUPR of every OOD score, and ECE before/after T, as a report."""
    from training.datasets import DatasetError

    try:
        if target.is_dir() and RunFolder.is_run(target):
            scored = scored_run(RunFolder(target), limit)
            if out is not None:
                scored = _with_report_dir(scored, out)
        else:
            scored = scored_model(target, data, model_data_root, limit, out)
        training = (scored.dataset, scored.data_root)
        sets = {
            spec: ood_images(spec, scored.preprocessing, data_root, limit, training) for spec in ood
        }
        results = evaluate_sets(scored, sets)
    except (OodInputError, DatasetError) as exc:
        raise typer.BadParameter(str(exc), param_hint="--ood") from exc
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="TARGET") from exc
    section = markdown({**results})
    written = write_report(scored, results)
    typer.echo(section)
    typer.echo(f"wrote {', '.join(str(p) for p in written)}")


def _with_report_dir(scored: Scored, out: Path) -> Scored:
    from dataclasses import replace

    return replace(scored, report_dir=out, run=None)


def register(app: typer.Typer) -> None:
    app.command("evaluate-ood")(evaluate_ood_command)
