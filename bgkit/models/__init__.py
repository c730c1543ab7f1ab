"""Person segmentation models, registered by name (see :mod:`bgkit.models.registry`)."""

from .registry import ModelSpec, WeightsUnavailableError, available_models, get_spec, list_models, register

__all__ = ["ModelSpec", "WeightsUnavailableError", "available_models", "get_spec", "list_models", "register"]
