"""The live-camera notebook in Jupyter Notebook 7 (``jupyter notebook``), with a fake webcam.

Notebook 7 is the other front end people open notebooks in; it shares JupyterLab's widgets
manager but not its shell, so the widget's page code must not lean on JupyterLab-only parts. The
server is started the usual way (bgkit's server extension is picked up from the environment's
Jupyter config, no flags). The test runs every cell of ``notebooks/02_live_camera.ipynb`` from
the Run menu, presses Start, and checks what a person sees: frames flowing at a usable rate
with the page compositing the kernel's matte, the status line, the "replace" composite against
the camera picture, and the mirror.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from browser.conftest import LabPage, start_jupyter_lab
from browser.live_helpers import (FAKE_CAMERA_ARGS, KernelPeek, check_composite_and_mirror,  # noqa: F401
                                  fake_webcam, hook_stats, toggle_button, wait_for)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

NOTEBOOK = "notebooks/02_live_camera.ipynb"
MIN_FPS = 3.0  # as the JupyterLab test: frames flow (speed: benchmarks/live_fps.py)
#: Notebook 7.6's own keyboard-shortcuts settings handler throws this once while a notebook opens,
#: without bgkit too (measured: a fresh venv with only ``pip install notebook==7.6.5``, an empty
#: config, a one-cell notebook); it does not stop the page. Any other page error fails the test.
KNOWN_PAGE_ERRORS = ("Cannot read properties of undefined (reading 'schema')",)


@pytest.fixture(scope="module")
def notebook7(tmp_path_factory: pytest.TempPathFactory, lab_env: dict[str, str]) -> Iterator[Any]:
    with start_jupyter_lab(tmp_path_factory.mktemp("jupyter-notebook"), env=lab_env, app="notebook") as server:
        yield server


@pytest.fixture
def nb_page(notebook7: Any, chromium_factory: Any, fake_webcam: Path) -> Iterator[LabPage]:
    ctx = chromium_factory([*FAKE_CAMERA_ARGS, f"--use-file-for-fake-video-capture={fake_webcam}"])
    ctx.set_default_timeout(60_000)
    page = ctx.pages[0] if ctx.pages else ctx.new_page()
    yield LabPage(page, notebook7)


def _wait_cells_ran(nb: LabPage, kernel: KernelPeek, timeout: float) -> None:
    """Every code cell numbered, no error output; then the kernel has nothing left queued."""
    page = nb.page

    def done() -> bool:
        errors = nb.errors()
        if errors:
            raise AssertionError(f"a cell raised an error:\n{errors[0]}")
        prompts = [t.strip() for t in page.locator(".jp-CodeCell .jp-InputPrompt").all_text_contents()]
        return bool(prompts) and all(re.fullmatch(r"\[\d+\]:", p) for p in prompts)

    wait_for(done, timeout, "all cells to run", interval=0.5)
    kernel.run("pass", timeout=120)  # queued behind anything still running


def test_live_notebook_in_notebook7(nb_page: LabPage, notebook7: Any) -> None:
    nb, page = nb_page, nb_page.page
    page.goto(notebook7.lab_url(NOTEBOOK), timeout=90_000)
    page.wait_for_selector(".jp-NotebookPanel .jp-Notebook .jp-Cell", timeout=90_000)
    nb.dismiss_dialogs()
    kernel = KernelPeek(notebook7, NOTEBOOK, timeout=90)
    try:
        kernel.run("import os; os.environ['BGKIT_LIVE_SECONDS'] = '2'; os.environ['BGKIT_LIVE_FRAMES'] = '6'")
        page.locator(".jp-NotebookPanel .jp-Notebook").first.click(position={"x": 5, "y": 5})
        nb.menu("Run", "Run All Cells")
        _wait_cells_ran(nb, kernel, timeout=420)
        text = "\n".join(page.locator(".jp-OutputArea-output").all_text_contents())
        rows = re.findall(r"^\s*(low|medium|high|full):\s+([\d.]+) fps processed", text, re.M)
        assert [r[0] for r in rows] == ["low", "medium", "high", "full"], text[-3000:]

        # Start, as a person would: frames flow, composited in the page from the kernel's matte
        live = page.locator(".bgkit-live").first
        live.scroll_into_view_if_needed()
        sent_before = hook_stats(page)["sent"]
        toggle_button(page, "Start").click()
        wait_for(lambda: hook_stats(page)["running"] and hook_stats(page)["drawnSeq"] > sent_before, 60,
                 "the first live frame")
        t0, drawn0 = time.monotonic(), hook_stats(page)["drawnSeq"]
        time.sleep(6.0)
        stats = hook_stats(page)
        shown = (stats["drawnSeq"] - drawn0) / (time.monotonic() - t0)
        ks = kernel.eval("live.stats")
        print(f"Notebook 7: {shown:.1f} fps shown, rtt p50 {stats['rttP50']:.0f} ms, empty round trip "
              f"{stats['pingMs']} ms, kernel {ks['fps']} fps, model {ks['model_ms_p50']} ms")
        assert shown >= MIN_FPS, (stats, ks)
        assert ks["frames_failed"] == 0 and ks["compositing"] == "page" and stats["kind"] == "matte", (stats, ks)
        frontend = kernel.eval("live.frontend")  # what the page's compat layer found in this front end
        assert frontend.get("subshells") is True, frontend  # Notebook >= 7.5: comms over kernel subshells
        status = live.locator(".bgkit-live-status").inner_text().strip()
        assert re.fullmatch(r"[\d.]+ frames/s · \d+ ms behind the camera( · \d+ frames? lost)?", status), status

        # the composite and the mirror, as in the JupyterLab test
        check_composite_and_mirror(nb, kernel, "notebook7")

        toggle_button(page, "Stop").click()
        wait_for(lambda: not hook_stats(page)["running"], 20, "the camera to stop")
    finally:
        kernel.close()
    errors = [line for line in nb.console if line.startswith("pageerror:")
              and not any(known in line for known in KNOWN_PAGE_ERRORS)]
    assert not errors, "\n".join(errors)
    noisy = [line for line in nb.console if "bgkit" in line.lower() and "error" in line.lower()]
    assert not noisy, "\n".join(noisy)
