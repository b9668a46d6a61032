"""Fixtures of this folder's tests."""

from tests.reliability.figures import figures

__all__ = ["figures"]
