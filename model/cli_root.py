"""What the ``rectifier`` root options resolved, handed to every command through typer's
context (``ctx.obj``), so a command reads the one resolution instead of its own."""

from __future__ import annotations

from dataclasses import dataclass

import typer

from model.log_setup import DEFAULT_LOG_LEVEL


@dataclass(frozen=True)
class RootOptions:
    log_level: str = DEFAULT_LOG_LEVEL


def root_options(ctx: typer.Context) -> RootOptions:
    """The root options of this invocation (the defaults when a command runs on its own)."""
    found = ctx.find_object(RootOptions)
    return found if found is not None else RootOptions()
