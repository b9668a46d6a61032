"""The Open Inference Protocol (KServe V2 / Triton HTTP) for Rectifier.

The codec modules (``errors``, ``encoding``, ``tensors``, ``request``, ``signature``,
``response``, ``metadata``, ``codec``, ``schemas``) are pure: no FastAPI, no onnxruntime, no
torch. They turn request bytes into validated arrays and results into response bytes, so
they are tested without a server and the web side (``routes``, ``infer``) stays thin.

The package's ``router`` (defined in ``service.v2.routes``) is imported on first access, so
importing a codec module never pulls in FastAPI or the service.
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    # The service gathers routers with ``importlib.import_module("service.v2").router``.
    # The module is not named ``router``: importing it would then replace this attribute
    # with the module object.
    if name == "router":
        from service.v2.routes import router

        return router
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
