"""BodyPix's pre- and post-processing around the network, following ``@tensorflow-models/body-pix`` 2.2.1.

Geometry (all sizes in pixels, ``(height, width)``)

1. *Internal resolution*: ``'low' | 'medium' | 'high' | 'full'`` = 0.25 / 0.5 / 0.75 / 1.0, or a
   number in [0.1, 2.0]. Each side ``s * fraction`` (a float) is turned into a *valid* size for
   the output stride: kept if ``(x - 1) % stride == 0``, else ``floor(x / stride) * stride + 1``
   (:func:`input_resolution`). E.g. 640 x 480 at 'medium', stride 16 -> 321 x 241.
2. *Pad and resize* (:func:`pad_and_resize`): the image is padded with black (0) to the internal
   aspect ratio, the same amount on both sides, ``round(0.5 * (target_aspect * h - w))`` columns
   (or the analogue in rows; JS rounding, halves up), then resized to the internal size with
   TF.js ``resizeBilinear(alignCorners=false, halfPixelCenters=false)`` (source coordinate
   ``dst * in / out``, no half-pixel shift: *not* torch's ``align_corners=False``).
3. The network sees ``rgb / 127.5 - 1``; its outputs are ``(internal - 1) / stride + 1`` per side.
4. *Scale and crop back* (:func:`scale_and_crop_to_input`): bilinear resize of the logits to
   the internal size with ``alignCorners=true``, sigmoid, then TF.js ``cropAndResize`` of the box
   that excludes the padding to the image size. The box corners are float32 (as TF.js makes them)
   and crop rows/columns that fall outside the internal image get 0 (``extrapolationValue``).
5. Person mask = ``probability > float32(threshold)``; part id = ``argmax`` of the 24 part
   probabilities (first index on ties) where the mask is 1, else -1.

Resampling runs in torch float32 with sample positions and weights computed in float64 exactly
as TF.js's CPU kernels do (columns interpolated first, then rows).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F

from .net import BodyPixMobileNet, load_bodypix_mobilenet, normalize
from .multi_person import (
    Pose,
    decode_instance_masks,
    decode_instance_part_masks,
    decode_multiple_poses,
    scale_poses,
)

__all__ = [
    "INTERNAL_RESOLUTIONS",
    "InternalResolution",
    "Padding",
    "RawPrediction",
    "PersonSegmentation",
    "PartSegmentation",
    "PersonInstance",
    "PartInstance",
    "BodyPix",
    "internal_resolution_fraction",
    "valid_input_resolution",
    "input_resolution",
    "pad_and_resize",
    "resize_bilinear",
    "crop_and_resize",
    "scale_and_crop_to_input",
    "scale_and_crop_to_input_exact",
    "to_mask",
    "decode_part_ids",
]

#: BodyPix's named internal resolutions (fraction of the image size).
INTERNAL_RESOLUTIONS: dict[str, float] = {"low": 0.25, "medium": 0.5, "high": 0.75, "full": 1.0}
InternalResolution = Union[str, float]


def _js_round(x: float) -> int:
    """JavaScript ``Math.round``: nearest integer, halves towards +infinity."""
    r = math.floor(x)
    return int(r + 1 if x - r >= 0.5 else r)


def internal_resolution_fraction(internal_resolution: InternalResolution) -> float:
    """``'low'|'medium'|'high'|'full'`` -> 0.25/0.5/0.75/1.0; numbers must lie in [0.1, 2.0]."""
    if isinstance(internal_resolution, str):
        try:
            return INTERNAL_RESOLUTIONS[internal_resolution]
        except KeyError:
            raise ValueError(
                f"internal_resolution must be one of {tuple(INTERNAL_RESOLUTIONS)} or a number in "
                f"[0.1, 2.0]; got {internal_resolution!r}"
            ) from None
    if isinstance(internal_resolution, bool) or not isinstance(internal_resolution, (int, float, np.number)):
        raise ValueError(f"internal_resolution must be a string or a number; got {internal_resolution!r}")
    f = float(internal_resolution)
    if not 0.1 <= f <= 2.0:
        raise ValueError(f"internal_resolution must be in [0.1, 2.0]; got {f}")
    return f


def valid_input_resolution(size: float, output_stride: int) -> int:
    """BodyPix ``toValidInputResolution``: ``size`` if ``(size - 1) % stride == 0`` else ``floor(size / stride) * stride + 1``."""
    if (size - 1) % output_stride == 0:
        return int(size)
    return int(math.floor(size / output_stride)) * output_stride + 1


def input_resolution(
    image_hw: Sequence[int], internal_resolution: InternalResolution, output_stride: int
) -> tuple[int, int]:
    """The network input size ``(h, w)`` BodyPix uses for an image of ``image_hw`` pixels."""
    f = internal_resolution_fraction(internal_resolution)
    h, w = image_hw
    return (valid_input_resolution(h * f, output_stride), valid_input_resolution(w * f, output_stride))


@dataclass(frozen=True)
class Padding:
    """Black border (pixels) added around the image before resizing to the internal size."""

    top: int = 0
    bottom: int = 0
    left: int = 0
    right: int = 0


# ----------------------------------------------------------------------------------------------
# TF.js-exact resampling


def _resize_taps(n_in: int, n_out: int, align_corners: bool, half_pixel_centers: bool = False):
    """Sample positions of TF.js ``resizeBilinear`` along one axis: (lo, hi, frac) as numpy arrays."""
    if align_corners and n_out > 1:
        ratio = (n_in - 1) / (n_out - 1)
    else:
        ratio = n_in / n_out
    r = np.arange(n_out, dtype=np.float64)
    src = ratio * (r + 0.5) - 0.5 if half_pixel_centers else ratio * r
    lo = np.maximum(0.0, np.floor(src))
    frac = src - lo
    hi = np.minimum(n_in - 1.0, np.ceil(src))
    return lo.astype(np.int64), hi.astype(np.int64), frac


def _lerp(
    x: torch.Tensor, dim: int, lo: np.ndarray, hi: np.ndarray, frac: np.ndarray, b: torch.Tensor | None = None
) -> torch.Tensor:
    """``a + (b - a) * frac`` along ``dim`` with ``a = x[lo]``, ``b = x[hi]`` (or ``a = x``, given ``b``)."""
    shape = [1] * x.dim()
    shape[dim] = -1
    if b is None:
        a = x.index_select(dim, torch.from_numpy(lo))
        b = x.index_select(dim, torch.from_numpy(hi))
    else:
        a = x
    f = torch.from_numpy(frac).to(a.dtype).reshape(shape)
    return a + (b - a) * f


def resize_bilinear(
    x: torch.Tensor, size: Sequence[int], align_corners: bool = False, half_pixel_centers: bool = False
) -> torch.Tensor:
    """TF.js ``tf.image.resizeBilinear`` on an ``N x C x H x W`` float tensor (CPU-kernel semantics).

    Source coordinate per output index ``r``: ``r * in / out`` (default), ``r * (in - 1) / (out - 1)``
    with ``align_corners``, or ``(r + 0.5) * in / out - 0.5`` with ``half_pixel_centers``;
    neighbours ``max(0, floor)`` and ``min(in - 1, ceil)``.
    """
    oh, ow = int(size[0]), int(size[1])
    h, w = x.shape[-2], x.shape[-1]
    lo, hi, fr = _resize_taps(w, ow, align_corners, half_pixel_centers)
    x = _lerp(x, x.dim() - 1, lo, hi, fr)
    lo, hi, fr = _resize_taps(h, oh, align_corners, half_pixel_centers)
    return _lerp(x, x.dim() - 2, lo, hi, fr)


def _crop_taps(c0: float, c1: float, n_in: int, n_out: int):
    if n_out > 1:
        scale = (c1 - c0) * (n_in - 1) / (n_out - 1)
        src = c0 * (n_in - 1) + np.arange(n_out, dtype=np.float64) * scale
    else:
        src = np.full(1, 0.5 * (c0 + c1) * (n_in - 1))
    inside = (src >= 0) & (src <= n_in - 1)
    s = np.where(inside, src, 0.0)
    lo = np.floor(s)
    hi = np.ceil(s)
    return lo.astype(np.int64), hi.astype(np.int64), s - lo, inside


def crop_and_resize(x: torch.Tensor, box: Sequence[float], crop_size: Sequence[int]) -> torch.Tensor:
    """TF.js ``tf.image.cropAndResize`` (bilinear, extrapolation value 0) of one box on ``N x C x H x W``.

    ``box`` is ``(y1, x1, y2, x2)`` in normalised coordinates; it is rounded to float32 first, as
    TF.js stores boxes in a float32 tensor. Output ``N x C x crop_h x crop_w``.
    """
    y1, x1, y2, x2 = (float(np.float32(v)) for v in box)
    ch, cw = int(crop_size[0]), int(crop_size[1])
    h, w = x.shape[-2], x.shape[-1]
    lo, hi, fr, inside_x = _crop_taps(x1, x2, w, cw)
    x = _lerp(x, x.dim() - 1, lo, hi, fr)
    lo, hi, fr, inside_y = _crop_taps(y1, y2, h, ch)
    x = _lerp(x, x.dim() - 2, lo, hi, fr)
    if not inside_x.all() or not inside_y.all():
        keep = torch.from_numpy(inside_y[:, None] & inside_x[None, :])
        x = x * keep.to(x.dtype)
    return x


def pad_and_resize(image: np.ndarray | torch.Tensor, target_hw: Sequence[int]) -> tuple[torch.Tensor, Padding]:
    """BodyPix ``padAndResizeTo``: pad to the target aspect, then TF.js-resize to ``target_hw``.

    Parameters
    ----------
    image : (H, W, 3) uint8 RGB array or tensor (0..255)
    target_hw : (h, w) network input size, from :func:`input_resolution`.

    Returns
    -------
    resized : 1 x 3 x h x w float32 tensor, RGB 0..255 (not yet normalised)
    padding : :class:`Padding` applied before resizing (pixels of the original image).
    """
    img = torch.as_tensor(image)
    if img.dim() != 3 or img.shape[2] != 3:
        raise ValueError(f"image must be H x W x 3 RGB; got shape {tuple(img.shape)}")
    h, w = int(img.shape[0]), int(img.shape[1])
    th, tw = int(target_hw[0]), int(target_hw[1])
    target_aspect = tw / th
    aspect = w / h
    if aspect < target_aspect:
        p = _js_round(0.5 * (target_aspect * h - w))
        pad = Padding(0, 0, p, p)
    else:
        p = _js_round(0.5 * ((1.0 / target_aspect) * w - h))
        pad = Padding(p, p, 0, 0)
    x = img
    if pad.top or pad.left:
        x = torch.nn.functional.pad(x.permute(2, 0, 1), (pad.left, pad.right, pad.top, pad.bottom)).permute(1, 2, 0)
    # HWC: gather whole pixels (columns first, as the TF.js kernel interpolates), in float32
    lo, hi, fr = _resize_taps(x.shape[1], tw, False)
    x = _lerp(x.index_select(1, torch.from_numpy(lo)).to(torch.float32), 1, np.zeros(0), np.zeros(0), fr,
              b=x.index_select(1, torch.from_numpy(hi)).to(torch.float32))  # fmt: skip
    lo, hi, fr = _resize_taps(x.shape[0], th, False)
    x = _lerp(x, 0, lo, hi, fr)
    return x.permute(2, 0, 1).unsqueeze(0).contiguous(), pad


def _extrapolated(c0: float, c1: float, n_in: int, n_out: int) -> np.ndarray:
    """Which output rows/columns TF.js ``cropAndResize`` fills with the extrapolation value."""
    return ~_crop_taps(c0, c1, n_in, n_out)[3]


def scale_and_crop_to_input(
    x: torch.Tensor,
    image_hw: Sequence[int],
    internal_hw: Sequence[int],
    padding: Padding,
    apply_sigmoid: bool = True,
) -> torch.Tensor:
    """BodyPix ``scaleAndCropToInputTensorShape`` on ``1 x C x h x w`` model outputs.

    Resize to ``internal_hw`` (align corners), optional sigmoid, then crop the un-padded box and
    resize it to ``image_hw``. Returns ``1 x C x H x W`` float32 (probabilities 0..1 with sigmoid;
    memory layout follows the input's, e.g. channels-last for the network's outputs).

    The crop box spans exactly the un-padded image, so the crop-and-resize equals an
    align-corners resize to the padded size followed by a crop; that is how it is computed
    (``F.interpolate``, sample positions equal to TF.js's up to float32 rounding, ~1e-5 px).
    Rows/columns that TF.js's float32 box puts outside the internal image are zeroed as
    TF.js does (:func:`crop_and_resize` is the literal version).
    """
    H, W = int(image_hw[0]), int(image_hw[1])
    ih, iw = int(internal_hw[0]), int(internal_hw[1])
    t, b, l, r = padding.top, padding.bottom, padding.left, padding.right
    y = x.to(torch.float32)
    if y.shape[-2:] != (ih, iw):
        y = F.interpolate(y, size=(ih, iw), mode="bilinear", align_corners=True)
    if apply_sigmoid:
        y = torch.sigmoid(y)
    hp, wp = H + t + b, W + l + r
    y = F.interpolate(y, size=(hp, wp), mode="bilinear", align_corners=True)[..., t:t + H, l:l + W]
    box = _crop_box(image_hw, padding)
    out_y = _extrapolated(box[0], box[2], ih, H)
    out_x = _extrapolated(box[1], box[3], iw, W)
    if out_y.any() or out_x.any():
        keep = torch.from_numpy(~out_y[:, None] & ~out_x[None, :]).to(y.dtype)
        y = y * keep
    return y


def _crop_box(image_hw: Sequence[int], padding: Padding) -> tuple[float, float, float, float]:
    """BodyPix's crop box (y1, x1, y2, x2) for removing ``padding``, rounded to float32 as TF.js stores it."""
    H, W = int(image_hw[0]), int(image_hw[1])
    t, b, l, r = padding.top, padding.bottom, padding.left, padding.right
    box = (
        t / (H + t + b - 1.0),
        l / (W + l + r - 1.0),
        (t + H - 1.0) / (H + t + b - 1.0),
        (l + W - 1.0) / (W + l + r - 1.0),
    )
    return tuple(float(np.float32(v)) for v in box)  # type: ignore[return-value]


def scale_and_crop_to_input_exact(
    x: torch.Tensor,
    image_hw: Sequence[int],
    internal_hw: Sequence[int],
    padding: Padding,
    apply_sigmoid: bool = True,
) -> torch.Tensor:
    """Literal version of :func:`scale_and_crop_to_input` (TF.js kernels re-implemented; slower)."""
    y = resize_bilinear(x.to(torch.float32), internal_hw, align_corners=True)
    if apply_sigmoid:
        y = torch.sigmoid(y)
    return crop_and_resize(y, _crop_box(image_hw, padding), image_hw)


def to_mask(probabilities: torch.Tensor, threshold: float) -> torch.Tensor:
    """``probabilities > float32(threshold)`` as uint8 0/1 (BodyPix ``toMaskTensor``)."""
    return (probabilities > float(np.float32(threshold))).to(torch.uint8)


def decode_part_ids(part_probabilities: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Part id per pixel: ``argmax`` over the 24 channels of ``N x 24 x H x W`` (first on ties).

    With ``mask`` (``N x H x W`` 0/1) pixels outside it get -1. Returns ``N x H x W`` int8 (-1..23).
    """
    ids = part_probabilities.argmax(dim=1).to(torch.int8)  # first maximum wins, as tf.argMax
    if mask is not None:
        ids = torch.where(mask.bool(), ids, torch.full_like(ids, -1))
    return ids


# ----------------------------------------------------------------------------------------------
# Results


@dataclass
class RawPrediction:
    """Network outputs for one image plus the geometry needed to map them back.

    ``outputs[head]`` is a ``1 x C x h x w`` float32 tensor (raw; see :data:`bodypix_net.HEADS`);
    ``image_hw`` the original size, ``internal_hw`` the network input size, ``padding`` the
    border added before resizing, ``output_stride`` 8 or 16.
    """

    outputs: dict[str, torch.Tensor]
    image_hw: tuple[int, int]
    internal_hw: tuple[int, int]
    padding: Padding
    output_stride: int

    def heatmap_scores(self) -> np.ndarray:
        """Keypoint scores ``sigmoid(heatmaps)`` as (h, w, 17) float32 (computed in float64, as TF.js)."""
        z = self.outputs["heatmaps"][0].permute(1, 2, 0).to(torch.float64)
        return torch.sigmoid(z).to(torch.float32).numpy()

    def hwc(self, head: str) -> np.ndarray:
        """Head ``head`` as an (h, w, C) float32 array (TF.js layout)."""
        return np.ascontiguousarray(self.outputs[head][0].permute(1, 2, 0).numpy())


@dataclass
class PersonSegmentation:
    """``segment_person`` result: ``mask`` (H, W) uint8 0/1 for all people; ``poses`` in image pixels."""

    mask: np.ndarray
    poses: list[Pose] = field(default_factory=list)


@dataclass
class PartSegmentation:
    """``segment_person_parts`` result: ``part_ids`` (H, W) int8, -1 = no person, 0..23 = part."""

    part_ids: np.ndarray
    poses: list[Pose] = field(default_factory=list)


@dataclass
class PersonInstance:
    """One person of ``segment_multi_person``: ``mask`` (H, W) uint8 0/1 and its ``pose``."""

    mask: np.ndarray
    pose: Pose


@dataclass
class PartInstance:
    """One person of ``segment_multi_person_parts``: ``part_ids`` (H, W) int8 (-1 elsewhere) and ``pose``."""

    part_ids: np.ndarray
    pose: Pose


def _check_image(image: np.ndarray) -> np.ndarray:
    if not isinstance(image, np.ndarray):
        raise TypeError(f"image must be a numpy array, not {type(image).__name__}")
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be (H, W, 3) RGB; got shape {image.shape}")
    if image.dtype != np.uint8:
        raise TypeError(f"image must be uint8 (0..255); got {image.dtype}")
    if image.shape[0] < 2 or image.shape[1] < 2:
        raise ValueError(f"image must be at least 2 x 2 pixels; got {image.shape[:2]}")
    return image


def _check_unit(value: float, name: str) -> float:
    v = float(value)
    if not 0.0 <= v <= 1.0:
        raise ValueError(f"{name} must be in [0, 1]; got {value}")
    return v


class BodyPix:
    """BodyPix 2.0 (MobileNetV1) person / body-part segmentation, as ``@tensorflow-models/body-pix``.

    Images are (H, W, 3) uint8 RGB numpy arrays; results are numpy arrays of the image size.
    Defaults are BodyPix's (``internalResolution 'medium'``, ``segmentationThreshold 0.7``,
    ``maxDetections 10``, ``scoreThreshold 0.4``, ``nmsRadius 20``, ``minKeypointScore 0.3``,
    ``refineSteps 10``).
    """

    def __init__(self, net: BodyPixMobileNet) -> None:
        self.net = net.eval()

    @classmethod
    def from_tfjs(cls, model_json: str | Path) -> "BodyPix":
        """Load from a BodyPix TF.js ``model-stride{8,16}.json`` (+ shard beside it)."""
        return cls(load_bodypix_mobilenet(model_json))

    @property
    def output_stride(self) -> int:
        """The network's output stride (8 or 16)."""
        return self.net.output_stride

    # -- network ---------------------------------------------------------------------------

    @torch.inference_mode()
    def predict(
        self,
        image: np.ndarray,
        internal_resolution: InternalResolution = "medium",
        heads: Sequence[str] | None = None,
    ) -> RawPrediction:
        """Run pad/resize + the network; ``heads`` limits the computed outputs (default: all)."""
        img = _check_image(image)
        hw = (img.shape[0], img.shape[1])
        internal = input_resolution(hw, internal_resolution, self.output_stride)
        src = torch.from_numpy(img if img.flags.writeable else img.copy())
        resized, pad = pad_and_resize(src, internal)
        out = self.net(normalize(resized), heads=heads)
        return RawPrediction(out, hw, internal, pad, self.output_stride)

    @staticmethod
    def probabilities(raw: RawPrediction, head: str = "segments") -> torch.Tensor:
        """``sigmoid`` of a logit head scaled and cropped to the image: ``1 x C x H x W`` float32, 0..1."""
        return scale_and_crop_to_input(raw.outputs[head], raw.image_hw, raw.internal_hw, raw.padding)

    @staticmethod
    def estimate_poses(
        raw: RawPrediction, max_detections: int = 10, score_threshold: float = 0.4, nms_radius: float = 20
    ) -> list[Pose]:
        """All poses (BodyPix ``allPoses``) of a prediction made with all heads, in image pixels."""
        poses = decode_multiple_poses(
            raw.heatmap_scores(), raw.hwc("short_offsets"), raw.hwc("displacement_fwd"),
            raw.hwc("displacement_bwd"), raw.output_stride, max_detections, score_threshold, nms_radius,
        )  # fmt: skip
        return scale_poses(poses, raw.image_hw, raw.internal_hw, raw.padding)

    @staticmethod
    def _check_config(segmentation_threshold: float, max_detections: int, score_threshold: float, nms_radius: float) -> None:
        _check_unit(segmentation_threshold, "segmentation_threshold")
        _check_unit(score_threshold, "score_threshold")
        if max_detections <= 0:
            raise ValueError(f"max_detections must be > 0; got {max_detections}")
        if nms_radius <= 0:
            raise ValueError(f"nms_radius must be > 0; got {nms_radius}")

    # -- semantic segmentation -------------------------------------------------------------

    @torch.inference_mode()
    def segment_person(
        self,
        image: np.ndarray,
        internal_resolution: InternalResolution = "medium",
        segmentation_threshold: float = 0.7,
        max_detections: int = 10,
        score_threshold: float = 0.4,
        nms_radius: float = 20,
        decode_poses: bool = True,
    ) -> PersonSegmentation:
        """BodyPix ``segmentPerson``: one 0/1 mask for all people (+ all poses unless ``decode_poses=False``)."""
        self._check_config(segmentation_threshold, max_detections, score_threshold, nms_radius)
        heads = None if decode_poses else ("segments",)
        raw = self.predict(image, internal_resolution, heads)
        mask = to_mask(self.probabilities(raw, "segments")[0, 0], segmentation_threshold).numpy()
        poses = self.estimate_poses(raw, max_detections, score_threshold, nms_radius) if decode_poses else []
        return PersonSegmentation(mask, poses)

    @torch.inference_mode()
    def segment_person_parts(
        self,
        image: np.ndarray,
        internal_resolution: InternalResolution = "medium",
        segmentation_threshold: float = 0.7,
        max_detections: int = 10,
        score_threshold: float = 0.4,
        nms_radius: float = 20,
        decode_poses: bool = True,
    ) -> PartSegmentation:
        """BodyPix ``segmentPersonParts``: part ids (-1..23) for all people (+ all poses)."""
        self._check_config(segmentation_threshold, max_detections, score_threshold, nms_radius)
        heads = None if decode_poses else ("segments", "part_heatmaps")
        raw = self.predict(image, internal_resolution, heads)
        mask = to_mask(self.probabilities(raw, "segments")[:, 0], segmentation_threshold)
        ids = decode_part_ids(self.probabilities(raw, "part_heatmaps"), mask)[0].numpy()
        poses = self.estimate_poses(raw, max_detections, score_threshold, nms_radius) if decode_poses else []
        return PartSegmentation(ids, poses)

    # -- instance segmentation -------------------------------------------------------------

    def _multi(
        self,
        image: np.ndarray,
        internal_resolution: InternalResolution,
        segmentation_threshold: float,
        max_detections: int,
        score_threshold: float,
        nms_radius: float,
        min_keypoint_score: float,
        refine_steps: int,
        parts: bool,
    ) -> list[PersonInstance] | list[PartInstance]:
        self._check_config(segmentation_threshold, max_detections, score_threshold, nms_radius)
        _check_unit(min_keypoint_score, "min_keypoint_score")
        if not 1 <= int(refine_steps) <= 20:
            raise ValueError(f"refine_steps must be in [1, 20]; got {refine_steps}")
        raw = self.predict(image, internal_resolution)
        mask = to_mask(self.probabilities(raw, "segments")[0, 0], segmentation_threshold).numpy()
        poses = self.estimate_poses(raw, max_detections, score_threshold, nms_radius)
        poses = [p for p in poses if p.score >= score_threshold]
        args = (raw.hwc("long_offsets"), poses, raw.output_stride, raw.internal_hw, raw.padding, int(refine_steps))
        if parts:
            ids = decode_part_ids(self.probabilities(raw, "part_heatmaps"))[0].numpy()
            return [PartInstance(m, p) for m, p in zip(decode_instance_part_masks(mask, ids, *args), poses)]
        return [PersonInstance(m, p) for m, p in zip(decode_instance_masks(mask, *args), poses)]

    @torch.inference_mode()
    def segment_multi_person(
        self,
        image: np.ndarray,
        internal_resolution: InternalResolution = "medium",
        segmentation_threshold: float = 0.7,
        max_detections: int = 10,
        score_threshold: float = 0.4,
        nms_radius: float = 20,
        min_keypoint_score: float = 0.3,
        refine_steps: int = 10,
    ) -> list[PersonInstance]:
        """BodyPix ``segmentMultiPerson``: one 0/1 mask + pose per detected person (pose score >= ``score_threshold``).

        ``min_keypoint_score`` is validated but, as in BodyPix's CPU decoder, the mask matching
        uses keypoints scoring above 0.3.
        """
        return self._multi(image, internal_resolution, segmentation_threshold, max_detections,
                           score_threshold, nms_radius, min_keypoint_score, refine_steps, parts=False)  # fmt: skip

    @torch.inference_mode()
    def segment_multi_person_parts(
        self,
        image: np.ndarray,
        internal_resolution: InternalResolution = "medium",
        segmentation_threshold: float = 0.7,
        max_detections: int = 10,
        score_threshold: float = 0.4,
        nms_radius: float = 20,
        min_keypoint_score: float = 0.3,
        refine_steps: int = 10,
    ) -> list[PartInstance]:
        """BodyPix ``segmentMultiPersonParts``: part ids (-1 elsewhere) + pose per detected person."""
        return self._multi(image, internal_resolution, segmentation_threshold, max_detections,
                           score_threshold, nms_radius, min_keypoint_score, refine_steps, parts=True)  # fmt: skip
