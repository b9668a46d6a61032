"""The flags of ``rectifier train``, ``sweep`` and ``evaluate``, derived from TrainConfig.

Every TrainConfig field becomes one flag (``--img-size`` for ``img_size``), with the help
text, default and choices its declaration gives. Each flag defaults to None, meaning "not
given", so a ``--config`` file can supply it; ``TrainConfig.validate`` checks the result.
A command that takes a few of the options (``only``) may give some its own default
(``defaults``), which its help then states.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Collection, Mapping
from dataclasses import MISSING, Field, fields
from typing import Any, get_args, get_origin, get_type_hints

import typer

from model.cli_flags import Command, with_derived_options
from training.config import ConfigError, TrainConfig, flag_of, option_of


def _is_mapping(hint: Any) -> bool:
    return get_origin(hint) is dict


def _flag_type(hint: Any) -> Any:
    """The type typer parses: the field's, optional; a mapping is repeated KEY=VALUE."""
    if _is_mapping(hint):
        return list[str] | None
    if type(None) in get_args(hint):
        return hint
    return hint | None


def _help(f: Field[Any], hint: Any, default: Any) -> str:
    declared = option_of(f)
    notes = []
    if declared.choices:
        notes.append(", ".join(declared.choices))
    if isinstance(default, bool):
        notes.append(f"default {'on' if default else 'off'}")
    elif default is not MISSING and default is not None and not _is_mapping(hint):
        notes.append(f"default {default}")
    text = declared.help.rstrip(".")
    return f"{text} ({'; '.join(notes)})." if notes else f"{text}."


def _parameter(f: Field[Any], hint: Any, defaults: Mapping[str, Any]) -> inspect.Parameter:
    flag = flag_of(f.name)
    declaration = f"{flag}/--no-{flag[2:]}" if hint is bool else flag
    own_default = defaults.get(f.name)
    shown = f.default if f.name not in defaults else own_default
    return inspect.Parameter(
        f.name,
        inspect.Parameter.KEYWORD_ONLY,
        default=typer.Option(
            own_default, declaration, help=_help(f, hint, shown), show_default=False
        ),
        annotation=_flag_type(hint),
    )


def with_train_options(
    *,
    exclude: Collection[str] = (),
    only: Collection[str] | None = None,
    defaults: Mapping[str, Any] | None = None,
) -> Callable[[Command], Command]:
    """Give ``command`` a flag for every TrainConfig field in ``only`` (default: all) and
    not in ``exclude``.

    ``defaults`` gives a flag the command's own default in place of "not given", shown in
    its help in place of TrainConfig's (None: the help states no default; the command
    says what a missing flag means). The command takes ``flags``: the flags as TrainConfig
    values (None: not given), and its own parameters as usual.
    """
    hints = get_type_hints(TrainConfig)
    known = {f.name for f in fields(TrainConfig)}
    unknown = (set(only or ()) | set(defaults or ())) - known
    if unknown:
        raise ValueError(f"not TrainConfig fields: {', '.join(sorted(unknown))}")
    derived = [
        _parameter(f, hints[f.name], defaults or {})
        for f in fields(TrainConfig)
        if (only is None or f.name in only) and f.name not in exclude
    ]
    return with_derived_options(derived, into="flags")


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
