"""Start a data-parallel run: ``rectifier train --nproc-per-node N`` on one node, through
``torch.distributed.launcher.api.elastic_launch`` (what ``torchrun`` runs inside), or one
worker of a run that ``torchrun`` started (any number of nodes).

Either way every process runs ``run_worker``: join the group, train, leave. A failure on
any rank ends the whole run: the elastic agent stops the other workers and reports the
first failure, whose message the caller shows. Workers turn SIGTERM into ``SystemExit`` so
a checkpoint being written is cleaned up (``model.files.write_atomically``) rather than
left as a stray temporary file; ``best.pt`` itself is only ever replaced by a rename.
"""

from __future__ import annotations

import logging
import signal
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

import torch.distributed as dist
from torch.distributed.elastic.multiprocessing.api import SignalException
from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
from torch.distributed.launcher.api import LaunchConfig, elastic_launch

from model.log_setup import TEXT_FORMAT, configure_text_logging
from training.config import TrainConfig
from training.distributed import join_group, leave_group
from training.run import RunResult, resume, train
from training.run_folder import LAST
from training.tracking.options import TrackingOptions

log = logging.getLogger(__name__)

# Seconds the agent waits for the other workers to stop after one failed, before SIGKILL.
SHUTDOWN_SECONDS = 10
# Messages of a collective whose peer went away (gloo's own; NCCL raises DistError).
LOST_PEER_MARKERS = ("Connection reset by peer", "Connection closed by peer", "Broken pipe")


class DistributedRunError(RuntimeError):
    """A worker failed; the message names its rank and its error."""


class DistributedRunInterrupted(DistributedRunError):
    """The launcher was stopped by a signal (Ctrl-C); it stopped the workers."""


@dataclass(frozen=True)
class TrainingJob:
    """What every worker runs: a new run, or the continuation of ``resume_from``."""

    config: TrainConfig
    resume_from: Path | None = None
    tracking: TrackingOptions = field(default_factory=TrackingOptions)  # rank 0 alone tracks
    # The level this process logs at: rectifier's root option set it (--log-level, else
    # RECTIFIER_LOG_LEVEL, else INFO), and spawned workers keep it.
    log_level: int = field(default_factory=lambda: logging.getLogger().getEffectiveLevel())


def _exit_on_sigterm(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def _configure_worker_logging(rank: int, world_size: int, level: int) -> None:
    """Rank 0 logs as a single process would; the others only warnings, tagged."""
    if world_size == 1:
        configure_text_logging(level)
        return
    logging.basicConfig(
        level=level if rank == 0 else max(level, logging.WARNING),
        format=TEXT_FORMAT.replace("%(name)s", f"[rank {rank}] %(name)s"),
        force=True,
    )


def run_worker(job: TrainingJob) -> RunResult:
    """One process of a distributed run (the ``elastic_launch`` and torchrun entry)."""
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    context = join_group(job.config.device)
    _configure_worker_logging(context.rank, context.world_size, job.log_level)
    tracking = job.tracking if context.is_main else TrackingOptions()
    try:
        if job.resume_from is not None:
            return resume(job.resume_from, job.config, tracking, distributed=context)
        return train(job.config, tracking, distributed=context)
    except Exception as exc:
        if lost_peer(exc):
            # A consequence, not the cause: give the launcher time to see the rank that
            # failed first and report it; it stops this process meanwhile (SIGTERM).
            log.warning("rank %d lost its peers: %s", context.rank, exc)
            time.sleep(SHUTDOWN_SECONDS)
        raise
    finally:
        leave_group()


def lost_peer(exc: BaseException) -> bool:
    """Whether ``exc`` says another process of the group went away."""
    return isinstance(exc, dist.DistError) or any(m in str(exc) for m in LOST_PEER_MARKERS)


def launch_on_this_node(job: TrainingJob, nproc_per_node: int) -> list[RunResult]:
    """Run ``job`` in ``nproc_per_node`` processes; every rank's result, in rank order."""
    config = LaunchConfig(
        min_nodes=1,
        max_nodes=1,
        nproc_per_node=nproc_per_node,
        run_id=f"rectifier-{uuid.uuid4().hex[:12]}",
        # torchrun --standalone's rendezvous: a c10d store on a free local port.
        rdzv_backend="c10d",
        rdzv_endpoint="127.0.0.1:0",
        max_restarts=0,
        monitor_interval=0.2,
        start_method="spawn",
        shutdown_timeout=SHUTDOWN_SECONDS,
    )
    try:
        results = elastic_launch(config, run_worker)(job)
    except ChildFailedError as exc:
        raise DistributedRunError(describe_failure(exc)) from None
    except SignalException as exc:
        raise DistributedRunInterrupted(
            f"interrupted by {exc.sigval.name}; the run folder keeps {LAST} from the last "
            "complete epoch: continue with `rectifier train --resume RUN --nproc-per-node "
            f"{nproc_per_node}`"
        ) from None
    return [results[rank] for rank in sorted(results)]


def describe_failure(exc: ChildFailedError) -> str:
    """'rank R failed (exit code E): Error: message' for the first failure."""
    rank, failure = exc.get_first_failure()
    message = failure.message
    if isinstance(message, dict):  # the error file of an exception: {"message": ...}
        message = message.get("message", str(message))
    if failure.exitcode < 0:
        message = f"killed by signal {signal.Signals(-failure.exitcode).name}"
    elif not message or "pytorch.org/docs" in str(message):
        message = "it left no error message (see its log above)"
    return f"training failed on rank {rank} (exit code {failure.exitcode}): {message}"
