"""``notebooks/02_live_camera.ipynb`` runs headless (nbclient, no browser) and is committed clean."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
NOTEBOOK = REPO / "notebooks" / "02_live_camera.ipynb"


@pytest.mark.slow
def test_notebook_runs_headless(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, data_dir: Path, run_notebook) -> None:
    monkeypatch.setenv("BGKIT_OUT_DIR", str(tmp_path))
    monkeypatch.setenv("BGKIT_LIVE_FRAMES", "4")
    monkeypatch.setenv("BGKIT_LIVE_MODEL", "selfie")
    text = []
    images = 0
    for out in run_notebook(NOTEBOOK, NOTEBOOK.parent).outputs:
        if out.output_type == "stream":
            text.append(out.text)
        elif out.output_type in ("execute_result", "display_data"):
            text.append(out.data.get("text/plain", ""))
            images += "image/png" in out.data
    text = "\n".join(text)
    # the widget is built (its repr is the box with the controls) and says there was no camera
    assert "LiveBackground" in text
    assert "No live camera frames (camera state: 'not shown')" in text
    # the same loop on the clip's frames, every internal resolution
    assert "4 frames of talking_head_tfjs_facemesh.mp4" in text
    rows = re.findall(r"^\s*(low|medium|high|full):\s+[\d.]+ fps, round trip p50\s+[\d.]+ ms", text, re.M)
    assert rows == ["low", "medium", "high", "full"], text
    assert images >= 2  # the effects row and the snapshot
    out_dir = tmp_path / "02_live_camera"
    assert (out_dir / "effects.png").is_file() and (out_dir / "snapshot.png").is_file()
    assert "'frames_processed'" in text and "'frames_failed': 0" in text
