"""A minimal reader for TFLite flatbuffers: tensors, constants and operators as plain Python data.

This is not an interpreter. It turns a ``.tflite`` file into a :class:`TFLiteGraph` (a list of
:class:`TFLiteOp` in execution order plus a table of :class:`TFLiteTensor`) so that a PyTorch port
can copy weights out of it and check that the graph has the structure it expects.

Conventions kept from TFLite (nothing is transposed here):

* activations are NHWC;
* ``CONV_2D`` weights are OHWI, ``DEPTHWISE_CONV_2D`` weights are 1HW(C*multiplier),
  ``TRANSPOSE_CONV`` / MediaPipe's ``Convolution2DTransposeBias`` weights are OHWI;
* ``padding`` is ``"SAME"`` or ``"VALID"``; ``fused_activation_function`` is a name such as
  ``"NONE"``, ``"RELU"`` or ``"RELU6"``.

Constant tensors stored as float16 and expanded at run time by a ``DEQUANTIZE`` op are folded: the
``DEQUANTIZE`` op is dropped (by default) and its output tensor carries the float32 value, so
consumers see an ordinary float32 constant.
"""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["TFLiteTensor", "TFLiteOp", "TFLiteGraph", "read_tflite"]


def _enum_names(enum_cls: type) -> dict[int, str]:
    return {v: k for k, v in vars(enum_cls).items() if not k.startswith("_") and isinstance(v, int)}


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


_NUMPY_DTYPES = {
    "FLOAT32": np.float32,
    "FLOAT16": np.float16,
    "FLOAT64": np.float64,
    "INT8": np.int8,
    "UINT8": np.uint8,
    "INT16": np.int16,
    "UINT16": np.uint16,
    "INT32": np.int32,
    "UINT32": np.uint32,
    "INT64": np.int64,
    "UINT64": np.uint64,
    "BOOL": np.bool_,
}


@dataclass
class TFLiteTensor:
    """One tensor of the graph.

    Attributes:
        index: position in the subgraph's tensor table (what op inputs/outputs refer to).
        name: the tensor's name in the file.
        shape: static shape (NHWC for activations).
        dtype: TFLite type name, e.g. ``"FLOAT32"``, ``"FLOAT16"``, ``"INT32"``.
        data: the constant value as numpy (shape ``shape``), or None for a run-time tensor.
            float16 constants folded through ``DEQUANTIZE`` are float32 here.
    """

    index: int
    name: str
    shape: tuple[int, ...]
    dtype: str
    data: np.ndarray | None = None

    @property
    def is_constant(self) -> bool:
        return self.data is not None


@dataclass
class TFLiteOp:
    """One operator.

    Attributes:
        index: position in the file's operator list.
        opcode: builtin name (``"CONV_2D"``) or, for custom ops, the custom code
            (``"Convolution2DTransposeBias"``).
        inputs, outputs: tensor indices (-1 = optional input left out).
        options: builtin options as a dict with snake_case keys (``stride_w``, ``padding``,
            ``fused_activation_function``...); enum values are given as their names.
        custom_options: raw custom option bytes (custom ops only), else None.
    """

    index: int
    opcode: str
    inputs: list[int]
    outputs: list[int]
    options: dict[str, Any] = field(default_factory=dict)
    custom_options: bytes | None = None


@dataclass
class TFLiteGraph:
    """The first subgraph of a ``.tflite`` model."""

    tensors: list[TFLiteTensor]
    ops: list[TFLiteOp]
    inputs: list[int]
    outputs: list[int]
    description: str = ""

    def tensor(self, index: int) -> TFLiteTensor:
        return self.tensors[index]

    def const(self, index: int) -> np.ndarray:
        """The constant value of tensor ``index``; ValueError if it is computed at run time."""
        data = self.tensors[index].data
        if data is None:
            raise ValueError(f"tensor {index} ({self.tensors[index].name!r}) is not a constant")
        return data

    def producer(self, index: int) -> TFLiteOp | None:
        """The op that writes tensor ``index`` (None for graph inputs and constants)."""
        for op in self.ops:
            if index in op.outputs:
                return op
        return None

    def consumers(self, index: int) -> list[TFLiteOp]:
        """The ops that read tensor ``index``."""
        return [op for op in self.ops if index in op.inputs]

    def op_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for op in self.ops:
            counts[op.opcode] = counts.get(op.opcode, 0) + 1
        return counts


def _read_options(op: Any, tflite: Any) -> dict[str, Any]:
    opt_type = op.BuiltinOptionsType()
    if opt_type == 0:
        return {}
    type_name = _enum_names(tflite.BuiltinOptions)[opt_type]
    cls = getattr(tflite, type_name, None)
    table = op.BuiltinOptions()
    if cls is None or table is None:
        return {}
    obj = cls()
    obj.Init(table.Bytes, table.Pos)
    padding_names = _enum_names(tflite.Padding)
    act_names = _enum_names(tflite.ActivationFunctionType)
    out: dict[str, Any] = {}
    for attr, fn in inspect.getmembers(cls, inspect.isfunction):
        if attr.startswith("_") or attr in ("Init",) or attr.startswith("GetRootAs"):
            continue
        if attr.endswith(("AsNumpy", "IsNone", "Length", "BufferHasIdentifier")):
            continue
        params = list(inspect.signature(fn).parameters)
        if params != ["self"]:
            continue
        value = getattr(obj, attr)()
        key = _snake(attr)
        if key == "padding":
            value = padding_names.get(value, value)
        elif key.endswith("activation_function"):
            value = act_names.get(value, value)
        out[key] = value
    return out


def _buffer_array(
    model: Any, file_bytes: bytes, tensor: Any, dtype_name: str, shape: tuple[int, ...]
) -> np.ndarray | None:
    buf_index = tensor.Buffer()
    if buf_index <= 0 or buf_index >= model.BuffersLength():
        return None
    buf = model.Buffers(buf_index)
    raw: bytes | None = None
    if buf.DataLength() > 0:
        raw = buf.DataAsNumpy().tobytes()
    elif hasattr(buf, "Offset") and buf.Offset() > 1:  # >2 GB models keep buffers after the flatbuffer
        raw = bytes(file_bytes[buf.Offset() : buf.Offset() + buf.Size()])
    if raw is None:
        return None
    np_dtype = _NUMPY_DTYPES.get(dtype_name)
    if np_dtype is None:
        raise NotImplementedError(f"constant tensors of type {dtype_name} are not supported")
    arr = np.frombuffer(raw, dtype=np.dtype(np_dtype).newbyteorder("<")).astype(np_dtype)
    return arr.reshape(shape) if shape else arr.reshape(())


def read_tflite(path_or_bytes: str | Path | bytes, *, fold_dequantize: bool = True) -> TFLiteGraph:
    """Parse a ``.tflite`` flatbuffer (its first subgraph) into a :class:`TFLiteGraph`.

    Args:
        path_or_bytes: file path or the file's bytes.
        fold_dequantize: replace ``DEQUANTIZE`` ops whose input is a constant by a float32
            constant on their output tensor (and drop the op).
    """
    import tflite  # the flatbuffer schema bindings; imported lazily

    data = bytes(path_or_bytes) if isinstance(path_or_bytes, (bytes, bytearray)) else Path(path_or_bytes).read_bytes()
    model = tflite.Model.GetRootAsModel(data, 0)
    if model.SubgraphsLength() < 1:
        raise ValueError("the .tflite file has no subgraph")
    graph = model.Subgraphs(0)
    type_names = _enum_names(tflite.TensorType)
    builtin_names = _enum_names(tflite.BuiltinOperator)

    tensors: list[TFLiteTensor] = []
    for i in range(graph.TensorsLength()):
        t = graph.Tensors(i)
        shape = tuple(int(s) for s in t.ShapeAsNumpy()) if t.ShapeLength() else ()
        dtype_name = type_names.get(t.Type(), str(t.Type()))
        name = t.Name().decode("utf-8", "replace") if t.Name() is not None else ""
        tensors.append(TFLiteTensor(i, name, shape, dtype_name, _buffer_array(model, data, t, dtype_name, shape)))

    ops: list[TFLiteOp] = []
    for i in range(graph.OperatorsLength()):
        op = graph.Operators(i)
        code = model.OperatorCodes(op.OpcodeIndex())
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        opcode = builtin_names.get(builtin, str(builtin))
        custom = None
        if opcode == "CUSTOM":
            opcode = code.CustomCode().decode("utf-8")
            custom = op.CustomOptionsAsNumpy().tobytes() if op.CustomOptionsLength() else b""
        ops.append(
            TFLiteOp(
                index=i,
                opcode=opcode,
                inputs=[int(x) for x in op.InputsAsNumpy()] if op.InputsLength() else [],
                outputs=[int(x) for x in op.OutputsAsNumpy()] if op.OutputsLength() else [],
                options=_read_options(op, tflite),
                custom_options=custom,
            )
        )

    if fold_dequantize:
        kept = []
        for op in ops:
            if op.opcode == "DEQUANTIZE" and tensors[op.inputs[0]].is_constant:
                src = tensors[op.inputs[0]].data
                assert src is not None
                if tensors[op.inputs[0]].dtype != "FLOAT16":
                    raise NotImplementedError(
                        f"DEQUANTIZE of {tensors[op.inputs[0]].dtype} constants is not supported"
                    )
                tensors[op.outputs[0]].data = src.astype(np.float32)
            else:
                kept.append(op)
        ops = kept

    description = model.Description().decode("utf-8", "replace") if model.Description() else ""
    return TFLiteGraph(
        tensors=tensors,
        ops=ops,
        inputs=[int(x) for x in graph.InputsAsNumpy()],
        outputs=[int(x) for x in graph.OutputsAsNumpy()],
        description=description,
    )
