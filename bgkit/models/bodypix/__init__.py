"""BodyPix 2.0 (MobileNetV1) person and body-part segmentation, ported to PyTorch.

A port of ``@tensorflow-models/body-pix`` 2.2.1 that reads Google's TF.js graph-model files and
gives the library's own answers (tests/models/bodypix/test_parity.py holds it to fixtures made
with the original): the MobileNetV1 network (:mod:`.net`, weights read by :mod:`.tfjs_graph`),
BodyPix's pre- and post-processing and API (:mod:`.bodypix`), multi-person decoding
(:mod:`.multi_person`), and the registry entries and pipeline segmenter (:mod:`.segmenter`).
"""

from .bodypix import BodyPix, PartInstance, PersonInstance, RawPrediction, input_resolution
from .multi_person import PART_NAMES, Pose
from .net import HEADS, BodyPixMobileNet, load_bodypix_mobilenet
from .segmenter import BODYPIX_VARIANTS, BodyPixSegmenter

__all__ = [
    "BODYPIX_VARIANTS", "BodyPix", "BodyPixMobileNet", "BodyPixSegmenter", "HEADS", "PART_NAMES", "PartInstance",
    "PersonInstance", "Pose", "RawPrediction", "input_resolution", "load_bodypix_mobilenet",
]
