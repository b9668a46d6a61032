"""What an activation study trains: the activations, the regimes and the default budget.

Torch-free, so the CLI can declare ``rectifier study``'s options where only the serving
extras are installed; ``training.compare.study`` runs the plan.
"""

from __future__ import annotations

from dataclasses import dataclass

from training.config import TrainConfig

STUDY_ACTIVATIONS = ("relu", "leaky_relu", "prelu", "elu", "maxout")


@dataclass(frozen=True)
class Regime:
    name: str
    optimizer: str
    lr: float
    summary: str


REGIMES: dict[str, Regime] = {
    r.name: r
    for r in (
        Regime("baseline", "adamw", 2e-3, "AdamW, lr 2e-3, the training default"),
        Regime("high-lr", "sgd", 1.0, "SGD with momentum 0.9, lr 1.0"),
    )
}


@dataclass(frozen=True)
class StudyBudget:
    """What one study trains; the defaults are the documented budget."""

    data: str = "synthetic-signs:40"
    data_root: str | None = None
    img_size: int = 32
    epochs: int = 4
    seeds: int = 2
    width: int = 8
    depth: int = 3
    batch_size: int = 64
    workers: int | None = None  # DataLoader worker processes; default by core count
    activations: tuple[str, ...] = STUDY_ACTIVATIONS
    regimes: tuple[str, ...] = tuple(REGIMES)

    def base_config(self, regime: Regime) -> TrainConfig:
        return TrainConfig(
            data=self.data,
            data_root=self.data_root,
            arch="simple_cnn",
            arch_options={"width": self.width, "depth": self.depth},
            img_size=self.img_size,
            epochs=self.epochs,
            batch_size=self.batch_size,
            optimizer=regime.optimizer,
            lr=regime.lr,
            warmup_epochs=0.0,  # the high-lr regime means high from the first step
            patience=0,  # every run gets every epoch, so the per-epoch curves line up
            augment="none",
            device="cpu",  # one device for every run: times compare like for like
            workers=self.workers,
            progress=False,
        ).validate()

    def describe(self) -> str:
        return (
            f"simple_cnn (width {self.width}, depth {self.depth}) on {self.data} at "
            f"{self.img_size} px, {self.epochs} epochs, batch {self.batch_size}, "
            f"{self.seeds} seed(s) per cell, CPU"
        )
