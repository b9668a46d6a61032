"""What a run leaves in its folder besides checkpoints: metrics, report and the PNG plots."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from model.checkpoint import ModelConfig
from training import plots
from training.config import TrainConfig
from training.evaluate import FinalEvaluation
from training.metrics import confusion, per_label_auc
from training.run_folder import RunFolder
from training.trust_plots import reliability_diagram

if TYPE_CHECKING:
    from training.distributed import DataParallelSummary


def json_safe(value: Any) -> Any:
    """JSON has no NaN: undefined metrics become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def write_run_artifacts(
    folder: RunFolder,
    config: TrainConfig,
    model_config: ModelConfig,
    history: list[dict[str, Any]],
    final: FinalEvaluation | None,
    parallel: DataParallelSummary | None = None,
) -> None:
    """Write everything the run has so far; ``final`` is None for an interrupted run,
    ``parallel`` None for a single-process one."""
    payload: dict[str, Any] = {
        "dataset": model_config.dataset,
        "task": model_config.task,
        "labels": list(model_config.labels),
        "architecture": config.arch,
        "activation": config.activation,
        "epochs": history,
        "completed": final is not None,
    }
    if parallel is not None:
        payload["distributed"] = parallel.to_dict()
    figures: list[tuple[str, Path]] = []
    if history:
        figures.append(
            ("Learning curves", plots.learning_curves(history, folder.plot("learning_curves")))
        )
    if final is not None:
        payload["test"] = final.metrics
        payload["train_seconds"] = final.train_seconds
        payload["layers"] = [s.to_dict() for s in final.layers]
        preds, labels = final.predictions, model_config.labels
        aucs = per_label_auc(preds.targets, preds.scores, model_config.task)
        payload["test_per_label_auc"] = dict(zip(labels, aucs, strict=True))
        if model_config.task == "multilabel":
            figures.append(
                ("Per-label AUC", plots.label_auc_plot(aucs, labels, folder.plot("label_auc")))
            )
        else:
            matrix = confusion(preds.targets, preds.scores, len(labels))
            payload["test_confusion_matrix"] = matrix.tolist()
            figures.append(
                (
                    "Confusion matrix",
                    plots.confusion_matrix_plot(matrix, labels, folder.plot("confusion_matrix")),
                )
            )
            figures.append(
                (
                    "Reliability (test split, raw softmax; export fits the temperature)",
                    reliability_diagram(
                        {"raw softmax": preds.scores}, preds.targets, folder.plot("reliability")
                    ),
                )
            )
    if history or final is not None:
        figures.append(
            (
                "Dead units",
                plots.dead_units_plot(
                    history,
                    final.layers if final else [],
                    folder.plot("dead_units"),
                    config.dead_threshold,
                ),
            )
        )
    folder.write_text(folder.metrics, json.dumps(json_safe(payload), indent=2))
    report = render_report(config, model_config, history, final, figures, parallel)
    folder.write_text(folder.report, report)


def _fmt(value: Any, percent: bool = False) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return f"{100 * value:.1f}%" if percent else f"{value:.4f}"


def render_report(
    config: TrainConfig,
    model_config: ModelConfig,
    history: list[dict[str, Any]],
    final: FinalEvaluation | None,
    figures: list[tuple[str, Path]],
    parallel: DataParallelSummary | None = None,
) -> str:
    lines = [
        f"# Run report: {config.arch} + {config.activation} on {model_config.dataset}",
        "",
        f"- task: {model_config.task}, {len(model_config.labels)} labels",
        f"- input: {model_config.preprocessing.color_mode} {config.img_size} px, "
        f"augment {config.augment}, batch {config.batch_size}, {config.optimizer} lr {config.lr:g}",
        f"- epochs run: {len(history)} of {config.epochs}"
        + ("" if final else " (interrupted: resume with `rectifier train --resume RUN`)"),
    ]
    if parallel is not None:
        lines.append(f"- data-parallel: {parallel.describe()}")
    if final is not None:
        m = final.metrics
        lines += [
            f"- training time: {final.train_seconds:.1f} s",
            "",
            "## Test metrics (MedMNIST evaluator definitions)",
            "",
            "| ACC | AUC | dead units | sparsity |",
            "|---|---|---|---|",
            f"| {_fmt(m.get('acc'))} | {_fmt(m.get('auc'))} | {_fmt(m.get('dead_fraction'), True)} "
            f"| {_fmt(m.get('sparsity'), True)} |",
            "",
            "## Activation diagnostics per layer (test set)",
            "",
            "| layer | activation | channels | dead | sparsity | pre-act mean | pre-act std |",
            "|---|---|---|---|---|---|---|",
        ]
        lines += [
            f"| {s.layer} | {s.kind} | {s.channels} | {_fmt(s.dead_fraction, True)} | "
            f"{_fmt(s.sparsity, True)} | {_fmt(s.preact_mean)} | {_fmt(s.preact_std)} |"
            for s in final.layers
        ]
        flagged = [
            s.layer for s in final.layers if s.channels and s.dead_fraction > config.dead_threshold
        ]
        if flagged:
            lines += [
                "",
                f"**Warning:** over {config.dead_threshold:.0%} dead units in "
                f"{', '.join(flagged)}.",
            ]
    if history:
        lines += [
            "",
            "## Epochs",
            "",
            "| epoch | train loss | train ACC | val loss | val ACC | val AUC | dead | img/s |",
            "|---|---|---|---|---|---|---|---|",
        ]
        lines += [
            f"| {h['epoch']} | {_fmt(h['train_loss'])} | {_fmt(h['train_acc'])} | "
            f"{_fmt(h['val_loss'])} | {_fmt(h['val_acc'])} | {_fmt(h['val_auc'])} | "
            f"{_fmt(h['dead_fraction'], True)} | {h['images_per_second']:.0f} |"
            for h in history
        ]
    if figures:
        lines += ["", "## Plots", ""]
        lines += [f"![{title}]({path.name})" for title, path in figures]
    return "\n".join(lines) + "\n"
