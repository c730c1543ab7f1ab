"""Jupyter widgets: ``StillExplorer`` (one photo, live sliders) and ``LiveBackground`` (webcam).

Imported lazily so ``import bgkit`` does not need ipywidgets.
"""

from __future__ import annotations

from typing import Any

__all__ = ["StillExplorer", "LiveBackground"]


def __getattr__(name: str) -> Any:
    if name == "StillExplorer":
        from .still import StillExplorer

        return StillExplorer
    if name == "LiveBackground":
        from .live import LiveBackground

        return LiveBackground
    raise AttributeError(f"module 'bgkit.widgets' has no attribute {name!r}")
