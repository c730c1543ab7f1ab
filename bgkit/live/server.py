"""The Jupyter server's side of the live loop: kernel websockets without Nagle's algorithm.

Jupyter server leaves Nagle's algorithm on for the kernel websockets. Each message the kernel
answers with comes after a small "busy" status message, and waits for the browser's delayed ACK
of that one: about 40 ms added to every round trip (measured here: an empty page -> kernel ->
page message takes ~45 ms instead of ~2 ms). For the live camera that is a large share of the
frame budget. :class:`NoDelayKernelWebsocketConnection` turns it off (``TCP_NODELAY``); it is
built on first use, so importing this module does not need ``jupyter_server``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["NODELAY_CLASS", "NODELAY_SERVER_OPTION", "NoDelayKernelWebsocketConnection"]

#: Dotted name of the connection class, for the server's configuration.
NODELAY_CLASS = "bgkit.live.server.NoDelayKernelWebsocketConnection"
#: The same as a ``jupyter lab`` command-line option.
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
