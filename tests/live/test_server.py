"""bgkit.live.server: kernel websockets without Nagle's algorithm, as a server extension that is
enabled when bgkit is installed (no server flag)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from bgkit.live import server

VENV_BIN = Path(sys.executable).parent


def test_the_connection_class_sets_tcp_nodelay(monkeypatch) -> None:
    from jupyter_server.services.kernels.connection.channels import ZMQChannelsWebsocketConnection
    from traitlets.utils.importstring import import_item

    cls = import_item(server.NODELAY_CLASS)
    assert issubclass(cls, ZMQChannelsWebsocketConnection) and cls.__name__ in server.NODELAY_SERVER_OPTION
    calls: list = []

    class Handler:
        def set_nodelay(self, value: bool) -> None:
            calls.append(value)

    monkeypatch.setattr(ZMQChannelsWebsocketConnection, "connect", lambda self: "connected")
    conn = cls.__new__(cls)
    conn._trait_values["websocket_handler"] = Handler()
    assert conn.connect() == "connected" and calls == [True]


def _serverapp(cls: type) -> SimpleNamespace:
    import logging

    return SimpleNamespace(web_app=SimpleNamespace(settings={"kernel_websocket_connection_class": cls}),
                           log=logging.getLogger("test"))


def test_the_extension_replaces_only_the_stock_class() -> None:
    from jupyter_server.services.kernels.connection.channels import ZMQChannelsWebsocketConnection

    app = _serverapp(ZMQChannelsWebsocketConnection)
    server._load_jupyter_server_extension(app)
    assert app.web_app.settings["kernel_websocket_connection_class"] is server.NoDelayKernelWebsocketConnection

    class Mine(ZMQChannelsWebsocketConnection):  # a server configured with a class of its own
        pass

    app = _serverapp(Mine)
    server._load_jupyter_server_extension(app)
    assert app.web_app.settings["kernel_websocket_connection_class"] is Mine
    assert server._jupyter_server_extension_points() == [{"module": "bgkit.live.server"}]


def test_installing_bgkit_enables_the_extension() -> None:
    """The config file that comes with the package (etc/jupyter/jupyter_server_config.d/bgkit.json)
    is where every Jupyter server of this environment looks for it."""
    from jupyter_core.paths import jupyter_config_path

    found = [Path(d) / "jupyter_server_config.d" / "bgkit.json" for d in jupyter_config_path()]
    found = [p for p in found if p.is_file()]
    assert found, ("bgkit's jupyter_server_config.d/bgkit.json is not installed in any Jupyter config folder "
                   f"({jupyter_config_path()}); reinstall bgkit (pip install -e .)")
    config = json.loads(found[0].read_text())
    assert config == {"ServerApp": {"jpserver_extensions": {"bgkit.live.server": True}}}
    repo_copy = Path(server.__file__).resolve().parents[2] / "jupyter-config" / "jupyter_server_config.d" / "bgkit.json"
    if repo_copy.is_file():
        assert json.loads(repo_copy.read_text()) == config


@pytest.mark.slow
def test_a_server_started_the_usual_way_loads_it(tmp_path) -> None:
    """``jupyter server`` with no flags and an empty user config: the extension is loaded and says so."""
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(tmp_path / "config"), "JUPYTER_RUNTIME_DIR": str(tmp_path / "rt"),
           "JUPYTER_DATA_DIR": str(tmp_path / "data")}
    log = tmp_path / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([str(VENV_BIN / "jupyter"), "server", "--no-browser", "--port=0", "--ip=127.0.0.1",
                                 *(["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else [])],
                                stdout=out, stderr=subprocess.STDOUT, env=env, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 90
        text = ""
        while time.monotonic() < deadline:
            text = log.read_text(errors="replace")
            if "without Nagle's algorithm" in text or proc.poll() is not None:
                break
            time.sleep(0.5)
        assert "bgkit.live.server | extension was successfully loaded" in text, text[-3000:]
        assert "bgkit: kernel websockets without Nagle's algorithm (TCP_NODELAY)" in text
    finally:
        proc.terminate()
        proc.wait(timeout=20)
