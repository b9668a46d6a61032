"""The Open Inference Protocol (KServe V2 / Triton HTTP) for Rectifier.

The codec modules (``errors``, ``encoding``, ``tensors``, ``request``, ``signature``,
``response``, ``metadata``, ``codec``, ``schemas``) are pure: no FastAPI, no onnxruntime, no
torch. They turn request bytes into validated arrays and results into response bytes, so
they are tested without a server and the web side (``routes``, ``infer``) stays thin.
The router itself lives in ``service.protocols.v2.routes``.
"""
