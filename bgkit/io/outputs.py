"""Writing outputs safely: under a temporary name, moved into place only when complete.

Every file bgkit writes (pictures, videos, frame folders, downloaded weights, exported models,
manifests) goes through :func:`atomic_path`, so a failed, interrupted or killed run never leaves
a half-written file under the real name, and an existing output is only replaced once the new
one is complete.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from pathlib import Path
from typing import Iterator

__all__ = ["OutputError", "atomic_path", "check_output", "partial_name"]


class OutputError(ValueError):
    """An output that cannot (or must not) be written: the message names the path and the reason."""


def partial_name(path: Path) -> Path:
    """A unique hidden temporary name beside ``path`` with the same suffix (``.name.1a2b3c4d.partial.ext``)."""
    return path.with_name(f".{path.stem}.{uuid.uuid4().hex[:8]}.partial{path.suffix}")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, directory: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` when the block ends normally.

    On any exception (``KeyboardInterrupt`` and ``SystemExit`` included) the temporary file or
    folder is removed and the exception propagates; ``path`` is untouched. ``directory=True``
    makes (and yields) a temporary folder; an existing folder at ``path`` is replaced as a whole.
    The temporary name is created with the process's normal permissions (umask respected).
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = partial_name(final)
    if directory:
        tmp.mkdir()
    try:
        yield tmp
        if directory and final.is_dir():
            old = partial_name(final)
            os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
    except BaseException:
        try:  # clean up, but never let a failing clean-up hide the real error
            if tmp.is_dir():
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                tmp.unlink(missing_ok=True)
        except OSError:
            pass
        raise


def check_output(path: str | os.PathLike, *, inputs: tuple[str | os.PathLike, ...] = (), overwrite: bool = False,
                 directory: bool = False) -> Path:
    """Check up front that ``path`` can be written, before any work is done.

    Raises :class:`OutputError` when ``path`` is one of ``inputs``; exists and ``overwrite`` is
    False; is a folder where a file is wanted (or the reverse); lies under an existing file; or
    its folder cannot be created or written. Returns ``path`` as a ``Path``.
    """
    p = Path(path).expanduser()
    for src in inputs:
        try:
            same = Path(src).expanduser().resolve() == p.resolve()
        except OSError:
            same = False
        if same:
            raise OutputError(f"{p}: the output is the input; write somewhere else (the input is never replaced)")
    if p.exists():
        if directory and not p.is_dir():
            raise OutputError(f"{p}: exists and is a file, but a folder is wanted here")
        if not directory and p.is_dir():
            raise OutputError(f"{p}: is a folder; give a file name (e.g. {p / 'out.png'})")
        if not overwrite and (not directory or any(p.iterdir())):
            raise OutputError(f"{p}: already exists; pass --overwrite (overwrite=True) to replace it")
    parent = p.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise OutputError(f"{p}: cannot be created because {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"{p}: cannot write in {parent} (permission denied)")
    return p
