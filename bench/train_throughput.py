"""Training throughput: Rectifier's loop against a bare PyTorch loop, in one run.

Both train the same model (the demo's ``simple_cnn``), with the same optimiser, batch size
and in-memory data, fed by the same DataLoader, so the difference is our bookkeeping:
the LR schedule, loss and accuracy accumulation, the progress bar and its refreshes.
Rounds alternate (bare, ours, bare, ours, ...) so that load from other processes hits both
alike; the medians are compared.

    .venv/bin/python bench/train_throughput.py            # CPU, 64 px, batch 64
    .venv/bin/python bench/train_throughput.py --device cuda --images 8192
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this folder would come first on sys.path, and a sibling module here
# (bench/profile.py) would shadow the standard library's for torch. The repository root
# takes its place.
sys.path[0] = str(Path(__file__).resolve().parents[1])

import argparse  # noqa: E402
import copy  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import torch  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

from model.architectures import build_model  # noqa: E402
from training.engine import Trainer, select_device  # noqa: E402
from training.optim import warmup_cosine  # noqa: E402
from training.progress import Progress  # noqa: E402


def bare_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    loader: DataLoader[tuple[torch.Tensor, ...]],
    device: torch.device,
) -> float:
    """The textbook loop: nothing but forward, loss, backward, step. Returns images/s."""
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    images_seen = 0
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for images, targets in loader:
        images, targets = images.to(device), targets.to(device)
        optimizer.zero_grad(set_to_none=True)
        loss_fn(model(images), targets).backward()
        optimizer.step()
        images_seen += images.shape[0]
    if device.type == "cuda":
        torch.cuda.synchronize()
    return images_seen / (time.perf_counter() - start)


def our_epoch(trainer: Trainer, loader: DataLoader[tuple[torch.Tensor, ...]]) -> float:
    with Progress(len(loader), "ours", enabled=True) as progress:
        stats = trainer.train_epoch(loader, progress)  # reads the loss back: synchronised
    return stats.images_per_second


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    parser.add_argument("--images", type=int, default=512, help="images per epoch (round)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--img-size", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds per loop")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()

    torch.manual_seed(0)
    device = select_device(args.device)
    template = build_model(
        "simple_cnn", num_classes=8, in_channels=3, activation="relu", width=16, depth=3
    )
    data = TensorDataset(
        torch.randn(args.images, 3, args.img_size, args.img_size),
        torch.randint(0, 8, (args.images,)),
    )
    loader = DataLoader(data, batch_size=args.batch_size, shuffle=True, drop_last=True)

    bare_model = copy.deepcopy(template).to(device)
    bare_optimizer = torch.optim.AdamW(bare_model.parameters(), lr=1e-3)
    our_model = copy.deepcopy(template).to(device)
    our_optimizer = torch.optim.AdamW(our_model.parameters(), lr=1e-3)
    total_steps = (args.rounds + 1) * len(loader)
    trainer = Trainer(
        our_model,
        our_optimizer,
        warmup_cosine(our_optimizer, total_steps=total_steps, warmup_steps=len(loader)),
        nn.CrossEntropyLoss().to(device),
        device,
        "multiclass",
        amp=False,  # the bare loop runs float32 too
    )
    bare_epoch(bare_model, bare_optimizer, loader, device)  # warm-up round, not timed
    our_epoch(trainer, loader)
    bare, ours = [], []
    for _ in range(args.rounds):
        bare.append(bare_epoch(bare_model, bare_optimizer, loader, device))
        ours.append(our_epoch(trainer, loader))
    result = {
        "device": str(device),
        "torch_threads": torch.get_num_threads(),
        "images_per_round": args.images,
        "batch_size": args.batch_size,
        "img_size": args.img_size,
        "bare_images_per_s": [round(v, 1) for v in bare],
        "ours_images_per_s": [round(v, 1) for v in ours],
        "bare_median": round(statistics.median(bare), 1),
        "ours_median": round(statistics.median(ours), 1),
    }
    result["ratio"] = round(result["ours_median"] / result["bare_median"], 3)
    print(json.dumps(result, indent=2))
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
