"""Batches: every image and video under a folder through the pipeline, resumable, on one machine or a Ray cluster.

:func:`process_batch` finds every image (:data:`bgkit.io.images.IMAGE_SUFFIXES`) and video
(:data:`VIDEO_SUFFIXES`) under ``input`` (recursively), and writes each one's picture under
``output`` at the same relative path, with the suffix the effect needs (a cut-out of a JPEG
becomes a PNG; of an MP4, a WebM). Photos go through :meth:`bgkit.Pipeline.process`, videos
through :func:`bgkit.process_video`; the model is loaded once::

    import bgkit
    from bgkit.jobs.batch import process_batch

    pipe = bgkit.Pipeline(bgkit.load_segmenter("selfie"), effect="cutout")
    summary = process_batch("shoot/", "shoot_cut/", pipe)
    print(summary)          # 412 done, 0 skipped, 1 failed of 413 files ... files/s

Safe to interrupt and to run again:

* every output is written under a temporary name beside it and renamed when complete
  (:func:`bgkit.io.outputs.atomic_path`), so an interrupted or killed run leaves no partial file
  under a real name; hidden ``.name.1a2b3c4d.partial.ext`` files a killed process could not
  remove are swept at the start of the next run;
* a manifest, ``output/bgkit-manifest.jsonl`` (:data:`MANIFEST_NAME`, JSON Lines, appended and
  flushed line by line; a torn last line is ignored), records each file: input, output, status
  ("done", "skipped" or "failed"), model, settings, timings, size and SHA-256 of the output, error;
* a file whose output exists and is complete is skipped: complete means its size and SHA-256
  match the manifest's record, or, without a record (e.g. made by an older run), that it decodes.
  ``overwrite=True`` (``--overwrite``) redoes everything;
* a bad input (corrupt, unreadable, not an image) is reported, recorded and skipped; it is never
  the end of the batch. The inputs are never written to.

The output folder must not be the input folder nor hold it; it may lie inside it, and is then
left out of the scan (so outputs are never read as inputs).

Engines: ``engine="local"`` (default) keeps one machine busy: ``workers`` photos at a time (2 by
default), each in a thread that decodes, runs the pipeline and encodes, so one photo's decoding
and encoding overlap with another's model (:func:`run_local`). ``engine="ray"`` runs the same
files on a Ray cluster with Ray Data (:mod:`bgkit.jobs.ray_engine`, ``pip install 'bgkit[ray]'``);
both write the same bytes.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import datetime
import errno
import hashlib
import json
import logging
import os
import re
import socket
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np

from ..core.deps import has, require
from ..io.images import ALPHA_SUFFIXES, IMAGE_SUFFIXES, load_image, save_image
from ..io.outputs import OutputError, check_output

__all__ = [
    "MANIFEST_NAME",
    "VIDEO_SUFFIXES",
    "BatchItem",
    "BatchPlan",
    "BatchSummary",
    "FileRecord",
    "Manifest",
    "ModelRef",
    "default_workers",
    "output_name",
    "plan_batch",
    "process_batch",
    "process_item",
    "run_local",
]

log = logging.getLogger(__name__)

#: The manifest's file name, in the output folder.
MANIFEST_NAME = "bgkit-manifest.jsonl"
#: File suffixes read as videos (anything FFmpeg reads; these are the ones a batch picks up).
VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".wmv", ".flv", ".3gp",
                  ".ts", ".mts", ".m2ts")
#: Written for videos whose own suffix bgkit cannot write (cut-outs: :data:`ALPHA_VIDEO_SUFFIX`).
DEFAULT_VIDEO_SUFFIX = ".mp4"
ALPHA_VIDEO_SUFFIX = ".webm"
#: Written for cut-outs of images whose format has no transparency.
ALPHA_IMAGE_SUFFIX = ".png"
#: What :func:`bgkit.io.outputs.partial_name` makes: swept from the output folder at the start of a run.
_PARTIAL = re.compile(r"^\..+\.[0-9a-f]{8}\.partial(\.[^./]+)?$")
#: errno values after which every later write fails too: the batch stops instead of failing each file.
_FATAL_ERRNOS = {errno.ENOSPC, errno.EROFS, errno.EDQUOT}

Status = str  # "done" | "skipped" | "failed"


# ----------------------------------------------------------------------------------------------
# what to do


@dataclass(frozen=True)
class ModelRef:
    """A model to load where the work runs (each Ray worker loads its own): the arguments of
    :func:`bgkit.load_segmenter`."""

    name: str = "auto"
    device: str = "auto"
    weights: str | None = None
    backend: str = "auto"

    def load(self) -> Any:
        """The :class:`bgkit.Segmenter` this names, loaded here."""
        from ..models.segmenter import load_segmenter

        seg = load_segmenter(self.name, device=self.device, weights=self.weights, backend=self.backend)
        log.info("model: %s", seg.describe())
        return seg


@dataclass(frozen=True)
class BatchItem:
    """One input file and its output."""

    input: Path  # absolute
    output: Path  # absolute
    rel: str  # the output's path relative to the output folder (posix), the manifest's key
    kind: str  # "image" or "video"

    def as_row(self) -> dict[str, str]:
        return {"input": str(self.input), "output": str(self.output), "rel": self.rel, "kind": self.kind}

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> "BatchItem":
        return cls(Path(str(row["input"])), Path(str(row["output"])), str(row["rel"]), str(row["kind"]))


@dataclass
class FileRecord:
    """One line of the manifest: what happened to one input file.

    Attributes:
        input: the input file (absolute path).
        output: the output, relative to the output folder (posix).
        kind: "image" or "video".
        status: "done" (written now), "skipped" (a complete output was there) or "failed".
        error: why it failed (names the file and the reason), else None.
        model: ``{"name", "backend", "device"}`` of the model that made it (None if not made).
        settings: :meth:`bgkit.EffectSettings.as_dict`, with ``background_image`` as a content
            hash (None if not made).
        timings: milliseconds: ``read_ms`` (decode), ``process_ms`` (pipeline), ``write_ms``
            (encode, rename, hash); for videos ``process_ms`` is the whole job; plus the
            pipeline's own stages under ``pipeline``.
        bytes, sha256: the output's size and SHA-256 (None if there is none).
        engine: "local" or "ray"; host: where it ran; finished: UTC time, ISO 8601.
    """

    input: str
    output: str
    kind: str
    status: Status
    error: str | None = None
    model: dict[str, str] | None = None
    settings: dict[str, Any] | None = None
    timings: dict[str, Any] = field(default_factory=dict)
    bytes: int | None = None
    sha256: str | None = None
    engine: str = "local"
    host: str = field(default_factory=socket.gethostname)
    finished: str = field(default_factory=lambda: datetime.datetime.now(datetime.timezone.utc)
                          .isoformat(timespec="milliseconds"))

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), separators=(",", ":"), sort_keys=False)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "FileRecord":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


@dataclass
class BatchPlan:
    """What a batch will do: the files to process, those already complete, and those it cannot."""

    input: Path
    output: Path
    todo: list[BatchItem]
    skipped: list[tuple[BatchItem, dict[str, Any] | None]]  # (item, its manifest record or None)
    failed: list[FileRecord]  # known bad before any work (e.g. two inputs with one output)
    ignored: dict[str, int]  # suffix -> how many files were not images or videos
    stale_settings: int = 0  # skipped outputs whose record says other settings or another model

    @property
    def found(self) -> int:
        return len(self.todo) + len(self.skipped) + len(self.failed)


@dataclass
class BatchSummary:
    """What :func:`process_batch` did. ``files_per_s``: files processed (not skipped) per second
    of processing (after the model was loaded)."""

    input: str
    output: str
    manifest: str
    engine: str
    found: int
    done: int
    skipped: int
    failed: int
    ignored: int
    seconds: float
    files_per_s: float
    errors: list[tuple[str, str]] = field(default_factory=list)  # (input, reason)
    stale_settings: int = 0

    @property
    def ok(self) -> bool:
        return self.failed == 0

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def __str__(self) -> str:
        lines = [f"{self.input} -> {self.output}: {self.done} done, {self.skipped} skipped (complete already), "
                 f"{self.failed} failed of {self.found} files; {self.seconds:.1f} s, {self.files_per_s:.2f} files/s "
                 f"({self.engine} engine)"]
        if self.ignored:
            lines.append(f"  ignored {self.ignored} files that are neither images nor videos (by their suffix)")
        if self.stale_settings:
            lines.append(f"  {self.stale_settings} of the skipped outputs were made with other settings or another "
                         "model; pass --overwrite (overwrite=True) to redo them")
        for path, reason in self.errors[:20]:
            lines.append(f"  failed: {path}: {reason}")
        if len(self.errors) > 20:
            lines.append(f"  ... and {len(self.errors) - 20} more failures; see {self.manifest}")
        lines.append(f"  manifest: {self.manifest}")
        return "\n".join(lines)


# ----------------------------------------------------------------------------------------------
# the manifest


class Manifest:
    """The JSON Lines record of a batch: one :class:`FileRecord` per line, appended and flushed
    line by line, so it survives an interrupted or killed run (a torn last line is skipped when
    read, and a new line never joins it).

    While open, the file is locked (``flock``, where the OS has it): a second batch writing to
    the same folder stops with an :class:`OutputError` instead of mixing its files in.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self._file: Any = None

    @staticmethod
    def read(path: str | os.PathLike) -> dict[str, dict[str, Any]]:
        """The last record of each output (key: the output's relative path); unreadable lines
        (a torn last line from a killed run) are skipped with a debug message."""
        p = Path(path)
        records: dict[str, dict[str, Any]] = {}
        if not p.is_file():
            return records
        with open(p, encoding="utf-8", errors="replace") as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                    records[str(rec["output"])] = rec
                except (json.JSONDecodeError, KeyError, TypeError):
                    log.debug("%s:%d: not a whole record (an interrupted write?); ignored", p, n)
        return records

    def open(self) -> "Manifest":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        f = open(self.path, "a+", encoding="utf-8")
        try:
            _lock(f, self.path)
            f.seek(0, os.SEEK_END)
            if f.tell() > 0:
                f.seek(f.tell() - 1)
                if f.read(1) != "\n":  # a torn last line: start on a fresh one
                    f.write("\n")
                    f.flush()
        except BaseException:
            f.close()
            raise
        self._file = f
        return self

    def append(self, record: FileRecord) -> None:
        """Write one record as one line and flush it to the OS."""
        if self._file is None:
            raise RuntimeError("Manifest.append before open()")
        self._file.write(record.to_json() + "\n")
        self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            try:
                os.fsync(self._file.fileno())
            except OSError:  # pragma: no cover - e.g. a filesystem without fsync
                pass
            self._file.close()  # also releases the lock
            self._file = None

    def __enter__(self) -> "Manifest":
        return self.open()

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _lock(f: Any, path: Path) -> None:
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no lock
        return
    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise OutputError(f"{path}: another bgkit batch is writing to {path.parent} now; wait for it to finish, "
                          "or write somewhere else") from None
    except OSError:  # pragma: no cover - a filesystem without locks (some network mounts)
        log.debug("%s: cannot lock (filesystem without flock); going on without", path)


# ----------------------------------------------------------------------------------------------
# planning


def output_name(rel: str, kind: str, effect: str, image_suffix: str | None = None,
                video_suffix: str | None = None) -> str:
    """The output's relative path for input ``rel``: the same path, with the suffix the effect
    needs (``image_suffix``/``video_suffix``, e.g. ".png", override the input's own)."""
    from ..io.video import FORMATS

    stem, suffix = os.path.splitext(rel)
    if kind == "image":
        out = image_suffix or suffix
        if effect == "cutout" and out.lower() not in ALPHA_SUFFIXES:
            out = ALPHA_IMAGE_SUFFIX
    else:
        out = video_suffix or suffix
        fmt = FORMATS.get(out.lower())
        if fmt is None:
            out = ALPHA_VIDEO_SUFFIX if effect == "cutout" else DEFAULT_VIDEO_SUFFIX
        elif effect == "cutout" and fmt.alpha_video is None:
            out = ALPHA_VIDEO_SUFFIX
    return stem + out


def _suffix_arg(value: str | None, allowed: Sequence[str], what: str) -> str | None:
    if value is None:
        return None
    s = value.lower() if value.startswith(".") else "." + value.lower()
    if s not in allowed:
        raise ValueError(f"{what} must be one of {', '.join(a.lstrip('.') for a in allowed)}; got {value!r}")
    return s


def _inside(child: Path, parent: Path) -> bool:
    return child == parent or parent in child.parents


def _scan(root: Path, exclude: Path | None) -> tuple[list[tuple[Path, str]], dict[str, int]]:
    """(file, kind) under ``root`` in relative-path order (hidden files and folders, and
    ``exclude``, left out), and suffix -> count of the files that are neither."""
    found: list[tuple[Path, str]] = []
    ignored: dict[str, int] = collections.Counter()
    if root.is_file():
        walk: Iterable[tuple[str, list[str], list[str]]] = [(str(root.parent), [], [root.name])]
    else:
        walk = os.walk(root, followlinks=False, onerror=lambda e: log.warning("cannot read %s: %s", e.filename,
                                                                             e.strerror))
    for folder, dirs, files in walk:
        here = Path(folder)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")
                         and not (exclude is not None and (here / d).resolve() == exclude))
        for name in files:
            if name.startswith("."):
                continue
            suffix = os.path.splitext(name)[1].lower()
            kind = "image" if suffix in IMAGE_SUFFIXES else "video" if suffix in VIDEO_SUFFIXES else None
            if kind is None:
                ignored[suffix or "(none)"] += 1
            else:
                found.append((here / name, kind))
    found.sort(key=lambda fk: fk[0].as_posix())
    return found, dict(ignored)


def check_folders(input: str | os.PathLike, output: str | os.PathLike) -> tuple[Path, Path, Path | None]:
    """``(input, output, excluded)`` resolved, after checking that the batch can run: the input
    exists, the output folder is not the input nor holds it, and can be written. ``excluded``:
    the output folder when it lies inside the input folder (left out of the scan), else None."""
    src = Path(input).expanduser()
    if not src.exists():
        raise FileNotFoundError(f"no such input folder or file: {src}")
    src = src.resolve()
    dst = Path(output).expanduser()
    if dst.exists() and not dst.is_dir():
        raise OutputError(f"{dst}: exists and is a file; the output of a batch is a folder")
    check_output(dst, overwrite=True, directory=True)  # writable; an existing folder is fine (resumed)
    dst = dst.resolve()
    if dst == src:
        raise OutputError(f"{dst}: the output folder is the input folder; write somewhere else "
                          "(the inputs are never replaced)")
    if src.is_dir() and _inside(src, dst):
        raise OutputError(f"{dst}: the output folder holds the input folder {src}, so outputs could land on "
                          "inputs; pick an output folder outside it")
    excluded = dst if src.is_dir() and _inside(dst, src) else None
    return src, dst, excluded


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """The SHA-256 of a file's bytes (hex), read ``chunk`` bytes (default 1 MiB) at a time."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _decodes(path: Path, kind: str) -> bool:
    """True if ``path`` reads back as a whole picture (images: every pixel; videos: the
    container, and its first frame)."""
    try:
        if kind == "image":
            from PIL import Image

            with Image.open(path) as im:
                im.load()
            return True
        from ..io.video import _open_input

        with _open_input(path) as c:
            next(c.decode(video=0))
        return True
    except Exception as exc:  # noqa: BLE001 - any failure to read it back means "redo it"
        log.debug("%s: does not decode (%s); it will be made again", path, exc)
        return False


def _complete(item: BatchItem, record: dict[str, Any] | None) -> bool:
    """Is ``item``'s output there and whole? With a record: its size and SHA-256 match (else it
    changed after it was written: redo). Without one: it decodes."""
    try:
        size = item.output.stat().st_size
    except OSError:
        return False
    if not item.output.is_file():
        return False
    if record is not None and record.get("status") in ("done", "skipped") and record.get("sha256"):
        if record.get("bytes") != size:
            return False
        return sha256_file(item.output) == record["sha256"]
    return _decodes(item.output, item.kind)


def settings_record(settings: Any) -> dict[str, Any]:
    """The settings as the manifest records them: :meth:`EffectSettings.as_dict`, with the
    background picture as ``"sha256:<hex>"`` of its pixels (None: no picture)."""
    d = settings.as_dict()
    img = settings.background_image
    d["background_image"] = None if img is None else "sha256:" + hashlib.sha256(
        np.ascontiguousarray(img).tobytes() + repr(img.shape).encode()).hexdigest()
    return d


def plan_batch(input: str | os.PathLike, output: str | os.PathLike, settings: Any, *, overwrite: bool = False,
               image_suffix: str | None = None, video_suffix: str | None = None, model_name: str | None = None,
               threads: int = 2) -> BatchPlan:
    """Scan ``input``, map each file to its output, and sort out what is complete already.

    Args:
        input: a folder (searched recursively) or one file.
        output: the output folder (see :func:`check_folders` for what is allowed).
        settings: the :class:`bgkit.EffectSettings` the batch draws with (the effect picks the
            suffixes; a skipped output made with other settings is counted in ``stale_settings``).
        overwrite: plan every file, complete or not.
        image_suffix, video_suffix: write images/videos in this format (".png", "jpg", ...;
            None: the input's own, where the effect allows it).
        model_name: the model that will run (for ``stale_settings``; None: not compared).
        threads: how many threads check existing outputs (hashing, decoding).
    """
    from ..io.video import FORMATS

    image_suffix = _suffix_arg(image_suffix, IMAGE_SUFFIXES, "image format")
    video_suffix = _suffix_arg(video_suffix, tuple(FORMATS), "video format")
    if settings.effect == "cutout" and video_suffix is not None and FORMATS[video_suffix].alpha_video is None:
        raise ValueError(f"video format {video_suffix.lstrip('.')} cannot be transparent, so it cannot hold cut-outs; "
                         "use webm, mov or mkv")
    src, dst, excluded = check_folders(input, output)
    if excluded is not None:
        log.info("the output folder %s is inside the input folder: it is left out of the scan", dst)
    files, ignored = _scan(src, excluded)
    base = src.parent if src.is_file() else src
    items: list[BatchItem] = []
    failed: list[FileRecord] = []
    owners: dict[str, Path] = {}
    for path, kind in files:
        rel = output_name(path.relative_to(base).as_posix(), kind, settings.effect, image_suffix, video_suffix)
        item = BatchItem(path, dst / rel, rel, kind)
        first = owners.get(rel.lower())
        if first is not None:  # e.g. a.jpg and a.png, both cut out to a.png
            failed.append(FileRecord(str(path), rel, kind, "failed", error=(
                f"{path}: its output {rel} is also the output of {first.name}; rename one of them, or pass "
                "--image-format/--video-format to keep the suffixes apart")))
            continue
        owners[rel.lower()] = path
        items.append(item)
    records = {} if overwrite else Manifest.read(dst / MANIFEST_NAME)
    todo: list[BatchItem] = []
    skipped: list[tuple[BatchItem, dict[str, Any] | None]] = []
    candidates = [it for it in items if not overwrite and it.output.exists()]
    complete: dict[Path, bool] = {}
    if candidates:
        with ThreadPoolExecutor(max(1, threads), thread_name_prefix="bgkit-check") as pool:
            for it, ok in zip(candidates, pool.map(lambda it: _complete(it, records.get(it.rel)), candidates)):
                complete[it.output] = ok
    stale = 0
    current = settings_record(settings)
    for it in items:
        if complete.get(it.output):
            rec = records.get(it.rel)
            skipped.append((it, rec))
            if rec is not None and rec.get("settings") is not None and (
                    rec["settings"] != current
                    or (model_name not in (None, "auto") and (rec.get("model") or {}).get("name") != model_name)):
                stale += 1
        else:
            if it.output.exists() and not overwrite:
                log.info("%s: exists but is not complete (or changed since it was written); making it again", it.output)
            todo.append(it)
    return BatchPlan(src, dst, todo, skipped, failed, ignored, stale)


def sweep_partials(folder: Path) -> int:
    """Remove the hidden ``.name.1a2b3c4d.partial.ext`` files (or folders) a killed writer left
    under ``folder``; returns how many. Only safe while no other writer uses the folder (the
    manifest's lock sees to that)."""
    import shutil

    n = 0
    for here, dirs, files in os.walk(folder):
        for name in files + dirs:
            if _PARTIAL.match(name):
                p = Path(here) / name
                try:
                    shutil.rmtree(p) if p.is_dir() else p.unlink()
                    n += 1
                except OSError as exc:  # pragma: no cover - permissions
                    log.warning("%s: cannot remove a leftover partial file: %s", p, exc)
        dirs[:] = [d for d in dirs if not _PARTIAL.match(d)]
    return n


# ----------------------------------------------------------------------------------------------
# one file


def _error_text(item: BatchItem, exc: BaseException) -> str:
    msg = str(exc) or type(exc).__name__
    if str(item.input) not in msg and item.input.name not in msg:
        msg = f"{item.input}: {msg}"
    return msg if isinstance(exc, (ValueError, OSError)) else f"{msg} ({type(exc).__name__})"


def _fatal(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in _FATAL_ERRNOS


def model_record(segmenter: Any) -> dict[str, str]:
    return {"name": segmenter.name, "backend": str(segmenter.backend), "device": str(segmenter.device)}


def _ms(t0: float, t1: float) -> float:
    return round((t1 - t0) * 1000.0, 2)


def _write_image(picture: np.ndarray, path: Path) -> tuple[int, str, float]:
    """Encode and write (atomically), then hash: (bytes, sha256, ms)."""
    t0 = time.perf_counter()
    save_image(picture, path)
    size, digest = path.stat().st_size, sha256_file(path)
    return size, digest, _ms(t0, time.perf_counter())


def process_item(pipe: Any, item: BatchItem, *, engine: str = "local", audio: bool = True,
                 progress: bool = False, settings_rec: dict[str, Any] | None = None) -> FileRecord:
    """Make one output, one step after another (decode, pipeline, encode): the sequential path,
    used for videos and by each Ray worker. A failure of this file is returned as a "failed"
    record; an interrupt, or an error every later file would hit too (disk full), is raised."""
    rec = FileRecord(str(item.input), item.rel, item.kind, "failed", engine=engine,
                     model=model_record(pipe.segmenter), settings=settings_rec or settings_record(pipe.settings))
    try:
        if item.kind == "video":
            from .video import process_video

            t0 = time.perf_counter()
            item.output.parent.mkdir(parents=True, exist_ok=True)  # process_video writes beside the output
            summary = process_video(item.input, item.output, pipe, audio=audio, progress=progress, overwrite=True)
            t1 = time.perf_counter()
            rec.bytes, rec.sha256 = item.output.stat().st_size, sha256_file(item.output)
            rec.timings = {"process_ms": _ms(t0, t1), "write_ms": _ms(t1, time.perf_counter()),
                           "frames": summary.frames, "ms_per_frame": round(summary.ms_per_frame, 2)}
        else:
            t0 = time.perf_counter()
            rgb = load_image(item.input)
            t1 = time.perf_counter()
            result = pipe.process(rgb)
            t2 = time.perf_counter()
            rec.bytes, rec.sha256, write_ms = _write_image(result.picture, item.output)
            rec.timings = {"read_ms": _ms(t0, t1), "process_ms": _ms(t1, t2), "write_ms": write_ms,
                           "pipeline": {k: round(v, 2) for k, v in result.segmentation.timings.items()}}
        rec.status = "done"
    except Exception as exc:  # noqa: BLE001 - one bad file is reported, never the end of the batch
        if _fatal(exc):
            raise
        rec.error = _error_text(item, exc)
    return rec


# ----------------------------------------------------------------------------------------------
# the local engine


def default_workers() -> int:
    """Photos the local engine processes at once by default: one more than the CPUs this process
    may use (at most 8), so a photo being decoded or written never leaves a core idle. On the
    2-core development machine, 3 gave 1.26-1.37x the naive loop's files/s where 2 gave 1.09-1.19x
    (benchmarks/batch_fps.py, selfie, 640x480 JPEGs, quiet rounds)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return max(2, min(8, cpus + 1))


def run_local(pipe: Any, items: Sequence[BatchItem], emit: Callable[[FileRecord], None], *, workers: int = 2,
              audio: bool = True, progress: bool = False,
              keep: Callable[[FileRecord], None] | None = None) -> None:
    """Process ``items`` on this machine, calling ``emit`` (in this thread, in the items' order)
    with each one's record as it is finished.

    Photos run ``workers`` at a time, each in a thread doing decode -> pipeline -> encode and
    write (:func:`process_item`): while one photo is decoded or encoded (PIL and zlib release
    the GIL), another one's pipeline runs (torch and the network backends release it too), so
    the CPU (or the GPU) stays busy. The workers share torch's threads: each runs its torch ops
    on ``torch.get_num_threads() // workers`` of them (at least 1; set in the worker threads,
    and the process's setting is as it was when this returns) instead of all of them fighting
    over the cores.
    Up to ``2 * workers`` photos are queued ahead. A video runs
    in this thread when its turn comes, after the photos before it (its frames are one
    :class:`bgkit.Stream`, in order; :func:`bgkit.process_video`).

    On an interrupt (or an exception from ``emit``) the photos not started are dropped, those
    under way finish (whole files, never partial ones), each of their records goes to ``keep``
    (e.g. the manifest; not ``emit``), and the exception propagates.
    """
    import torch

    if workers < 1:
        raise ValueError(f"workers must be at least 1; got {workers}")
    settings_rec = settings_record(pipe.settings)
    queued = 2 * workers
    threads = torch.get_num_threads()  # restored at the end: setting it in a thread changes the default too
    share = max(1, threads // workers)  # torch threads of each worker (OpenMP's count is per thread)
    pool = ThreadPoolExecutor(workers, thread_name_prefix="bgkit-batch", initializer=torch.set_num_threads,
                              initargs=(share,))
    inflight: collections.deque[Future] = collections.deque()

    def drain(down_to: int) -> None:
        while inflight and (len(inflight) > down_to or inflight[0].done()):
            emit(inflight.popleft().result())

    stopped = False
    try:
        for item in items:
            if item.kind == "video":
                drain(0)
                emit(process_item(pipe, item, audio=audio, progress=progress, settings_rec=settings_rec))
                continue
            inflight.append(pool.submit(process_item, pipe, item, settings_rec=settings_rec))
            drain(queued - 1)
        drain(0)
    except BaseException:
        stopped = True
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)  # photos under way finish: whole files, never partial
        torch.set_num_threads(threads)
        if stopped and keep is not None:
            for fut in inflight:
                if not fut.cancelled() and fut.exception() is None:
                    keep(fut.result())


# ----------------------------------------------------------------------------------------------
# the batch


def _progress_bar(total: int, enabled: bool) -> Any:
    if not enabled:
        return None
    if not has("tqdm"):
        log.warning("no progress bar: the 'tqdm' package is not installed (pip install 'bgkit[video]')")
        return None
    tqdm = require("tqdm.auto").tqdm
    return tqdm(total=total, unit="file", desc="bgkit batch", file=sys.stderr, dynamic_ncols=True, smoothing=0.1)


@contextlib.contextmanager
def _logging_beside(bar: Any) -> Iterator[None]:
    """While a progress bar shows, bgkit's console log lines are written above it, not through it."""
    if bar is None:
        yield
        return
    from tqdm.contrib.logging import logging_redirect_tqdm

    with logging_redirect_tqdm(loggers=[logging.getLogger("bgkit")]):
        yield


def process_batch(
    input: str | os.PathLike,
    output: str | os.PathLike,
    model: Any = "auto",
    settings: Any = None,
    *,
    overwrite: bool = False,
    engine: str = "local",
    workers: int | None = None,
    image_suffix: str | None = None,
    video_suffix: str | None = None,
    audio: bool = True,
    progress: bool = True,
    on_file: Callable[[FileRecord], None] | None = None,
    ray: dict[str, Any] | None = None,
) -> BatchSummary:
    """Apply one effect to every image and video under ``input``; outputs under ``output``.

    Args:
        input: a folder (searched recursively; hidden files and folders are left out) or a file.
        output: the output folder: the same relative paths, with the suffix the effect needs
            (see :func:`output_name`). Must not be ``input`` nor hold it; inside it, it is left
            out of the scan. Holds the manifest, :data:`MANIFEST_NAME`.
        model: a :class:`bgkit.Pipeline` (its segmenter and settings), a :class:`bgkit.Segmenter`,
            or a model to load -- a name ("auto", "selfie", ...) or a :class:`ModelRef`. The Ray
            engine loads the model on each worker: given a Pipeline or Segmenter, it loads the
            same registry model with the same backend (official weights; pass a ``ModelRef``
            with ``weights`` for others).
        settings: the :class:`bgkit.EffectSettings` to draw with (default: the pipeline's, else
            ``EffectSettings()``).
        overwrite: redo every file; otherwise a complete output is skipped (see the module doc).
        engine: "local" (this machine) or "ray" (a Ray cluster, see :mod:`bgkit.jobs.ray_engine`).
        workers: photos processed at once: local engine, threads (default
            :func:`default_workers`, one more than the CPUs; on 2 cores about 1.3x the files/s of
            one after another, see benchmarks/batch_fps.py); Ray engine, model replicas (default:
            one per CPU, or GPU, of the cluster).
        image_suffix, video_suffix: output formats (e.g. ".png", "mp4"); None keeps the input's
            where the effect allows it.
        audio: keep videos' sound.
        progress: a progress bar on stderr (files/s, time left).
        on_file: called with each file's :class:`FileRecord` once it is in the manifest (in the
            calling thread; an exception from it, e.g. KeyboardInterrupt, stops the batch as an
            interrupt does).
        ray: Ray engine options (see :func:`bgkit.jobs.ray_engine.run_ray`): ``address``,
            ``cpus_per_worker``, ``gpus_per_worker``, ``batch_size``.

    Returns:
        A :class:`BatchSummary` (``seconds``: from the first file on, after the model is loaded
        here; with Ray, including starting the workers and loading the model on each). Files
        that failed are in it and in the manifest; the batch never stops for one.

    Raises:
        FileNotFoundError: ``input`` does not exist.
        bgkit.OutputError: ``output`` is ``input``, holds it, is a file, cannot be written, or
            another batch is writing to it.
        ValueError: a bad option (the message names it).
        OSError: the output disk is full or read-only (every later file would fail too).
        KeyboardInterrupt: interrupted; files finished so far are complete and recorded, and no
            partial file is left behind.
    """
    from ..io.video import FORMATS
    from ..models.segmenter import Segmenter
    from ..pipeline import EffectSettings, Pipeline

    if engine not in ("local", "ray"):
        raise ValueError(f"engine must be 'local' or 'ray'; got {engine!r}")
    if settings is None:
        settings = model.settings if isinstance(model, Pipeline) else EffectSettings()
    if not isinstance(settings, EffectSettings):
        raise TypeError(f"settings must be a bgkit.EffectSettings; got {type(settings).__name__}")
    if isinstance(model, str):
        model = ModelRef(model)
    if not isinstance(model, (Pipeline, Segmenter, ModelRef)):
        raise TypeError("model must be a bgkit.Pipeline, a bgkit.Segmenter, a model name or a ModelRef; "
                        f"got {type(model).__name__}")
    if workers is not None and workers < 1:
        raise ValueError(f"workers must be at least 1; got {workers}")
    _suffix_arg(image_suffix, IMAGE_SUFFIXES, "image format")
    _suffix_arg(video_suffix, tuple(FORMATS), "video format")
    seg = model.segmenter if isinstance(model, Pipeline) else model if isinstance(model, Segmenter) else None
    name = seg.name if seg is not None else model.name  # type: ignore[union-attr]
    _, dst, _ = check_folders(input, output)
    manifest = Manifest(dst / MANIFEST_NAME).open()  # locked from here on: one batch per output folder
    counts = {"done": 0, "failed": 0}
    errors: list[tuple[str, str]] = []
    bar = None
    t0 = time.perf_counter()
    seconds = 0.0
    try:
        swept = sweep_partials(dst)
        if swept:
            log.info("removed %d partial file(s) left by an interrupted run in %s", swept, dst)
        plan = plan_batch(input, output, settings, overwrite=overwrite, image_suffix=image_suffix,
                          video_suffix=video_suffix, model_name=name, threads=workers or default_workers())
        for it, prev in plan.skipped:
            if prev is None:  # verified by decoding: record it, so the next check is by its hash
                manifest.append(FileRecord(str(it.input), it.rel, it.kind, "skipped", engine=engine,
                                           bytes=it.output.stat().st_size, sha256=sha256_file(it.output)))

        def emit(rec: FileRecord) -> None:
            manifest.append(rec)
            counts["done" if rec.status == "done" else "failed"] += 1
            if rec.status == "failed":
                errors.append((rec.input, rec.error or "failed"))
                log.warning("bgkit batch: failed: %s (left out; the batch goes on)", rec.error)
            if bar is not None:
                bar.update(1)
                if counts["failed"]:
                    bar.set_postfix(failed=counts["failed"], refresh=False)
            if on_file is not None:
                on_file(rec)

        for rec in plan.failed:
            rec.engine = engine
            emit(rec)
        if plan.todo:
            if engine == "ray":
                from .ray_engine import run_ray

                ref = model if isinstance(model, ModelRef) else ModelRef(
                    seg.name, device=seg.device.type, backend=str(seg.backend))  # type: ignore[union-attr]
                bar = _progress_bar(len(plan.todo), progress)
                t0 = time.perf_counter()
                records = run_ray(plan.todo, ref, settings, workers=workers, audio=audio, **(ray or {}))
                try:
                    with _logging_beside(bar):
                        for rec in records:
                            emit(rec)
                except BaseException:
                    records.close()  # stops the Ray job (and Ray, if started for it)
                    sweep_partials(dst)  # what a stopped worker may have left here
                    raise
            else:
                if isinstance(model, Pipeline):
                    pipe = model if model.settings is settings else Pipeline(
                        model.segmenter, settings, max_pixels=model.max_pixels)
                else:
                    pipe = Pipeline(model.load() if isinstance(model, ModelRef) else seg, settings)
                bar = _progress_bar(len(plan.todo), progress)
                t0 = time.perf_counter()
                with _logging_beside(bar):
                    run_local(pipe, plan.todo, emit, workers=workers or default_workers(), audio=audio, progress=progress,
                              keep=manifest.append)
        seconds = time.perf_counter() - t0
    finally:
        if bar is not None:
            bar.close()
        manifest.close()
    processed = counts["done"] + counts["failed"] - len(plan.failed)
    return BatchSummary(
        input=str(plan.input), output=str(plan.output), manifest=str(manifest.path), engine=engine,
        found=plan.found, done=counts["done"], skipped=len(plan.skipped), failed=counts["failed"],
        ignored=sum(plan.ignored.values()), seconds=seconds,
        files_per_s=processed / seconds if seconds > 0 else 0.0, errors=errors, stale_settings=plan.stale_settings,
    )
