"""The flags of ``rectifier serve``, derived from the Settings declarations.

Every Settings field becomes ``--field-name`` (plus the flag its declaration names, where
the command always spelled it differently: ``--models``, ``--threads``, ``--streams``),
with its declared help, default and choices. Two kinds of field have none: secrets
(``SecretStr``: the API keys, credentials; they do not belong in a process listing or shell
history) and the log level (the root option ``rectifier --log-level``, shared by every
command). Each flag defaults to
None, meaning "not given", so the ``RECTIFIER_*`` environment fills what is not on the
command line; ``load_settings`` checks the result and names the flag or the variable.
"""

from __future__ import annotations

import inspect
import types
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import typer
from pydantic import SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from service.plumbing.settings import Settings, flags_of, variable_of

# The root option ``rectifier --log-level`` declares this one for every command.
ROOT_OPTIONS = ("log_level",)


def _strip(annotation: Any) -> tuple[Any, bool]:
    """The annotation without ``Annotated[...]`` and ``None``, and whether None was allowed."""
    if get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    if get_origin(annotation) in (Union, types.UnionType):
        members = [a for a in get_args(annotation) if a is not type(None)]
        return members[0], len(members) < len(get_args(annotation))
    return annotation, False


def _flag_type(annotation: Any) -> Any:
    """What typer parses: a Literal or a list as text (the settings check it), else the type."""
    base, _ = _strip(annotation)
    if get_origin(base) is Literal or get_origin(base) is list:
        return str | None
    return base | None


def _choices(annotation: Any) -> tuple[str, ...]:
    base, _ = _strip(annotation)
    return tuple(str(a) for a in get_args(base)) if get_origin(base) is Literal else ()


def _shown_default(field: FieldInfo) -> str | bool:
    default = field.default
    if default is PydanticUndefined or default is None or default == []:
        return False
    if isinstance(default, bool):
        return "on" if default else "off"
    return str(default) if not isinstance(default, Path) else default.as_posix()


def _parameter(name: str, field: FieldInfo) -> inspect.Parameter:
    base, _ = _strip(field.annotation)
    declarations = list(flags_of(name))
    if base is bool:
        declarations = [f"{flag}/--no-{flag[2:]}" for flag in declarations]
    text = (field.description or name).rstrip(".")
    choices = _choices(field.annotation)
    if choices:
        text = f"{text}: {', '.join(choices)}"
    return inspect.Parameter(
        name,
        inspect.Parameter.KEYWORD_ONLY,
        default=typer.Option(
            None,
            *declarations,
            help=f"{text}. Env {variable_of(name)}.",
            show_default=_shown_default(field),
        ),
        annotation=_flag_type(field.annotation),
    )


def is_secret(field: FieldInfo) -> bool:
    """A field holding a ``SecretStr`` (alone or in a list): it gets no flag."""
    base, _ = _strip(field.annotation)
    return base is SecretStr or (get_origin(base) is list and SecretStr in get_args(base))


def flagged_fields() -> list[str]:
    """The Settings fields ``rectifier serve`` takes as flags, in declaration order."""
    return [
        name
        for name, field in Settings.model_fields.items()
        if name not in ROOT_OPTIONS and not is_secret(field)
    ]


def setting_parameters() -> list[inspect.Parameter]:
    """One typer option per flagged Settings field."""
    return [_parameter(name, Settings.model_fields[name]) for name in flagged_fields()]
