"""The FastAPI inference service. Never imports torch."""
