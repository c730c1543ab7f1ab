"""Shared fixtures: the dev data set beside the project, and small model helpers."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import settings
from PIL import Image

# Property tests draw new examples on every run while developing; in CI (CI=true) the same ones,
# so a run of the same commit gives the same verdict (``HYPOTHESIS_PROFILE=dev`` draws anew there too).
settings.register_profile("ci", derandomize=True, print_blob=True)
settings.register_profile("dev")
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))

REPO = Path(__file__).resolve().parents[1]
DATA_DIR = (REPO / ".." / "shared" / "data").resolve()
#: The offline copies of BodyPix's published files (the same layout as Google's bucket).
BODYPIX_MIRROR = (REPO / ".." / "shared" / "models" / "bodypix").resolve()


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """``../shared/data`` (the dev set). Tests that need it say so and are skipped where it is
    absent (CI always has it); every other test runs without it, on the bundled sample."""
    if not (DATA_DIR / "index.csv").is_file():
        pytest.skip(f"needs the dev data set at {DATA_DIR} (../shared/data beside the repository), which is absent")
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


@pytest.fixture(scope="session")
def selfie():
    """The real selfie segmenter (MediaPipe's weights, offline from the mediapipe wheel), on the CPU."""
    import bgkit

    return bgkit.load_segmenter("selfie", device="cpu")


@pytest.fixture(scope="session")
def bodypix_mirror() -> Path:
    """``../shared/models/bodypix`` (BodyPix's files, laid out as on Google's bucket), skipped where absent."""
    if not (BODYPIX_MIRROR / "mobilenet").is_dir():
        pytest.skip(f"needs the BodyPix files at {BODYPIX_MIRROR}, which are absent")
    return BODYPIX_MIRROR


@pytest.fixture(scope="session")
def bodypix(bodypix_mirror: Path):
    """BodyPix's default model (MobileNetV1 0.75, stride 16, quant2) from the offline copy, on the CPU."""
    import bgkit

    manifest = bodypix_mirror / "mobilenet" / "quant2" / "075" / "model-stride16.json"
    return bgkit.load_segmenter("bodypix", weights=manifest, device="cpu")


@pytest.fixture(scope="session")
def sample_path() -> Path:
    """The bundled public-domain sample photo (NASA astronaut, from scikit-image)."""
    return REPO / "bgkit" / "io" / "data" / "astronaut.jpg"



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


def scripted_segmenter(maps, name: str = "scripted", threshold: float = 0.7):
    """A :class:`bgkit.Segmenter` whose model answers with the next probability map of ``maps``
    (a list), or with ``maps(call_index, height, width)`` (a function), whatever the frame: a
    deterministic model for testing what the pipeline does around it."""
    import torch

    from bgkit.models.registry import ModelSpec
    from bgkit.models.segmenter import ModelOutput, Segmenter

    class Scripted(Segmenter):
        def __init__(self) -> None:
            spec = ModelSpec(name=name, title=f"{name} (test)", native_size=None, default_internal_resolution=1.0,
                             mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0), size_multiple=1, weights_source="test",
                             licence="none", build=lambda w, d: torch.nn.Identity(), is_available=lambda: True,
                             default_threshold=threshold)
            super().__init__(spec, torch.nn.Identity(), torch.device("cpu"), backend="eager")
            self.maps = maps if callable(maps) else [np.asarray(m, np.float32) for m in maps]
            self.calls = 0

        def infer(self, frame01, internal_resolution=None, state=None):
            h, w = frame01.shape[-2:]
            m = self.maps(self.calls, h, w) if callable(self.maps) else self.maps[self.calls % len(self.maps)]
            p = torch.from_numpy(np.asarray(m, np.float32))
            self.calls += 1
            return ModelOutput(tuple(p.shape), low_probability=p.clone()[None, None], low_frame=frame01,
                               frame_size=(int(h), int(w)), timings={"model": 0.0})

    return Scripted()
