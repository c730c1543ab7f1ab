"""Everything the live widget needs from Jupyter's private internals, in one place, version-checked.

The live camera sends a frame per message; for frames to keep flowing while a notebook cell
runs, the frontend must send widget messages to a kernel *subshell* (a thread of its own), and
the kernel must keep answering that comm on that subshell. Both are recent and partly private:

* **JupyterLab / Notebook 7 (JS)**: "comms over subshells" (``@jupyterlab/services`` >= 4.4
  with a kernel that supports subshells); the page side is the ``compat`` section of
  ``widget.js``, which reports what it found to the kernel.
* **ipykernel (Python)**: subshells exist from ipykernel 7.0. ipykernel 7 reroutes a comm's
  incoming messages to whichever subshell last *sent* on that comm, so after a cell changes a
  synced trait (e.g. ``running``), frames would go to the main thread and wait for the cell to
  finish. :func:`pin_comm_routing` keeps the subshell the page chose, through the private
  ``Comm._reply_subshell_for``; it checks the version and that the method exists, logs what it
  did, and does nothing (frames then pause while a cell runs) where either is missing.

:func:`compat_report` says what is active, for the status line and for the tests.
"""

from __future__ import annotations

import logging
from importlib import metadata
from typing import Any

__all__ = ["IPYKERNEL_MIN", "compat_report", "pin_comm_routing", "version_tuple"]

log = logging.getLogger(__name__)

#: First ipykernel with subshells (and the comm rerouting :func:`pin_comm_routing` undoes).
IPYKERNEL_MIN = (7, 0)


def version_tuple(package: str) -> tuple[int, ...] | None:
    """(major, minor, ...) of an installed distribution, None if it is not installed."""
    try:
        text = metadata.version(package)
    except metadata.PackageNotFoundError:
        return None
    parts = []
    for piece in text.split("."):
        digits = "".join(ch for ch in piece if ch.isdigit())
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts)


def _comm_class_has_routing(comm: Any) -> bool:
    return callable(getattr(type(comm), "_reply_subshell_for", None))


def pin_comm_routing(widget: Any) -> bool:
    """Keep answering ``widget``'s comm on the subshell the page addressed (see module doc).

    Returns True when the routing is pinned; False (and a log line saying why) when this
    ipykernel has no subshells or no ``_reply_subshell_for`` to pin.
    """
    version = version_tuple("ipykernel")
    comm = getattr(widget, "comm", None)
    if version is None or version < IPYKERNEL_MIN:
        log.info("bgkit live: ipykernel %s has no subshells; frames pause while a cell runs", version)
        return False
    if comm is None or not _comm_class_has_routing(comm):
        log.warning("bgkit live: ipykernel %s has no Comm._reply_subshell_for; comm routing left as it is",
                    ".".join(map(str, version)))
        return False
    comm._reply_subshell_for = lambda data, default: default
    log.debug("bgkit live: comm %s answers on the page's subshell", getattr(comm, "comm_id", "?"))
    return True


def compat_report(widget: Any = None) -> dict[str, Any]:
    """What the kernel side offers: versions, and whether the comm routing is pinned for ``widget``."""
    comm = getattr(widget, "comm", None) if widget is not None else None
    pinned = comm is not None and getattr(comm, "_reply_subshell_for", None) is not None and \
        getattr(comm._reply_subshell_for, "__name__", "") == "<lambda>"
    return {
        "ipykernel": version_tuple("ipykernel"),
        "ipywidgets": version_tuple("ipywidgets"),
        "jupyterlab": version_tuple("jupyterlab"),
        "notebook": version_tuple("notebook"),
        "subshells": (version_tuple("ipykernel") or (0,)) >= IPYKERNEL_MIN,
        "comm_routing_pinned": bool(pinned),
    }
