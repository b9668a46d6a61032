"""A training run: data, model, loop, checkpoints, early stopping, resume and artefacts.

``last.pt`` (written every epoch, and on Ctrl-C) carries the full training state, so
``--resume`` continues where the run stopped; resuming from an epoch boundary on CPU gives
the same weights as an uninterrupted run. ``best.pt`` holds the weights with the best
validation metric and, after the final evaluation, the test metrics that go into the card.
"""

from __future__ import annotations

import logging
import math
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DistributedSampler

from model.architectures import count_parameters
from model.checkpoint import Checkpoint, ModelConfig, load_checkpoint, save_checkpoint
from training.artifacts import write_run_artifacts
from training.config import TrainConfig
from training.data import (
    AugmentedDataset,
    PreprocessedDataset,
    TrainPreset,
    balanced_sampler,
    default_workers,
    eval_loader,
    make_loader,
)
from training.datasets import DatasetBundle, load_dataset
from training.diagnostics import ActivationMonitor, LayerStats, summarize, warn_dead_layers
from training.distributed import DataParallelSummary, Distributed, per_process_batch
from training.engine import Trainer, make_loss, predict, select_device
from training.evaluate import FinalEvaluation, evaluate_model
from training.metrics import evaluate_scores
from training.optim import class_weights, make_optimizer, warmup_cosine
from training.progress import Progress
from training.run_folder import LAST, RunFolder, checkpoint_in
from training.tracking.options import TrackingOptions
from training.tracking.run_tracking import Tracking
from training.tracking.scalars import flatten_params
from training.tracking.tracker import RunDescription

log = logging.getLogger(__name__)

HISTOGRAM_VALUES = 20_000  # activation inputs kept per layer and epoch for TensorBoard


@dataclass
class RunResult:
    run_dir: Path
    best_checkpoint: Path
    last_checkpoint: Path
    history: list[dict[str, Any]]
    test_metrics: dict[str, float] = field(default_factory=dict)
    layer_stats: list[LayerStats] = field(default_factory=list)
    interrupted: bool = False
    train_seconds: float = 0.0
    tracking_failures: list[str] = field(default_factory=list)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def default_run_name(config: TrainConfig) -> str:
    kind, _, argument = config.data.partition(":")
    data = f"{kind}-{Path(argument).name}" if argument else kind
    return re.sub(
        r"[^A-Za-z0-9._-]+", "_", f"{data}-{config.arch}-{config.activation}-s{config.seed}"
    )


def model_config_for(config: TrainConfig, bundle: DatasetBundle) -> ModelConfig:
    return ModelConfig(
        architecture=config.arch,
        activation=config.activation,
        task=bundle.task,
        labels=bundle.labels,
        preprocessing=bundle.preprocessing(config.img_size, config.resize_size),
        dataset=bundle.name,
        architecture_options=dict(config.arch_options),
    )


class Run:
    """Everything one training run holds; ``fit()`` runs it."""

    def __init__(
        self,
        config: TrainConfig,
        *,
        resume: Checkpoint | None = None,
        run_dir: Path | None = None,
        tracking: Tracking | None = None,
        distributed: Distributed | None = None,
    ):
        self.config = config
        self.tracking = tracking or Tracking()
        seed_everything(config.seed)
        # Alone unless a launcher made this process one of a group.
        self.distributed = distributed or Distributed(select_device(config.device))
        # Rank 0 alone writes the run folder; every rank takes the same decisions.
        self.is_main = self.distributed.is_main
        self.device = self.distributed.device
        self.bundle = load_dataset(
            config.data, config.data_root, seed=config.seed, img_size=config.img_size
        ).limited(config.max_samples)
        self.model_config = model_config_for(config, self.bundle)
        self.batch_size = per_process_batch(config.batch_size, self.distributed.world_size)
        # What the training step calls (DDP in a group), and what checkpoints save.
        self.train_model, self.model = self.distributed.wrap_model(
            self.model_config.build().to(self.device), sync_bn=config.sync_bn
        )
        if self.distributed.rank:  # each rank its own augmentation stream; rank 0 keeps seed's
            torch.manual_seed(config.seed + self.distributed.rank)
        self.workers = config.workers if config.workers is not None else default_workers()
        self.loader_generator = torch.Generator().manual_seed(config.seed)
        self.train_loader = self._train_loader()
        spec = self.model_config.preprocessing
        shard = self.distributed.eval_shard(len(self.bundle.val))
        self.val_loader = eval_loader(
            self.bundle, self.bundle.val, spec, self.batch_size, self.workers, sampler=shard
        )
        weights = None
        if config.balance == "loss":
            weights = class_weights(
                self.bundle.train.targets, len(self.bundle.labels), self.bundle.task
            ).to(self.device)
        self.loss_fn = make_loss(self.bundle.task, weights, config.label_smoothing).to(self.device)
        self.optimizer = make_optimizer(self.model, config)
        steps_per_epoch = len(self.train_loader)
        self.scheduler = warmup_cosine(
            self.optimizer,
            total_steps=config.epochs * steps_per_epoch,
            warmup_steps=round(config.warmup_epochs * steps_per_epoch),
        )
        self.trainer = Trainer(
            self.train_model,
            self.optimizer,
            self.scheduler,
            self.loss_fn,
            self.device,
            self.bundle.task,
            amp=config.amp,
        )
        self.history: list[dict[str, Any]] = []
        self.start_epoch = 0
        self.best_value = -float("inf")
        self.bad_epochs = 0
        self.train_seconds = 0.0
        if resume is not None:
            self._restore(resume)
        folder = RunFolder(run_dir) if run_dir else None
        if self.is_main:
            folder = folder or RunFolder.create(config.out, config.name or default_run_name(config))
            folder.write_config(config.to_dict())
        folder = self.distributed.broadcast_from_main(folder)
        assert folder is not None
        self.folder = folder
        self.run_dir = self.folder.path

    # --- set-up -------------------------------------------------------------------------

    def _train_loader(self) -> torch.utils.data.DataLoader[tuple[torch.Tensor, torch.Tensor]]:
        config, bundle = self.config, self.bundle
        spec = self.model_config.preprocessing
        if config.augment == "none":
            # No augmentation: the evaluation tensors themselves, computed once.
            dataset: torch.utils.data.Dataset[Any] = PreprocessedDataset(
                bundle.train, spec, bundle.task
            )
        else:
            preset = TrainPreset(spec, config.augment, bundle.hflip)  # type: ignore[arg-type]
            dataset = AugmentedDataset(bundle.train, preset, bundle.task)
        sampler = self.distributed.train_sampler(dataset, seed=config.seed)
        if sampler is None and config.balance == "sampler":
            sampler = balanced_sampler(bundle.train, len(bundle.labels), self.loader_generator)
        workers = self.workers
        if isinstance(dataset, PreprocessedDataset) and dataset.cache is not None:
            workers = 0
        share = len(sampler) if isinstance(sampler, DistributedSampler) else len(bundle.train)
        return make_loader(
            dataset,
            batch_size=self.batch_size,
            workers=workers,
            shuffle=True,
            sampler=sampler,
            generator=self.loader_generator,
            pin_memory=self.device.type == "cuda",
            # A last batch of one would break BatchNorm's training statistics.
            drop_last=share % self.batch_size == 1,
        )

    def _training_state(self, next_epoch: int) -> dict[str, Any]:
        """What ``--resume`` restores; collective in a distributed run (the RNG states)."""
        state = {
            "epoch": next_epoch,
            "config": self.config.to_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.trainer.scaler.state_dict(),
            "best_value": self.best_value,
            "bad_epochs": self.bad_epochs,
            "history": self.history,
            "train_seconds": self.train_seconds,
            "torch_rng": torch.get_rng_state(),
            "loader_rng": self.loader_generator.get_state(),
            **self.distributed.rank_states(),
        }
        return state

    def _restore(self, checkpoint: Checkpoint) -> None:
        state = checkpoint.training_state
        if state is None:
            raise ValueError(f"the checkpoint holds no training state (resume from {LAST})")
        self.model.load_state_dict(checkpoint.model.state_dict())
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.trainer.scaler.load_state_dict(state["scaler"])
        self.start_epoch = int(state["epoch"])
        self.best_value = float(state["best_value"])
        self.bad_epochs = int(state["bad_epochs"])
        self.history = list(state["history"])
        self.train_seconds = float(state.get("train_seconds", 0.0))
        torch.set_rng_state(state["torch_rng"])
        if self.distributed.rank:
            self._restore_rank_rng(state.get("rank_torch_rng"))
        self.loader_generator.set_state(state["loader_rng"])
        log.info("resuming at epoch %d of %d", self.start_epoch + 1, self.config.epochs)

    def _restore_rank_rng(self, states: list[torch.Tensor] | None) -> None:
        if states is not None and len(states) == self.distributed.world_size:
            torch.set_rng_state(states[self.distributed.rank])
        else:  # saved by another number of processes: a fresh stream per rank, still seeded
            torch.manual_seed(self.config.seed + self.distributed.rank + 1000 * self.start_epoch)

    # --- the loop -----------------------------------------------------------------------

    @property
    def last_path(self) -> Path:
        return self.folder.last

    @property
    def best_path(self) -> Path:
        return self.folder.best

    def validate(self) -> tuple[dict[str, float], list[LayerStats], dict[str, np.ndarray]]:
        """Validation metrics, per-layer statistics and (for histograms) activation inputs."""
        keep = HISTOGRAM_VALUES if self.tracking.wants_activation_values else 0
        monitor = ActivationMonitor(self.model, keep_values=keep)
        preds = predict(
            self.model,
            self.val_loader,
            device=self.device,
            task=self.bundle.task,
            loss_fn=self.loss_fn,
            monitor=monitor,
        )
        # In a group each rank saw its shard; all get the whole split.
        preds = self.distributed.gather_predictions(preds)
        self.distributed.gather_activation_stats(monitor)
        metrics = evaluate_scores(preds.targets, preds.scores, self.bundle.task)
        metrics["loss"] = preds.loss
        return metrics, monitor.results(), monitor.values()

    def _describe(self) -> RunDescription:
        config = self.config
        tags = {
            "dataset": self.bundle.name,
            "architecture": config.arch,
            "activation": config.activation,
            "task": self.bundle.task,
        }
        if self.start_epoch:
            tags["resumed_at_epoch"] = str(self.start_epoch + 1)
        return RunDescription(
            self.run_dir.name, self.run_dir, flatten_params(config.to_dict()), tags
        )

    def fit(self) -> RunResult:
        config = self.config
        epoch = self.start_epoch
        log.info(
            "training %s + %s (%s parameters) on %s (%d train / %d val images) on %s, "
            "run folder %s",
            config.arch,
            config.activation,
            f"{count_parameters(self.model):,}",
            self.bundle.name,
            len(self.bundle.train),
            len(self.bundle.val),
            self.device,
            self.run_dir,
        )
        self.tracking.start(self._describe())
        try:
            while epoch < config.epochs:
                stop = self._epoch(epoch)
                epoch += 1
                if stop:
                    log.info("early stopping: no improvement in %d epochs", config.patience)
                    break
        except KeyboardInterrupt:
            if self.distributed.in_group:
                # The other ranks may be anywhere: no collective now. last.pt holds the
                # last complete epoch, where a resumed run starts.
                log.warning("interrupted in epoch %d; %s is epoch %d's", epoch + 1, LAST, epoch)
                if self.is_main:
                    write_run_artifacts(
                        self.folder,
                        self.config,
                        self.model_config,
                        self.history,
                        None,
                        self._parallel_summary(),
                    )
                self.tracking.end("KILLED")
                return self._result(interrupted=True)
            save_checkpoint(
                self.last_path,
                self.model_config,
                self.model,
                training_state=self._training_state(epoch),
            )
            log.warning(
                "interrupted in epoch %d; resumable checkpoint saved: %s (continue with "
                "`rectifier train --resume %s`)",
                epoch + 1,
                self.last_path,
                self.run_dir,
            )
            write_run_artifacts(self.folder, self.config, self.model_config, self.history, None)
            self.tracking.end("KILLED")
            return self._result(interrupted=True)
        except BaseException:
            self.tracking.end("FAILED")
            raise
        return self._finish()

    def _epoch(self, epoch: int) -> bool:
        """Train and validate one epoch; returns True when early stopping triggers."""
        config = self.config
        self.distributed.begin_epoch(self.train_loader.sampler, epoch)
        title = f"epoch {epoch + 1}/{config.epochs}"
        enabled = config.progress and self.is_main
        with Progress(len(self.train_loader), title, enabled=enabled) as progress:
            stats = self.trainer.train_epoch(self.train_loader, progress)
        stats = self.distributed.reduce_epoch_stats(stats)
        self.train_seconds += stats.seconds
        val, layers, activations = self.validate()
        summary = summarize(layers)
        warn_dead_layers(layers, config.dead_threshold, context=f"epoch {epoch + 1}")
        record = {
            "epoch": epoch + 1,
            "train_loss": stats.loss,
            "train_acc": stats.acc,
            "images_per_second": stats.images_per_second,
            "epoch_seconds": stats.seconds,
            "lr": self.optimizer.param_groups[0]["lr"],
            **{f"val_{k}": v for k, v in val.items()},
            **summary,
            "dead_per_layer": {s.layer: s.dead_fraction for s in layers},
        }
        self.history.append(record)
        value = val[config.monitor_metric]
        # NaN (an undefined AUC on a tiny split) never compares greater: keep the first.
        # Decided from the metrics alone, not from files, so every rank decides alike.
        improved = value > self.best_value or self.best_value == -math.inf
        if improved:
            self.best_value, self.bad_epochs = value, 0
            if self.is_main:
                save_checkpoint(
                    self.best_path,
                    self.model_config,
                    self.model,
                    metrics={f"val_{k}": v for k, v in val.items() if k != "loss"},
                )
        else:
            self.bad_epochs += 1
        state = self._training_state(epoch + 1)
        if self.is_main:
            save_checkpoint(self.last_path, self.model_config, self.model, training_state=state)
        log.info(
            "epoch %d/%d  loss %.4f  acc %.4f | val loss %.4f  acc %.4f  auc %.4f | "
            "dead %.1f%%  sparsity %.1f%% | %.0f img/s  %.1fs%s",
            epoch + 1,
            config.epochs,
            stats.loss,
            stats.acc,
            val["loss"],
            val["acc"],
            val["auc"],
            100 * summary["dead_fraction"],
            100 * summary["sparsity"],
            stats.images_per_second,
            stats.seconds,
            "  *" if improved else "",
        )
        # After the checkpoints: a tracker that fails here has nothing of the run to lose.
        self.tracking.log_epoch(epoch + 1, record, layers, activations)
        return config.patience > 0 and self.bad_epochs >= config.patience

    def _finish(self) -> RunResult:
        """Test metrics of ``best.pt``, written with the report: on rank 0, then shared."""
        test: dict[str, float] = {}
        layers: list[LayerStats] = []
        if self.is_main:
            test, layers = self._evaluate_best()
        test, layers = self.distributed.broadcast_from_main((test, layers))
        result = self._result(interrupted=False)
        result.test_metrics, result.layer_stats = test, layers
        return result

    def _evaluate_best(self) -> tuple[dict[str, float], list[LayerStats]]:
        best = load_checkpoint(self.best_path, map_location=str(self.device))
        best.model.to(self.device)
        test, layers, preds = evaluate_model(
            best.model,
            self.bundle,
            self.model_config,
            self.batch_size,
            self.workers,
            self.device,
        )
        warn_dead_layers(layers, self.config.dead_threshold, context="test set")
        metrics = {**best.metrics, **{f"test_{k}": v for k, v in test.items()}}
        save_checkpoint(self.best_path, self.model_config, best.model, metrics=metrics)
        write_run_artifacts(
            self.folder,
            self.config,
            self.model_config,
            self.history,
            FinalEvaluation(test, layers, preds, self.train_seconds),
            self._parallel_summary(),
        )
        log.info(
            "test acc %.4f  auc %.4f (best epoch by val %s); run folder %s",
            test["acc"],
            test["auc"],
            self.config.monitor_metric,
            self.run_dir,
        )
        self.tracking.log_final(len(self.history), test, layers, self.folder.reports())
        self.tracking.end("FINISHED")
        return test, layers

    def _parallel_summary(self) -> DataParallelSummary | None:
        return self.distributed.parallel_summary(self.config, self.batch_size)

    def _result(self, *, interrupted: bool) -> RunResult:
        return RunResult(
            self.run_dir,
            self.best_path,
            self.last_path,
            self.history,
            interrupted=interrupted,
            train_seconds=self.train_seconds,
            tracking_failures=list(self.tracking.failures),
        )


def _connected(tracking: Tracking | TrackingOptions | None) -> Tracking:
    """Trackers reached before any data is loaded: an unreachable server fails the run
    before it starts (``TrackingUnavailable``)."""
    if isinstance(tracking, Tracking):
        return tracking
    return Tracking.connect(tracking or TrackingOptions())


def train(
    config: TrainConfig,
    tracking: Tracking | TrackingOptions | None = None,
    *,
    distributed: Distributed | None = None,
) -> RunResult:
    return Run(config, tracking=_connected(tracking), distributed=distributed).fit()


def resume(
    path: str | Path,
    config: TrainConfig,
    tracking: Tracking | TrackingOptions | None = None,
    *,
    distributed: Distributed | None = None,
) -> RunResult:
    """Continue a run from ``last.pt`` (or a run folder), in the same folder.

    In a distributed run every rank reads the file (on several nodes: a shared folder).
    """
    checkpoint_path = checkpoint_in(Path(path), "last")
    connected = _connected(tracking)
    checkpoint = load_checkpoint(checkpoint_path)
    run = Run(
        config,
        resume=checkpoint,
        run_dir=checkpoint_path.parent,
        tracking=connected,
        distributed=distributed,
    )
    return run.fit()
