"""FastAPI dependencies: the typed service state, injected with ``Depends``.

Routes declare ``state: State`` instead of reading ``request.app.state``; tests can swap the
state with ``app.dependency_overrides[get_state]``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from service.state import ServiceState, state_of


def get_state(request: Request) -> ServiceState:
    return state_of(request.app)


State = Annotated[ServiceState, Depends(get_state)]
