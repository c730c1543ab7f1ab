"""The ``bgkit`` command line: every subcommand on a real photo, and each user error."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from bgkit.cli import main


@pytest.fixture(scope="module")
def person_photo(data_dir):
    return data_dir / "images" / "vik_003.jpg"


@pytest.mark.parametrize("effect, mode", [("mask", "RGB"), ("bokeh", "RGB"), ("replace", "RGB"), ("cutout", "RGBA")])
def test_effect_writes_the_picture(tmp_path, person_photo, effect, mode, capsys):
    out = tmp_path / f"{effect}.png"
    rc = main(["effect", str(person_photo), "-o", str(out), "--model", "selfie", "--effect", effect,
               "--background", "#00ff00", "--edge-blur", "0", "--opacity", "1"])
    assert rc == 0
    assert str(out) in capsys.readouterr().out
    im = Image.open(out)
    src = Image.open(person_photo)
    assert im.mode == mode and im.size == src.size


def test_replace_with_colour_paints_the_background(tmp_path, person_photo, data_dir):
    out = tmp_path / "green.png"
    assert main(["effect", str(person_photo), "-o", str(out), "--model", "selfie", "--effect", "replace",
                 "--background", "0,255,0", "--edge-blur", "0"]) == 0
    pic = np.array(Image.open(out))
    truth = np.array(Image.open(data_dir / "masks" / "vik_003.png")) > 127
    green = (pic == (0, 255, 0)).all(axis=2)
    # mostly background is green, mostly the person is not
    assert green[~truth].mean() > 0.9 and green[truth].mean() < 0.1


def test_replace_with_image_and_internal_resolution(tmp_path, person_photo, sample_path):
    out = tmp_path / "space.jpg"
    assert main(["effect", str(person_photo), "-o", str(out), "--model", "selfie", "--effect", "replace",
                 "--background-image", str(sample_path), "--internal-resolution", "0.5", "--flip"]) == 0
    assert Image.open(out).size == Image.open(person_photo).size


@pytest.mark.parametrize("backend", ["eager", "onnxruntime"])
def test_backend_option_picks_the_backend_and_gives_the_same_picture(tmp_path, person_photo, backend, capsys):
    outs = {}
    for b in ("openvino", backend):
        outs[b] = tmp_path / f"{b}.png"
        assert main(["effect", str(person_photo), "-o", str(outs[b]), "--model", "selfie", "--backend", b]) == 0
        assert f"{b} backend" in capsys.readouterr().err
    a, b_ = (np.asarray(Image.open(p), dtype=int) for p in outs.values())
    assert np.abs(a - b_).max() <= 1  # same mask; a 1e-5 difference may round a blended pixel the other way


def test_figures_subcommand(tmp_path, person_photo, capsys):
    assert main(["figures", str(person_photo), "-o", str(tmp_path), "--models", "selfie"]) == 0
    paths = capsys.readouterr().out.split()
    assert len(paths) >= 2
    for p in paths:
        assert p.endswith(".png")
        Image.open(p).verify()


def test_models_and_fetch(capsys):
    assert main(["models"]) == 0
    listing = capsys.readouterr().out
    for name in ("deeplabv3", "lraspp", "selfie", "selfie_landscape"):
        assert name in listing
    assert main(["fetch", "selfie"]) == 0
    assert "selfie: ready" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["effect", "missing.jpg", "-o", "x.png", "--model", "selfie"], "No such image file"),
        (["effect", "{notes}", "-o", "x.png", "--model", "selfie"], "not an image file"),
        (["effect", "{corrupt}", "-o", "x.png", "--model", "selfie"], "could not be decoded"),
        (["effect", "{photo}", "-o", "x.jpg", "--model", "selfie", "--effect", "cutout"], "transparent"),
        (["effect", "{photo}", "-o", "x.png", "--model", "selfie", "--effect", "replace",
          "--background-image", "nope.png"], "No such image file"),
        (["fetch", "nosuchmodel"], "unknown model"),
    ],
)
def test_user_errors_exit_2_with_one_clear_line(tmp_path, person_photo, argv, message, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "corrupt.jpg").write_bytes(person_photo.read_bytes()[:300])
    fmt = {"notes": "notes.txt", "corrupt": "corrupt.jpg", "photo": str(person_photo)}
    assert main([a.format(**fmt) for a in argv]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


@pytest.mark.parametrize(
    "option, message",
    [
        (["--effect", "blur"], "invalid choice: 'blur'"),
        (["--internal-resolution", "ultra"], "use low, medium, high, full or a number"),
        (["--internal-resolution", "3"], "must be in (0, 2]"),
        (["--opacity", "1.5"], "opacity must be in [0, 1]; got 1.5"),
        (["--background", "#12"], "colour"),
        (["--model", "nosuchmodel"], "unknown model"),
    ],
)
def test_bad_option_values_are_usage_errors(option, message, capsys):
    with pytest.raises(SystemExit) as info:
        main(["effect", "in.jpg", "-o", "out.png", *option])
    assert info.value.code == 2
    assert message in capsys.readouterr().err


def test_python_dash_m_and_missing_deeplab_weights(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "TORCH_HOME": str(tmp_path), "HOME": str(tmp_path)}
    r = subprocess.run([sys.executable, "-m", "bgkit", "effect", "x.jpg", "-o", "y.png", "--model", "deeplabv3"],
                       capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert r.returncode == 2 and "No such image file" in r.stderr
    img = tmp_path / "x.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(img)
    r = subprocess.run([sys.executable, "-m", "bgkit", "effect", str(img), "-o", "y.png", "--model", "deeplabv3"],
                       capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert r.returncode == 1
    assert "Could not load the pretrained 'deeplabv3' weights" in r.stderr and "Traceback" not in r.stderr
