"""notebooks/03_quality.ipynb runs headless (nbclient) on a short stretch of the dance clip."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "notebooks" / "03_quality.ipynb"


@pytest.mark.slow
def test_notebook_runs_headless_and_writes_the_figures(tmp_path, monkeypatch, data_dir):
    out = tmp_path / "out"
    monkeypatch.setenv("BGKIT_OUT_DIR", str(out))
    monkeypatch.setenv("BGKIT_DATA_DIR", str(data_dir))
    monkeypatch.setenv("BGKIT_QUALITY_FRAMES", "16")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}})
    client.execute()

    texts, mimes = [], []
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            assert o.output_type != "error", "".join(o.get("traceback", []))
            texts.append(o.get("text", "") if o.output_type == "stream" else "")
            mimes.extend(o.get("data", {}).keys())
    text = "".join(texts)
    for label in ("raw masks", "plain EMA 0.5", "hysteresis only", "default smoothing", "photos, refined",
                  "default smoothing + refinement"):
        assert label in text
    assert "flicker %" in text and "edge refinement of a 854x480 frame" in text
    assert mimes.count("image/png") >= 5
    folder = out / "03_quality"
    names = {"flicker.png", "refinement.png", "refinement_scores.png", "models.png", "video_settings.png"}
    assert names <= {p.name for p in folder.glob("*.png")}
    for name in names:
        with Image.open(folder / name) as im:
            im.load()
            assert im.width > 300 and im.height > 200
