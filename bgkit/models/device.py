"""Choosing the torch device once, at model load."""

from __future__ import annotations

import torch


def select_device(device: str | torch.device = "auto") -> torch.device:
    """Return a ``torch.device``: ``"auto"`` picks CUDA, then Apple MPS, then the CPU.

    Any other string (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``) or device is used as given,
    after checking that it is present on this machine.
    """
    if isinstance(device, str) and device.lower() == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"unknown device {device!r}: use 'auto', 'cpu', 'cuda' or 'mps'") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available here; use 'auto' or 'cpu'")
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ValueError(f"device {device!r} requested but Apple MPS is not available here; use 'auto' or 'cpu'")
    return dev
