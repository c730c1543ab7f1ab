"""Shared fixtures: the dev data set beside the project, and small model helpers."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
DATA_DIR = (REPO / ".." / "shared" / "data").resolve()


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """``../shared/data`` (the dev set). Fails loudly when it is missing: CI always has it."""
    if not (DATA_DIR / "index.csv").is_file():
        pytest.fail(f"dev data set not found at {DATA_DIR} (expected ../shared/data beside the repo)")
    return DATA_DIR


@pytest.fixture(scope="session")
def dev_rows(data_dir: Path) -> list[dict]:
    """Rows of ``index.csv``, each with ``image`` (RGB uint8) and ``mask`` (bool) loaded."""
    rows = []
    with open(data_dir / "index.csv", newline="") as f:
        for row in csv.DictReader(f):
            stem = row["stem"]
            img_path = next((data_dir / "images").glob(stem + ".*"))
            row["image"] = np.array(Image.open(img_path).convert("RGB"))
            row["mask"] = np.array(Image.open(data_dir / "masks" / f"{stem}.png")) > 127
            row["has_person"] = row["gt_type"] != "negative_no_person"
            rows.append(row)
    return rows


class CachedSegmenter:
    """Wraps a segmenter and remembers each picture's result, so A/B runs pay for the model once."""

    def __init__(self, inner):
        self.inner = inner
        self.name = inner.name
        self.cache: dict = {}

    def segment_person(self, image, internal_resolution=None, segmentation_threshold=0.7, flip_horizontal=False):
        key = (image.shape, hash(image[::5, ::5].tobytes()), internal_resolution, segmentation_threshold)
        if key not in self.cache:
            self.cache[key] = self.inner.segment_person(image, internal_resolution, segmentation_threshold)
        return self.cache[key]


@pytest.fixture(scope="session")
def cached_selfie() -> CachedSegmenter:
    """The real selfie segmenter behind a result cache (for tests comparing settings on the same data)."""
    import bgkit

    return CachedSegmenter(bgkit.load_segmenter("selfie", device="cpu"))


@pytest.fixture(scope="session")
def sample_path() -> Path:
    """The bundled public-domain sample photo (NASA astronaut, from scikit-image)."""
    return REPO / "bgkit" / "data" / "astronaut.jpg"



class NotebookRun:
    """A notebook executed headless: its cell outputs (nbformat nodes, in order)."""

    def __init__(self, outputs: list) -> None:
        self.outputs = outputs

    @property
    def stream_text(self) -> str:
        """Everything the cells printed."""
        return "".join(o.get("text", "") for o in self.outputs if o.output_type == "stream")

    @property
    def mimes(self) -> list[str]:
        """The MIME types of all rich outputs (one entry per output and type)."""
        return [m for o in self.outputs for m in o.get("data", {})]


def _run_notebook(path: Path, cwd: Path) -> NotebookRun:
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}).execute()
    outputs = [o for cell in nb.cells for o in cell.get("outputs", [])]
    for o in outputs:
        assert o.output_type != "error", "".join(o.get("traceback", [])) or f"{o.get('ename')}: {o.get('evalue')}"
    return NotebookRun(outputs)


@pytest.fixture
def run_notebook():
    """``run_notebook(path, cwd)``: execute a notebook in a fresh ``python3`` kernel working in ``cwd``;
    fails the test on any error output; returns a :class:`NotebookRun`."""
    return _run_notebook
