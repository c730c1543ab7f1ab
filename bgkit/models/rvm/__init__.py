"""Robust Video Matting (RVM, MobileNetV3): soft alpha, foreground colour and temporal memory.

An opt-in model (its weights are GPL-3.0; bgkit's code is Apache-2.0 and never ships them):
``bgkit.load_segmenter("rvm")``, ``bgkit fetch rvm``. :mod:`.net` is the network, written for bgkit
in PyTorch, reading the official ONNX file's weights; :mod:`.segmenter` is the registry entry, the
weights file and the pipeline's face of the model.

**Threshold (0.2).** RVM's output is an alpha matte, not a probability; the threshold only makes
the mask (the mask effect, picking people, the metrics), the compositing uses the matte. Chosen as
for the other models on the dev data (``../shared/data``: 10 photos with people, sorted by name,
even positions to choose, odd ones to confirm; then the 90-frame dance clip through the default
pipeline), stills at RVM's own downsample ratio:

=========  =================  =================  =================================
threshold  even photos IoU/F  odd photos IoU/F   dance clip IoU / F / flicker
=========  =================  =================  =================================
0.1        0.935 / 0.828      0.943 / 0.863      0.778 / 0.741 / 0.58 %
0.2        0.930 / 0.815      0.936 / 0.862      0.797 / 0.783 / 0.58 %
0.3        0.921 / 0.795      0.929 / 0.860      0.800 / 0.790 / 0.56 %
0.5        0.901 / 0.739      0.914 / 0.852      0.801 / 0.792 / 0.53 %
0.7        0.878 / 0.678      0.898 / 0.842      0.794 / 0.789 / 0.52 %
=========  =================  =================  =================================

The rule (highest IoU among thresholds whose boundary F is within 0.03 of the best) gives 0.1 on
the even photos and the odd photos agree, but the clip does not (0.1 is its worst: the matte's
faint halo around the fast-moving dancer counts as person; not the unannotated audience, which
RVM leaves out). 0.2 is inside the rule's boundary-F window on the even photos and loses least on
any of the three sets (at most 0.009 IoU and 0.013 boundary F from each set's best). The photos'
masks (remove.bg) keep semi-transparent hair as person, which is why a matte does best on them
cut well below 0.5.

**Stills** run once from a fresh state. Repeated passes (the state of one pass fed to the next,
same photo) did not help where the choice is made: on the even photos at 0.1, IoU / boundary F
0.935 / 0.828 (1 pass), 0.933 / 0.824 (2), 0.932 / 0.821 (3), 0.929 / 0.817 (5); the odd photos
gained (0.943 / 0.863 -> 0.954 / 0.899 at 5 passes, from the two large photos run at ratio 0.4
and 0.48) and the edge-band alpha error did not move (0.136), for 2-5x the time.

**Foreground colours.** The cut-out and the replaced background use RVM's predicted foreground
(``Segmentation.foreground``) instead of the picture's colours. On the 10 dev photos, in the band
where 0.05 < alpha < 0.95, the share of the old background in the edge colours falls from 0.56 to
0.43 and the old background's colour carried into a composite from 37.4 to 28.3 (0..255; local
colour estimates by masked blur; lower on every photo).
"""

from .net import RobustVideoMatting, default_downsample_ratio, load_rvm_onnx, low_res_size, state_shapes
from .segmenter import DEFAULT_THRESHOLD, RVM_FILE, RVMLowRes, RVMSegmenter, downsample_ratio, rvm_model_path

__all__ = [
    "DEFAULT_THRESHOLD", "RVMLowRes", "RVMSegmenter", "RVM_FILE", "RobustVideoMatting", "default_downsample_ratio",
    "downsample_ratio", "load_rvm_onnx", "low_res_size", "rvm_model_path", "state_shapes",
]
