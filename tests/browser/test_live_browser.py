"""The live-camera notebook in a real JupyterLab, with a fake webcam, in headless Chromium.

The webcam is Chromium's fake capture device playing a .y4m clip made here from the dev set's
talking-head video (640x480, a pure red square in the top-left background corner as a marker for
orientation and channel order). The test opens ``notebooks/02_live_camera.ipynb``, runs all cells,
and then, like a person: presses Start, watches the frame rate, checks the composite ("replace"
with a known colour, the marker mirrored or not), drags the threshold slider, presses Stop (the
camera's tracks must end), shows the widget a second time, and restarts the kernel. Kernel-side
state is read by a second client on the notebook's kernel. Screenshots go to ``test-artifacts/``.

A second test opens the notebook in a browser that denies the camera and checks the message.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest

from browser.conftest import LabPage
from browser.live_helpers import (FAKE_CAMERA_ARGS, MAGENTA, KernelPeek, canvas_pixels, center,  # noqa: F401
                                  check_composite_and_mirror, fake_webcam, hook_stats, near, shutdown_notebook_kernel,
                                  toggle_button, wait_all_cells_ran, wait_for, wait_fresh_frames)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

NOTEBOOK = "notebooks/02_live_camera.ipynb"
MIN_FPS = 3.0  # frames flow at a usable rate on a loaded 2-core machine (speed: benchmarks/live_fps.py)


# ---------------------------------------------------------------------------------------------
# the tests


@pytest.fixture
def chromium_extra_args(fake_webcam: Path) -> list[str]:
    return [*FAKE_CAMERA_ARGS, f"--use-file-for-fake-video-capture={fake_webcam}"]


def test_live_notebook_with_a_fake_webcam(lab_page: LabPage, jupyter_lab: Any) -> None:
    lab = lab_page
    lab.open_notebook(NOTEBOOK)
    kernel = KernelPeek(jupyter_lab, NOTEBOOK)
    try:
        kernel.run("import os; os.environ['BGKIT_LIVE_SECONDS'] = '2'; os.environ['BGKIT_LIVE_FRAMES'] = '6'")
        lab.run_all_cells()
        wait_all_cells_ran(lab, timeout=420)
        _check_notebook_ran_live(lab, kernel)
        _check_start_and_frame_rate(lab, kernel)
        _check_composite_and_orientation(lab, kernel)
        _check_slider_changes_output(lab, kernel)
        _check_stop_releases_camera(lab, kernel)
        _check_displayed_twice(lab, kernel)
        _check_kernel_restart(lab)
    finally:
        kernel.close()
    noisy = [line for line in lab.console if "bgkit" in line.lower() and ("error" in line.lower() or "warn" in line.lower())]
    assert len(noisy) <= 3, "\n".join(noisy)


def _check_notebook_ran_live(lab: LabPage, kernel: KernelPeek) -> None:
    """Run-all used the camera: section 4 measured every internal resolution live, the last cell stopped it."""
    page = lab.page
    text = "\n".join(page.locator(".jp-OutputArea-output").all_text_contents())
    rows = re.findall(r"^\s*(low|medium|high|full):\s+([\d.]+) fps processed, +([\d.]+) fps shown", text, re.M)
    assert [r[0] for r in rows] == ["low", "medium", "high", "full"], (
        f"views: {page.locator('.bgkit-live').count()}, page hook: {hook_stats(page)}\n{text[-3000:]}")
    assert all(max(float(r[1]), float(r[2])) > 0 for r in rows), rows
    assert "fps, round trip p50" in text  # section 5, the video-file comparison
    stats = hook_stats(page)
    assert stats["role"] == "owner" and stats["running"] is False
    assert stats["tracks"] and all(t["readyState"] == "ended" for t in stats["tracks"]), stats
    # the page tells the kernel after it stopped: give that message a moment to arrive
    wait_for(lambda: kernel.eval("live.camera_state") == "stopped", 10, "camera_state 'stopped' in the kernel")


def _check_start_and_frame_rate(lab: LabPage, kernel: KernelPeek) -> None:
    page = lab.page
    live = page.locator(".bgkit-live").first
    widget_box = page.locator(".jp-OutputArea-output .widget-hbox", has=live).first
    widget_box.scroll_into_view_if_needed()
    sent_before = hook_stats(page)["sent"]
    toggle_button(page, "Start").click()
    wait_for(lambda: hook_stats(page)["running"] and hook_stats(page)["drawnSeq"] > sent_before, 60,
             "the first live frame")
    wait_for(lambda: kernel.eval("live.camera_state") == "running", 10, "camera_state 'running' in the kernel")
    kernel.run("live.reset_stats()")
    t0, drawn0 = time.monotonic(), hook_stats(page)["drawnSeq"]
    time.sleep(6.0)
    stats = hook_stats(page)
    dt = time.monotonic() - t0
    shown = (stats["drawnSeq"] - drawn0) / dt  # frames that came back and were drawn, per second
    ks = kernel.eval("live.stats")
    print(f"live: {shown:.1f} fps shown, page fps {stats['fps']:.1f}, rtt p50 {stats['rttP50']:.0f} ms, "
          f"kernel {ks['fps']} fps, model {ks['model_ms_p50']} ms, latency p50 {ks['latency_ms_p50']} ms, "
          f"empty round trip {stats['pingMs']} ms")
    assert shown >= MIN_FPS, (stats, ks)
    assert ks["frames_processed"] >= MIN_FPS * 5 and ks["frames_failed"] == 0, ks
    # the fast path: frames at the selfie model's size, raw; the page composites from the matte
    assert ks["frame_size"] == [256, 256] and ks["transport"] == "rgba" and ks["compositing"] == "page", ks
    assert stats["kind"] == "matte" and stats["composeMs"] is not None, stats
    assert ks["latency_ms_p50"] is not None and ks["fps_shown"] and ks["fps_shown"] > 0, ks
    # a server started the usual way has bgkit's extension: no Nagle delay on the kernel websocket
    assert stats["pingMs"] is not None and ks["transport_ping_ms"] is not None, (stats, ks)
    assert "bgkit: kernel websockets without Nagle" in lab.server.log(), "bgkit's server extension is not loaded"
    assert stats["pingMs"] < 1000, f"an empty message takes {stats['pingMs']:.0f} ms to the kernel and back"
    status = live.locator(".bgkit-live-status")
    assert re.fullmatch(r"[\d.]+ frames/s · \d+ ms behind the camera( · \d+ frames? lost)?", status.inner_text().strip()), status.inner_text()
    assert "composited in the page" in (status.get_attribute("title") or "")
    lab.screenshot("live-running.png", center(widget_box))
    # every control rendered (a widget view that fails shows this text in its place)
    assert widget_box.get_by_text("Click to show javascript error.").count() == 0


def _check_composite_and_orientation(lab: LabPage, kernel: KernelPeek) -> None:
    check_composite_and_mirror(lab, kernel, "live")


def _check_slider_changes_output(lab: LabPage, kernel: KernelPeek) -> None:
    """Drag the threshold slider to its right end with the mouse: nothing is "person" any more."""
    page = lab.page
    kernel.run("live.effect = 'replace'; live.background_image = None; live.background = (255, 0, 255, 255); live.segmentation_threshold = 0.7")
    wait_fresh_frames(page)
    before = near(canvas_pixels(page), MAGENTA).mean()
    slider = page.locator(".widget-slider", has=page.locator(".widget-label", has_text=re.compile(r"^threshold$"))).first
    slider.scroll_into_view_if_needed()
    handle, track = slider.locator(".noUi-handle"), slider.locator(".noUi-target")
    hb, tb = handle.bounding_box(), track.bounding_box()
    page.mouse.move(hb["x"] + hb["width"] / 2, hb["y"] + hb["height"] / 2)
    page.mouse.down()
    page.mouse.move(tb["x"] + tb["width"] + 40, hb["y"] + hb["height"] / 2, steps=8)
    page.mouse.up()
    wait_for(lambda: kernel.eval("live.segmentation_threshold") == 1.0, 20, "threshold 1.0 in the kernel")
    assert slider.locator(".widget-readout").inner_text().strip() == "1.00"
    wait_fresh_frames(page)
    after = near(canvas_pixels(page), MAGENTA).mean()
    assert before < 0.9 and after > 0.98, (before, after)
    kernel.run("live.segmentation_threshold = 0.7")


def _check_stop_releases_camera(lab: LabPage, kernel: KernelPeek) -> None:
    page = lab.page
    toggle_button(page, "Stop").click()
    wait_for(lambda: not hook_stats(page)["running"], 10, "the loop to stop")
    stats = hook_stats(page)
    assert stats["tracks"] and all(t["readyState"] == "ended" for t in stats["tracks"]), stats
    assert page.evaluate("() => document.querySelector('.bgkit-live').bgkitLive.video.srcObject === null")
    wait_for(lambda: kernel.eval("live.camera_state") == "stopped", 10, "camera_state 'stopped' in the kernel")
    assert kernel.eval("live.running") is False
    sent = stats["sent"]
    time.sleep(1.0)
    assert hook_stats(page)["sent"] == sent, "frames still sent after Stop"
    assert "Camera stopped" in page.locator(".bgkit-live-message").first.inner_text()


def _check_displayed_twice(lab: LabPage, kernel: KernelPeek) -> None:
    """Show the widget again in a new cell: one camera, the second view mirrors the first."""
    page = lab.page
    cells = page.locator(".jp-Notebook .jp-Cell")
    cells.last.click()
    page.keyboard.press("Escape")
    page.keyboard.press("b")
    page.keyboard.press("Enter")
    page.keyboard.type("live.start(); live")
    page.keyboard.press("Shift+Enter")
    wait_for(lambda: page.locator(".bgkit-live").count() == 2, 30, "a second view")
    wait_for(lambda: (hook_stats(page, 1) or {}).get("drawnSeq", 0) > 0, 60, "frames in the second view")
    first, second = hook_stats(page, 0), hook_stats(page, 1)
    assert first["role"] == "owner" and first["running"] and second["role"] == "mirror" and not second["running"]
    live_tracks = page.evaluate(
        "() => [...document.querySelectorAll('.bgkit-live')].filter(e => e.bgkitLive.stream).length"
    )
    assert live_tracks == 1, "only one view holds the camera"
    lab.screenshot("live-displayed-twice.png", center(page.locator(".bgkit-live").nth(1)))


def _check_kernel_restart(lab: LabPage) -> None:
    """Restart the kernel while the camera runs: the camera is released and the widget says so."""
    page = lab.page
    assert hook_stats(page)["running"]
    lab.menu("Kernel", "Restart Kernel")
    page.locator(".jp-Dialog .jp-mod-accept").first.click()
    wait_for(lambda: not hook_stats(page)["running"], 30, "the loop to stop after the restart")
    stats = hook_stats(page)
    assert all(t["readyState"] == "ended" for t in stats["tracks"]), stats
    assert "restarted" in stats["message"], stats["message"]
    lab.screenshot("live-after-kernel-restart.png", center(page.locator(".bgkit-live").first))


@pytest.mark.parametrize("case", ["denied", "no-camera"])
def test_camera_denied_or_absent_shows_a_message(case: str, jupyter_lab: Any, chromium_factory: Any,
                                                 fake_webcam: Path) -> None:
    """A browser that refuses the camera, or has none: the widget says so, the kernel knows, nothing runs."""
    if case == "denied":
        args = ["--use-fake-ui-for-media-stream=deny", "--use-fake-device-for-media-stream",
                f"--use-file-for-fake-video-capture={fake_webcam}"]
        words = "denied"
    else:  # permission granted, but no camera device at all (as in a CI container)
        args = ["--use-fake-ui-for-media-stream"]
        words = "No camera was found"
    ctx = chromium_factory(args)
    ctx.set_default_timeout(60_000)
    lab = LabPage(ctx.pages[0] if ctx.pages else ctx.new_page(), jupyter_lab)
    page = lab.page
    lab.open_notebook(NOTEBOOK)
    kernel = KernelPeek(jupyter_lab, NOTEBOOK)
    try:
        # run the cells up to and including the widget (imports, model, widget)
        page.locator(".jp-Notebook .jp-Cell").first.click()
        for _ in range(6):
            page.keyboard.press("Shift+Enter")
        wait_for(lambda: page.locator(".bgkit-live").count() == 1, 120, "the widget")
        msg = page.locator(".bgkit-live-message").first
        wait_for(lambda: words in msg.inner_text(), 30, f"the message {words!r}")
        assert msg.is_visible()
        wait_for(lambda: kernel.eval("live.camera_state") == case, 20, f"camera_state {case!r}")
        assert words in kernel.eval("live.camera_message")
        assert kernel.eval("live.running") is False
        wait_for(lambda: toggle_button(page, "Start").count() == 1, 10, "the button to say Start")
        stats = hook_stats(page)
        assert stats["running"] is False and stats["sent"] == 0 and stats["tracks"] == []
        lab.screenshot(f"live-camera-{case}.png", center(page.locator(".jp-OutputArea-output .widget-hbox").first))
    except BaseException:
        lab.screenshot(f"live-camera-{case}-failure.png")
        raise
    finally:
        kernel.close()
        shutdown_notebook_kernel(jupyter_lab, NOTEBOOK)
