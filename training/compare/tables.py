"""The markdown tables of a sweep (``sweep.md``) and of a study (``study.md``): means and
standard deviations over seeds."""

from __future__ import annotations

from training.compare.latency import LATENCY_RUNS
from training.compare.plan import REGIMES
from training.compare.records import StudyResult, SweepRow
from training.compare.stats import aggregate, dead_per_layer, mean_std, plus_minus
from training.config import TrainConfig

STUDY_METRICS = ("test_acc", "dead_fraction", "sparsity", "train_seconds", "latency_ms")


def render_sweep_table(base: TrainConfig, rows: list[SweepRow]) -> str:
    seeds = sorted({r.seed for r in rows})
    lines = [
        f"# Activation sweep: {base.arch} on {base.data}",
        "",
        f"{base.epochs} epochs, batch {base.batch_size}, {base.optimizer} lr {base.lr:g}, "
        f"{base.img_size} px, seeds {seeds}; mean ± std over seeds. Latency: onnxruntime, "
        "CPU, batch 1, one thread, median.",
        "",
        "| activation | test ACC | test AUC | dead units (%) | sparsity (%) | train time (s) "
        "| latency (ms) |",
        "|---|---|---|---|---|---|---|",
    ]
    for activation, m in aggregate(rows).items():
        lines.append(
            f"| {activation} | {plus_minus(m['test_acc'], 1, 4)} "
            f"| {plus_minus(m['test_auc'], 1, 4)} "
            f"| {plus_minus(m['dead_fraction'], 100, 1)} | {plus_minus(m['sparsity'], 100, 1)} "
            f"| {plus_minus(m['train_seconds'], 1, 1)} | {plus_minus(m['latency_ms'], 1, 3)} |"
        )
    return "\n".join(lines) + "\n"


def render_study_tables(result: StudyResult) -> str:
    """The markdown tables: outcomes per (regime, activation), then dead units per layer."""
    budget, cells = result.budget, result.cells
    lines = [
        "### Outcomes per regime and activation",
        "",
        f"Budget: {budget.describe()}. Mean ± std over seeds {list(range(budget.seeds))}. "
        "Dead units: channels whose input was never positive on the test split (Maxout: "
        "pieces that never won), after the last epoch, weighted by layer size. Sparsity: "
        "fraction of activation outputs <= 0. Latency: onnxruntime, CPU, batch 1, one "
        f"thread, median of {LATENCY_RUNS} runs.",
        "",
        "| regime | activation | parameters | test acc | dead units (%) | sparsity (%) "
        "| train time (s) | ONNX latency (ms) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for (regime, activation), rows in cells.items():
        metric = {m: mean_std([getattr(r.run, m) for r in rows]) for m in STUDY_METRICS}
        lines.append(
            f"| {regime} | {activation} | {rows[0].parameters:,} "
            f"| {plus_minus(metric['test_acc'], 1, 3)} "
            f"| {plus_minus(metric['dead_fraction'], 100, 1)} "
            f"| {plus_minus(metric['sparsity'], 100, 1)} "
            f"| {plus_minus(metric['train_seconds'], 1, 1)} "
            f"| {plus_minus(metric['latency_ms'], 1, 3)} |"
        )
    for regime in dict.fromkeys(row.regime for row in result.rows):
        regime_cells = {a: rows for (g, a), rows in cells.items() if g == regime}
        layers = list(dead_per_layer(next(iter(regime_cells.values()))))
        lines += [
            "",
            f"### Dead units per layer after the last epoch, {regime} ({REGIMES[regime].summary})",
            "",
            "Validation split; layers in network order (conv blocks of simple_cnn).",
            "",
            "| activation | " + " | ".join(f"layer {n + 1}" for n in range(len(layers))) + " |",
            "|---|" + "---|" * len(layers),
        ]
        for activation, rows in regime_cells.items():
            per_layer = dead_per_layer(rows)
            cells_text = " | ".join(plus_minus(per_layer[layer], 100, 0) for layer in layers)
            lines.append(f"| {activation} | {cells_text} |")
    return "\n".join(lines) + "\n"
