"""BodyPix 2.0 MobileNetV1 network as a PyTorch module, with weights read from the TF.js graph model.

The published BodyPix MobileNetV1 graphs (``model-stride{8,16}.json``, TF.js converter 1.2.6) are
a plain chain of 27 convolutions, each ``conv -> BiasAdd -> Relu6`` (batch norm folded in):

* ``Conv2d_0``: 3x3 convolution, 3 -> 32m channels, stride 2;
* ``Conv2d_1 .. Conv2d_13``: depthwise 3x3 (+ bias, relu6) then pointwise 1x1 (+ bias, relu6),
  with output channels 64m, 128m, 128m, 256m, 256m, 512m x 8 (*m* = multiplier 0.5 / 0.75 /
  1.0; the last two blocks stay at 512m, unlike ImageNet MobileNetV1's 1024m);
* eight 1x1 heads on ``Conv2d_13``'s output, no activation, in the graph's output order:
  ``short_offsets`` (34 = 17 y then 17 x), ``segments`` (1), ``part_heatmaps`` (24),
  ``long_offsets`` (34), ``heatmaps`` (17), ``displacement_fwd`` (32 = 16 y then 16 x),
  ``displacement_bwd`` (32) and ``part_offsets`` (48, clipped to [0, 1] in the graph by
  ``Minimum``/``Maximum`` nodes).

All convolutions use TensorFlow ``SAME`` padding. The output stride is baked into the graph:

* stride 16: ``Conv2d_0``, ``Conv2d_2/4/6_depthwise`` have stride 2; everything else stride 1
  and **no** dilation (``Conv2d_12`` is simply not strided);
* stride 8: only ``Conv2d_0``, ``Conv2d_2/4_depthwise`` are strided, and ``Conv2d_7 .. 13``'s
  depthwise convolutions carry ``dilations = [2, 2, 1, 1]``. TF.js reads the dilation of an
  NHWC op as ``[dilations[1], dilations[2]]``, i.e. **2 rows x 1 column**; this module does the
  same (the dilation is taken from the graph, see :func:`layer_specs_from_graph`).

The module computes in NCHW: ``forward`` takes ``N x 3 x H x W`` float32, already normalised
with :func:`normalize` (``rgb / 127.5 - 1``, RGB order, pixels 0..255), and returns a dict of
``N x C x h x w`` head tensors with ``h = ceil(H / stride)`` (for BodyPix's valid sizes
``H = k * stride + 1``: ``h = k + 1``). Heads are raw (``heatmaps``, ``segments``,
``part_heatmaps`` are logits; apply a sigmoid for scores).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .tfjs_graph import GraphNode, TfjsGraph, read_tfjs_graph

__all__ = [
    "HEADS",
    "HEAD_CHANNELS",
    "LayerSpec",
    "BodyPixMobileNet",
    "normalize",
    "mobilenet_layer_specs",
    "layer_specs_from_graph",
    "load_bodypix_mobilenet",
    "export_onnx",
]

#: Head names in the graph's output order (as BodyPix's ``MobileNet.nameOutputResults``).
HEADS: tuple[str, ...] = (
    "short_offsets", "segments", "part_heatmaps", "long_offsets", "heatmaps",
    "displacement_fwd", "displacement_bwd", "part_offsets",
)  # fmt: skip
#: Channels of each head.
HEAD_CHANNELS: dict[str, int] = {
    "short_offsets": 34, "segments": 1, "part_heatmaps": 24, "long_offsets": 34, "heatmaps": 17,
    "displacement_fwd": 32, "displacement_bwd": 32, "part_offsets": 48,
}  # fmt: skip
#: Weight name prefix of each head in the graph (``MobilenetV1/<prefix>/weights``).
HEAD_WEIGHT_PREFIX: dict[str, str] = {
    "short_offsets": "offset_2", "segments": "segment_2", "part_heatmaps": "part_heatmap_2",
    "long_offsets": "embedding_2", "heatmaps": "heatmap_2", "displacement_fwd": "displacement_fwd_2",
    "displacement_bwd": "displacement_bwd_2", "part_offsets": "part_offset_2",
}  # fmt: skip


def normalize(rgb: torch.Tensor) -> torch.Tensor:
    """BodyPix's MobileNet preprocessing: RGB pixels 0..255 -> ``rgb / 127.5 - 1`` in [-1, 1] (float32)."""
    return rgb.to(torch.float32) / 127.5 - 1.0


@dataclass(frozen=True)
class LayerSpec:
    """One trunk convolution: ``kind`` is ``"conv"`` (3x3 full), ``"depthwise"`` (3x3) or ``"pointwise"``.

    ``dilation`` is (rows, columns), as TF.js applies it.
    """

    name: str
    kind: str
    in_channels: int
    out_channels: int
    stride: int = 1
    dilation: tuple[int, int] = (1, 1)


_BLOCK_CHANNELS = (64, 128, 128, 256, 256, 512, 512, 512, 512, 512, 512, 512, 512)


def mobilenet_layer_specs(multiplier: float, output_stride: int) -> list[LayerSpec]:
    """The trunk of the published BodyPix MobileNetV1 graph for ``multiplier`` and ``output_stride``.

    ``multiplier`` in {0.5, 0.75, 1.0}; ``output_stride`` in {8, 16, 32} (8 and 16 are what the
    published files contain; 32 = the ImageNet strides, untested). See the module docstring for
    stride/dilation placement.
    """
    if multiplier not in (0.5, 0.75, 1.0):
        raise ValueError(f"multiplier must be 0.5, 0.75 or 1.0; got {multiplier}")
    if output_stride not in (8, 16, 32):
        raise ValueError(f"output_stride must be 8, 16 or 32; got {output_stride}")
    strided = {8: (2, 4), 16: (2, 4, 6), 32: (2, 4, 6, 12)}[output_stride]
    dilated = range(7, 14) if output_stride == 8 else ()
    c = int(32 * multiplier)
    specs = [LayerSpec("Conv2d_0", "conv", 3, c, 2)]
    for i, base in enumerate(_BLOCK_CHANNELS, start=1):
        out = int(base * multiplier)
        specs.append(
            LayerSpec(f"Conv2d_{i}_depthwise", "depthwise", c, c, 2 if i in strided else 1,
                      (2, 1) if i in dilated else (1, 1))
        )  # fmt: skip
        specs.append(LayerSpec(f"Conv2d_{i}_pointwise", "pointwise", c, out))
        c = out
    return specs


class _SameConv(nn.Conv2d):
    """``nn.Conv2d`` with TensorFlow SAME padding (extra row/column after when the total is odd).

    Pads are computed from the input size; symmetric ones go to the convolution itself (no
    copy), asymmetric ones (a strided layer seeing an even side) are added with ``F.pad``. With
    ``symmetric_only`` strided layers always pad symmetrically, which equals SAME whenever they
    see odd sides (always the case at BodyPix's valid input sizes) and keeps the traced graph
    free of shape arithmetic (used for ONNX export).
    """

    def __init__(self, cin: int, cout: int, k: int, stride: int, dilation: tuple[int, int], groups: int) -> None:
        super().__init__(cin, cout, k, stride, padding=0, dilation=dilation, groups=groups)
        self.symmetric_only = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k, s = self.kernel_size[0], self.stride[0]
        dh, dw = self.dilation
        if s == 1 or self.symmetric_only:
            pt = pb = (k - 1) * dh // 2
            pl = pr = (k - 1) * dw // 2
        else:
            pt, pb = _same_pads(x.shape[-2], k, s, dh)
            pl, pr = _same_pads(x.shape[-1], k, s, dw)
        if pt == pb and pl == pr:
            return F.conv2d(x, self.weight, self.bias, self.stride, (pt, pl), self.dilation, self.groups)
        x = F.pad(x, (pl, pr, pt, pb))
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


def _pointwise(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """1x1 convolution. Eager: one GEMM on the channels-last pixels (much faster than PyTorch's
    CPU 1x1 path for batch 1); under ONNX export: a plain ``conv2d``."""
    if torch.onnx.is_in_onnx_export() or torch.jit.is_tracing() or torch.jit.is_scripting():
        return F.conv2d(x, weight, bias)
    n, c, h, w = x.shape
    flat = x.permute(0, 2, 3, 1).reshape(n * h * w, c)  # a view when x is channels-last
    y = torch.addmm(bias, flat, weight.view(weight.shape[0], c).t())
    return y.view(n, h, w, -1).permute(0, 3, 1, 2)


def _same_pads(size: int, k: int, s: int, d: int) -> tuple[int, int]:
    eff = (k - 1) * d + 1
    out = -(-size // s)
    total = max((out - 1) * s + eff - size, 0)
    return (total // 2, total - total // 2)


class BodyPixMobileNet(nn.Module):
    """BodyPix MobileNetV1 (trunk + all eight heads).

    ``forward(x, heads=None)``: ``x`` is ``N x 3 x H x W`` float32 from :func:`normalize`; returns
    ``{head: N x C x h x w}`` for ``heads`` (default: all of :data:`HEADS`), raw (pre-sigmoid).
    ``h = ceil(H / output_stride)``. Any H, W >= 1 runs; BodyPix feeds ``H = k * stride + 1``.

    Eager execution keeps activations channels-last and runs the 1x1 convolutions as GEMMs
    (results are NCHW-shaped views of channels-last memory); under ONNX export the same weights
    are traced as plain ``Conv`` nodes. In inference mode the relu6 clamps work in place.
    """

    def __init__(self, specs: Sequence[LayerSpec], output_stride: int) -> None:
        super().__init__()
        self.specs = tuple(specs)
        self.output_stride = int(output_stride)
        layers = []
        for s in self.specs:
            if s.kind == "conv":
                layers.append(_SameConv(s.in_channels, s.out_channels, 3, s.stride, s.dilation, 1))
            elif s.kind == "depthwise":
                if s.in_channels != s.out_channels:
                    raise ValueError(f"{s.name}: depthwise layer must keep its channels")
                layers.append(_SameConv(s.in_channels, s.out_channels, 3, s.stride, s.dilation, s.in_channels))
            elif s.kind == "pointwise":
                layers.append(nn.Conv2d(s.in_channels, s.out_channels, 1))
            else:
                raise ValueError(f"{s.name}: unknown layer kind {s.kind!r}")
        self.layers = nn.ModuleList(layers)
        feat = self.specs[-1].out_channels
        self.heads = nn.Conv2d(feat, sum(HEAD_CHANNELS.values()), 1)
        self.register_buffer("part_offsets_min", torch.zeros(()), persistent=True)
        self.register_buffer("part_offsets_max", torch.ones(()), persistent=True)
        bounds, start = {}, 0
        for name in HEADS:
            bounds[name] = (start, start + HEAD_CHANNELS[name])
            start += HEAD_CHANNELS[name]
        self._bounds = bounds

    @property
    def multiplier(self) -> float:
        """Width multiplier (0.5 / 0.75 / 1.0) from the first layer's width."""
        return self.specs[0].out_channels / 32

    def set_symmetric_padding(self, on: bool) -> None:
        """Make strided layers pad symmetrically (exact at BodyPix's valid sizes; for ONNX export)."""
        for m in self.layers:
            if isinstance(m, _SameConv):
                m.symmetric_only = bool(on)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Trunk output (``Conv2d_13_pointwise`` after relu6): ``N x 512m x h x w``."""
        if not torch.onnx.is_in_onnx_export():
            if x.dim() != 4 or x.shape[1] != 3:
                raise ValueError(f"expected an N x 3 x H x W tensor; got shape {tuple(x.shape)}")
            x = x.contiguous(memory_format=torch.channels_last)
        for layer in self.layers:
            if isinstance(layer, _SameConv):
                x = layer(x)
            else:
                x = _pointwise(x, layer.weight, layer.bias)
            x = torch.clamp(x, 0.0, 6.0) if torch.is_grad_enabled() else x.clamp_(0.0, 6.0)
        return x

    def forward(self, x: torch.Tensor, heads: Iterable[str] | None = None) -> dict[str, torch.Tensor]:
        f = self.features(x)
        names = HEADS if heads is None else tuple(heads)
        unknown = [h for h in names if h not in self._bounds]
        if unknown:
            raise ValueError(f"unknown heads {unknown}; choose from {HEADS}")
        if len(names) == len(HEADS):
            y = _pointwise(f, self.heads.weight, self.heads.bias)
            out = {h: y[:, a:b] for h, (a, b) in self._bounds.items()}
        else:
            w, b = self.heads.weight, self.heads.bias
            idx = torch.cat([torch.arange(*self._bounds[h]) for h in names])
            y = _pointwise(f, w[idx], b[idx])
            out, start = {}, 0
            for h in names:
                n = HEAD_CHANNELS[h]
                out[h] = y[:, start:start + n]
                start += n
        if "part_offsets" in out:
            out["part_offsets"] = torch.maximum(
                torch.minimum(out["part_offsets"], self.part_offsets_max), self.part_offsets_min
            )
        return out

    # ------------------------------------------------------------------------------------
    # Weights from a TF.js graph

    @torch.no_grad()
    def load_tfjs_graph(self, graph: TfjsGraph) -> "BodyPixMobileNet":
        """Copy the weights of a parsed BodyPix graph into this module (in place).

        ``ValueError`` if the graph's layer structure (kinds, channels, strides, dilations) or
        head channels differ from this module's.
        """
        found = layer_specs_from_graph(graph)
        if list(found) != list(self.specs):
            diff = next(
                (f"{a} != {b}" for a, b in zip(found, self.specs) if a != b),
                f"{len(found)} layers != {len(self.specs)}",
            )
            raise ValueError(f"{graph.path}: layer structure does not match this module ({diff})")
        for spec, layer in zip(self.specs, self.layers):
            w = graph.weight(f"MobilenetV1/{spec.name}/{'depthwise_weights' if spec.kind == 'depthwise' else 'weights'}")
            b = graph.weight(f"MobilenetV1/{spec.name}/{'depthwise_bias' if spec.kind == 'depthwise' else 'Conv2D_bias'}")
            if spec.kind == "depthwise":
                t = torch.from_numpy(np.ascontiguousarray(w[:, :, :, 0].transpose(2, 0, 1)[:, None]))  # HWC1 -> C1HW
            else:
                t = torch.from_numpy(np.ascontiguousarray(w.transpose(3, 2, 0, 1)))  # HWIO -> OIHW
            _copy(layer.weight, t, f"{graph.path}: {spec.name} weights")
            _copy(layer.bias, torch.from_numpy(b.reshape(-1).copy()), f"{graph.path}: {spec.name} bias")
        ws, bs = [], []
        for head, node in zip(HEADS, _head_convs(graph)):
            w = graph.weight(node.inputs[1])
            b = graph.weight(_bias_of(graph, node))
            if w.shape[:2] != (1, 1) or w.shape[3] != HEAD_CHANNELS[head]:
                raise ValueError(
                    f"{graph.path}: head {head!r} ({node.inputs[1]}) has shape {w.shape}, expected "
                    f"(1, 1, C, {HEAD_CHANNELS[head]})"
                )
            ws.append(torch.from_numpy(np.ascontiguousarray(w.transpose(3, 2, 0, 1))))
            bs.append(torch.from_numpy(b.reshape(-1).copy()))
        _copy(self.heads.weight, torch.cat(ws), f"{graph.path}: head weights")
        _copy(self.heads.bias, torch.cat(bs), f"{graph.path}: head biases")
        lo, hi = _part_offset_clip(graph)
        self.part_offsets_min.fill_(lo)
        self.part_offsets_max.fill_(hi)
        return self


def _copy(dst: torch.Tensor, src: torch.Tensor, what: str) -> None:
    if tuple(dst.shape) != tuple(src.shape):
        raise ValueError(f"{what}: shape {tuple(src.shape)}, expected {tuple(dst.shape)}")
    dst.copy_(src)


def _only(nodes: list[GraphNode], op: str | tuple[str, ...], where: str, path: Path) -> GraphNode:
    ops = (op,) if isinstance(op, str) else op
    hits = [n for n in nodes if n.op in ops]
    if len(hits) != 1:
        raise ValueError(f"{path}: expected one {'/'.join(ops)} after {where}, found {[n.op for n in nodes]}")
    return hits[0]


def _bias_of(graph: TfjsGraph, conv: GraphNode) -> str:
    add = _only(graph.consumers(conv.name), "BiasAdd", conv.name, graph.path)
    return add.inputs[1]


def _attr_pair(node: GraphNode, key: str, default: int = 1) -> tuple[int, int]:
    v = node.attr.get(key)
    if not v:
        return (default, default)
    if len(v) != 4:
        raise ValueError(f"{node.name}: attribute {key} = {v}, expected 4 values")
    return (int(v[1]), int(v[2]))  # TF.js reads NHWC attributes as [v[1], v[2]]


def layer_specs_from_graph(graph: TfjsGraph) -> list[LayerSpec]:
    """Walk the trunk from the input placeholder: ``conv -> BiasAdd -> Relu6`` links, as :class:`LayerSpec`.

    The trunk ends at the first node feeding several convolutions (the heads). Layer names are
    the weight names' ``MobilenetV1/<name>/`` part. ``ValueError`` if the graph is not such a
    chain (not a BodyPix MobileNetV1 file).
    """
    path = graph.path
    inputs = graph.inputs
    if len(inputs) != 1:
        raise ValueError(f"{path}: expected one input placeholder, found {len(inputs)}")
    cur = inputs[0].name
    specs: list[LayerSpec] = []
    while True:
        consumers = graph.consumers(cur)
        convs = [n for n in consumers if n.op in ("Conv2D", "DepthwiseConv2dNative")]
        if len(convs) != 1 or len(consumers) != 1:
            break
        conv = convs[0]
        w = graph.weight(conv.inputs[1])
        if conv.attr.get("padding") != "SAME" or conv.attr.get("data_format", "NHWC") != "NHWC":
            raise ValueError(f"{path}: {conv.name}: padding {conv.attr.get('padding')!r}, expected SAME/NHWC")
        sh, sw = _attr_pair(conv, "strides")
        if sh != sw:
            raise ValueError(f"{path}: {conv.name}: unequal strides {(sh, sw)}")
        dil = _attr_pair(conv, "dilations")
        parts = conv.inputs[1].split("/")
        name = parts[1] if len(parts) >= 3 and parts[0] == "MobilenetV1" else conv.name
        if conv.op == "DepthwiseConv2dNative":
            if w.ndim != 4 or w.shape[:2] != (3, 3) or w.shape[3] != 1:
                raise ValueError(f"{path}: {conv.name}: depthwise filter shape {w.shape}")
            spec = LayerSpec(name, "depthwise", w.shape[2], w.shape[2], sh, dil)
        elif w.shape[:2] == (1, 1):
            if sh != 1 or dil != (1, 1):
                raise ValueError(f"{path}: {conv.name}: strided/dilated 1x1 convolution")
            spec = LayerSpec(name, "pointwise", w.shape[2], w.shape[3], 1, dil)
        elif w.shape[:2] == (3, 3):
            spec = LayerSpec(name, "conv", w.shape[2], w.shape[3], sh, dil)
        else:
            raise ValueError(f"{path}: {conv.name}: unsupported filter shape {w.shape}")
        add = _only(graph.consumers(conv.name), "BiasAdd", conv.name, path)
        act = _only(graph.consumers(add.name), "Relu6", add.name, path)
        specs.append(spec)
        cur = act.name
    if not specs:
        raise ValueError(f"{path}: no convolution chain from the input; not a BodyPix MobileNetV1 graph")
    return specs


def _head_convs(graph: TfjsGraph) -> list[GraphNode]:
    """The 1x1 convolution behind each graph output, in output order."""
    convs = []
    for out in graph.outputs:
        node = out
        for _ in range(4):
            if node.op == "Conv2D":
                break
            if not node.inputs:
                break
            node = graph.nodes[node.inputs[0]]
        if node.op != "Conv2D":
            raise ValueError(f"{graph.path}: output {out.name!r} does not come from a convolution")
        convs.append(node)
    if len(convs) != len(HEADS):
        raise ValueError(
            f"{graph.path}: {len(convs)} outputs, expected {len(HEADS)} (BodyPix MobileNetV1 heads)"
        )
    return convs


def _part_offset_clip(graph: TfjsGraph) -> tuple[float, float]:
    out = graph.outputs[HEADS.index("part_offsets")]
    lo, hi = 0.0, 1.0
    node = out
    for _ in range(3):
        if node.op == "Maximum":
            lo = float(graph.weight(node.inputs[1]).reshape(-1)[0])
        elif node.op == "Minimum":
            hi = float(graph.weight(node.inputs[1]).reshape(-1)[0])
        else:
            break
        node = graph.nodes[node.inputs[0]]
    return lo, hi


def load_bodypix_mobilenet(model_json: str | Path) -> BodyPixMobileNet:
    """Build a :class:`BodyPixMobileNet` from a BodyPix TF.js ``model-stride*.json`` (+ its shard).

    The output stride is the product of the trunk's strides (dilation keeps the resolution),
    checked against the file name's ``stride<N>`` when present. Returns the module in eval mode.

    Raises ``ValueError`` (naming the file) for files that are not BodyPix MobileNetV1 graphs.
    """
    graph = read_tfjs_graph(model_json)
    specs = layer_specs_from_graph(graph)
    stride = int(np.prod([s.stride for s in specs]))
    name = Path(model_json).name
    if "stride" in name:
        digits = "".join(ch for ch in name.split("stride", 1)[1] if ch.isdigit())
        if digits and int(digits) != stride:
            raise ValueError(f"{model_json}: file name says stride {digits}, graph strides multiply to {stride}")
    net = BodyPixMobileNet(specs, stride)
    net.load_tfjs_graph(graph)
    return net.eval()


class _SelectedHeads(nn.Module):
    def __init__(self, net: BodyPixMobileNet, heads: tuple[str, ...]) -> None:
        super().__init__()
        self.net = net
        self.head_names = heads

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.net(x, heads=self.head_names)
        return tuple(out[h] for h in self.head_names)


def export_onnx(
    net: BodyPixMobileNet,
    path: str | Path,
    heads: Sequence[str] = ("segments",),
    opset: int = 17,
    sample_hw: tuple[int, int] = (241, 321),
) -> Path:
    """Export ``net`` to ONNX: input ``image`` (1 x 3 x H x W, normalised, dynamic H/W), one output per head.

    Strided layers are exported with symmetric padding, which is exact at BodyPix's valid sizes
    (``(side - 1) % output_stride == 0``; :func:`pipeline.input_resolution` gives them) but not
    at arbitrary even sides. Outputs are raw logits/offsets named after the heads.
    """
    names = tuple(heads)
    unknown = [h for h in names if h not in HEAD_CHANNELS]
    if unknown:
        raise ValueError(f"unknown heads {unknown}; choose from {HEADS}")
    path = Path(path)
    net.set_symmetric_padding(True)
    try:
        model = _SelectedHeads(net, names).eval()
        x = torch.zeros(1, 3, *sample_hw)
        axes = {"image": {2: "height", 3: "width"}}
        axes.update({h: {2: "out_height", 3: "out_width"} for h in names})
        torch.onnx.export(
            model, (x,), str(path), opset_version=opset, input_names=["image"], output_names=list(names),
            dynamic_axes=axes, dynamo=False,
        )  # fmt: skip
    finally:
        net.set_symmetric_padding(False)
    return path
