"""Data-parallel training: this process's place in a torch.distributed group, and the
collectives a run needs (metric sums, gathered predictions, per-rank RNG states).

Processes are started by torch.distributed's own launcher, never by us: ``torchrun`` (any
number of nodes) or ``rectifier train --nproc-per-node N`` (``training.launch``, one node,
through ``elastic_launch``, the API torchrun itself is built on). Either way each process
finds its rank, the world size and the rendezvous address in the environment (``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``/``MASTER_PORT``) and joins with ``env://``.
Backends: NCCL on CUDA (one GPU per process, by ``LOCAL_RANK``), gloo on the CPU.

A run has one code path: ``Distributed`` is a process alone (rank 0 of 1; the collectives
hand their input back, the sampler and the model are not wrapped), ``GroupMember`` is one
process of a group and does the real work. ``Run`` calls the same methods on either.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import Dataset, DistributedSampler, Sampler

from model.cpus import available_cpus
from training.diagnostics import ActivationMonitor
from training.engine import EpochStats, Predictions

if TYPE_CHECKING:
    from training.config import TrainConfig

log = logging.getLogger(__name__)

T = TypeVar("T")

# Fault injection for testing and for rehearsing failure handling on a real cluster:
# RANK[:EPOCH] makes that rank raise at the start of that (1-based) epoch, default 1.
FAULT_ENV = "RECTIFIER_FAIL_RANK"


class InjectedFault(RuntimeError):
    """Raised on purpose by ``RECTIFIER_FAIL_RANK``."""


@dataclass(frozen=True)
class Distributed:
    """This process's place in a run: alone, rank 0 of 1, every collective a no-op.

    ``GroupMember`` (from ``join_group``) is a process of a torch.distributed group.
    """

    device: torch.device
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1
    backend: str = "none"
    # In a group a Ctrl-C leaves the other ranks anywhere: no collective may follow it.
    in_group: ClassVar[bool] = False

    @property
    def is_main(self) -> bool:
        """Rank 0 alone writes the run folder, checkpoints, plots and report."""
        return self.rank == 0

    def wrap_model(self, model: nn.Module, *, sync_bn: bool) -> tuple[nn.Module, nn.Module]:
        """(what the training step calls, what checkpoints save): the model itself."""
        return model, model

    def train_sampler(self, dataset: Dataset[Any], *, seed: int) -> Sampler[int] | None:
        """None: the loader shuffles (or the run's own sampler balances)."""
        return None

    def eval_shard(self, length: int) -> Sampler[int] | None:
        """None: this process evaluates the whole split."""
        return None

    def begin_epoch(self, sampler: object, epoch: int) -> None:
        """Nothing to set up before an epoch."""

    def reduce_epoch_stats(self, stats: EpochStats) -> EpochStats:
        return stats

    def gather_predictions(self, preds: Predictions) -> Predictions:
        return preds

    def gather_activation_stats(self, monitor: ActivationMonitor) -> None:
        """The monitor holds every statistic already."""

    def broadcast_from_main(self, value: T) -> T:
        return value

    def rank_states(self) -> dict[str, Any]:
        """What ``--resume`` needs beyond one process's state: nothing."""
        return {}

    def parallel_summary(self, config: TrainConfig, per_process: int) -> DataParallelSummary | None:
        """What the report states about data parallelism: nothing for a process alone."""
        return None


@dataclass(frozen=True)
class GroupMember(Distributed):
    """One process of a torch.distributed group: the collectives are real."""

    in_group: ClassVar[bool] = True

    def wrap_model(self, model: nn.Module, *, sync_bn: bool) -> tuple[nn.Module, nn.Module]:
        """DistributedDataParallel around ``model``, and the module inside it for checkpoints
        (its state_dict has no ``module.`` prefix, so the file format does not change)."""
        ddp = wrap_model(model, self, sync_bn=sync_bn)
        return ddp, ddp.module

    def train_sampler(self, dataset: Dataset[Any], *, seed: int) -> Sampler[int] | None:
        return train_sampler(dataset, self, seed=seed)

    def eval_shard(self, length: int) -> Sampler[int] | None:
        return EvalShard(length, self)

    def begin_epoch(self, sampler: object, epoch: int) -> None:
        """``RECTIFIER_FAIL_RANK``, then a new shuffle, the same on every rank."""
        inject_fault(self, epoch)
        assert isinstance(sampler, DistributedSampler)
        sampler.set_epoch(epoch)

    def reduce_epoch_stats(self, stats: EpochStats) -> EpochStats:
        return reduce_epoch_stats(stats, self.device)

    def gather_predictions(self, preds: Predictions) -> Predictions:
        return gather_predictions(preds, self)

    def gather_activation_stats(self, monitor: ActivationMonitor) -> None:
        gather_activation_stats(monitor)

    def broadcast_from_main(self, value: T) -> T:
        return broadcast_from_main(value)

    def rank_states(self) -> dict[str, Any]:
        """Every rank's RNG state (collective), so each rank gets its own stream back."""
        return {"world_size": self.world_size, "rank_torch_rng": gather_rng_states()}

    def parallel_summary(self, config: TrainConfig, per_process: int) -> DataParallelSummary | None:
        return DataParallelSummary.of(self, config, per_process)


@dataclass(frozen=True)
class DataParallelSummary:
    """What the run report and metrics.json state about a distributed run."""

    world_size: int
    backend: str
    device: str
    global_batch: int
    per_process_batch: int
    lr: float
    sync_bn: bool

    @classmethod
    def of(cls, context: Distributed, config: TrainConfig, per_process: int) -> DataParallelSummary:
        return cls(
            context.world_size,
            context.backend,
            context.device.type,
            config.batch_size,
            per_process,
            config.lr,
            config.sync_bn,
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        return (
            f"{self.world_size} processes (DistributedDataParallel, {self.backend} on "
            f"{self.device}); global batch {self.global_batch} ({self.per_process_batch} per "
            f"process, {self.world_size} processes), lr {self.lr:g} for the global batch; "
            f"SyncBatchNorm {'on' if self.sync_bn else 'off'}"
        )


def in_launched_process() -> bool:
    """True in a process started by torchrun or elastic_launch (it set RANK and WORLD_SIZE)."""
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def launched_world_size() -> int | None:
    return int(os.environ["WORLD_SIZE"]) if in_launched_process() else None


def join_group(device: str) -> GroupMember:
    """Join the group described by the environment; ``device`` is auto, cpu or cuda."""
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", str(world)))
    use_cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    if use_cuda:
        if not torch.cuda.is_available():
            raise RuntimeError("--device cuda was requested but CUDA is not available")
        if local_rank >= torch.cuda.device_count():
            raise RuntimeError(
                f"process {local_rank} of {local_world} on this node has no GPU: "
                f"{torch.cuda.device_count()} visible; start at most that many per node"
            )
        where = torch.device("cuda", local_rank)
        torch.cuda.set_device(where)
        backend = "nccl"
    else:
        where = torch.device("cpu")
        backend = "gloo"
        # Each process would otherwise start one thread per core and they would fight.
        torch.set_num_threads(max(1, available_cpus() // local_world))
    dist.init_process_group(backend=backend, init_method="env://")
    context = GroupMember(where, rank, world, local_rank, local_world, backend)
    log.info(
        "rank %d of %d joined (%s on %s, %d threads)",
        rank,
        world,
        backend,
        where,
        torch.get_num_threads(),
    )
    return context


def leave_group() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def per_process_batch(global_batch: int, world_size: int) -> int:
    """``--batch-size`` is the global batch; each process takes an equal share."""
    if global_batch % world_size:
        raise ValueError(
            f"--batch-size {global_batch} is the global batch and must divide evenly over "
            f"{world_size} processes"
        )
    return global_batch // world_size


def wrap_model(
    model: nn.Module, context: Distributed, *, sync_bn: bool
) -> nn.parallel.DistributedDataParallel:
    """DistributedDataParallel around ``model``; the caller keeps ``model`` for checkpoints
    (its state_dict has no ``module.`` prefix, so the file format does not change)."""
    if sync_bn:
        if context.device.type != "cuda":
            raise ValueError(
                "--sync-bn needs CUDA: torch's SyncBatchNorm runs on GPU modules only; "
                "on the CPU each process normalises over its own share of the batch"
            )
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    device_ids = [context.device.index] if context.device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=device_ids)


def train_sampler(
    dataset: Dataset[Any], context: Distributed, *, seed: int
) -> DistributedSampler[Any]:
    """Each rank a disjoint share of a seeded shuffle; call ``set_epoch`` every epoch."""
    return DistributedSampler(
        dataset, num_replicas=context.world_size, rank=context.rank, shuffle=True, seed=seed
    )


class EvalShard(Sampler[int]):
    """Indices ``rank, rank + W, ...``: no padding, so gathered metrics count every image
    exactly once (DistributedSampler would repeat images to even out the shares)."""

    def __init__(self, length: int, context: Distributed) -> None:
        self.indices = range(context.rank, length, context.world_size)

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


def all_gather(value: T) -> list[T]:
    """Every rank's ``value`` (picklable, CPU), in rank order, on every rank."""
    gathered: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, value)
    return gathered


def broadcast_from_main(value: T) -> T:
    box: list[Any] = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def all_reduce_sums(values: Sequence[float], device: torch.device) -> list[float]:
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor.tolist()


def reduce_epoch_stats(stats: EpochStats, device: torch.device) -> EpochStats:
    """The epoch over all ranks: mean loss and accuracy over every image any rank saw;
    the slowest rank's time, so images/s is the group's throughput."""
    loss_sum, correct, images = all_reduce_sums(
        [stats.loss * stats.images, stats.acc * stats.images, float(stats.images)], device
    )
    seconds = torch.tensor([stats.seconds], dtype=torch.float64, device=device)
    dist.all_reduce(seconds, op=dist.ReduceOp.MAX)
    seen = max(images, 1.0)
    return EpochStats(loss_sum / seen, correct / seen, int(images), float(seconds.item()))


def gather_predictions(preds: Predictions, context: Distributed) -> Predictions:
    """Every rank's ``EvalShard`` predictions, back in the split's order, on every rank."""
    count = len(preds.targets)
    shards = all_gather((preds.scores, preds.targets, preds.loss * count, count))
    total = sum(shard[3] for shard in shards)
    scores = np.empty((total, *shards[0][0].shape[1:]), dtype=shards[0][0].dtype)
    targets = np.empty((total, *shards[0][1].shape[1:]), dtype=shards[0][1].dtype)
    for rank, (rank_scores, rank_targets, _, _) in enumerate(shards):
        scores[rank :: context.world_size] = rank_scores
        targets[rank :: context.world_size] = rank_targets
    loss = sum(shard[2] for shard in shards) / total if total else float("nan")
    return Predictions(scores, targets, loss)


def gather_activation_stats(monitor: ActivationMonitor) -> None:
    """Merge every rank's activation statistics into ``monitor`` (the same on every rank)."""
    monitor.merge(all_gather(monitor.snapshot()))


def gather_rng_states() -> list[torch.Tensor]:
    """Every rank's torch RNG state, so a resumed run gives each rank its own stream back."""
    return all_gather(torch.get_rng_state())


def inject_fault(context: Distributed, epoch: int) -> None:
    """Raise when ``RECTIFIER_FAIL_RANK`` names this rank and this (0-based) epoch."""
    spec = os.environ.get(FAULT_ENV)
    if not spec:
        return
    rank_text, _, epoch_text = spec.partition(":")
    try:
        rank, fail_epoch = int(rank_text), int(epoch_text or "1")
    except ValueError:
        raise ValueError(f"{FAULT_ENV}={spec!r}: expected RANK or RANK:EPOCH") from None
    if rank == context.rank and fail_epoch == epoch + 1:
        raise InjectedFault(
            f"fault injected by {FAULT_ENV}={spec} on rank {rank}, epoch {epoch + 1}"
        )
