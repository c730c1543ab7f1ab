"""Jupyter widgets: ``StillExplorer`` (one photo, live sliders) and ``LiveBackground`` (webcam).

Both build their controls from the settings schema (:mod:`bgkit.widgets.controls`). Imported
lazily, so ``import bgkit`` does not need ipywidgets (``pip install 'bgkit[notebook]'``).
"""

from __future__ import annotations

from typing import Any

__all__ = ["StillExplorer", "LiveBackground"]


def __getattr__(name: str) -> Any:
    from ..core.deps import require

    if name == "StillExplorer":
        require("ipywidgets", "the still explorer")
        from .still import StillExplorer

        return StillExplorer
    if name == "LiveBackground":
        require("anywidget", "the live camera widget")
        from ..live.widget import LiveBackground

        return LiveBackground
    raise AttributeError(f"module 'bgkit.widgets' has no attribute {name!r}")
