"""Every committed notebook: valid, outputs stripped, narrated, on the python3 kernel.

Running each notebook headless is tested beside its stage (test_notebook_still/live/quality.py).
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("*.ipynb"))


def test_the_three_stages_are_there():
    assert [p.name for p in NOTEBOOKS] == ["01_still_image.ipynb", "02_live_camera.ipynb", "03_quality.ipynb"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_notebook_is_clean_and_narrated(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(not c.outputs and c.execution_count is None for c in code), "strip the outputs"
    assert nb.cells[0].cell_type == "markdown"  # narrated: it starts by saying what it does
    assert sum(c.cell_type == "markdown" for c in nb.cells) >= len(code) // 2
    assert nb.metadata.kernelspec.name == "python3"
