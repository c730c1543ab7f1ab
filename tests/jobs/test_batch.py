"""bgkit.jobs.batch and ``bgkit batch``: folders of photos and videos through the pipeline -- same
pictures as ``bgkit effect``, bad files reported and left out, a manifest, resumable after an
interrupt (in process and with SIGTERM), and the Ray engine's outputs identical to the local one's."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

import bgkit
from bgkit.cli import main
from bgkit.io.outputs import OutputError
from bgkit.jobs import batch as batch_mod
from bgkit.jobs.batch import MANIFEST_NAME, Manifest, output_name, process_batch

REPO = Path(__file__).resolve().parents[2]


def _variants(sample_path: Path, n: int, size: tuple[int, int]) -> list[Image.Image]:
    """``n`` different real photos from the sample: mirrored, cropped, scaled to ``size`` (W, H)."""
    src = Image.open(sample_path).convert("RGB")
    out = []
    for i in range(n):
        im = ImageOps.mirror(src) if i % 2 else src
        w, h = im.size
        c = (i * 7) % 40
        out.append(im.crop((c, c // 2, w - (40 - c), h - c // 2)).resize(size, Image.BILINEAR))
    return out


@pytest.fixture(scope="module")
def shoot(tmp_path_factory, sample_path) -> Path:
    """A folder like a real one: photos in sub-folders (JPEG and PNG, two sizes), plus a corrupt
    JPEG, a text file named .jpg, a README (ignored) and a hidden folder (ignored)."""
    root = tmp_path_factory.mktemp("shoot")
    (root / "day1" / "ceremony").mkdir(parents=True)
    (root / "day2").mkdir()
    (root / ".thumbs").mkdir()
    ims = _variants(sample_path, 5, (320, 240))
    ims[0].save(root / "a.jpg", quality=90)
    ims[1].save(root / "day1" / "b.jpg", quality=90)
    ims[2].save(root / "day1" / "ceremony" / "c.png")
    _variants(sample_path, 1, (240, 320))[0].save(root / "day2" / "portrait.JPG", quality=85)
    ims[3].save(root / ".thumbs" / "hidden.jpg")
    good = (root / "a.jpg").read_bytes()
    (root / "day2" / "corrupt.jpg").write_bytes(good[: len(good) // 3])
    (root / "day2" / "notes.jpg").write_text("not a picture")
    (root / "README.txt").write_text("wedding, 2024")
    return root


GOOD = ["a.jpg", "day1/b.jpg", "day1/ceremony/c.png", "day2/portrait.JPG"]
BAD = {"day2/corrupt.jpg": "could not be decoded", "day2/notes.jpg": "not an image file"}


def _records(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / MANIFEST_NAME).read_text().splitlines() if line.strip()]


def _no_partials(folder: Path) -> None:
    assert not [p for p in folder.rglob("*") if ".partial" in p.name], "a partial file was left behind"


@pytest.fixture(scope="module")
def cut(shoot, selfie, tmp_path_factory):
    """The shoot cut out (PNG) by one batch: (output folder, summary)."""
    out = tmp_path_factory.mktemp("cut") / "out"
    pipe = bgkit.Pipeline(selfie, effect="cutout")
    return out, process_batch(shoot, out, pipe, progress=False)


def test_every_photo_is_cut_out_like_bgkit_effect(shoot, cut, selfie):
    out, summary = cut
    assert (summary.found, summary.done, summary.skipped, summary.failed, summary.ignored) == (6, 4, 0, 2, 1)
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file() and p.name != MANIFEST_NAME)
    assert written == sorted(output_name(g, "image", "cutout") for g in GOOD)
    assert "day2/portrait.png" in written and "day1/ceremony/c.png" in written  # the suffix the effect needs
    pipe = bgkit.Pipeline(selfie, effect="cutout")
    for rel in GOOD:  # what `bgkit effect` does for one file: the same bytes
        expect = out.parent / ("expect_" + Path(output_name(rel, "image", "cutout")).name)
        bgkit.save_image(pipe.process(shoot / rel).picture, expect)
        got = out / output_name(rel, "image", "cutout")
        assert got.read_bytes() == expect.read_bytes(), rel
        assert Image.open(got).mode == "RGBA"
        assert Image.open(got).size == ImageOps.exif_transpose(Image.open(shoot / rel)).size
    _no_partials(out)


def test_same_picture_as_the_effect_command(shoot, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["batch", str(shoot / "day1"), str(out), "--model", "selfie", "--effect", "bokeh",
                 "--background-blur", "6", "-q"]) == 0
    assert "2 done, 0 skipped (complete already), 0 failed of 2 files" in capsys.readouterr().out
    assert main(["effect", str(shoot / "day1" / "b.jpg"), "-o", str(tmp_path / "b.jpg"), "--model", "selfie",
                 "--effect", "bokeh", "--background-blur", "6"]) == 0
    assert (out / "b.jpg").read_bytes() == (tmp_path / "b.jpg").read_bytes()


def test_bad_files_are_reported_and_recorded_never_the_end(shoot, cut):
    out, summary = cut
    reasons = dict(summary.errors)
    for rel, why in BAD.items():
        assert why in reasons[str(shoot / rel)] and str(shoot / rel) in reasons[str(shoot / rel)]
    text = str(summary)
    assert "4 done" in text and "2 failed" in text and "failed: " + str(shoot / "day2" / "corrupt.jpg") in text
    assert "ignored 1 files" in text


def test_manifest_records_each_file(shoot, cut):
    out, _ = cut
    recs = {r["output"]: r for r in _records(out)}
    assert len(recs) == 6
    for rel in GOOD:
        r = recs[output_name(rel, "image", "cutout")]
        assert r["status"] == "done" and r["error"] is None and r["input"] == str(shoot / rel)
        assert r["model"] == {"name": "selfie", "backend": r["model"]["backend"], "device": "cpu"}
        assert r["settings"]["effect"] == "cutout" and r["settings"]["background_image"] is None
        assert set(r["timings"]) >= {"read_ms", "process_ms", "write_ms", "pipeline"} and "model" in r["timings"]["pipeline"]
        f = out / r["output"]
        assert r["bytes"] == f.stat().st_size and r["sha256"] == batch_mod.sha256_file(f)
        assert r["engine"] == "local" and r["finished"].endswith("+00:00")
    for rel, why in BAD.items():
        r = recs[output_name(rel, "image", "cutout")]
        assert r["status"] == "failed" and why in r["error"] and r["sha256"] is None


def test_rerun_skips_complete_outputs_and_redoes_the_rest(shoot, selfie, tmp_path):
    out = tmp_path / "out"
    pipe = bgkit.Pipeline(selfie, effect="bokeh")
    first = process_batch(shoot, out, pipe, progress=False)
    assert (first.done, first.failed) == (4, 2)
    again = process_batch(shoot, out, pipe, progress=False)
    assert (again.done, again.skipped, again.failed) == (0, 4, 2)  # bad files are tried again: they may be fixed
    (out / "a.jpg").write_bytes((out / "a.jpg").read_bytes()[:1000])  # changed since written
    (out / "day1" / "b.jpg").unlink()  # gone
    third = process_batch(shoot, out, pipe, progress=False)
    assert (third.done, third.skipped) == (2, 2)
    assert Image.open(out / "a.jpg").load() is not None
    redo = process_batch(shoot, out, pipe, overwrite=True, progress=False)
    assert (redo.done, redo.skipped, redo.failed) == (4, 0, 2)
    other = process_batch(shoot, out, pipe.segmenter, bgkit.EffectSettings(effect="bokeh", background_blur_amount=9),
                          progress=False)
    assert other.skipped == 4 and other.stale_settings == 4 and "--overwrite" in str(other)


def test_an_output_without_a_record_is_kept_if_it_decodes(shoot, selfie, tmp_path):
    out = tmp_path / "out"
    pipe = bgkit.Pipeline(selfie, effect="bokeh")
    process_batch(shoot / "day1", out, pipe, progress=False)
    (out / MANIFEST_NAME).unlink()
    (out / "b.jpg").write_bytes(b"\xff\xd8 not a whole jpeg")  # e.g. copied in half
    s = process_batch(shoot / "day1", out, pipe, progress=False)
    assert (s.done, s.skipped) == (1, 1)  # c.png decodes: kept (and now recorded); b.jpg made again
    recs = {r["output"]: r for r in _records(out)}
    assert recs["ceremony/c.png"]["status"] == "skipped" and recs["ceremony/c.png"]["sha256"]
    assert recs["b.jpg"]["status"] == "done"


def test_torn_manifest_line_and_leftover_partial_files(shoot, selfie, tmp_path):
    out = tmp_path / "out"
    pipe = bgkit.Pipeline(selfie, effect="mask")
    process_batch(shoot / "day1", out, pipe, progress=False)
    with open(out / MANIFEST_NAME, "a") as f:
        f.write('{"input": "/x/y.jpg", "output": "y.jp')  # a killed run's last, half-written line
    leftover = out / "ceremony" / ".c.0123abcd.partial.png"
    leftover.write_bytes(b"\x89PNG half")  # what a SIGKILLed writer leaves
    s = process_batch(shoot / "day1", out, pipe, progress=False, overwrite=True)
    assert s.done == 2
    assert not leftover.exists()
    lines = (out / MANIFEST_NAME).read_text().splitlines()
    assert len(lines) == 5 and lines[2] == '{"input": "/x/y.jpg", "output": "y.jp'  # the new lines start afresh
    for line in lines[:2] + lines[3:]:
        json.loads(line)
    assert sorted(Manifest.read(out / MANIFEST_NAME)) == ["b.jpg", "ceremony/c.png"]


def test_interrupted_batch_carries_on_where_it_stopped(sample_path, selfie, tmp_path):
    """200 photos, interrupted after 100 (KeyboardInterrupt from the per-file hook, as Ctrl-C
    would): no partial file, every output there decodes; the rerun does only the rest."""
    src = tmp_path / "in"
    src.mkdir()
    for i, im in enumerate(_variants(sample_path, 200, (96, 72))):
        im.save(src / f"{i:03d}.jpg", quality=90)
    out = tmp_path / "out"
    pipe = bgkit.Pipeline(selfie, effect="bokeh")
    seen = []

    def stop_half_way(rec):
        seen.append(rec)
        if len(seen) == 100:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        process_batch(src, out, pipe, progress=False, on_file=stop_half_way, workers=2)
    _no_partials(out)
    made = sorted(out.glob("*.jpg"))
    assert 100 <= len(made) < 200
    for p in made:
        Image.open(p).load()
    assert len(_records(out)) == len(made)  # writes under way at the interrupt finished and were recorded
    again = process_batch(src, out, pipe, progress=False)
    assert (again.skipped, again.done, again.failed) == (len(made), 200 - len(made), 0)
    outs = sorted(out.glob("*.jpg"))
    assert len(outs) == 200
    for p in outs:
        Image.open(p).load()
    _no_partials(out)


@pytest.mark.slow
def test_sigterm_half_way_then_rerun(sample_path, tmp_path):
    """The real thing: ``bgkit batch`` in a subprocess, SIGTERM once some files are done; one
    line on stderr, exit 130, no traceback, no partial file; the rerun finishes the rest."""
    src = tmp_path / "in"
    src.mkdir()
    for i, im in enumerate(_variants(sample_path, 120, (160, 120))):
        im.save(src / f"{i:03d}.jpg", quality=90)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "bgkit", "batch", str(src), str(out), "--model", "selfie", "--effect", "cutout",
           "--no-progress"]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    manifest = out / MANIFEST_NAME
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if manifest.exists() and len(manifest.read_text().splitlines()) >= 30:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the batch ended before it could be interrupted: " + proc.stderr.read()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "bgkit batch: interrupted" in err and "Traceback" not in err
    _no_partials(out)
    made = sorted(out.glob("*.png"))
    assert 30 <= len(made) < 120
    for p in made:
        Image.open(p).load()
    rerun = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    assert f"{120 - len(made)} done, {len(made)} skipped (complete already), 0 failed of 120 files" in rerun.stdout
    assert len(list(out.glob("*.png"))) == 120
    for p in out.glob("*.png"):
        Image.open(p).load()


def test_output_inside_the_input_is_left_out_of_the_scan(shoot, selfie, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    for rel in ("a.jpg", "day1/b.jpg"):
        (src / Path(rel).name).write_bytes((shoot / rel).read_bytes())
    pipe = bgkit.Pipeline(selfie, effect="bokeh")
    s1 = process_batch(src, src / "out", pipe, progress=False)
    s2 = process_batch(src, src / "out", pipe, progress=False)
    assert (s1.found, s1.done) == (2, 2) and (s2.found, s2.skipped) == (2, 2)


@pytest.mark.parametrize("where, message", [
    ("same", "the output folder is the input folder"),
    ("parent", "holds the input folder"),
    ("file", "is a file"),
])
def test_output_folders_that_cannot_work(shoot, tmp_path, where, message, capsys):
    src = tmp_path / "photos"
    src.mkdir()
    (src / "a.jpg").write_bytes((shoot / "a.jpg").read_bytes())
    out = {"same": src, "parent": tmp_path, "file": src / "a.jpg"}[where]
    with pytest.raises(OutputError, match=message):
        process_batch(src, out, "selfie", progress=False)
    assert main(["batch", str(src), str(out), "--model", "selfie"]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert sorted(p.name for p in src.iterdir()) == ["a.jpg"]  # the input untouched


def test_cli_user_errors(tmp_path, capsys):
    assert main(["batch", str(tmp_path / "missing"), str(tmp_path / "out"), "--model", "selfie"]) == 2
    assert "no such input folder" in capsys.readouterr().err
    assert main(["batch", str(tmp_path), str(tmp_path / "out"), "--address", "auto"]) == 2
    assert "only for --engine ray" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["batch", str(tmp_path), str(tmp_path / "out"), "--image-format", "gif"])


def test_two_inputs_with_one_output_and_explicit_formats(shoot, selfie, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    (src / "x.jpg").write_bytes((shoot / "a.jpg").read_bytes())
    Image.open(shoot / "a.jpg").save(src / "x.png")
    pipe = bgkit.Pipeline(selfie, effect="cutout")
    s = process_batch(src, tmp_path / "cut", pipe, progress=False)
    assert (s.done, s.failed) == (1, 1) and "also the output of" in s.errors[0][1]
    s = process_batch(src, tmp_path / "webp", pipe, image_suffix="webp", progress=False)
    assert (s.done, s.failed) == (1, 1)  # both would be x.webp
    bokeh = bgkit.Pipeline(selfie, effect="bokeh")
    s = process_batch(src, tmp_path / "png", bokeh, image_suffix=".png", progress=False)
    assert (s.done, s.failed) == (1, 1)
    with pytest.raises(ValueError, match="image format must be one of"):
        process_batch(src, tmp_path / "gif", bokeh, image_suffix="gif", progress=False)


def test_one_batch_per_output_folder(tmp_path):
    with Manifest(tmp_path / MANIFEST_NAME):
        with pytest.raises(OutputError, match="another bgkit batch is writing"):
            Manifest(tmp_path / MANIFEST_NAME).open()


def test_a_full_disk_stops_the_batch(shoot, selfie, tmp_path, monkeypatch):
    def full(picture, path):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(batch_mod, "save_image", full)
    with pytest.raises(OSError, match="No space left"):
        process_batch(shoot / "day1", tmp_path / "out", bgkit.Pipeline(selfie, effect="mask"), progress=False)
    _no_partials(tmp_path / "out")


def test_videos_in_the_folder(tmp_path, selfie):
    av = pytest.importorskip("av")
    src = tmp_path / "in"
    (src / "clips").mkdir(parents=True)
    with av.open(str(src / "clips" / "talk.mp4"), "w") as c:
        s = c.add_stream("libx264", rate=10)
        s.width, s.height, s.pix_fmt = 96, 64, "yuv420p"
        for i in range(8):
            img = np.zeros((64, 96, 3), np.uint8)
            img[16:48, 30 + i:60 + i] = (230, 220, 200)
            for p in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    pipe = bgkit.Pipeline(selfie, effect="cutout")
    summary = process_batch(src, tmp_path / "out", pipe, progress=False)
    assert (summary.done, summary.failed) == (1, 0)
    out = tmp_path / "out" / "clips" / "talk.webm"  # cut-outs need a container with alpha
    assert bgkit.io.video.probe(out).frames in (8, None)
    rec = _records(tmp_path / "out")[0]
    assert rec["kind"] == "video" and rec["timings"]["frames"] == 8 and rec["sha256"] == batch_mod.sha256_file(out)
    again = process_batch(src, tmp_path / "out", pipe, progress=False)
    assert again.skipped == 1


def test_output_names():
    assert output_name("a/b.jpg", "image", "bokeh") == "a/b.jpg"
    assert output_name("a/b.jpg", "image", "cutout") == "a/b.png"
    assert output_name("b.webp", "image", "cutout") == "b.webp"
    assert output_name("b.jpg", "image", "mask", image_suffix=".png") == "b.png"
    assert output_name("b.png", "image", "cutout", image_suffix=".jpg") == "b.png"
    assert output_name("v.mp4", "video", "bokeh") == "v.mp4"
    assert output_name("v.mp4", "video", "cutout") == "v.webm"
    assert output_name("v.avi", "video", "bokeh") == "v.mp4"
    assert output_name("v.mov", "video", "cutout") == "v.mov"


@pytest.mark.slow
def test_ray_engine_gives_the_same_files_as_the_local_one(shoot, cut, tmp_path):
    ray = pytest.importorskip("ray", reason="the Ray engine needs ray[data] (pip install 'bgkit[ray]')")
    pytest.importorskip("ray.data", reason="the Ray engine needs ray[data] (pip install 'bgkit[ray]')")
    local, _ = cut
    out = tmp_path / "ray"
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        summary = process_batch(shoot, out, "selfie", bgkit.EffectSettings(effect="cutout"), engine="ray",
                                progress=False, workers=2, ray={"batch_size": 2})
    finally:
        ray.shutdown()
    assert (summary.done, summary.failed, summary.engine) == (4, 2, "ray")
    recs = {r["output"]: r for r in _records(out)}
    assert all(r["engine"] == "ray" for r in recs.values()) and len(recs) == 6
    assert "could not be decoded" in recs["day2/corrupt.png"]["error"]
    # one manifest for both engines: the local engine finds Ray's outputs complete
    again = process_batch(shoot, out, "selfie", bgkit.EffectSettings(effect="cutout"), progress=False)
    assert (again.done, again.skipped, again.stale_settings) == (0, 4, 0)
    for rel in GOOD:
        name = output_name(rel, "image", "cutout")
        a = np.asarray(Image.open(local / name))
        b = np.asarray(Image.open(out / name))
        assert a.shape == b.shape and np.array_equal(a, b), f"{name}: Ray's pixels differ from the local engine's"
        assert (local / name).read_bytes() == (out / name).read_bytes()
    _no_partials(out)


@pytest.mark.parametrize("cpus, workers", [(1, 2), (2, 3), (4, 5), (16, 8)])
def test_default_workers_is_one_more_than_the_cpus(monkeypatch, cpus, workers):
    from bgkit.jobs.batch import default_workers

    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(cpus)), raising=False)
    assert default_workers() == workers
