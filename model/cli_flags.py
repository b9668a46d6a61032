"""Commands whose flags are derived from declarations (TrainConfig fields, Settings fields).

``with_derived_options(parameters, into=...)`` splices ready-made ``inspect.Parameter``s
(each a ``typer.Option``) into a command's signature beside its own parameters, and
hands their values to the command as one mapping, so the command's code names none of
them. Each declaring module builds its parameters; this module only does the splice.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any, get_type_hints

Command = Callable[..., None]


def with_derived_options(
    derived: Sequence[inspect.Parameter], *, into: str, first: bool = True
) -> Callable[[Command], Command]:
    """Give ``command`` the ``derived`` options (``first``: before its own in the help);
    their values (None: not given) reach it as the mapping parameter ``into``, its own
    parameters as usual."""
    names = [p.name for p in derived]

    def decorate(command: Command) -> Command:
        own_hints = get_type_hints(command)
        own = [
            p.replace(
                kind=inspect.Parameter.KEYWORD_ONLY,
                annotation=own_hints.get(p.name, p.annotation),
            )
            for p in inspect.signature(command).parameters.values()
            if p.name != into
        ]
        clash = set(names) & {p.name for p in own}
        if clash:
            raise TypeError(f"{command.__name__} declares derived options itself: {sorted(clash)}")

        def run(**values: Any) -> None:
            given = {name: values.pop(name) for name in names}
            command(**{into: given}, **values)

        parameters = [*derived, *own] if first else [*own, *derived]
        run.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
        run.__annotations__ = {p.name: p.annotation for p in parameters}
        run.__name__, run.__doc__ = command.__name__, command.__doc__
        return run

    return decorate
