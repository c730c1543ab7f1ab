"""Person segmenters: the registry, the models, their weights and the backends that run them."""

from .registry import ModelSpec, WeightsUnavailableError, available_models, get_spec, list_models, register

__all__ = ["ModelSpec", "WeightsUnavailableError", "available_models", "get_spec", "list_models", "register"]
