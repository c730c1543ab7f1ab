"""Browser-test harness: a real JupyterLab server, driven by headless Chromium through Playwright.

Shared by every stage that tests a notebook in the browser (still photo, live camera, ...).

Fixtures
    ``jupyter_lab``             session: a ``jupyter lab`` server on 127.0.0.1 (random token and free
                                port, root = the repo, private config/runtime/workspace folders, no
                                network calls for news, update checks or the extension manager).
                                Kernels it starts inherit ``BGKIT_OUT_DIR`` (a temporary folder), so
                                notebooks write nothing into the repo.
    ``chromium_extra_args``     extra Chromium flags for ``lab_page``; override it in a test module,
                                e.g. the live stage returns ``["--use-fake-ui-for-media-stream",
                                "--use-fake-device-for-media-stream", "--use-file-for-fake-video-capture=clip.y4m"]``.
    ``lab_env``                 session: extra environment for the server (and so its kernels);
                                override in a conftest to add variables.
    ``chromium_factory``        function: ``make(extra_args=(), **launch_kwargs) -> BrowserContext``,
                                every context closed at teardown.
    ``lab_page``                function: a :class:`LabPage` (Chromium page + helpers) on the server.
                                On failure a screenshot goes to ``test-artifacts/<test>-failure.png``.

Helpers (module ``browser.conftest`` under pytest's default import mode)
    :func:`launch_chromium`, :func:`start_jupyter_lab`, :class:`LabPage` (``open_notebook``,
    ``run_all_cells``, ``wait_kernel_idle``, ``wait_all_cells_ran``, ``screenshot``, ``errors``, ...).

Chromium must be at ``/usr/bin/chromium`` (or ``$BGKIT_CHROMIUM``); when it is missing the tests
FAIL with a message saying how to install it (they never skip: CI installs it).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = Path(os.environ.get("BGKIT_CHROMIUM", "/usr/bin/chromium"))
VENV_BIN = Path(sys.executable).parent

#: Flags every Chromium gets (callers add their own with ``extra_args``).
BASE_CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)

#: JupyterLab plugins that would fetch things from the internet or pop up notices.
_DISABLED_LAB_PLUGINS = (
    "@jupyterlab/apputils-extension:announcements",
    "@jupyterlab/extensionmanager-extension",
)

SERVER_START_TIMEOUT_S = 120.0


def artifact_path(name: str) -> Path:
    """``test-artifacts/<name>`` (the folder is created; it is git-ignored)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS / name


def require_chromium() -> Path:
    """The Chromium binary; ``pytest.fail`` (not skip) with install instructions if it is missing."""
    if not CHROMIUM.is_file() or not os.access(CHROMIUM, os.X_OK):
        pytest.fail(
            f"Chromium not found at {CHROMIUM}: the browser tests need it "
            "(Debian/Ubuntu: `sudo apt-get install chromium`; `make test` does this; "
            "or set BGKIT_CHROMIUM to another Chromium binary)",
            pytrace=False,
        )
    return CHROMIUM


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ---------------------------------------------------------------------------------------------
# JupyterLab server


@dataclass
class JupyterLabServer:
    """A running ``jupyter lab`` (or ``jupyter notebook``: ``app``); ``url`` has no trailing slash."""

    url: str
    token: str
    root_dir: Path
    out_dir: Path
    log_path: Path
    process: subprocess.Popen = field(repr=False)
    app: str = "lab"

    def lab_url(self, path: str = "", **query: str) -> str:
        """The page of notebook ``path``: ``<url>/lab/tree/<path>?reset&token=...`` (``reset``: a
        fresh workspace layout), or Notebook 7's ``<url>/notebooks/<path>?token=...``."""
        if self.app == "notebook":
            params = "&".join([f"token={self.token}", *(f"{k}={v}" for k, v in query.items())])
            return f"{self.url}/notebooks/{path.lstrip('/')}?{params}" if path else f"{self.url}/tree?{params}"
        params = "&".join(["reset", f"token={self.token}", *(f"{k}={v}" for k, v in query.items())])
        return f"{self.url}/lab/tree/{path.lstrip('/')}?{params}" if path else f"{self.url}/lab?{params}"

    def api(self, path: str) -> Any:
        """GET ``/api/<path>`` (JSON) with the token."""
        req = urllib.request.Request(f"{self.url}/api/{path.lstrip('/')}",
                                     headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read().decode())

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


#: JupyterLab user settings for the tests: never write the notebooks back into the repo.
_LAB_SETTINGS = {
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
    # render every cell (no virtual scrolling), so prompts and outputs off screen are in the DOM
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false", "checkForUpdates": False, "doNotDisturbMode": True},
}


def _write_lab_config(config_dir: Path, settings_dir: Path) -> None:
    labconfig = config_dir / "labconfig"
    labconfig.mkdir(parents=True, exist_ok=True)
    (labconfig / "page_config.json").write_text(
        json.dumps({"disabledExtensions": {name: True for name in _DISABLED_LAB_PLUGINS}})
    )
    for rel, value in _LAB_SETTINGS.items():
        path = settings_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(value))


@contextlib.contextmanager
def start_jupyter_lab(
    state_dir: Path,
    root_dir: Path = REPO,
    env: Mapping[str, str] | None = None,
    extra_args: Sequence[str] = (),
    timeout: float = SERVER_START_TIMEOUT_S,
    app: str = "lab",
) -> Iterator[JupyterLabServer]:
    """Run ``jupyter lab`` (or ``jupyter notebook``, Notebook 7: ``app="notebook"``) from this venv
    on 127.0.0.1 until the ``with`` block ends, started the usual way (no bgkit flags).

    ``state_dir`` holds the server's private config, settings (autosave off, so notebooks are
    never written back), runtime, workspaces, checkpoints, IPython folder, its log
    (``jupyter-lab.log``) and the kernels' ``BGKIT_OUT_DIR`` (``state_dir/out``).
    """
    state_dir = Path(state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    token = secrets.token_hex(16)
    port = free_port()
    out_dir = state_dir / "out"
    out_dir.mkdir(exist_ok=True)
    config_dir = state_dir / "jupyter-config"
    _write_lab_config(config_dir, state_dir / "lab-settings")
    run_env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(config_dir),
        "JUPYTER_RUNTIME_DIR": str(state_dir / "runtime"),
        "JUPYTERLAB_SETTINGS_DIR": str(state_dir / "lab-settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(state_dir / "lab-workspaces"),
        "IPYTHONDIR": str(state_dir / "ipython"),
        "BGKIT_OUT_DIR": str(out_dir),
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONUNBUFFERED": "1",
    }
    run_env.pop("JUPYTER_PLATFORM_DIRS", None)
    if env:
        run_env.update(env)
    cmd = [
        str(VENV_BIN / "jupyter"), app,
        "--no-browser",
        "--ip=127.0.0.1",
        f"--port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",  # the current spelling of --ServerApp.token
        f"--ServerApp.root_dir={root_dir}",
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.extension_manager=readonly",
        "--ServerApp.terminals_enabled=False",
        # checkpoints (made when a notebook opens) go to the state folder, not beside the notebooks
        f"--FileCheckpoints.checkpoint_dir={state_dir / 'checkpoints'}",
        *(["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []),  # CI containers
        *extra_args,
    ]
    log_path = state_dir / f"jupyter-{app}.log"
    log = open(log_path, "wb")
    proc = subprocess.Popen(cmd, cwd=root_dir, env=run_env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    server = JupyterLabServer(url=f"http://127.0.0.1:{port}", token=token, root_dir=Path(root_dir),
                              out_dir=out_dir, log_path=log_path, process=proc, app=app)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"jupyter {app} exited with status {proc.returncode}:\n{server.log()[-4000:]}")
            try:
                server.api("status")
                break
            except (urllib.error.URLError, ConnectionError, OSError):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"jupyter {app} not ready after {timeout:.0f} s:\n{server.log()[-4000:]}")
                time.sleep(0.25)
        yield server
    finally:
        _stop_server(server)
        log.close()


def _stop_server(server: JupyterLabServer) -> None:
    proc = server.process
    if proc.poll() is None:
        # shut the kernels down politely first, then the server (its own process group only)
        with contextlib.suppress(Exception):
            req = urllib.request.Request(f"{server.url}/api/shutdown", method="POST", data=b"",
                                         headers={"Authorization": f"token {server.token}"})
            urllib.request.urlopen(req, timeout=5).close()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


# ---------------------------------------------------------------------------------------------
# Chromium


def launch_chromium(
    playwright: Any,
    user_data_dir: str | Path,
    extra_args: Sequence[str] = (),
    *,
    viewport: tuple[int, int] = (1400, 1000),
    **launch_kwargs: Any,
) -> Any:
    """Headless Chromium (``/usr/bin/chromium``) as a Playwright persistent ``BrowserContext``.

    Playwright refuses ``--user-data-dir`` as an argument, hence ``launch_persistent_context``.
    Flags: :data:`BASE_CHROMIUM_ARGS` + ``extra_args``.
    """
    exe = require_chromium()
    args = [*BASE_CHROMIUM_ARGS, *(a for a in extra_args if a not in BASE_CHROMIUM_ARGS)]
    return playwright.chromium.launch_persistent_context(
        str(user_data_dir),
        executable_path=str(exe),
        headless=True,
        args=args,
        viewport={"width": viewport[0], "height": viewport[1]},
        **launch_kwargs,
    )


# ---------------------------------------------------------------------------------------------
# JupyterLab page helpers


class LabPage:
    """A Chromium page showing JupyterLab, with the moves a person makes."""

    def __init__(self, page: Any, server: JupyterLabServer) -> None:
        self.page = page
        self.server = server
        self.console: list[str] = []
        page.on("console", lambda msg: self.console.append(f"{msg.type}: {msg.text}"))
        page.on("pageerror", lambda exc: self.console.append(f"pageerror: {exc}"))

    # --- navigation ---------------------------------------------------------------------------

    def open_notebook(self, path: str, timeout: float = 90.0) -> "LabPage":
        """Open ``path`` (relative to the server root) with ``?reset`` and wait until its kernel is idle."""
        self.page.goto(self.server.lab_url(path), timeout=timeout * 1000)
        self.page.wait_for_selector(".jp-NotebookPanel .jp-Notebook .jp-Cell", timeout=timeout * 1000)
        self.dismiss_dialogs()
        self.wait_kernel_idle(timeout=timeout)
        return self

    def dismiss_dialogs(self) -> None:
        """Close a modal dialog (e.g. "Select Kernel") by accepting its default, if one is open."""
        dialog = self.page.locator(".jp-Dialog")
        if dialog.count():
            with contextlib.suppress(Exception):
                self.page.locator(".jp-Dialog .jp-mod-accept").first.click(timeout=2000)

    # --- running ------------------------------------------------------------------------------

    def menu(self, *path: str, timeout: float = 10.0) -> None:
        """Click through the main menu, e.g. ``menu("Run", "Run All Cells")`` or
        ``menu("View", "Appearance", "Show Left Sidebar")``."""
        top, *items = path
        self.page.locator(".lm-MenuBar-item", has_text=re.compile(rf"^{re.escape(top)}$")).click(
            timeout=timeout * 1000)
        for item in items:
            self.page.locator(".lm-Menu:visible .lm-Menu-item",
                              has_text=re.compile(rf"^{re.escape(item)}")).first.click(timeout=timeout * 1000)

    def hide_left_sidebar(self) -> None:
        """Collapse the file browser side panel (more room for the notebook), if it is open."""
        # clicking the current tab of the left side bar collapses its panel, as a person would
        tab = self.page.locator(".jp-SideBar.jp-mod-left .lm-TabBar-tab.lm-mod-current")
        if tab.count():
            tab.first.click()
            self.page.locator("#jp-left-stack").wait_for(state="hidden", timeout=10_000)

    def command(self, label: str) -> None:
        """Run a command from the command palette (Ctrl+Shift+C), by its label."""
        self.page.keyboard.press("Control+Shift+C")
        box = self.page.locator(".lm-CommandPalette-input")
        box.fill(label)
        self.page.locator(".lm-CommandPalette-item", has_text=label).first.click()

    def run_all_cells(self) -> None:
        """Run → Run All Cells (the command palette if the menu is not there)."""
        self.page.locator(".jp-NotebookPanel .jp-Notebook").first.click(position={"x": 5, "y": 5})
        try:
            self.menu("Run", "Run All Cells")
        except Exception:
            self.page.keyboard.press("Escape")
            self.command("Run All Cells")

    def kernel_status(self) -> str | None:
        """The notebook toolbar's kernel status ("idle", "busy", "starting", ...)."""
        ind = self.page.locator(".jp-NotebookPanel .jp-Notebook-ExecutionIndicator").first
        return ind.get_attribute("data-status") if ind.count() else None

    def wait_kernel_idle(self, timeout: float = 120.0, settle: float = 1.0) -> None:
        """Wait until the kernel status is "idle" and stays so for ``settle`` seconds."""
        deadline = time.monotonic() + timeout
        idle_since = None
        while True:
            status = self.kernel_status()
            now = time.monotonic()
            if status == "idle":
                idle_since = idle_since or now
                if now - idle_since >= settle:
                    return
            else:
                idle_since = None
            if now > deadline:
                raise TimeoutError(f"kernel not idle after {timeout:.0f} s (status {status!r})")
            time.sleep(0.2)

    def prompts(self) -> list[str]:
        """The input prompts of the code cells, e.g. ``["[1]:", "[*]:", "[ ]:"]``."""
        return [t.strip() for t in self.page.locator(".jp-CodeCell .jp-InputPrompt").all_inner_texts()]

    def wait_all_cells_ran(self, timeout: float = 300.0) -> None:
        """After :meth:`run_all_cells`: wait until every code cell has an execution count and the
        kernel is idle. Raises with the first error output if a cell failed."""
        deadline = time.monotonic() + timeout
        while True:
            errors = self.errors()
            if errors:
                raise AssertionError(f"a cell raised an error:\n{errors[0]}")
            prompts = self.prompts()
            done = prompts and all(re.fullmatch(r"\[\d+\]:", p) for p in prompts)
            if done and self.kernel_status() == "idle":
                self.wait_kernel_idle(timeout=max(5.0, deadline - time.monotonic()))
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"cells not finished after {timeout:.0f} s: prompts {prompts}")
            time.sleep(0.5)

    def errors(self) -> list[str]:
        """Texts of error outputs (tracebacks) in the open notebook.

        JupyterLab renders an error like a stderr stream (same mime type, no marker class), so an
        error is a stderr output holding a Python traceback."""
        texts = self.page.locator(
            ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']"
        ).all_inner_texts()
        return [t for t in texts if "Traceback (most recent call last)" in t]

    # --- looking ------------------------------------------------------------------------------

    def screenshot(self, name: str, locator: Any = None) -> Path:
        """Save a PNG screenshot (the page, or one element) to ``test-artifacts/<name>``."""
        path = artifact_path(name)
        (locator or self.page).screenshot(path=str(path))
        return path


# ---------------------------------------------------------------------------------------------
# fixtures


def pytest_collection_modifyitems(config: Any, items: list[Any]) -> None:
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).is_relative_to(here):
            item.add_marker(pytest.mark.browser)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: Any, call: Any) -> Iterator[None]:
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"rep_{rep.when}", rep)


@pytest.fixture(scope="session")
def lab_env() -> dict[str, str]:
    """Extra environment for the JupyterLab server and its kernels (override to change it).

    Browser tests check what people see, not timings: the figures time one call per setting."""
    return {"BGKIT_FIGURE_REPEATS": "1"}


@pytest.fixture(scope="session")
def jupyter_lab(tmp_path_factory: pytest.TempPathFactory, lab_env: dict[str, str]) -> Iterator[JupyterLabServer]:
    require_chromium()  # fail fast, before starting a server nobody can look at
    with start_jupyter_lab(tmp_path_factory.mktemp("jupyter-lab"), env=lab_env) as server:
        yield server


@pytest.fixture(scope="session")
def playwright_sync() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        yield p


@pytest.fixture
def chromium_extra_args() -> list[str]:
    """Extra Chromium flags for ``lab_page`` (override in a test module)."""
    return []


@pytest.fixture
def chromium_factory(playwright_sync: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    contexts = []

    def make(extra_args: Sequence[str] = (), **kwargs: Any) -> Any:
        ctx = launch_chromium(playwright_sync, tmp_path_factory.mktemp("chromium-profile"), extra_args, **kwargs)
        contexts.append(ctx)
        return ctx

    yield make
    for ctx in contexts:
        with contextlib.suppress(Exception):
            ctx.close()


@pytest.fixture
def lab_page(request: Any, jupyter_lab: JupyterLabServer, chromium_factory: Any,
             chromium_extra_args: list[str]) -> Iterator[LabPage]:
    ctx = chromium_factory(chromium_extra_args)
    ctx.set_default_timeout(60_000)
    page = ctx.pages[0] if ctx.pages else ctx.new_page()
    lab = LabPage(page, jupyter_lab)
    yield lab
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
        with contextlib.suppress(Exception):
            lab.screenshot(f"{safe}-failure.png")
        with contextlib.suppress(Exception):
            artifact_path(f"{safe}-console.log").write_text("\n".join(lab.console))
        with contextlib.suppress(Exception):
            shutil.copy(jupyter_lab.log_path, artifact_path(f"{safe}-jupyter-lab.log"))
