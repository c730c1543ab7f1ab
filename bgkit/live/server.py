"""The Jupyter server's side of the live loop: kernel websockets without Nagle's algorithm.

Jupyter server leaves Nagle's algorithm on for the kernel websockets. Each message the kernel
answers with comes after a small "busy" status message, and waits for the browser's delayed ACK
of that one: about 40 ms added to every round trip (measured here: an empty page -> kernel ->
page message takes ~45 ms instead of ~2 ms). For the live camera that is a large share of the
frame budget. :class:`NoDelayKernelWebsocketConnection` turns it off (``TCP_NODELAY``).

This module is also a Jupyter server extension, enabled when bgkit is installed (the file
``etc/jupyter/jupyter_server_config.d/bgkit.json`` that comes with the package): in every
JupyterLab or Notebook 7 server of the environment it puts that connection class in place of the
stock one, so no server flag is needed. A server configured with a connection class of its own
(``ServerApp.kernel_websocket_connection_class``, a kernel gateway) is left as it is. Disable it
with ``jupyter server extension disable bgkit.live.server``. Importing this module does not
need ``jupyter_server``.
"""

from __future__ import annotations

import logging
from typing import Any

__all__ = ["EXTENSION", "NODELAY_CLASS", "NODELAY_SERVER_OPTION", "NoDelayKernelWebsocketConnection"]

#: This server extension's module name (as enabled in ``jupyter_server_config.d/bgkit.json``).
EXTENSION = "bgkit.live.server"
#: Dotted name of the connection class, for the server's configuration.
NODELAY_CLASS = "bgkit.live.server.NoDelayKernelWebsocketConnection"
#: The same as a ``jupyter lab`` command-line option (not needed where the extension is enabled).
NODELAY_SERVER_OPTION = f"--ServerApp.kernel_websocket_connection_class={NODELAY_CLASS}"


def _make_nodelay_connection_class() -> type:
    from jupyter_server.services.kernels.connection.channels import ZMQChannelsWebsocketConnection

    class NoDelayKernelWebsocketConnection(ZMQChannelsWebsocketConnection):
        """Jupyter server's kernel websocket with TCP_NODELAY (Nagle's algorithm off)."""

        def connect(self):  # type: ignore[override]
            try:
                self.websocket_handler.set_nodelay(True)
            except Exception:  # noqa: BLE001 - an optimisation only
                pass
            return super().connect()

    NoDelayKernelWebsocketConnection.__module__ = __name__
    NoDelayKernelWebsocketConnection.__qualname__ = "NoDelayKernelWebsocketConnection"
    return NoDelayKernelWebsocketConnection


def __getattr__(name: str) -> Any:
    if name == "NoDelayKernelWebsocketConnection":
        cls = _make_nodelay_connection_class()
        globals()[name] = cls
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# ----------------------------------------------------------------------------------------------
# the server extension


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": EXTENSION}]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    """Use :class:`NoDelayKernelWebsocketConnection` where the server has the stock connection class."""
    from jupyter_server.services.kernels.connection.channels import ZMQChannelsWebsocketConnection

    log = getattr(serverapp, "log", logging.getLogger(__name__))
    settings = serverapp.web_app.settings
    current = settings.get("kernel_websocket_connection_class")
    nodelay = __getattr__("NoDelayKernelWebsocketConnection")
    if current is ZMQChannelsWebsocketConnection:
        settings["kernel_websocket_connection_class"] = nodelay
        log.info("bgkit: kernel websockets without Nagle's algorithm (TCP_NODELAY), for the live camera")
    elif current is not nodelay:
        name = getattr(current, "__qualname__", repr(current))
        log.info("bgkit: the server has its own kernel websocket connection class (%s); left as it is", name)
