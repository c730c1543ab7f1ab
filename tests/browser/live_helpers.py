"""Shared pieces of the live-camera browser tests (JupyterLab and Notebook 7): the fake webcam,
a second client on the notebook's kernel, and reading what the widget shows."""

from __future__ import annotations

import base64
import io
import json
import re
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from browser.conftest import REPO, LabPage

CLIP = REPO / ".." / "shared" / "data" / "video" / "talking_head_tfjs_facemesh.mp4"
SIZE = (640, 480)
MARKER = (8, 8, 48)  # x, y, side of the red square in the camera picture
MAGENTA = (255, 0, 255)
FAKE_CAMERA_ARGS = ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]


# ---------------------------------------------------------------------------------------------
# the fake webcam


def make_fake_webcam_clip(src: Path, dst: Path, seconds: float = 4.0, size: tuple[int, int] = SIZE,
                          marker: tuple[int, int, int] | None = MARKER) -> Path:
    """Write ``seconds`` of ``src`` as a .y4m for Chromium's fake camera: cropped to 4:3, scaled to
    ``size``, with a pure red ``marker`` square (x, y, side) burnt in. Returns ``dst``."""
    import av

    w, h = size
    with av.open(str(src)) as inp, av.open(str(dst), "w", format="yuv4mpegpipe") as out:
        vin = inp.streams.video[0]
        rate = vin.average_rate or 30
        vout = out.add_stream("rawvideo", rate=rate)
        vout.width, vout.height, vout.pix_fmt = w, h, "yuv420p"
        n = max(1, int(round(seconds * float(rate))))
        count = 0
        for frame in inp.decode(vin):
            rgb = frame.to_ndarray(format="rgb24")
            fh, fw = rgb.shape[:2]
            cw = min(fw, round(fh * w / h))
            x0 = (fw - cw) // 2
            pic = np.array(Image.fromarray(rgb[:, x0:x0 + cw]).resize((w, h), Image.BILINEAR))
            if marker:
                mx, my, side = marker
                pic[my:my + side, mx:mx + side] = (255, 0, 0)
            for packet in vout.encode(av.VideoFrame.from_ndarray(pic, format="rgb24").reformat(format="yuv420p")):
                out.mux(packet)
            count += 1
            if count >= n:
                break
        for packet in vout.encode():
            out.mux(packet)
    if count == 0:
        raise RuntimeError(f"no frames decoded from {src}")
    return dst


@pytest.fixture(scope="module")
def fake_webcam(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not CLIP.is_file():
        pytest.fail(f"the talking-head clip is missing: {CLIP} (the dev data set must be beside the repo)")
    return make_fake_webcam_clip(CLIP, tmp_path_factory.mktemp("webcam") / "talking_head.y4m")


# ---------------------------------------------------------------------------------------------
# a second client on the notebook's kernel (reads and sets kernel-side state)


class KernelPeek:
    """Runs code in a notebook's kernel over its connection file (a second client, like a console)."""

    def __init__(self, server: Any, notebook: str, timeout: float = 60.0) -> None:
        from jupyter_client import BlockingKernelClient

        deadline = time.monotonic() + timeout
        kernel_id = None
        while kernel_id is None:
            for s in server.api("sessions"):
                if s.get("path") == notebook and s.get("kernel"):
                    kernel_id = s["kernel"]["id"]
            if kernel_id is None:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"no kernel session for {notebook}")
                time.sleep(0.5)
        self.kernel_id = kernel_id
        state_dir = server.out_dir.parent
        candidates = list(state_dir.rglob(f"kernel-{kernel_id}.json"))
        if not candidates:
            raise FileNotFoundError(f"connection file of kernel {kernel_id} not found under {state_dir}")
        self.client = BlockingKernelClient(connection_file=str(candidates[0]))
        self.client.load_connection_file()
        self.client.start_channels()
        self.client.wait_for_ready(timeout=60)

    def run(self, code: str, timeout: float = 60.0) -> str:
        """Execute ``code``; returns its stdout. Raises with the traceback if it fails."""
        out: list[str] = []
        errors: list[str] = []

        def hook(msg: dict) -> None:
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream" and content.get("name") == "stdout":
                out.append(content["text"])
            elif kind == "error":
                errors.append("\n".join(content.get("traceback", [])) or content.get("evalue", ""))

        reply = self.client.execute_interactive(code, store_history=False, timeout=timeout, output_hook=hook)
        if errors or reply["content"].get("status") != "ok":
            raise RuntimeError(f"kernel code failed:\n{code}\n{''.join(errors) or reply['content']}")
        return "".join(out)

    def eval(self, expr: str) -> Any:
        """The value of a JSON-able Python expression in the kernel."""
        text = self.run(f"import json as _j; print(_j.dumps({expr}, default=str))")
        return json.loads(text.strip().splitlines()[-1])

    def close(self) -> None:
        self.client.stop_channels()


# ---------------------------------------------------------------------------------------------
# page helpers


def hook_stats(page: Any, index: int = 0) -> dict:
    """The widget view's own counters (``root.bgkitLive.stats()``, see live.js)."""
    return page.evaluate(
        "(i) => { const el = document.querySelectorAll('.bgkit-live')[i]; return el && el.bgkitLive ? el.bgkitLive.stats() : null; }",
        index,
    )


def canvas_pixels(page: Any, index: int = 0) -> np.ndarray:
    """What the widget shows now (mirrored where it is shown mirrored) as (H, W, 4) RGBA."""
    url = page.evaluate("(i) => document.querySelectorAll('.bgkit-live')[i].bgkitLive.picture()", index)
    with Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))) as im:
        return np.asarray(im.convert("RGBA"))


def camera_pixels(page: Any, index: int = 0) -> np.ndarray:
    """The camera's current frame (the widget's hidden video), unprocessed, as (H, W, 3) RGB."""
    url = page.evaluate(
        """(i) => { const v = document.querySelectorAll('.bgkit-live')[i].bgkitLive.video;
                   const c = document.createElement('canvas'); c.width = v.videoWidth; c.height = v.videoHeight;
                   c.getContext('2d').drawImage(v, 0, 0); return c.toDataURL('image/png'); }""",
        index,
    )
    with Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))) as im:
        return np.asarray(im.convert("RGB"))


def wait_for(predicate, timeout: float, what: str, interval: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def wait_fresh_frames(page: Any, n: int = 3, timeout: float = 30.0) -> None:
    """Wait until ``n`` frames sent *after now* have been drawn (so new settings show)."""
    sent = hook_stats(page)["sent"]
    wait_for(lambda: hook_stats(page)["drawnSeq"] >= sent + n, timeout, f"{n} fresh frames")


def near(pixels: np.ndarray, colour: tuple[int, int, int], tol: int = 40) -> np.ndarray:
    return (np.abs(pixels[..., :3].astype(int) - np.array(colour)) <= tol).all(axis=-1)


def marker_patch(pixels: np.ndarray, mirrored: bool) -> np.ndarray:
    """The inner part of where the red marker is (or would be) in a 640-wide picture."""
    x, y, side = MARKER
    w = pixels.shape[1]
    x0 = w - x - side if mirrored else x
    m = 10  # stay clear of the JPEG-blurred edge
    return pixels[y + m:y + side - m, x0 + m:x0 + side - m, :3]


def is_red(patch: np.ndarray) -> bool:
    r, g, b = (float(patch[..., i].mean()) for i in range(3))
    return r > 180 and g < 70 and b < 70


def wait_all_cells_ran(lab: LabPage, timeout: float) -> None:
    """Like ``LabPage.wait_all_cells_ran``, but reads prompts with ``textContent``: JupyterLab 4
    skips rendering cells scrolled out of view (CSS content-visibility), and their ``innerText``
    is then empty, so a long notebook never looks finished through ``innerText``."""
    page = lab.page

    def done() -> bool:
        errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.error']").all_text_contents()
        if errors:
            raise AssertionError(f"a cell raised an error:\n{errors[0]}")
        prompts = [t.strip() for t in page.locator(".jp-CodeCell .jp-InputPrompt").all_text_contents()]
        return bool(prompts) and all(re.fullmatch(r"\[\d+\]:", p) for p in prompts) and lab.kernel_status() == "idle"

    wait_for(done, timeout, "all cells to run", interval=0.5)
    lab.wait_kernel_idle(timeout=60)


def center(locator: Any) -> Any:
    """Scroll ``locator`` to the middle of the notebook (clear of the sticky toolbar); returns it."""
    locator.evaluate("(e) => e.scrollIntoView({block: 'center'})")
    time.sleep(0.3)
    return locator


def toggle_button(live: Any, label: str) -> Any:
    return live.locator(".widget-toggle-button", has_text=re.compile(rf"^\s*{label}\s*$")).first


def shutdown_notebook_kernel(server: Any, notebook: str) -> None:
    """End the notebook's session (and kernel), so later tests start from a fresh kernel."""
    for s in server.api("sessions"):
        if s.get("path") == notebook:
            req = urllib.request.Request(f"{server.url}/api/sessions/{s['id']}", method="DELETE",
                                         headers={"Authorization": f"token {server.token}"})
            urllib.request.urlopen(req, timeout=10).close()


def check_composite_and_mirror(lab: LabPage, kernel: KernelPeek, shot_prefix: str) -> None:
    """What the running widget shows: "replace" with magenta over the background and the camera's
    colours on the person; "bokeh" without blur shows the camera (the red marker stays red, in
    its corner), and on the other side when mirrored. Screenshots ``<shot_prefix>-*.png``."""
    page = lab.page
    # "replace" with a known colour, not mirrored: background -> magenta, person -> camera colours
    kernel.run("live.effect = 'replace'; live.background_image = None; live.background = (255, 0, 255, 255); "
               "live.edge_blur_amount = 0; live.segmentation_threshold = 0.7; live.flip_horizontal = False")
    wait_fresh_frames(page)
    before = camera_pixels(page)
    out = canvas_pixels(page)
    cam = camera_pixels(page)
    assert out.shape[:2] == cam.shape[:2] == (SIZE[1], SIZE[0])
    bg = near(out, MAGENTA)
    assert 0.15 < bg.mean() < 0.9, f"background share {bg.mean():.2f}"
    assert near(marker_patch(out, mirrored=False), MAGENTA).mean() > 0.9, "the marker corner is background"
    # person pixels keep the camera's colours. The picture shows a frame a round trip old and the
    # camera has moved on since, so compare where the camera held still between two grabs around
    # the picture's (the moving parts differ by however far the loop lags; a loose bound all the same).
    person = ~near(out, MAGENTA, tol=90)
    inner = person & np.roll(person, 6, 0) & np.roll(person, -6, 0) & np.roll(person, 6, 1) & np.roll(person, -6, 1)
    assert inner.mean() > 0.1
    still = np.abs(cam.astype(int) - before.astype(int)).max(axis=-1) <= 12
    if (inner & still).mean() > 0.05:
        inner &= still
    diff = np.abs(out[..., :3][inner].astype(int) - cam[inner].astype(int)).mean()
    assert diff < 25, f"person pixels differ from the camera by {diff:.1f} on average"
    lab.screenshot(f"{shot_prefix}-replace-magenta.png", center(page.locator(".bgkit-live").first))

    # the marker itself: "bokeh" with no blur shows the camera picture; red stays red (channel order)
    kernel.run("live.effect = 'bokeh'; live.background_blur_amount = 0; live.edge_blur_amount = 0")
    wait_fresh_frames(page)
    out = canvas_pixels(page)
    assert is_red(marker_patch(out, mirrored=False)), marker_patch(out, False).mean(axis=(0, 1))
    assert not is_red(marker_patch(out, mirrored=True))
    kernel.run("live.flip_horizontal = True")
    wait_fresh_frames(page)
    out = canvas_pixels(page)
    assert is_red(marker_patch(out, mirrored=True)), marker_patch(out, True).mean(axis=(0, 1))
    assert not is_red(marker_patch(out, mirrored=False))
    lab.screenshot(f"{shot_prefix}-bokeh-mirrored.png", center(page.locator(".bgkit-live").first))
