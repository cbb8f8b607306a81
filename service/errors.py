"""Typed errors of the model service. Every message is written for the person who must act on it."""

from __future__ import annotations


class AtlasError(Exception):
    """Base class: `str(error)` is a complete, user-facing sentence. Never a traceback."""


class InvalidInputError(AtlasError, ValueError):
    """The caller's input cannot be used (empty, too long, out of range, wrong type)."""


class UnsupportedError(AtlasError):
    """The request names something this service does not do (a task, direction or model family)."""


class ModelLoadError(AtlasError):
    """A model could not be loaded. Says which model, why, and what to do instead."""

    def __init__(self, model_name: str, reason: str, fix: str) -> None:
        self.model_name = model_name
        self.reason = reason
        self.fix = fix
        super().__init__(f"Could not load {model_name}: {reason}. {fix}")
