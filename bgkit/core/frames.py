"""A frame as the layers above pass it: the (H, W, 3) uint8 RGB tensor, and its 0..1 float form.

The pipeline makes the uint8 tensor once per frame (:func:`frame_u8_tensor`); the fused CPU
kernels read it as it is, and the 0..1 float form (:func:`float01`) is made only where a torch
definition needs it.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["float01", "frame_u8_tensor"]


def frame_u8_tensor(rgb: np.ndarray, device: torch.device) -> torch.Tensor:
    """An (H, W, 3) uint8 RGB array as an (H, W, 3) uint8 tensor on ``device`` (no copy on a CPU
    unless the array is read-only)."""
    t = torch.from_numpy(rgb) if rgb.flags.writeable else torch.from_numpy(rgb.copy())
    return t.to(device, non_blocking=True)


def float01(frame_u8: torch.Tensor) -> torch.Tensor:
    """An (H, W, 3) uint8 frame tensor as (1, 3, H, W) float32 RGB 0..1 on its device."""
    return frame_u8.permute(2, 0, 1).unsqueeze(0).float().div_(255.0)
