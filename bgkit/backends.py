"""Inference backends: how a loaded model's network is run.

Every backend maps a normalised float32 N x 3 x h x w tensor to an N x 1 x h x w person
probability tensor (0..1) on the CPU or the model's device. Resizing and normalising happen once,
in torch, in :class:`bgkit.Segmenter`; only the network call differs:

* ``"eager"``: the plain PyTorch module, as torchvision runs it (the baseline).
* ``"torch"``: the same module in ``channels_last`` memory format under ``inference_mode``.
* ``"onnxruntime"``: the module exported once to ONNX (dynamic input size) and run by ONNX Runtime;
  the export is cached beside the weights file, under a fingerprint of the weights (see
  :func:`onnx_path_for`).
* ``"openvino"``: the same ONNX file compiled by OpenVINO for each input shape (f32 precision).
  The fastest measured on a 2-core x86 CPU: DeepLabV3 at 320x240 in 8.1 ms vs 9.9 ms (ONNX
  Runtime) and 29 ms (eager); the selfie model in 1.4 vs 2.7 ms.
* ``"auto"``: on the CPU, ``"openvino"``, else ``"onnxruntime"``, else ``"torch"``, by what is
  installed; on a GPU, ``"torch"``.

The fast backends run the module's ``fast_variant()`` where it has one (same function, a graph
that runs faster; see :class:`bgkit.models.torchvision_models.PersonProbability`).
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
import threading
import warnings
from collections import OrderedDict
from pathlib import Path
from typing import Callable

import numpy as np
import torch

BACKENDS = ("auto", "eager", "torch", "onnxruntime", "openvino")
ONNX_EXPORT_VERSION = 2  # bump when the export recipe changes, to invalidate cached files
ONNX_OPSET = 17

Runner = Callable[[torch.Tensor], torch.Tensor]


def _importable(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


def onnxruntime_available() -> bool:
    """True if the ``onnxruntime`` package can be imported."""
    return _importable("onnxruntime")


def openvino_available() -> bool:
    """True if the ``openvino`` package can be imported."""
    return _importable("openvino")


#: backends that need a package of the same name, and how to tell it is installed
_PACKAGES = {"onnxruntime": onnxruntime_available, "openvino": openvino_available}


def resolve_backend(backend: str, device: torch.device) -> str:
    """The concrete backend for ``backend`` on ``device`` (resolving ``"auto"``)."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}; got {backend!r}")
    if backend == "auto":
        if device.type == "cpu":
            for name in ("openvino", "onnxruntime"):
                if _PACKAGES[name]():
                    return name
        return "torch"
    if backend in _PACKAGES:
        if device.type != "cpu":
            raise ValueError(f"the {backend} backend runs on the CPU; got device {device}")
        if not _PACKAGES[backend]():
            raise ValueError(f"backend={backend!r} needs the {backend} package: pip install {backend}")
    return backend


class EagerRunner:
    """The module as it is (contiguous NCHW): the reference path."""

    name = "eager"

    def __init__(self, module: torch.nn.Module) -> None:
        self.module = module

    @torch.inference_mode()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.module(x)


class ChannelsLastRunner:
    """The module converted to channels_last (a copy: the eager module is left as it was)."""

    name = "torch"

    def __init__(self, module: torch.nn.Module, device: torch.device) -> None:
        import copy

        self.module = copy.deepcopy(module).to(memory_format=torch.channels_last).eval()
        self.device = device

    @torch.inference_mode()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.module(x.contiguous(memory_format=torch.channels_last)).contiguous()


def weights_fingerprint(module: torch.nn.Module) -> str:
    """A short hash of the module's parameters and buffers (names, shapes and bytes)."""
    h = hashlib.sha256()
    for name, t in module.state_dict().items():
        h.update(name.encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.detach().to("cpu").contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def _writable_dir(folder: Path) -> bool:
    """True if a file can be created in ``folder`` (tried, not guessed: root ignores permissions
    but not a read-only mount)."""
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".bgkit-write-test-"):
            return True
    except OSError:
        return False


def onnx_path_for(name: str, module: torch.nn.Module, beside: Path | None = None) -> Path:
    """Where the ONNX export of ``module`` (registered as ``name``) is cached.

    In order: ``$BGKIT_ONNX_CACHE_DIR`` if set; beside the weights file ``beside`` (as
    ``<weights file name>.<tag>.onnx``) if its folder is writable; else ``<bgkit cache>/onnx``.
    The tag carries a hash of the weights, the torch version and the export recipe's version, so
    other weights (or a new torch) get their own export.
    """
    from .assets import cache_dir

    tag = f"{name}-{weights_fingerprint(module)}-torch{torch.__version__.split('+')[0]}-v{ONNX_EXPORT_VERSION}"
    env = os.environ.get("BGKIT_ONNX_CACHE_DIR")
    if env:
        return Path(env).expanduser() / f"{tag}.onnx"
    if beside is not None and beside.parent.is_dir() and _writable_dir(beside.parent):
        return beside.parent / f"{beside.name}.{tag}.onnx"
    return cache_dir() / "onnx" / f"{tag}.onnx"


def export_onnx(module: torch.nn.Module, path: Path, example_size: tuple[int, int] = (256, 256)) -> Path:
    """Export ``module`` to ``path`` with dynamic batch, height and width (atomic write)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    x = torch.zeros(1, 3, *example_size)
    module = module.to("cpu").eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module, (x,), str(tmp), input_names=["image"], output_names=["person"],
            dynamic_axes={"image": {0: "n", 2: "h", 3: "w"}, "person": {0: "n", 2: "h", 3: "w"}},
            opset_version=ONNX_OPSET, dynamo=False,
        )
    os.replace(tmp, path)
    return path


class _PerShape:
    """Things built per input shape (sessions, compiled models), the last ``max_shapes`` kept."""

    def __init__(self, build: Callable[[tuple[int, ...]], object], max_shapes: int = 8) -> None:
        self.build = build
        self.max_shapes = max_shapes
        self.items: OrderedDict[tuple[int, ...], object] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, shape: tuple[int, ...]) -> object:
        with self.lock:
            item = self.items.get(shape)
            if item is None:
                item = self.items[shape] = self.build(shape)
                while len(self.items) > self.max_shapes:
                    self.items.popitem(last=False)
            self.items.move_to_end(shape)
            return item


def _as_numpy(x: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(x.detach().to("cpu", torch.float32).numpy())


class OnnxRuntimeRunner:
    """The module exported to ONNX and run by ONNX Runtime on the CPU.

    One export with dynamic batch, height and width; one session per input shape, built from that
    file with the free dimensions pinned (``add_free_dimension_override_by_name``). A pinned
    session plans its memory and folds its shape arithmetic once: about 7% faster per frame
    (DeepLabV3 at 320x240: 9.8 vs 10.6 ms), and a new shape costs about 50 ms.
    """

    name = "onnxruntime"

    def __init__(self, onnx_file: Path, threads: int | None = None, max_shapes: int = 8) -> None:
        self.onnx_file = Path(onnx_file)
        self.threads = threads or torch.get_num_threads()
        self.sessions = _PerShape(self._session, max_shapes)
        self.sessions.get((1, 3, 256, 256))  # a broken file fails at load time, not at the first frame

    def _session(self, shape: tuple[int, ...]):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.intra_op_num_threads = self.threads
        opts.inter_op_num_threads = 1
        # Don't busy-wait between calls: compositing and the camera need the cores too.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        for dim, size in zip(("n", "h", "w"), (shape[0], shape[2], shape[3])):
            opts.add_free_dimension_override_by_name(dim, int(size))
        return ort.InferenceSession(str(self.onnx_file), opts, providers=["CPUExecutionProvider"])

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        arr = _as_numpy(x)
        return torch.from_numpy(self.sessions.get(arr.shape).run(None, {"image": arr})[0])


class OpenVinoRunner:
    """The ONNX export compiled by OpenVINO for the CPU, one compiled model per input shape.

    Static shapes let OpenVINO pick its kernels and memory layout once (about 0.2 s per new
    shape). ``INFERENCE_PRECISION_HINT=f32`` keeps full precision: on CPUs with bf16 units
    OpenVINO would otherwise compute in bf16 and the masks would drift from the eager ones.
    An infer request is not thread-safe, so calls are serialised.
    """

    name = "openvino"

    def __init__(self, onnx_file: Path, threads: int | None = None, max_shapes: int = 8) -> None:
        import openvino as ov

        self.onnx_file = Path(onnx_file)
        self.threads = threads or torch.get_num_threads()
        self._core = ov.Core()
        self._model = self._core.read_model(str(self.onnx_file))
        self.config = {
            "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_PRECISION_HINT": "f32",
            "INFERENCE_NUM_THREADS": self.threads,
        }
        self.requests = _PerShape(self._request, max_shapes)
        self._lock = threading.Lock()
        self.requests.get((1, 3, 256, 256))  # fail at load time, not at the first frame

    def _request(self, shape: tuple[int, ...]):
        model = self._model.clone()
        model.reshape({model.inputs[0]: list(shape)})
        return self._core.compile_model(model, "CPU", self.config).create_infer_request()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        arr = _as_numpy(x)
        request = self.requests.get(arr.shape)
        with self._lock:
            request.infer({0: arr})
            out = request.get_output_tensor(0).data.copy()  # the request's buffer is reused
        return torch.from_numpy(out)


def fast_variant(module: torch.nn.Module) -> torch.nn.Module:
    """The module's ``fast_variant()`` (same function, faster graph) if it has one, else itself."""
    make = getattr(module, "fast_variant", None)
    return make() if callable(make) else module


def make_runner(
    name: str, module: torch.nn.Module, device: torch.device, backend: str, beside: Path | None = None
) -> Runner:
    """Build the runner for ``backend`` (already resolved); ONNX export failures fall back to torch.

    The eager runner runs ``module`` as it is (the baseline); the fast ones run its fast variant.
    ``beside``: the weights file, if any; the ONNX export is cached next to it (see
    :func:`onnx_path_for`).
    """
    if backend == "eager":
        return EagerRunner(module)
    module = fast_variant(module)
    if backend == "torch":
        return ChannelsLastRunner(module, device)
    path = onnx_path_for(name, module, beside)
    runner = OpenVinoRunner if backend == "openvino" else OnnxRuntimeRunner
    try:
        if not path.is_file():
            export_onnx(module, path)
        return runner(path)
    except Exception as exc:  # noqa: BLE001 - any exporter/runtime failure: keep working, say so
        print(f"bgkit: {backend} backend unavailable for {name} ({exc}); using torch", file=sys.stderr)
        return ChannelsLastRunner(module, device)
