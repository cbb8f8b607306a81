"""The shared model service of Attention Atlas: `ModelService` runs the tasks and returns `AttentionResult`s."""

from service.errors import AtlasError, InvalidInputError, ModelLoadError, UnsupportedError
from service.result import AttentionResult, Segment
from service.service import ModelService

__all__ = [
    "AtlasError",
    "AttentionResult",
    "InvalidInputError",
    "ModelLoadError",
    "ModelService",
    "Segment",
    "UnsupportedError",
]
