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

* **ipykernel's busy/idle status** (private ``Kernel._publish_status``): the kernel wraps every
  incoming message in a "busy" and an "idle" status message to every frontend, so each camera
  frame cost three messages back instead of one, and the browser re-drew its kernel indicators
  twice a frame. :func:`quiet_frame_status` leaves them out for the live widget's frame messages
  only (its custom ``frame`` and ``ping`` messages, which are sent without callbacks; settings
  changes and everything else keep theirs, which ipywidgets' message throttling waits for).
"""

from __future__ import annotations

import logging
from importlib import metadata
from typing import Any

__all__ = ["IPYKERNEL_MIN", "QUIET_MESSAGES", "compat_report", "pin_comm_routing", "quiet_frame_status",
           "unquiet", "version_tuple"]

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


#: The live widget's custom messages that get no busy/idle status (see :func:`quiet_frame_status`).
QUIET_MESSAGES = frozenset({"frame", "ping"})


def _kernel() -> Any:
    try:
        from ipykernel.kernelbase import Kernel
    except ImportError:
        return None
    return Kernel.instance() if Kernel.initialized() else None


def _is_quiet(msg: Any, quiet: set) -> bool:
    if not isinstance(msg, dict) or msg.get("msg_type", msg.get("header", {}).get("msg_type")) != "comm_msg":
        return False
    content = msg.get("content") or {}
    data = content.get("data") or {}
    inner = data.get("content") if isinstance(data, dict) else None
    return (content.get("comm_id") in quiet and data.get("method") == "custom" and isinstance(inner, dict)
            and inner.get("type") in QUIET_MESSAGES)


def quiet_frame_status(widget: Any) -> bool:
    """No busy/idle status messages around ``widget``'s frame messages (see module doc).

    Patches this kernel's ``_publish_status`` once (a wrapper that asks :func:`_is_quiet`) and adds
    the widget's comm to its quiet set. Returns True when active; False (and a log line saying
    why) outside an ipykernel, or where ``_publish_status``/``get_parent`` are missing.
    """
    kernel, comm = _kernel(), getattr(widget, "comm", None)
    comm_id = getattr(comm, "comm_id", None)
    if kernel is None or comm_id is None:
        log.debug("bgkit live: not in an ipykernel with a comm; status messages left as they are")
        return False
    publish, get_parent = getattr(kernel, "_publish_status", None), getattr(kernel, "get_parent", None)
    if not callable(publish) or not callable(get_parent):
        log.warning("bgkit live: ipykernel %s has no _publish_status/get_parent; every frame keeps its busy/idle "
                    "status messages", ".".join(map(str, version_tuple("ipykernel") or ())))
        return False
    quiet = getattr(kernel, "_bgkit_quiet_comms", None)
    if quiet is None:
        quiet = kernel._bgkit_quiet_comms = set()

        def _publish_status(status: str, channel: str, parent: Any = None) -> Any:
            if status in ("busy", "idle") and quiet and _is_quiet(parent or get_parent(channel), quiet):
                return None
            return publish(status, channel, parent)

        kernel._publish_status = _publish_status
        log.debug("bgkit live: frame messages without busy/idle status")
    quiet.add(comm_id)
    return True


def unquiet(widget: Any) -> None:
    """Undo :func:`quiet_frame_status` for ``widget`` (its comm is closing)."""
    kernel = _kernel()
    quiet = getattr(kernel, "_bgkit_quiet_comms", None) if kernel is not None else None
    if quiet is not None:
        quiet.discard(getattr(getattr(widget, "comm", None), "comm_id", None))


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
        "frame_status_quiet": comm is not None and getattr(comm, "comm_id", None) in (
            getattr(_kernel(), "_bgkit_quiet_comms", None) or ()),
    }
