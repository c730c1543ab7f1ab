"""BodyPix 2.0 as bgkit segmenters: registry entries, weights, and the pipeline's face of the model.

BodyPix's MobileNetV1 variants are registered by name (multiplier, output stride, weights):

=====================  ==========  ======  ======================  ==================================
name                   multiplier  stride  weights                 note
=====================  ==========  ======  ======================  ==================================
``bodypix``            0.75        16      quantised, 2 bytes      BodyPix's own defaults
``bodypix_s8``         0.75        8       quantised, 2 bytes      finer, slower
``bodypix_050``        0.50        16      quantised, 2 bytes      faster
``bodypix_050_s8``     0.50        8       quantised, 2 bytes
``bodypix_050_float``  0.50        16      float32
``bodypix_050_float_s8`` 0.50      8       float32
=====================  ==========  ======  ======================  ==================================

Weights are Google's TF.js graph-model files (Apache-2.0), downloaded once from
``storage.googleapis.com/tfjs-models/savedmodel/bodypix/mobilenet/<quant>/<mult>/`` into bgkit's
cache and checked against SHA-256 sums recorded here (``$BGKIT_BODYPIX_URL`` points the download
at a mirror with the same layout, e.g. ``file:///path/to/bodypix`` for an offline copy);
``weights=`` also takes the path of a local ``model-stride*.json`` (its shard beside it).

``internal_resolution`` and ``segmentation_threshold`` behave exactly as in BodyPix (its valid
input sizes, its padding and resizing, its 0.7 default threshold), so ``segment_person`` gives
BodyPix's own answer; :meth:`BodyPixSegmenter.segment_person_parts` and
:meth:`BodyPixSegmenter.segment_multi_person` give its body parts and its people.
"""

from __future__ import annotations

import copy
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ...core.checks import check_number
from ...core.segmentation import InternalResolution, Segmentation, soft_alpha
from ...io.images import ImageLike, load_image
from ..backends import OnnxSignature
from ..downloads import ModelFile, cache_dir, model_file_path
from ..registry import ModelSpec, WeightsUnavailableError, local_weights_file, register
from ..segmenter import ModelOutput, Segmenter
from .bodypix import (BodyPix, PartInstance, PersonInstance, decode_part_ids, input_resolution, normalize,
                      pad_and_resize, scale_and_crop_to_input, to_mask)
from .net import BodyPixMobileNet, load_bodypix_mobilenet

__all__ = ["BODYPIX_VARIANTS", "BodyPixSegmenter", "BodyPixVariant", "bodypix_files"]

#: Where Google publishes the files (the same layout below ``mobilenet/`` as the offline copies).
BASE_URL = "https://storage.googleapis.com/tfjs-models/savedmodel/bodypix"
#: BodyPix's default segmentation threshold and internal resolution.
DEFAULT_THRESHOLD = 0.7
DEFAULT_INTERNAL_RESOLUTION = "medium"


@dataclass(frozen=True)
class BodyPixVariant:
    """One published BodyPix MobileNetV1 file set."""

    name: str
    quant: str  # "float", "quant2" or "quant1"
    multiplier: str  # "050", "075", "100"
    stride: int
    manifest_sha256: str
    shard_sha256: str

    @property
    def folder(self) -> str:
        return f"mobilenet/{self.quant}/{self.multiplier}"


#: Our own record of the published files' SHA-256 (Google publishes none).
BODYPIX_VARIANTS: dict[str, BodyPixVariant] = {v.name: v for v in (
    BodyPixVariant("bodypix", "quant2", "075", 16,
                   "f7e26cc294524a502dcd873662d152b7c630e1bcb448f69c26ad021f62619da4",
                   "e215c9546b9db0e1e06c23c759ed48ccaf2aad68c656d0130b5757bc0479ac77"),
    BodyPixVariant("bodypix_s8", "quant2", "075", 8,
                   "8f6a52989ce92d9419863c1738616865980f762bc12ca237b46b5183b7cad9c8",
                   "e215c9546b9db0e1e06c23c759ed48ccaf2aad68c656d0130b5757bc0479ac77"),
    BodyPixVariant("bodypix_050", "quant2", "050", 16,
                   "aaeddfa9de73c4882598c1779286ed6ce44be80b4d582607808da2d7463b0136",
                   "76c2be65c09e953a1c6334cd122c3219c60dae9d66d62d575e2599a5b317ebe9"),
    BodyPixVariant("bodypix_050_s8", "quant2", "050", 8,
                   "22bc16e86455e13c3292fc846b3a2ea97213c3c4f66a601815a3b7861867904f",
                   "76c2be65c09e953a1c6334cd122c3219c60dae9d66d62d575e2599a5b317ebe9"),
    BodyPixVariant("bodypix_050_float", "float", "050", 16,
                   "753ca143964f579f0f6f4d882b97ca60cbb2b9155ae6077c0a4317e5daf950bd",
                   "6066a2082f41602a10f59450754b38000616eadf8c800b07cf25aa895831698d"),
    BodyPixVariant("bodypix_050_float_s8", "float", "050", 8,
                   "897721605f9db01309e8d117a25b81f1f386dd29420347de10b1de8b44098a30",
                   "6066a2082f41602a10f59450754b38000616eadf8c800b07cf25aa895831698d"),
)}


def bodypix_files(variant: BodyPixVariant) -> tuple[ModelFile, ModelFile]:
    """The (manifest, shard) :class:`ModelFile` of a variant, as bgkit's cache and downloads know them."""
    base = os.environ.get("BGKIT_BODYPIX_URL", BASE_URL).rstrip("/")
    manifest = f"model-stride{variant.stride}.json"
    shard = "group1-shard1of1.bin"
    return tuple(  # type: ignore[return-value]
        ModelFile(filename=f"bodypix/{variant.folder}/{name}", url=f"{base}/{variant.folder}/{name}", sha256=sha,
                  requirement="", package="", member="")
        for name, sha in ((manifest, variant.manifest_sha256), (shard, variant.shard_sha256))
    )


def _manifest_path(variant: BodyPixVariant, weights: Any) -> Path:
    if weights is None:
        manifest, shard = bodypix_files(variant)
        model_file_path(shard, what=f"BodyPix weights ({variant.name})")
        return model_file_path(manifest, what=f"BodyPix model ({variant.name})")
    return local_weights_file(weights, "BodyPix", "a model-stride*.json", "tfjs")


class SegmentsOnly(nn.Module):
    """The BodyPix network computing only its person-segmentation head: normalised N x 3 x h x w
    -> N x 1 x h x w logits. Uses symmetric padding, exact at BodyPix's valid input sizes (the only
    sizes the pipeline feeds it), so it exports to ONNX as one graph."""

    def __init__(self, net: BodyPixMobileNet) -> None:
        super().__init__()
        self.net = copy.deepcopy(net).eval()
        self.net.set_symmetric_padding(True)
        stride = net.output_stride
        self._example = (stride * 4 + 1, stride * 5 + 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x, heads=("segments",))["segments"]

    def onnx_signature(self) -> OnnxSignature:
        x = torch.rand(1, 3, *self._example, generator=torch.Generator().manual_seed(0)) * 2 - 1
        return OnnxSignature(example=(x,), inputs=("image",), outputs=("segments",),
                             dynamic_axes={"image": {2: "h", 3: "w"}, "segments": {2: "oh", 3: "ow"}})


class BodyPixSegmenter(Segmenter):
    """A BodyPix model as a bgkit :class:`~bgkit.Segmenter` (see the module doc)."""

    def __init__(self, spec: ModelSpec, module: nn.Module, device: torch.device, backend: str = "eager") -> None:
        if not isinstance(module, BodyPixMobileNet):
            raise TypeError(f"a BodyPix segmenter needs a BodyPixMobileNet; got {type(module).__name__}")
        self.net = module.eval().to(device)
        self.bodypix = BodyPix(self.net)
        super().__init__(spec, SegmentsOnly(self.net).to(device), device, backend)

    def model_input_size(self, height: int, width: int, internal_resolution: InternalResolution = None) -> tuple[int, int]:
        """BodyPix's valid input size for a height x width image (its ``toValidInputResolution``)."""
        ir = DEFAULT_INTERNAL_RESOLUTION if internal_resolution is None else internal_resolution
        return input_resolution((height, width), ir, self.net.output_stride)

    @property
    def has_parts(self) -> bool:
        return True

    @property
    def has_instances(self) -> bool:
        return True

    @torch.inference_mode()
    def infer(self, frame01: torch.Tensor, internal_resolution: InternalResolution = None, state: Any = None,
              parts: bool = False, instances: bool = False) -> ModelOutput:
        """BodyPix's pad, resize, network and scale-back on one frame (see :meth:`Segmenter.infer`).

        The person head runs on the fast backend; the body parts (``parts``) and the people
        (``instances``, from the pose heads: BodyPix's multi-person decoding) on the PyTorch network.
        """
        t0 = time.perf_counter()
        h, w = (int(n) for n in frame01.shape[-2:])
        internal = self.model_input_size(h, w, internal_resolution)
        image = frame01[0].permute(1, 2, 0).mul(255.0)
        part_ids = people = None
        if parts or instances:
            rgb = image.round().clamp_(0, 255).to(torch.uint8).cpu().numpy()
            ir = DEFAULT_INTERNAL_RESOLUTION if internal_resolution is None else internal_resolution
            raw = self.bodypix.predict(rgb, ir, heads=None if instances else ("segments", "part_heatmaps"))
            prob = self.bodypix.probabilities(raw, "segments")[0, 0].to(self.device)
            if parts:
                part_ids = decode_part_ids(self.bodypix.probabilities(raw, "part_heatmaps"),
                                           to_mask(prob.cpu(), self.default_threshold)[None])[0].to(self.device)
            if instances:
                mask = to_mask(prob.cpu(), self.default_threshold).numpy()
                poses = [p for p in self.bodypix.estimate_poses(raw) if p.score >= 0.4]
                from .multi_person import decode_instance_masks

                people = [m.astype(bool) for m in decode_instance_masks(
                    mask, raw.hwc("long_offsets"), poses, raw.output_stride, raw.internal_hw, raw.padding, 10)]
        else:
            resized, pad = pad_and_resize(image, internal)
            logits = self._run(normalize(resized.to(self.device))).to(self.device)
            prob = scale_and_crop_to_input(logits, (h, w), internal, pad)[0, 0]
        return ModelOutput(internal, full=prob.clamp_(0.0, 1.0), frame_size=(h, w), part_ids=part_ids,
                           instances=people, timings={"model": (time.perf_counter() - t0) * 1000.0})

    # -- BodyPix's API -------------------------------------------------------------------------

    def _threshold(self, segmentation_threshold: float | None) -> float:
        if segmentation_threshold is None:
            return self.default_threshold
        return check_number(segmentation_threshold, "segmentation_threshold", 0.0, 1.0)

    def segment_person_parts(
        self, image: ImageLike, internal_resolution: InternalResolution = None, segmentation_threshold: float | None = None,
    ) -> Segmentation:
        """BodyPix's ``segmentPersonParts``: a :class:`bgkit.Segmentation` whose ``part_ids`` hold
        one body part per person pixel (-1 elsewhere, 0..23), with the person probability and mask."""
        t0 = time.perf_counter()
        rgb = load_image(image)
        threshold = self._threshold(segmentation_threshold)
        ir = DEFAULT_INTERNAL_RESOLUTION if internal_resolution is None else internal_resolution
        with torch.inference_mode():
            raw = self.bodypix.predict(rgb, ir, heads=("segments", "part_heatmaps"))
            prob = self.bodypix.probabilities(raw, "segments")[0, 0]
            mask = to_mask(prob, threshold)
            ids = decode_part_ids(self.bodypix.probabilities(raw, "part_heatmaps"), mask[None])[0].numpy()
        return Segmentation(prob, mask, soft_alpha(prob, threshold), threshold=threshold, model=self.name,
                                model_input_size=raw.internal_hw, elapsed_ms=(time.perf_counter() - t0) * 1000.0,
                                part_ids=ids)

    def segment_multi_person(
        self, image: ImageLike, internal_resolution: InternalResolution = None,
        segmentation_threshold: float | None = None, max_detections: int = 10, score_threshold: float = 0.4,
        nms_radius: float = 20, min_keypoint_score: float = 0.3, refine_steps: int = 10,
    ) -> list[PersonInstance]:
        """BodyPix's ``segmentMultiPerson``: one 0/1 ``mask`` (H, W) and ``pose`` (17 keypoints in
        image pixels, and a score) per person whose pose scores at least ``score_threshold``."""
        ir = DEFAULT_INTERNAL_RESOLUTION if internal_resolution is None else internal_resolution
        return self.bodypix.segment_multi_person(load_image(image), ir, self._threshold(segmentation_threshold),
                                                 max_detections, score_threshold, nms_radius, min_keypoint_score,
                                                 refine_steps)

    def segment_multi_person_parts(
        self, image: ImageLike, internal_resolution: InternalResolution = None,
        segmentation_threshold: float | None = None, max_detections: int = 10, score_threshold: float = 0.4,
        nms_radius: float = 20, min_keypoint_score: float = 0.3, refine_steps: int = 10,
    ) -> list[PartInstance]:
        """BodyPix's ``segmentMultiPersonParts``: ``part_ids`` (H, W, -1 elsewhere) and ``pose`` per person."""
        ir = DEFAULT_INTERNAL_RESOLUTION if internal_resolution is None else internal_resolution
        return self.bodypix.segment_multi_person_parts(load_image(image), ir, self._threshold(segmentation_threshold),
                                                       max_detections, score_threshold, nms_radius, min_keypoint_score,
                                                       refine_steps)


def _spec(variant: BodyPixVariant) -> ModelSpec:
    mult = {"050": "0.50", "075": "0.75", "100": "1.00"}[variant.multiplier]
    weights = "float32" if variant.quant == "float" else f"quantised to {variant.quant[-1]} bytes"
    manifest, shard = bodypix_files(variant)

    def is_available() -> bool:
        from ..downloads import is_cached

        return is_cached(manifest) and is_cached(shard)

    def build(weights: Any, device: torch.device) -> nn.Module:
        path = _manifest_path(variant, weights)
        try:
            return load_bodypix_mobilenet(path).to(device)
        except ValueError as exc:
            raise WeightsUnavailableError(f"{path} is not a BodyPix MobileNetV1 model: {exc}") from None

    return ModelSpec(
        name=variant.name,
        title=f"BodyPix 2.0 MobileNetV1 {mult}, stride {variant.stride}, {weights}",
        native_size=None,
        default_internal_resolution=DEFAULT_INTERNAL_RESOLUTION,
        mean=(0.5, 0.5, 0.5),
        std=(0.5, 0.5, 0.5),
        size_multiple=variant.stride,
        weights_source=f"{BASE_URL}/{variant.folder}/model-stride{variant.stride}.json (Google, TF.js graph model)",
        licence="Apache-2.0",
        build=build,
        is_available=is_available,
        weights_file=lambda weights: (cache_dir() / manifest.filename) if weights is None else (
            Path(weights) if isinstance(weights, (str, os.PathLike)) else None),
        default_threshold=DEFAULT_THRESHOLD,
        segmenter=BodyPixSegmenter,
        weights_suffixes=(".json",),
    )


for _variant in BODYPIX_VARIANTS.values():
    register(_spec(_variant))

