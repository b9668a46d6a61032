"""FastAPI dependencies: the typed service state, injected with ``Depends``.

Routes declare ``state: State`` instead of reading ``request.app.state``; tests can swap the
state with ``app.dependency_overrides[get_state]``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from service.app.state import ServiceState, state_of


async def get_state(request: Request) -> ServiceState:
    # async: FastAPI runs a plain def dependency on its thread pool, a hand-off per request
    # (10 % of the GIL-held time in a py-spy profile at c=16, docs/BENCHMARKS.md).
    return state_of(request.app)


State = Annotated[ServiceState, Depends(get_state)]
