"""Model files that bgkit downloads once and keeps in a local cache.

The cache directory is ``$BGKIT_CACHE_DIR`` if set, else ``~/.cache/bgkit``. Every file is checked
against a pinned SHA-256 before it is used; files are written atomically (temporary file + rename),
so a killed download never leaves a half-written model behind.

MediaPipe's selfie segmentation models (Apache-2.0, Google) are fetched, in this order, from:

1. the cache;
2. Google's official URL (``storage.googleapis.com/mediapipe-assets``), with a short timeout;
3. an installed ``mediapipe`` Python package, if there is one;
4. the ``mediapipe==0.10.14`` wheel from PyPI (``python -m pip download --no-deps``), which ships
   both ``.tflite`` files under ``mediapipe/modules/selfie_segmentation/``.

Set ``BGKIT_OFFLINE=1`` to skip the network steps.
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

from .models.registry import WeightsUnavailableError

__all__ = [
    "AssetUnavailableError",
    "SELFIE_FILES",
    "SelfieFile",
    "cache_dir",
    "is_cached",
    "selfie_model_path",
    "sha256_of",
]

log = logging.getLogger(__name__)

#: The PyPI distribution whose wheel carries the selfie models, and the wheel we ask pip for.
#: The .tflite files are platform independent; pinning one platform makes the fallback work from
#: any Python version and operating system (pip only downloads, it installs nothing).
MEDIAPIPE_REQUIREMENT = "mediapipe==0.10.14"
MEDIAPIPE_WHEEL_PLATFORM = "manylinux2014_x86_64"
MEDIAPIPE_WHEEL_PYTHON = "3.11"
#: Seconds allowed for the whole ``pip download`` (the wheel is about 36 MB).
PIP_DOWNLOAD_TIMEOUT_S = 600.0


class AssetUnavailableError(WeightsUnavailableError):
    """A model file is not in the cache and could not be fetched (says what was tried)."""


@dataclass(frozen=True)
class SelfieFile:
    """One MediaPipe selfie segmentation model file."""

    filename: str
    url: str
    sha256: str
    wheel_member: str
    input_size: tuple[int, int]  # (height, width)


SELFIE_FILES: dict[str, SelfieFile] = {
    "general": SelfieFile(
        filename="selfie_segmentation.tflite",
        url="https://storage.googleapis.com/mediapipe-assets/selfie_segmentation.tflite",
        sha256="9ee168ec7c8f2a16c56fe8e1cfbc514974cbbb7e434051b455635f1bd1462f5c",
        wheel_member="mediapipe/modules/selfie_segmentation/selfie_segmentation.tflite",
        input_size=(256, 256),
    ),
    "landscape": SelfieFile(
        filename="selfie_segmentation_landscape.tflite",
        url="https://storage.googleapis.com/mediapipe-assets/selfie_segmentation_landscape.tflite",
        sha256="a77d03f4659b9f6b6c1f5106947bf40e99d7655094b6527f214ea7d451106edd",
        wheel_member="mediapipe/modules/selfie_segmentation/selfie_segmentation_landscape.tflite",
        input_size=(144, 256),
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


def _entry(variant: str) -> SelfieFile:
    try:
        return SELFIE_FILES[variant]
    except KeyError:
        known = ", ".join(repr(k) for k in SELFIE_FILES)
        raise ValueError(f"unknown selfie model variant {variant!r}; known: {known}") from None


def cached_path(variant: str = "general") -> Path:
    """Where the model file of ``variant`` sits in the cache (whether or not it is there yet)."""
    return cache_dir() / _entry(variant).filename


def is_cached(variant: str = "general") -> bool:
    """True if the model file of ``variant`` is in the cache with the right checksum."""
    entry = _entry(variant)
    path = cached_path(variant)
    try:
        return path.is_file() and sha256_of(path) == entry.sha256
    except OSError:
        return False


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _announce(entry: SelfieFile, source: str, path: Path) -> None:
    msg = f"bgkit: {entry.filename} from {source} -> {path}"
    log.info(msg)
    print(msg, file=sys.stderr)


def _from_url(entry: SelfieFile, timeout: float) -> bytes:
    req = urllib.request.Request(entry.url, headers={"User-Agent": "bgkit"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 (fixed https URL)
        return resp.read()


def _from_installed_mediapipe(entry: SelfieFile) -> bytes:
    spec = importlib.util.find_spec("mediapipe")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the mediapipe package is not installed")
    for root in spec.submodule_search_locations:
        candidate = Path(root).parent / entry.wheel_member
        if candidate.is_file():
            return candidate.read_bytes()
    raise FileNotFoundError(f"the installed mediapipe package has no {entry.wheel_member}")


def _from_pypi_wheel(entry: SelfieFile, timeout: float) -> bytes:
    """Download the mediapipe wheel with pip and return ``entry``'s member; the other selfie files
    in the wheel are put in the cache too (when their checksums match), saving a second download."""
    with tempfile.TemporaryDirectory(prefix="bgkit-mediapipe-") as tmp:
        cmd = [
            sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
            "--platform", MEDIAPIPE_WHEEL_PLATFORM, "--python-version", MEDIAPIPE_WHEEL_PYTHON,
            "--disable-pip-version-check", "--no-input", "--quiet",
            "--timeout", str(max(1, int(timeout))),
            "-d", tmp, MEDIAPIPE_REQUIREMENT,
        ]  # fmt: skip
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=PIP_DOWNLOAD_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise TimeoutError(f"pip download did not finish within {PIP_DOWNLOAD_TIMEOUT_S:.0f} s") from None
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            raise RuntimeError(f"pip download exited with {proc.returncode}: {' | '.join(tail)}")
        wheels = sorted(Path(tmp).glob("mediapipe-*.whl"))
        if not wheels:
            raise FileNotFoundError("pip download produced no mediapipe wheel")
        with zipfile.ZipFile(wheels[0]) as zf:
            data = zf.read(entry.wheel_member)
            for other in SELFIE_FILES.values():
                target = cache_dir() / other.filename
                if other is entry or target.is_file():
                    continue
                try:
                    extra = zf.read(other.wheel_member)
                except KeyError:
                    continue
                if sha256_of(extra) == other.sha256:
                    _write_atomic(target, extra)
                    _announce(other, f"the {MEDIAPIPE_REQUIREMENT} wheel on PyPI (pip download)", target)
            return data


def selfie_model_path(variant: str = "general", *, download: bool = True, timeout: float = 10.0) -> Path:
    """Local path of MediaPipe's selfie segmentation ``.tflite`` file, fetching it if needed.

    Args:
        variant: ``"general"`` (256x256 input) or ``"landscape"`` (144x256 input).
        download: if False, only the cache is consulted.
        timeout: seconds allowed for the direct URL download (and pip's per-connection timeout).

    Raises:
        AssetUnavailableError: the file is not cached (or fails its checksum) and every source
            failed; the message lists the attempts and where to put the file by hand.
    """
    entry = _entry(variant)
    path = cache_dir() / entry.filename
    attempts: list[str] = []

    if path.is_file():
        got = sha256_of(path)
        if got == entry.sha256:
            return path
        attempts.append(f"cache {path}: checksum mismatch (sha256 {got}), ignored")
        log.warning("bgkit: %s in the cache has the wrong checksum; fetching it again", path)
        if download:
            try:
                path.unlink()
            except OSError:
                pass
    else:
        attempts.append(f"cache {path}: not present")

    if download and os.environ.get("BGKIT_OFFLINE", "").strip() not in ("", "0"):
        attempts.append("network: skipped because BGKIT_OFFLINE is set")
        download = False
    elif not download:
        attempts.append("download=False: no network source tried")

    if download:
        sources = [
            (entry.url, lambda: _from_url(entry, timeout)),
            ("the installed mediapipe package", lambda: _from_installed_mediapipe(entry)),
            (f"the {MEDIAPIPE_REQUIREMENT} wheel on PyPI (pip download)", lambda: _from_pypi_wheel(entry, timeout)),
        ]
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
            _announce(entry, source, path)
            return path

    tried = "\n  - ".join(attempts)
    raise AssetUnavailableError(
        f"MediaPipe selfie segmentation model {entry.filename!r} ({variant}) is not available.\n"
        f"Tried:\n  - {tried}\n"
        f"To install it by hand, download {entry.url}\n"
        f"  (or take {entry.wheel_member} out of the {MEDIAPIPE_REQUIREMENT} wheel:\n"
        f"   python -m pip download --no-deps --only-binary=:all: --platform {MEDIAPIPE_WHEEL_PLATFORM} "
        f"--python-version {MEDIAPIPE_WHEEL_PYTHON} {MEDIAPIPE_REQUIREMENT})\n"
        f"and save it as {path} (sha256 {entry.sha256}); "
        f"set BGKIT_CACHE_DIR to use another cache directory."
    )
