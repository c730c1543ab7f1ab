"""The result of person segmentation, the BodyPix ``internalResolution`` rule, and the soft alpha.

A :class:`Segmentation` holds, at the size of the segmented image (``height`` x ``width``):

* ``probabilities`` -- float32, 0..1: the person probability (for models that predict an alpha
  matte, such as RVM, that matte); the pipeline refines it to the image's edges and smooths it
  over time in streams;
* ``alpha`` -- float32, 0..1: the soft opacity of the person, what bokeh, replace and cut-out
  blend with (:func:`soft_alpha`: the probability's edge at the threshold, anti-aliased);
* ``mask`` -- uint8, 0/1: ``probabilities > threshold`` (in streams: with hysteresis), BodyPix's
  ``data``, used by ``to_mask``/``draw_mask`` and by the metrics.

``alpha > 0.5`` wherever ``mask`` is 1 and ``alpha <= 0.5`` wherever it is 0.

The arrays may be held as torch tensors (on the model's device) and are turned into numpy
arrays on first access, so a frame that stays on a GPU is not copied to the host unless asked.
"""

from __future__ import annotations

import functools
import math
from typing import TYPE_CHECKING, Any, Union

import numpy as np

from .checks import check_number

if TYPE_CHECKING:  # torch is imported where it is used, so the command line can tune the process first
    import torch

__all__ = [
    "DEFAULT_EDGE_SOFTNESS",
    "INTERNAL_RESOLUTIONS",
    "InternalResolution",
    "Segmentation",
    "resolve_internal_resolution",
    "soft_alpha",
]

InternalResolution = Union[str, float, None]

#: BodyPix's named internal resolutions: the factor the input is scaled by before the model.
INTERNAL_RESOLUTIONS: dict[str, float] = {"low": 0.25, "medium": 0.5, "high": 0.75, "full": 1.0}

#: Width in pixels of the alpha ramp across the person's edge (see :func:`soft_alpha`).
DEFAULT_EDGE_SOFTNESS = 1.0


def resolve_internal_resolution(value: str | float) -> float:
    """The scale factor for ``value``: a name in :data:`INTERNAL_RESOLUTIONS` or a number in (0, 2]."""
    if isinstance(value, str):
        try:
            return INTERNAL_RESOLUTIONS[value.strip().lower()]
        except KeyError:
            names = ", ".join(repr(k) for k in INTERNAL_RESOLUTIONS)
            raise ValueError(f"internal_resolution must be one of {names} or a number in (0, 2]; got {value!r}") from None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"internal_resolution must be a name ('low', 'medium', ...) or a number; got {value!r}")
    return check_number(value, "internal_resolution", 0.0, 2.0, lo_open=True)


def _default_alpha(probabilities: Any, threshold: float) -> torch.Tensor:
    """A :class:`Segmentation`'s alpha where none was given: :func:`soft_alpha` of its probabilities."""
    import torch

    return soft_alpha(torch.as_tensor(_as_numpy(probabilities)), threshold)


def soft_alpha(probabilities: torch.Tensor, threshold: float, softness: float = DEFAULT_EDGE_SOFTNESS,
               mask: torch.Tensor | None = None) -> torch.Tensor:
    """The person's soft alpha: the edge where ``probabilities`` crosses ``threshold``, anti-aliased.

    ``alpha = clip(0.5 + (p - threshold) / (|grad p| * softness), 0, 1)``: ``p - threshold``
    over the probability's slope is the signed distance (pixels) to the edge, so the alpha goes
    from 0 to 1 over ``softness`` pixels across the edge, wherever it is, however steep or
    shallow the model's probability is there; away from the edge (no pixel of the other side
    within half the ramp) it is exactly 0 or 1. It is kept on the mask's side of 0.5, so
    ``alpha > 0.5`` exactly where the mask is on. ``softness = 0`` gives the binary mask.

    Measured on the dev photos with the selfie model (mean absolute alpha error within 8 px of
    the true edge): a 1-pixel ramp costs nothing against the binary mask (0.1475 vs 0.1474,
    the ground truth itself being binary), where blurring the binary mask by 3 px, as bokeh did
    before, gives 0.224.

    Args:
        probabilities: (H, W) float tensor in 0..1.
        threshold: 0..1.
        softness: ramp width in pixels, >= 0.
        mask: (H, W) bool tensor, the pixels that are "person" (default ``probabilities >
            threshold``; a stream passes its hysteresis state).

    Returns:
        (H, W) float32 tensor in 0..1 on the same device.
    """
    p = probabilities.float()
    on = p > threshold if mask is None else mask.bool()
    if softness <= 0 or min(p.shape[-2:]) < 2:
        return on.float()
    h = int(math.ceil(softness / 2.0)) + 1
    padded = _replicate(p, h)
    return soft_alpha_padded(padded, padded > threshold if mask is None else _replicate(on, h), threshold, softness)


def _replicate(x: torch.Tensor, h: int) -> torch.Tensor:
    """``x`` (..., H, W) with ``h`` edge pixels replicated on every side (any dtype, bool too)."""
    import torch
    import torch.nn.functional as F

    if x.is_floating_point() and x.dim() in (2, 3) and min(x.shape[-2:]) > h:
        return F.pad(x.unsqueeze(0), (h, h, h, h), mode="replicate")[0]  # one fast pass
    rows = torch.arange(-h, x.shape[-2] + h, device=x.device).clamp_(0, x.shape[-2] - 1)
    cols = torch.arange(-h, x.shape[-1] + h, device=x.device).clamp_(0, x.shape[-1] - 1)
    return x.index_select(-2, rows).index_select(-1, cols)


def soft_alpha_padded(p: torch.Tensor, on: torch.Tensor, threshold: float, softness: float) -> torch.Tensor:
    """:func:`soft_alpha` of (..., H, W) pixels given with a margin of ``h = ceil(softness / 2) + 1``
    pixels on every side: ``p`` (..., H + 2h, W + 2h) float and ``on`` (same shape, bool, the
    pixels that are "person"). Returns (..., H, W). The margin holds the neighbours the slope
    (central differences) and the edge test (within ``ceil(softness / 2)`` pixels) read, so a
    tile of a frame with its margin gives exactly the pixels the whole frame would (edge pixels
    replicated outside the frame)."""
    import torch

    h = int(math.ceil(softness / 2.0)) + 1
    r = h - 1
    n_y, n_x = p.shape[-2] - 2 * h, p.shape[-1] - 2 * h
    on_in = on[..., h:h + n_y, h:h + n_x]
    # A ramp only where there is an edge: near pixels of both sides (within half the ramp), never
    # where the probability is flat or can't cross the threshold (e.g. threshold 1). Elsewhere the
    # alpha is the mask, so the ramp is computed only at the (few) pixels near the edge.
    near_on = on[..., 1:-1, 1:-1]  # the pixels within r of the inner ones
    near = _dilate_valid(near_on, r) & ~_erode_valid(near_on, r)
    alpha = on_in.float()
    at = near.nonzero(as_tuple=True)
    if at[0].numel() == 0:
        return alpha
    *batch, y, x = at
    y, x = y + h, x + h
    centre = p[(*batch, y, x)]
    gy = p[(*batch, y + 1, x)] - p[(*batch, y - 1, x)]
    gx = p[(*batch, y, x + 1)] - p[(*batch, y, x - 1)]
    slope = torch.hypot(gx, gy).mul_(0.5 * softness)  # central differences: half the two-pixel step
    a = torch.sub(centre, threshold).div_(slope.clamp(min=_FLAT)).add_(0.5).clamp_(0.0, 1.0)
    side = on_in[at]
    a = torch.where(slope >= _FLAT, a, side.float())
    alpha[at] = torch.where(side, a.clamp(min=_ABOVE_HALF), a.clamp(max=0.5))
    return alpha


def _dilate_valid(m: torch.Tensor, r: int) -> torch.Tensor:
    """Square dilation by ``r`` of a (..., H, W) bool tensor, the valid part: (..., H - 2r, W - 2r)."""
    return _window_valid(m, r, any_=True)


def _erode_valid(m: torch.Tensor, r: int) -> torch.Tensor:
    """Square erosion by ``r`` of a (..., H, W) bool tensor, the valid part."""
    return _window_valid(m, r, any_=False)


def _window_valid(m: torch.Tensor, r: int, any_: bool) -> torch.Tensor:
    """Any (``any_``) or all of each (2r+1)^2 window of a bool tensor: shifted ORs or ANDs,
    rows then columns."""
    if r == 0:
        return m
    n_y, n_x = m.shape[-2] - 2 * r, m.shape[-1] - 2 * r
    rows = m[..., 0:n_y, :].clone()
    for k in range(1, 2 * r + 1):
        if any_:
            rows |= m[..., k:k + n_y, :]
        else:
            rows &= m[..., k:k + n_y, :]
    out = rows[..., 0:n_x].clone()
    for k in range(1, 2 * r + 1):
        if any_:
            out |= rows[..., k:k + n_x]
        else:
            out &= rows[..., k:k + n_x]
    return out


#: Below this slope (probability per ramp width) the probability is flat: no edge, alpha = mask.
_FLAT = 1e-4
#: The smallest float32 above 0.5: the least alpha of a pixel that is "person".
_ABOVE_HALF = float(np.nextafter(np.float32(0.5), np.float32(1.0)))


def _is_tensor(x: Any) -> bool:
    return type(x).__module__.startswith("torch") and hasattr(x, "detach")


def _as_numpy(x: Any) -> np.ndarray:
    if _is_tensor(x):
        return x.detach().to("cpu").numpy()
    return x


class Segmentation:
    """A person segmentation of one image, like BodyPix's ``{width, height, data}``, with a soft alpha.

    Attributes:
        width, height: size of the segmented image in pixels.
        probabilities: float32 array (height, width), person probability in 0..1.
        alpha: float32 array (height, width), soft person opacity in 0..1 (see module doc).
        mask: uint8 array (height, width), 1 = person, 0 = background.
        data: ``mask`` under BodyPix's name.
        foreground: float32 array (height, width, 3), RGB 0..1 of the person where the model
            predicts it (matting models, e.g. RVM), else None.
        part_ids: int8 array (height, width), the body part of each person pixel (-1 elsewhere,
            0..23 as BodyPix numbers them) for models with a body-part head, else None.
        threshold: the segmentation threshold that made ``mask`` (0..1).
        model: name of the model that produced it.
        model_input_size: (height, width) in pixels of the tensor the model saw.
        elapsed_ms: wall time of the segmentation in milliseconds (refinement included).
        timings: milliseconds per stage (e.g. ``{"model": 3.1, "refine": 1.2}``).

    Build one with :meth:`from_probabilities`, or get one from a segmenter or a
    :class:`bgkit.Pipeline`. The arrays may be numpy arrays or torch tensors; they are read as
    numpy (``float32``/``uint8``) and must all be (height, width). ``alpha`` may also be a
    function of no arguments that returns it, called when the alpha is first read (None: the
    probabilities' :func:`soft_alpha`, made that way).
    """

    __slots__ = ("width", "height", "threshold", "model", "model_input_size", "elapsed_ms", "timings",
                 "_probabilities", "_alpha", "_mask", "_foreground", "_part_ids", "_np")

    def __init__(
        self,
        probabilities: Any,
        mask: Any = None,
        alpha: Any = None,
        *,
        threshold: float = 0.5,
        model: str = "",
        model_input_size: tuple[int, int] = (0, 0),
        elapsed_ms: float = 0.0,
        foreground: Any = None,
        timings: dict[str, float] | None = None,
        part_ids: Any = None,
    ) -> None:
        self.threshold = check_number(threshold, "threshold", 0.0, 1.0)
        if getattr(probabilities, "ndim", None) != 2:
            raise ValueError(
                f"probabilities must be a 2-D (height, width) array; got shape {getattr(probabilities, 'shape', None)}"
            )
        self.height, self.width = (int(n) for n in probabilities.shape)
        if mask is None:
            mask = probabilities > self.threshold
        if alpha is None:
            alpha = functools.partial(_default_alpha, probabilities, self.threshold)
        for name, arr in (("mask", mask), ("alpha", alpha)):
            if callable(arr):
                continue  # made (and checked) when first read
            if tuple(arr.shape) != (self.height, self.width):
                raise ValueError(
                    f"{name} {tuple(arr.shape)} must have the shape of probabilities {(self.height, self.width)}"
                )
        if foreground is not None and tuple(foreground.shape) != (self.height, self.width, 3):
            raise ValueError(f"foreground {tuple(foreground.shape)} must be (height, width, 3)")
        if part_ids is not None and tuple(part_ids.shape) != (self.height, self.width):
            raise ValueError(f"part_ids {tuple(part_ids.shape)} must be (height, width)")
        self._probabilities, self._mask, self._alpha, self._foreground = probabilities, mask, alpha, foreground
        self._part_ids = part_ids
        self.model = str(model)
        self.model_input_size = (int(model_input_size[0]), int(model_input_size[1]))
        self.elapsed_ms = float(elapsed_ms)
        self.timings = dict(timings or {})
        self._np: dict[str, np.ndarray] = {}

    # -- numpy views (made once) ------------------------------------------------------------------

    def _numpy(self, name: str, raw: Any, dtype: type) -> np.ndarray:
        out = self._np.get(name)
        if out is None:
            arr = _as_numpy(raw)
            out = np.ascontiguousarray(arr, dtype=dtype)
            out.setflags(write=False)  # shared by every reader: nobody edits it in place
            self._np[name] = out
        return out

    @property
    def probabilities(self) -> np.ndarray:
        return self._numpy("probabilities", self._probabilities, np.float32)

    def _alpha_raw(self) -> Any:
        """The alpha as given, made first where it was given as a function (a pipeline computes it
        only for the effects that blend with it, or when it is read)."""
        if callable(self._alpha):
            alpha = self._alpha()
            if tuple(alpha.shape) != (self.height, self.width):
                raise ValueError(f"alpha {tuple(alpha.shape)} must have the shape of probabilities "
                                 f"{(self.height, self.width)}")
            self._alpha = alpha
        return self._alpha

    @property
    def alpha(self) -> np.ndarray:
        return self._numpy("alpha", self._alpha_raw(), np.float32)

    @property
    def mask(self) -> np.ndarray:
        return self._numpy("mask", self._mask, np.uint8)

    @property
    def data(self) -> np.ndarray:
        """The mask, under BodyPix's name (uint8, 0/1, shape (height, width))."""
        return self.mask

    @property
    def foreground(self) -> np.ndarray | None:
        return None if self._foreground is None else self._numpy("foreground", self._foreground, np.float32)

    @property
    def has_foreground(self) -> bool:
        """True when the model predicted the person's colours (:attr:`foreground`)."""
        return self._foreground is not None

    @property
    def part_ids(self) -> np.ndarray | None:
        return None if self._part_ids is None else self._numpy("part_ids", self._part_ids, np.int8)

    def tensor(self, name: str, device: torch.device | str | None = None) -> torch.Tensor:
        """``probabilities``, ``alpha``, ``mask`` (bool) or ``foreground`` as a torch tensor (no copy
        where it already is one on ``device``): for code that stays in torch, e.g. on a GPU."""
        import torch

        if name not in ("probabilities", "alpha", "mask", "foreground", "part_ids"):
            raise ValueError(f"unknown field {name!r}: probabilities, alpha, mask, foreground or part_ids")
        raw = self._alpha_raw() if name == "alpha" else getattr(self, f"_{name}")
        if raw is None:
            raise ValueError(f"this segmentation has no {name}")
        t = raw if isinstance(raw, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(raw))
        return t if device is None else t.to(device)

    # -- construction -------------------------------------------------------------------------------

    @classmethod
    def from_probabilities(cls, probabilities: Any, threshold: float = 0.5, **kwargs: Any) -> "Segmentation":
        """A segmentation of a (H, W) probability map in 0..1: ``mask = probabilities > threshold``
        and ``alpha`` its anti-aliased edge (:func:`soft_alpha`)."""
        probs = probabilities if _is_tensor(probabilities) else np.asarray(probabilities, np.float32)
        if probs.ndim != 2:
            raise ValueError(f"probabilities must be a 2-D (height, width) array; got shape {tuple(probs.shape)}")
        return cls(probs, threshold=threshold, **kwargs)

    def replace(self, **changes: Any) -> "Segmentation":
        """A copy with some fields replaced (arrays are shared, not copied)."""
        fields = dict(probabilities=self._probabilities, mask=self._mask, alpha=self._alpha, threshold=self.threshold,
                      model=self.model, model_input_size=self.model_input_size, elapsed_ms=self.elapsed_ms,
                      foreground=self._foreground, timings=self.timings, part_ids=self._part_ids)
        fields.update(changes)
        return Segmentation(**fields)

    def __repr__(self) -> str:
        h, w = self.model_input_size
        return (f"Segmentation({self.width}x{self.height}, model={self.model!r}, threshold={self.threshold:g}, "
                f"model input {w}x{h}, {self.elapsed_ms:.1f} ms)")
