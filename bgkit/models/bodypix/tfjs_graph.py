"""Reader for TensorFlow.js *graph models* (``model.json`` + binary weight shards).

A graph model is a JSON file with

* ``format``: ``"graph-model"``;
* ``modelTopology.node``: the frozen TensorFlow GraphDef as JSON, one ``{name, op, input, attr}``
  per node, in file order;
* ``weightsManifest``: a list of groups ``{paths: [shard files], weights: [spec, ...]}``. The
  shards of all groups, concatenated in manifest order, hold the values of every spec in order.
  A spec is ``{name, shape, dtype}`` plus, for quantised weights,
  ``quantization: {dtype, scale, min}`` (``dtype`` ``"uint8"`` or ``"uint16"``; real value =
  ``q * scale + min``, computed in float64 and stored as float32 exactly as TF.js
  ``io.decodeWeights`` does) or ``quantization: {dtype: "float16"}``.

:func:`read_tfjs_graph` returns a :class:`TfjsGraph`: the nodes (with attributes decoded to
Python values) and every weight as a numpy array in TensorFlow layout (e.g. ``HWIO`` for
``Conv2D`` filters, ``HWC1`` for depthwise filters). It raises ``ValueError`` for files that are
not TF.js graph models, for unsupported dtypes and for shards whose size does not match the
manifest.

The graph's outputs follow TF.js ``GraphModel`` (no signature): every node that no other node
consumes, in file order (:attr:`TfjsGraph.outputs`).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["GraphNode", "TfjsGraph", "read_tfjs_graph", "dequantize"]

_DTYPES: dict[str, np.dtype] = {
    "float32": np.dtype("<f4"),
    "int32": np.dtype("<i4"),
    "bool": np.dtype("u1"),
}
_QDTYPES: dict[str, np.dtype] = {
    "uint8": np.dtype("u1"),
    "uint16": np.dtype("<u2"),
    "float16": np.dtype("<f2"),
}


@dataclass(frozen=True)
class GraphNode:
    """One node of the GraphDef.

    ``inputs`` are the producing nodes' names (``"name:k"`` output suffixes and ``^control``
    markers stripped); ``attr`` holds decoded attribute values: ``list(i)`` -> ``list[int]``,
    ``s`` -> ``str``, ``i`` -> ``int``, ``f`` -> ``float``, ``b`` -> ``bool``, ``type`` -> ``str``
    (e.g. ``"DT_FLOAT"``), ``shape`` -> ``list[int]`` (-1 = unknown); others stay raw.
    """

    name: str
    op: str
    inputs: tuple[str, ...]
    attr: dict[str, Any]


@dataclass
class TfjsGraph:
    """A parsed TF.js graph model: nodes in file order and dequantised weights by node name."""

    path: Path
    nodes: dict[str, GraphNode]
    weights: dict[str, np.ndarray]
    quantization: dict[str, dict[str, Any]] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def inputs(self) -> list[GraphNode]:
        """``Placeholder`` nodes, in file order."""
        return [n for n in self.nodes.values() if n.op == "Placeholder"]

    @property
    def outputs(self) -> list[GraphNode]:
        """Nodes that no other node consumes, in file order (TF.js ``GraphModel.outputs``)."""
        used = {i for n in self.nodes.values() for i in n.inputs}
        return [n for n in self.nodes.values() if n.name not in used and n.op != "Const"]

    def consumers(self, name: str) -> list[GraphNode]:
        """Nodes that take ``name`` as an input, in file order."""
        return [n for n in self.nodes.values() if name in n.inputs]

    def weight(self, name: str) -> np.ndarray:
        """The value of ``Const`` node ``name``; ``ValueError`` naming the file if absent."""
        try:
            return self.weights[name]
        except KeyError:
            raise ValueError(f"{self.path}: no weight named {name!r} in the manifest") from None


def _decode_attr(value: dict[str, Any]) -> Any:
    if "list" in value:
        lst = value["list"]
        if "i" in lst:
            return [int(v) for v in lst["i"]]
        if "f" in lst:
            return [float(v) for v in lst["f"]]
        if "s" in lst:
            return [base64.b64decode(v).decode("latin-1") for v in lst["s"]]
        return []
    if "s" in value:
        return base64.b64decode(value["s"]).decode("latin-1")
    if "i" in value:
        return int(value["i"])
    if "f" in value:
        return float(value["f"])
    if "b" in value:
        return bool(value["b"])
    if "type" in value:
        return value["type"]
    if "shape" in value:
        return [int(d.get("size", -1)) for d in value["shape"].get("dim", [])]
    return value


def _strip_input(name: str) -> str:
    name = name.lstrip("^")
    base, _, idx = name.rpartition(":")
    return base if base and idx.isdigit() else name


def dequantize(raw: bytes, spec: dict[str, Any], path: Path | str = "<manifest>") -> np.ndarray:
    """Decode one weight's bytes as TF.js ``io.decodeWeights`` does.

    ``raw`` must be exactly the spec's byte length. uint8/uint16 quantised float32 weights
    become ``float32(q * scale + min)`` with the product and sum in float64; float16 ones are
    widened to float32; quantised int32 weights are rounded half up (JS ``Math.round``).
    """
    shape = [int(s) for s in spec["shape"]]
    dtype = spec.get("dtype", "float32")
    q = spec.get("quantization")
    if q is None:
        if dtype not in _DTYPES:
            raise ValueError(f"{path}: weight {spec['name']!r} has unsupported dtype {dtype!r}")
        return np.frombuffer(raw, _DTYPES[dtype]).reshape(shape).copy()
    qd = q.get("dtype")
    if qd not in _QDTYPES:
        raise ValueError(
            f"{path}: weight {spec['name']!r} has unknown quantization dtype {qd!r} "
            "(supported: uint8, uint16, float16)"
        )
    values = np.frombuffer(raw, _QDTYPES[qd]).reshape(shape)
    if qd == "float16":
        if dtype != "float32":
            raise ValueError(f"{path}: float16 quantization of {dtype} weight {spec['name']!r}")
        return values.astype(np.float32)
    if "scale" not in q or "min" not in q:
        raise ValueError(f"{path}: weight {spec['name']!r} is {qd}-quantized but lacks 'scale'/'min'")
    real = values.astype(np.float64) * float(q["scale"]) + float(q["min"])
    if dtype == "float32":
        return real.astype(np.float32)
    if dtype == "int32":
        return np.floor(real + 0.5).astype(np.int32)
    raise ValueError(f"{path}: quantized weight {spec['name']!r} has unsupported dtype {dtype!r}")


def _spec_nbytes(spec: dict[str, Any]) -> int:
    size = int(np.prod([int(s) for s in spec["shape"]], dtype=np.int64))
    q = spec.get("quantization")
    if q is not None:
        dt = _QDTYPES.get(q.get("dtype", ""))
    else:
        dt = _DTYPES.get(spec.get("dtype", ""))
    if dt is None:
        return -1
    return size * dt.itemsize


def read_tfjs_graph(model_json: str | Path, weights_dir: str | Path | None = None) -> TfjsGraph:
    """Parse a TF.js graph model and load all its weights.

    Parameters
    ----------
    model_json : path
        The ``model.json`` (e.g. ``.../mobilenet/quant2/075/model-stride16.json``).
    weights_dir : path, optional
        Folder holding the shard files; defaults to the JSON's folder.

    Raises
    ------
    FileNotFoundError
        Missing JSON or shard.
    ValueError
        Not JSON, not a graph model (no ``modelTopology.node`` / ``weightsManifest``), unknown
        dtype or quantisation, or shard bytes that do not match the manifest.
    """
    path = Path(model_json)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not a TF.js model.json (not UTF-8 text)") from e
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not a TF.js model.json (invalid JSON: {e})") from e
    if not isinstance(doc, dict):
        raise ValueError(f"{path}: not a TF.js model.json (top level is not an object)")
    topo = doc.get("modelTopology")
    manifest = doc.get("weightsManifest")
    if doc.get("format", "graph-model") != "graph-model":
        raise ValueError(f"{path}: format {doc.get('format')!r} is not a TF.js graph model")
    if not isinstance(topo, dict) or not isinstance(topo.get("node"), list) or not isinstance(manifest, list):
        raise ValueError(
            f"{path}: not a TF.js graph model (expected modelTopology.node and weightsManifest; "
            "a Keras layers-model or another format?)"
        )
    nodes: dict[str, GraphNode] = {}
    for raw_node in topo["node"]:
        try:
            name, op = str(raw_node["name"]), str(raw_node["op"])
        except (KeyError, TypeError):
            raise ValueError(f"{path}: malformed node {str(raw_node)[:80]!r}") from None
        attr = {k: _decode_attr(v) for k, v in raw_node.get("attr", {}).items() if k != "value"}
        inputs = tuple(_strip_input(i) for i in raw_node.get("input", []) if not str(i).startswith("^"))
        nodes[name] = GraphNode(name, op, inputs, attr)

    wdir = Path(weights_dir) if weights_dir is not None else path.parent
    weights: dict[str, np.ndarray] = {}
    quant: dict[str, dict[str, Any]] = {}
    for group in manifest:
        specs = group.get("weights", [])
        data = b"".join((wdir / p).read_bytes() for p in group.get("paths", []))
        offset = 0
        for spec in specs:
            n = _spec_nbytes(spec)
            if n < 0:
                raise ValueError(
                    f"{path}: weight {spec.get('name')!r} has unsupported dtype "
                    f"{spec.get('dtype')!r} / quantization {spec.get('quantization')!r}"
                )
            if offset + n > len(data):
                raise ValueError(
                    f"{path}: shards {group.get('paths')} hold {len(data)} bytes, but weight "
                    f"{spec['name']!r} needs bytes {offset}..{offset + n}"
                )
            weights[spec["name"]] = dequantize(data[offset:offset + n], spec, path)
            if "quantization" in spec:
                quant[spec["name"]] = dict(spec["quantization"])
            offset += n
        if offset != len(data):
            raise ValueError(
                f"{path}: shards {group.get('paths')} hold {len(data)} bytes; the manifest describes {offset}"
            )
    meta = {k: doc[k] for k in ("format", "generatedBy", "convertedBy") if k in doc}
    return TfjsGraph(path=path, nodes=nodes, weights=weights, quantization=quant, meta=meta)
