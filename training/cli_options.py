"""The flags of ``rectifier train`` and ``rectifier sweep``, derived from TrainConfig.

Every TrainConfig field becomes one flag (``--img-size`` for ``img_size``), with the help
text, default and choices its declaration gives. Each flag defaults to None, meaning "not
given", so a ``--config`` file can supply it; ``TrainConfig.validate`` checks the result.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Collection
from dataclasses import MISSING, Field, fields
from typing import Any, get_args, get_origin, get_type_hints

import typer

from training.config import ConfigError, TrainConfig, flag_of, option_of

Command = Callable[..., None]


def _is_mapping(hint: Any) -> bool:
    return get_origin(hint) is dict


def _flag_type(hint: Any) -> Any:
    """The type typer parses: the field's, optional; a mapping is repeated KEY=VALUE."""
    if _is_mapping(hint):
        return list[str] | None
    if type(None) in get_args(hint):
        return hint
    return hint | None


def _help(f: Field[Any], hint: Any) -> str:
    declared = option_of(f)
    notes = []
    if declared.choices:
        notes.append(", ".join(declared.choices))
    default = f.default
    if isinstance(default, bool):
        notes.append(f"default {'on' if default else 'off'}")
    elif default is not MISSING and default is not None and not _is_mapping(hint):
        notes.append(f"default {default}")
    text = declared.help.rstrip(".")
    return f"{text} ({'; '.join(notes)})." if notes else f"{text}."


def _parameter(f: Field[Any], hint: Any) -> inspect.Parameter:
    flag = flag_of(f.name)
    declaration = f"{flag}/--no-{flag[2:]}" if hint is bool else flag
    return inspect.Parameter(
        f.name,
        inspect.Parameter.KEYWORD_ONLY,
        default=typer.Option(None, declaration, help=_help(f, hint)),
        annotation=_flag_type(hint),
    )


def with_train_options(*, exclude: Collection[str] = ()) -> Callable[[Command], Command]:
    """Give ``command`` a flag for every TrainConfig field not in ``exclude``.

    The command takes ``flags``: the given flags as TrainConfig values (None: not given),
    and its own parameters as usual.
    """
    hints = get_type_hints(TrainConfig)
    derived = [_parameter(f, hints[f.name]) for f in fields(TrainConfig) if f.name not in exclude]
    names = {p.name for p in derived}

    def decorate(command: Command) -> Command:
        own_hints = get_type_hints(command)
        own = [
            p.replace(
                kind=inspect.Parameter.KEYWORD_ONLY,
                annotation=own_hints.get(p.name, p.annotation),
            )
            for p in inspect.signature(command).parameters.values()
            if p.name != "flags"
        ]

        def run(**values: Any) -> None:
            flags = {name: values.pop(name) for name in names}
            command(flags=flags, **values)

        parameters = [*derived, *own]
        run.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
        run.__annotations__ = {p.name: p.annotation for p in parameters}
        run.__name__, run.__doc__ = command.__name__, command.__doc__
        return run

    return decorate


def config_values(flags: dict[str, Any]) -> dict[str, Any]:
    """The given flags as TrainConfig values (KEY=VALUE lists become mappings)."""
    hints = get_type_hints(TrainConfig)
    values = {}
    for name, value in flags.items():
        if value is not None and _is_mapping(hints[name]):
            value = parse_key_values(name, value)
        values[name] = value
    return values


def parse_key_values(option: str, items: list[str]) -> dict[str, Any]:
    """``KEY=VALUE`` items as a mapping; numbers and true/false become numbers and bools."""
    parsed: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"expected KEY=VALUE, got {item!r}", option)
        value: Any = raw
        for convert in (int, float):
            try:
                value = convert(raw)
                break
            except ValueError:
                continue
        if raw.lower() in ("true", "false"):
            value = raw.lower() == "true"
        parsed[key.strip()] = value
    return parsed
