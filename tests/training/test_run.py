"""One-epoch runs on every dataset format, resume, Ctrl-C and early stopping."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from model.checkpoint import load_checkpoint
from model.export import export_checkpoint
from tests.helpers.datasets import tiny_config
from training.engine import Trainer
from training.run import resume, train
from training.run_folder import Plot, RunFolder

pytestmark = pytest.mark.heavy

FORMATS = [
    ("medmnist:pneumoniamnist", "medmnist", "confusion_matrix"),
    ("medmnist:chestmnist", "medmnist", "label_auc"),
    ("medmnist:dermamnist", "medmnist", "confusion_matrix"),
    ("gtsrb", "gtsrb_root", "confusion_matrix"),
    ("gtsrb:roi", "gtsrb_root", "confusion_matrix"),
    ("imagefolder:folder", "", "confusion_matrix"),
    ("dicom:ct", "", "confusion_matrix"),
    ("dicom:ct;window=-600,1500", "", "confusion_matrix"),
]


@pytest.mark.parametrize(("data", "root", "plot"), FORMATS)
def test_one_epoch_on_each_format(
    tmp_path: Path, data_dir: Path, data: str, root: str, plot: Plot
) -> None:
    config = tiny_config(tmp_path, data=data, data_root=str(data_dir / root))
    result = train(config)
    folder = RunFolder(result.run_dir)
    for path in (folder.config, folder.metrics, folder.report, folder.plot("learning_curves")):
        assert path.is_file(), path
    assert folder.plot(plot).is_file() and folder.plot("dead_units").is_file()
    metrics = json.loads(folder.metrics.read_text())
    assert len(metrics["epochs"]) == 1 and metrics["completed"]
    assert 0 <= metrics["test"]["acc"] <= 1
    assert metrics["epochs"][0]["dead_per_layer"]  # diagnostics tracked per epoch
    assert yaml.safe_load(folder.config.read_text())["data"] == data
    best = load_checkpoint(result.best_checkpoint)
    assert best.metrics["test_acc"] == pytest.approx(metrics["test"]["acc"])
    assert "Activation diagnostics" in folder.report.read_text()


def test_best_checkpoint_exports_with_its_test_metrics(tmp_path: Path, signs_dir: Path) -> None:
    config = tiny_config(tmp_path, data=f"imagefolder:{signs_dir}", img_size=24)
    result = train(config)
    exported = export_checkpoint(result.best_checkpoint, tmp_path / "models", "signs")
    assert exported.card.metrics["test_acc"] == result.test_metrics["acc"]
    assert exported.card.dataset.startswith("imagefolder:")


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(path).model.state_dict()


def ctrl_c_on_call(method: Callable[..., Any], call: int) -> Callable[..., Any]:
    """``method``, except that its ``call``-th call raises KeyboardInterrupt (Ctrl-C)."""
    calls = {"n": 0}

    def wrapper(self: Trainer, *args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == call:
            raise KeyboardInterrupt
        return method(self, *args, **kwargs)

    return wrapper


def test_ctrl_c_saves_a_checkpoint_and_resume_matches_an_uninterrupted_run(
    tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tiny_config(
        tmp_path, data="imagefolder:folder", data_root=str(data_dir), epochs=2, augment="light"
    )
    straight = train(config)

    original = Trainer.train_epoch
    monkeypatch.setattr(Trainer, "train_epoch", ctrl_c_on_call(original, 2))
    stopped = train(config)
    assert stopped.interrupted and stopped.last_checkpoint.is_file()
    state = load_checkpoint(stopped.last_checkpoint).training_state
    assert state is not None and state["epoch"] == 1
    assert not json.loads(RunFolder(stopped.run_dir).metrics.read_text())["completed"]

    monkeypatch.setattr(Trainer, "train_epoch", original)
    resumed = resume(stopped.run_dir, config)
    assert resumed.run_dir == stopped.run_dir and len(resumed.history) == 2
    for name, tensor in _weights(straight.last_checkpoint).items():
        assert torch.equal(tensor, _weights(resumed.last_checkpoint)[name]), name
    assert resumed.test_metrics == straight.test_metrics


def test_interrupt_mid_epoch_redoes_that_epoch(
    tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tiny_config(
        tmp_path, data="medmnist:pneumoniamnist", data_root=str(data_dir / "medmnist")
    )
    original = Trainer.train_step
    monkeypatch.setattr(Trainer, "train_step", ctrl_c_on_call(original, 3))
    stopped = train(config)
    assert stopped.interrupted
    assert load_checkpoint(stopped.last_checkpoint).training_state["epoch"] == 0
    monkeypatch.setattr(Trainer, "train_step", original)
    finished = resume(stopped.last_checkpoint, config)
    assert not finished.interrupted and len(finished.history) == 1


def test_early_stopping_when_validation_stalls(tmp_path: Path, data_dir: Path) -> None:
    config = tiny_config(
        tmp_path,
        data="medmnist:pneumoniamnist",
        data_root=str(data_dir / "medmnist"),
        epochs=6,
        patience=1,
        lr=1e-12,  # nothing moves, so the validation metric never improves
        augment="none",
    )
    result = train(config)
    assert len(result.history) == 2


@pytest.mark.parametrize("balance", ["loss", "sampler"])
def test_balancing_options_train(tmp_path: Path, data_dir: Path, balance: str) -> None:
    data = "medmnist:chestmnist" if balance == "loss" else "medmnist:pneumoniamnist"
    config = tiny_config(tmp_path, data=data, data_root=str(data_dir / "medmnist"), balance=balance)
    assert not train(config).interrupted


def test_seeded_runs_are_reproducible_on_cpu(tmp_path: Path, data_dir: Path) -> None:
    config = tiny_config(
        tmp_path, data="imagefolder:folder", data_root=str(data_dir), optimizer="sgd"
    )
    first, second = train(config), train(config)
    assert first.run_dir != second.run_dir
    assert first.history[0]["train_loss"] == second.history[0]["train_loss"]
    for name, tensor in _weights(first.best_checkpoint).items():
        assert torch.equal(tensor, _weights(second.best_checkpoint)[name])


def test_dicom_and_medmnist_runs_report_the_same_metrics(tmp_path: Path, data_dir: Path) -> None:
    reported = {}
    for data, root in (("medmnist:pneumoniamnist", "medmnist"), ("dicom:ct;window=-600,1500", "")):
        config = tiny_config(tmp_path / root, data=data, data_root=str(data_dir / root))
        result = train(config)
        metrics = json.loads(RunFolder(result.run_dir).metrics.read_text())
        reported[data] = (set(metrics["test"]), set(metrics["epochs"][0]), set(metrics))
    assert reported["medmnist:pneumoniamnist"] == reported["dicom:ct;window=-600,1500"]
    # The card records the DICOM policy the model was trained with.
    card = export_checkpoint(result.best_checkpoint, tmp_path / "models", "ct").card
    assert card.preprocessing.dicom.window is not None
    assert (card.preprocessing.dicom.window.center, card.preprocessing.dicom.window.width) == (
        -600,
        1500,
    )
    assert card.dataset == "dicom:ct"
