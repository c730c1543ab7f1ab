"""The still-photo notebook in a real JupyterLab, driven like a person would in headless Chromium.

Opens ``notebooks/01_still_image.ipynb``, runs all cells (Run menu), finds the StillExplorer, reads
the preview picture's pixels, drags the opacity slider with the mouse, nudges it with the
keyboard, picks another effect in the dropdown, clicks Save, and checks that the picture on the
page changed the way it should. Screenshots go to ``test-artifacts/``.
"""

from __future__ import annotations

import base64
import io
import re
import time

import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.browser

NOTEBOOK = "notebooks/01_still_image.ipynb"

# Decode what the <img> shows (its own pixels, at the PNG's size) through a canvas.
_IMG_PIXELS_JS = """(img) => {
    const c = document.createElement('canvas');
    c.width = img.naturalWidth; c.height = img.naturalHeight;
    c.getContext('2d').drawImage(img, 0, 0);
    return c.toDataURL('image/png');
}"""


def preview_pixels(img) -> np.ndarray:
    """The preview's pixels as an (H, W, 4) uint8 RGBA array."""
    img.page.wait_for_function("(el) => el.complete && el.naturalWidth > 0", arg=img.element_handle())
    url = img.evaluate(_IMG_PIXELS_JS)
    data = base64.b64decode(url.split(",", 1)[1])
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGBA"))


def wait_preview_settles(img, old_src: str, timeout: float = 60.0, quiet: float = 1.5) -> str:
    """Wait until the preview's src differs from ``old_src`` and then stays the same for ``quiet`` s."""
    deadline = time.monotonic() + timeout
    src, since = old_src, time.monotonic()
    while time.monotonic() < deadline:
        now_src = img.get_attribute("src")
        if now_src != src:
            src, since = now_src, time.monotonic()
        elif src != old_src and time.monotonic() - since >= quiet:
            return src
        time.sleep(0.1)
    raise TimeoutError(f"the preview did not change (or did not settle) within {timeout:.0f} s")


def test_still_notebook_runs_and_the_explorer_reacts(lab_page, jupyter_lab):
    lab = lab_page
    page = lab.page
    lab.open_notebook(NOTEBOOK)
    lab.hide_left_sidebar()
    lab.run_all_cells()
    lab.wait_all_cells_ran(timeout=300)
    assert lab.errors() == []

    explorer = page.locator(".bgkit-still").first
    explorer.scroll_into_view_if_needed()
    img = explorer.locator("img.bgkit-preview")
    status = explorer.locator(".bgkit-status")
    assert re.search(r"segmentation \d+ ms.* model input \d+x\d+ px", status.inner_text())
    lab.screenshot("still-explorer-initial.png", explorer)
    # every control rendered (a widget view that fails shows this text in its place)
    assert explorer.get_by_text("Click to show javascript error.").count() == 0
    lab.screenshot("still-notebook-page.png")

    # --- opacity: drag the slider handle to the left with the mouse, then one arrow key -------
    before = preview_pixels(img)
    assert before.shape[2] == 4 and (before[..., 3] == 255).all()  # the "mask" effect is opaque RGB
    opacity = explorer.locator(".bgkit-opacity")
    readout = opacity.locator(".widget-readout")
    assert readout.inner_text().strip() == "0.70"
    handle = opacity.locator(".noUi-handle")
    track = opacity.locator(".noUi-target")
    hb, tb = handle.bounding_box(), track.bounding_box()
    src = img.get_attribute("src")
    page.mouse.move(hb["x"] + hb["width"] / 2, hb["y"] + hb["height"] / 2)
    page.mouse.down()
    page.mouse.move(tb["x"] + 0.25 * tb["width"], hb["y"] + hb["height"] / 2, steps=8)
    page.mouse.up()
    handle.focus()
    page.keyboard.press("ArrowLeft")
    src = wait_preview_settles(img, src)
    value = float(readout.inner_text())
    assert 0.0 <= value <= 0.35, f"opacity readout after dragging: {value}"
    after = preview_pixels(img)
    diff = np.abs(after[..., :3].astype(int) - before[..., :3].astype(int))
    assert diff.mean() > 5, "the picture did not change when the opacity moved"
    # less opacity = less darkening of the background: the corners get brighter
    corners = np.s_[: before.shape[0] // 8, : before.shape[1] // 8]
    assert after[corners][..., :3].mean() > before[corners][..., :3].mean() + 10
    lab.screenshot("still-explorer-opacity.png", explorer)

    # --- effect: choose "cutout" in the dropdown -> a transparent background appears ----------
    explorer.locator(".bgkit-effect select").select_option("cutout")
    src = wait_preview_settles(img, src)
    cut = preview_pixels(img)
    alpha = cut[..., 3]
    assert (alpha == 0).mean() > 0.2 and (alpha == 255).mean() > 0.2, "cutout should be part transparent"
    assert "cutout" in status.inner_text()
    lab.screenshot("still-explorer-cutout.png", explorer)

    # --- and "bokeh": opaque again, and different from the mask overlay -------------------------
    explorer.locator(".bgkit-effect select").select_option("bokeh")
    src = wait_preview_settles(img, src)
    bokeh = preview_pixels(img)
    assert (bokeh[..., 3] == 255).all()
    assert np.abs(bokeh[..., :3].astype(int) - after[..., :3].astype(int)).mean() > 5

    # --- Save: the status names the file, which exists in the kernel's BGKIT_OUT_DIR ----------
    explorer.locator(".bgkit-save").click()
    page.wait_for_function("(el) => el.innerText.includes('saved:')", arg=status.element_handle())
    saved = re.search(r"saved: (\S+\.png)", status.inner_text()).group(1)
    assert saved.startswith(str(jupyter_lab.out_dir)), saved
    with Image.open(saved) as im:
        assert im.mode == "RGB" and im.size == (512, 512)
    lab.screenshot("still-explorer-bokeh-saved.png", explorer)

    # the figures the notebook wrote, and showed at its end
    figures = jupyter_lab.out_dir / "01_still_image" / "figures"
    made = {p.name for p in figures.glob("*.png")}
    # body_parts.png too where BodyPix's files could be had (from the mirror the tests point at)
    assert {"internal_resolution.png", "mask_blur.png", "models.png"} <= made, made
    assert made <= {"internal_resolution.png", "mask_blur.png", "models.png", "body_parts.png"}, made
    shown = page.locator(".jp-CodeCell", has_text="ShowPNG(filename").locator(".jp-OutputArea-output img")
    assert shown.count() == len(made), (shown.count(), made)
    shown.last.scroll_into_view_if_needed()
    lab.screenshot("still-notebook-figures.png")
