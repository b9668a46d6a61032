"""Per-epoch progress bars (tqdm, on stderr) showing loss, metric and images/s."""

from __future__ import annotations

from types import TracebackType

from tqdm import tqdm


class Progress:
    def __init__(self, total: int, description: str, *, enabled: bool = True) -> None:
        self.bar = tqdm(
            total=total, desc=description, unit="batch", leave=False, disable=not enabled
        )

    def advance(self, steps: int = 1) -> None:
        self.bar.update(steps)

    def show(self, *, loss: float, acc: float, ips: float) -> None:
        self.bar.set_postfix(
            loss=f"{loss:.4f}", acc=f"{acc:.3f}", img_s=f"{ips:.0f}", refresh=False
        )

    def close(self) -> None:
        self.bar.close()

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
