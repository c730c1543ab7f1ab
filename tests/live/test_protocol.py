"""The live loop's kernel side without a browser: protocol, processing, errors, thread safety.

The page's half is played by :class:`bgkit.live.protocol.SimulatedClient` or by hand-made messages passed
to the widget's custom-message handler, exactly as ipywidgets would deliver them.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

import bgkit
from bgkit import EffectSettings, process_frame
from bgkit.live import processor as LP
from bgkit.live import protocol as L
from conftest import scripted_segmenter

REPO = Path(__file__).resolve().parents[2]
GREEN = (0, 255, 0, 255)


@pytest.fixture(scope="module")
def frame(sample_path: Path) -> np.ndarray:
    """A 320 x 240 camera-sized frame of the sample photo (small: keeps the tests quick)."""
    from PIL import Image

    return np.array(Image.open(sample_path).convert("RGB").resize((320, 240)))


def _processor(seg: bgkit.Segmenter, **settings) -> LP.LiveProcessor:
    base = dict(effect="replace", internal_resolution="medium", background=GREEN, flip_horizontal=False)
    base.update(settings)
    return LP.LiveProcessor(seg, EffectSettings(**base))


# ---------------------------------------------------------------------------------------- encoding


@pytest.mark.parametrize("fmt", ["rgba", "jpeg", "webp", "png"])
def test_image_encode_decode_round_trip(fmt: str, frame: np.ndarray) -> None:
    data = L.encode_image(frame, fmt)
    back = L.decode_image(data, fmt, frame.shape[1], frame.shape[0])
    assert back.shape == frame.shape and back.dtype == np.uint8
    tol = 0 if fmt in ("rgba", "png") else 12
    assert np.abs(back.astype(int) - frame.astype(int)).mean() <= tol


def test_rgba_keeps_alpha_and_pads_rgb(frame: np.ndarray) -> None:
    rgba = np.dstack([frame, np.full(frame.shape[:2], 77, np.uint8)])
    data = L.encode_image(rgba, "rgba")
    assert len(data) == frame.shape[0] * frame.shape[1] * 4
    assert np.array_equal(L.decode_image(data, "rgba", frame.shape[1], frame.shape[0], channels=4), rgba)
    padded = np.frombuffer(L.encode_image(frame, "rgba"), np.uint8).reshape(frame.shape[0], frame.shape[1], 4)
    assert (padded[:, :, 3] == 255).all() and np.array_equal(padded[:, :, :3], frame)


def test_frame_message_round_trip(frame: np.ndarray) -> None:
    content, buffers = L.encode_frame(frame, "rgba", seq=7, t=123.5, client={"fps": 9.5})
    assert content["type"] == "frame" and content["seq"] == 7 and len(buffers) == 1
    # ipywidgets hands buffers over as memoryviews
    header, decoded = L.decode_frame(content, [memoryview(buffers[0])])
    assert (header.seq, header.t, header.width, header.height, header.format) == (7, 123.5, 320, 240, "rgba")
    assert header.client == {"fps": 9.5}
    assert np.array_equal(decoded, frame)
    assert decoded.flags.writeable  # torch.from_numpy warns about read-only arrays
    assert L.decode_frame(*L.encode_frame(frame, "jpeg", seq=8))[1].flags.writeable


# ---------------------------------------------------------------------------------------- processing


@pytest.mark.parametrize("fmt", ["jpeg", "rgba"])
def test_processor_reply_is_process_frame_output(selfie, frame, fmt) -> None:
    """The reply carries exactly what ``pipeline.process_frame`` makes of the frame (same code path)."""
    proc = _processor(selfie, flip_horizontal=True)
    content, buffers = L.encode_frame(frame, fmt, seq=1)
    sent = L.decode_frame(content, buffers)[1]  # what the kernel sees after transport
    reply, reply_buffers = proc.handle_message(content, buffers)
    assert reply["type"] == "result", reply
    assert reply["seq"] == 1 and reply["t"] == content["t"] and reply["format"] == fmt
    assert (reply["width"], reply["height"], reply["channels"]) == (320, 240, 3)
    assert reply["model"] == "selfie" and reply["model_ms"] > 0 and reply["process_ms"] >= reply["model_ms"]
    got = L.decode_reply(reply, reply_buffers)
    expected, _ = process_frame(sent, selfie, proc.settings)
    tol = 0 if fmt == "rgba" else 6
    assert np.abs(got.astype(int) - expected.astype(int)).mean() <= tol
    assert np.array_equal(proc.last_output, expected)


def test_replace_background_colour_and_flip(selfie, frame) -> None:
    """Background pixels take the replacement colour; the person keeps the camera's colours; flip mirrors."""
    proc = _processor(selfie)
    reply, bufs = proc.handle_message(*L.encode_frame(frame, "rgba", seq=1))
    out = L.decode_reply(reply, bufs)
    _, seg_ = process_frame(frame, selfie, proc.settings)
    person = seg_.mask.astype(bool)
    assert 0.05 < person.mean() < 0.9, "the sample photo should show a person on a background"
    bg_px = out[~person]
    assert np.abs(bg_px.astype(int) - np.array(GREEN[:3])).max(axis=1).mean() < 30
    core = person & np.roll(person, 8, 0) & np.roll(person, -8, 0) & np.roll(person, 8, 1) & np.roll(person, -8, 1)
    assert np.abs(out[core].astype(int) - frame[core].astype(int)).mean() < 4
    proc.update(flip_horizontal=True)
    reply2, bufs2 = proc.handle_message(*L.encode_frame(frame, "rgba", seq=2))
    assert np.array_equal(L.decode_reply(reply2, bufs2), out[:, ::-1])


def test_cutout_keeps_alpha_over_jpeg_transport(selfie, frame) -> None:
    proc = _processor(selfie, effect="cutout")
    reply, bufs = proc.handle_message(*L.encode_frame(frame, "jpeg", seq=1))
    assert reply["type"] == "result" and reply["format"] == "webp" and reply["channels"] == 4
    out = L.decode_reply(reply, bufs)
    assert out.shape == (240, 320, 4)
    assert out[:, :, 3].min() < 20 and out[:, :, 3].max() > 235
    reply, bufs = proc.handle_message(*L.encode_frame(frame, "rgba", seq=2))
    assert reply["format"] == "rgba" and L.decode_reply(reply, bufs).shape == (240, 320, 4)


def test_settings_apply_from_next_frame(selfie, frame) -> None:
    proc = _processor(selfie)
    client = L.SimulatedClient(proc.handle_message, fmt="rgba")
    _, before = client.roundtrip(frame)
    proc.update(segmentation_threshold=1.0)  # nothing is "person" any more: all background
    _, after = client.roundtrip(frame)
    assert not np.array_equal(before, after)
    assert (np.abs(after.astype(int) - np.array(GREEN[:3])).max(axis=2) < 2).all()
    with pytest.raises(ValueError):
        proc.update(effect="sparkles")
    assert proc.settings.effect == "replace"


def test_stats_and_snapshot(selfie, frame, tmp_path) -> None:
    proc = _processor(selfie)
    with pytest.raises(RuntimeError, match="no frame"):
        proc.snapshot(tmp_path / "x.png")
    client = L.SimulatedClient(proc.handle_message, fmt="jpeg")
    for _ in range(4):
        reply, pic = client.roundtrip(frame)
        assert pic is not None
    s = proc.stats
    assert s["frames_received"] == s["frames_processed"] == 4 and s["frames_failed"] == 0
    assert s["fps"] > 0 and s["model_ms_p50"] > 0 and s["process_ms_p50"] >= s["model_ms_p50"]
    # round trips are reported by the client with its next frame: three of the four so far
    assert s["latency_ms_p50"] is not None and s["latency_ms_p95"] >= s["latency_ms_p50"]
    assert s["frame_size"] == (320, 240) and s["transport"] == "jpeg" and s["model"] == "selfie"
    assert s["bytes_in"] > 0 and s["bytes_out"] > 0
    path = proc.snapshot(tmp_path / "snap.png")
    from PIL import Image

    assert Image.open(path).size == (320, 240)
    proc.reset_stats()
    assert proc.stats["frames_processed"] == 0


# ---------------------------------------------------------------------------------------- bad input


BAD_MESSAGES = [
    ("not a dict", None, "JSON object"),
    ({"type": "sparkle"}, None, "unknown message type"),
    ({"type": "frame", "width": 4, "height": 4, "format": "rgba"}, [b"\0" * 64], "missing 'seq'"),
    ({"type": "frame", "seq": "x", "width": 4, "height": 4}, [b"\0" * 64], "'seq' must be a number"),
    ({"type": "frame", "seq": 1, "width": 4, "height": 4, "format": "rgba"}, None, "without its picture"),
    ({"type": "frame", "seq": 1, "width": 4, "height": 4, "format": "rgba"}, [b"\0" * 10], "needs 64 bytes"),
    ({"type": "frame", "seq": 1, "width": 4, "height": 4, "format": "gif"}, [b"GIF89a"], "format must be one of"),
    ({"type": "frame", "seq": 1, "width": 4, "height": 4, "format": "jpeg"}, [b"garbage!" * 10], "could not decode"),
    ({"type": "frame", "seq": 1, "width": -4, "height": 4, "format": "rgba"}, [b""], "must be positive"),
    ({"type": "frame", "seq": 1, "width": 100000, "height": 100000, "format": "rgba"}, [b""], "larger than"),
    ({"type": "frame", "seq": 1, "width": 4, "height": 4, "format": "rgba", "t": float("nan")}, [b"\0" * 64], "finite"),
]


@pytest.mark.parametrize("content,buffers,needle", BAD_MESSAGES)
def test_bad_messages_get_an_error_reply(selfie, content, buffers, needle) -> None:
    proc = _processor(selfie)
    reply, reply_buffers = proc.handle_message(content, buffers)
    assert reply["type"] == "error" and needle in reply["error"], reply
    assert reply_buffers == []
    assert proc.stats["frames_failed"] == 1 and proc.stats["last_error"] == reply["error"]


def test_jpeg_size_mismatch_is_reported(selfie, frame) -> None:
    proc = _processor(selfie)
    content, buffers = L.encode_frame(frame, "jpeg", seq=3)
    content["width"] = 100
    reply, _ = proc.handle_message(content, buffers)
    assert reply["type"] == "error" and reply["seq"] == 3 and "320x240" in reply["error"]


def test_error_storm_logs_once_and_recovers(selfie, frame, caplog) -> None:
    proc = _processor(selfie)
    with caplog.at_level("WARNING", logger="bgkit.live"):
        for i in range(50):
            reply, _ = proc.handle_message({"type": "frame", "seq": i, "width": 4, "height": 4, "format": "rgba"}, [b"x"])
            assert reply["type"] == "error"
    assert len([r for r in caplog.records if "needs 64 bytes" in r.getMessage()]) == 1
    assert proc.stats["frames_failed"] == 50
    reply, _ = proc.handle_message(*L.encode_frame(frame, "jpeg", seq=99))
    assert reply["type"] == "result" and proc.stats["last_error"] is None


def test_processing_failure_is_an_error_reply(frame) -> None:
    def explode(i, h, w):
        raise RuntimeError("model exploded")

    proc = LP.LiveProcessor(scripted_segmenter(explode, name="broken"), EffectSettings())
    reply, _ = proc.handle_message(*L.encode_frame(frame, "jpeg", seq=5))
    assert reply == {"type": "error", "code": "processing", "seq": 5, "error": reply["error"]}
    assert "model exploded" in reply["error"]


def test_ping(selfie) -> None:
    reply, bufs = _processor(selfie).handle_message({"type": "ping", "t": 1.0})
    assert reply == {"type": "pong", "t": 1.0, "protocol": L.PROTOCOL_VERSION} and bufs == []


# ---------------------------------------------------------------------------------------- threads


def test_concurrent_frames_and_setting_changes(selfie, frame) -> None:
    """Frames from several threads while another thread flips settings: every reply is whole and
    consistent with one settings object, the counters add up, and nothing raises."""
    small = frame[::2, ::2].copy()
    proc = _processor(selfie, internal_resolution="low")
    errors: list[BaseException] = []
    replies: list[dict] = []
    stop = threading.Event()

    def sender(k: int) -> None:
        try:
            client = L.SimulatedClient(proc.handle_message, fmt="rgba" if k % 2 else "jpeg")
            for _ in range(6):
                reply, pic = client.roundtrip(small)
                replies.append(reply)
                assert reply["type"] == "result", reply
                assert pic.shape[:2] == small.shape[:2]
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    def flipper() -> None:
        effects = ["mask", "bokeh", "replace", "cutout"]
        i = 0
        while not stop.is_set():
            proc.update(effect=effects[i % 4], segmentation_threshold=0.3 + 0.1 * (i % 5), flip_horizontal=bool(i % 2))
            _ = proc.stats
            i += 1
            time.sleep(0.001)

    threads = [threading.Thread(target=sender, args=(k,)) for k in range(4)]
    ft = threading.Thread(target=flipper)
    ft.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    stop.set()
    ft.join(10)
    assert not errors, errors[0]
    s = proc.stats
    assert s["frames_processed"] == s["frames_received"] == 24 == len(replies)
    assert s["frames_failed"] == 0
    # cutout replies (4 channels) and the others (3) both appear: settings changed under load
    assert {r["channels"] for r in replies} <= {3, 4}


# ---------------------------------------------------------------------------------------- the widget


@pytest.fixture()
def widget(selfie):
    from bgkit.widgets import LiveBackground

    w = LiveBackground(selfie, settings=EffectSettings(effect="replace", background=GREEN, internal_resolution="medium"))
    sent: list[tuple[dict, list]] = []
    w.send = lambda content, buffers=None: sent.append((content, buffers or []))  # what goes to the page
    w._sent = sent
    yield w
    w.close()


def _deliver(w, content, buffers) -> None:
    """Deliver a custom message as ipywidgets does when the page calls ``model.send``."""
    w._handle_custom_msg(content, [memoryview(b) for b in buffers] if buffers else buffers)


def test_widget_custom_message_round_trip(widget, frame, tmp_path) -> None:
    assert widget.running is True and widget.flip_horizontal is False
    content, buffers = L.encode_frame(frame, "jpeg", seq=41, client={"fps": 12.0, "rtt_ms": [50.0, 70.0]})
    _deliver(widget, content, buffers)
    (reply, reply_buffers), = widget._sent
    assert reply["type"] == "result" and reply["seq"] == 41 and len(reply_buffers) == 1
    out = L.decode_reply(reply, reply_buffers)
    assert out.shape == (240, 320, 3)
    s = widget.stats
    assert s["frames_processed"] == 1 and s["fps_shown"] == 12.0 and s["latency_ms_p50"] == 60.0
    assert s["running"] is True and s["camera_state"] == "not shown"
    path = widget.snapshot(tmp_path / "snap.png")
    assert path.is_file() and widget.last_frame is not None


def test_widget_controls_apply_while_running(widget, frame) -> None:
    widget.segmentation_threshold = 1.0
    assert widget.settings.segmentation_threshold == 1.0
    _deliver(widget, *L.encode_frame(frame, "rgba", seq=1))
    reply, bufs = widget._sent[-1]
    out = L.decode_reply(reply, bufs)
    assert (np.abs(out.astype(int) - np.array(GREEN[:3])).max(axis=2) < 2).all()
    # the controls are bound both ways
    by_desc = {getattr(c, "description", ""): c for c in _walk(widget.controls)}
    by_desc["threshold"].value = 0.5
    assert widget.segmentation_threshold == 0.5 and widget.settings.segmentation_threshold == 0.5
    with pytest.raises(ValueError, match="opacity must be in"):
        widget.opacity = 3  # attributes are validated by the one schema
    assert widget.opacity == widget.settings.opacity
    by_desc["effect"].value = "bokeh"
    assert widget.settings.effect == "bokeh"
    widget.internal_resolution = "low"
    assert by_desc["internal resolution"].value == "low" and widget.settings.internal_resolution == "low"
    by_desc["mirror"].value = True
    assert widget.settings.flip_horizontal is True
    choice = widget._controls["background_image"].children[0]
    choice.value = "picture"  # the bundled backdrop until one is uploaded
    assert widget.settings.background_image is not None
    choice.value = "colour"
    assert widget.settings.background_image is None
    import ipywidgets

    start = next(c for c in _walk(widget.controls) if isinstance(c, ipywidgets.ToggleButton))
    assert start.value is True and start.description == "Stop"
    widget.running = False
    assert start.value is False and start.description == "Start"
    start.value = True
    assert widget.running is True


def test_widget_garbled_messages_do_not_raise(widget) -> None:
    for content, buffers, _ in BAD_MESSAGES:
        _deliver(widget, content, buffers)
    assert len(widget._sent) == len(BAD_MESSAGES)
    assert all(r["type"] == "error" for r, _ in widget._sent)
    assert widget.stats["frames_failed"] == len(BAD_MESSAGES)


def test_widget_bad_model_choice_keeps_running(widget) -> None:
    from traitlets import TraitError

    with pytest.raises(TraitError):
        widget.model = "no-such-model"
    assert widget.model == "selfie" and widget.segmenter.name == "selfie"


def test_widget_send_failure_is_quiet(widget, frame, caplog) -> None:
    def broken_send(content, buffers=None):
        raise RuntimeError("comm closed")

    widget.send = broken_send
    with caplog.at_level("WARNING"):
        for i in range(5):
            _deliver(widget, *L.encode_frame(frame, "jpeg", seq=i))
    assert len([r for r in caplog.records if "could not send" in r.getMessage()]) == 1


def test_widget_concurrent_messages_and_trait_changes(widget, frame) -> None:
    small = frame[::2, ::2].copy()
    errors: list[BaseException] = []

    def frames() -> None:
        try:
            for i in range(8):
                _deliver(widget, *L.encode_frame(small, "jpeg", seq=i))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    def knobs() -> None:
        try:
            for i in range(40):
                widget.segmentation_threshold = 0.2 + (i % 7) / 10
                widget.effect = ("mask", "bokeh", "replace", "cutout")[i % 4]
                widget.flip_horizontal = bool(i % 2)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    ts = [threading.Thread(target=frames), threading.Thread(target=frames), threading.Thread(target=knobs)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(120)
    assert not errors, errors[0]
    assert len(widget._sent) == 16 and all(r["type"] == "result" for r, _ in widget._sent)


def test_widget_default_source_is_ipywebrtc_camera(selfie) -> None:
    import ipywebrtc

    from bgkit.widgets import LiveBackground

    w = LiveBackground(selfie, autostart=False)
    try:
        assert isinstance(w.source, ipywebrtc.CameraStream)
        assert w.source.constraints.get("audio") is False
        assert w.running is False and w.flip_horizontal is True  # mirror on by default, like the demo
        bundle = w._repr_mimebundle_()
        assert w.ui.model_id in str(bundle)
    finally:
        w.close()
    assert w.source.comm is None  # the camera source it made is closed with it


def _walk(widget):
    out = [widget]
    for child in getattr(widget, "children", ()):
        out.extend(_walk(child))
    return out


def test_torch_threads_are_set_on_the_processing_thread_only(selfie, frame) -> None:
    import torch

    assert LP.resolve_torch_threads(None) is None and LP.resolve_torch_threads(3) == 3
    assert LP.resolve_torch_threads("auto") >= 1
    with pytest.raises(ValueError):
        LP.resolve_torch_threads(0)
    main_threads = torch.get_num_threads()
    proc = _processor(selfie, internal_resolution="low")
    proc.torch_threads = 1
    seen: list[int] = []

    def work() -> None:
        proc.handle_message(*L.encode_frame(frame, "jpeg", seq=1))
        seen.append(torch.get_num_threads())

    t = threading.Thread(target=work)
    t.start()
    t.join(60)
    assert seen == [1]
    assert torch.get_num_threads() == main_threads


def test_live_processing_carries_temporal_smoothing_across_frames(data_dir, selfie):
    """Frames are one stream: the smoother's history carries over, exactly as a Stream of the pipeline."""
    frames = [bgkit.load_image(data_dir / "video" / "davis_dance-twirl" / "frames" / f"{i:05d}.jpg")
              for i in range(4)]
    settings = EffectSettings(effect="replace", background=(0, 255, 0, 255))
    live, ref = LP.LiveProcessor(selfie, settings), bgkit.Pipeline(selfie, settings).stream()
    for frame in frames:
        out, s = live.process(frame)
        ref_out, ref_s = ref.process(frame)
        np.testing.assert_array_equal(s.mask, ref_s.mask)
        np.testing.assert_array_equal(out, ref_out)
    assert ref.frames == 4 and live.stream.frames == 4
    # the smoothed mask differs from a fresh per-frame one (history is used) ...
    fresh = bgkit.Pipeline(selfie, settings).segment(frames[-1])
    assert not np.array_equal(s.probabilities, fresh.probabilities)
    # ... and switching smoothing off gives exactly the per-frame result
    live.update(temporal_smoothing=False)
    _, off = live.process(frames[-1])
    np.testing.assert_array_equal(off.probabilities, fresh.probabilities)


def test_frame_messages_go_through_the_stream(data_dir, selfie):
    """The message loop itself (not only .process) uses the stream's smoothing history."""
    frames = [bgkit.load_image(data_dir / "video" / "davis_dance-twirl" / "frames" / f"{i:05d}.jpg")
              for i in range(3)]
    settings = EffectSettings(effect="cutout", edge_blur_amount=0)
    live, ref = LP.LiveProcessor(selfie, settings, reply_format="rgba"), bgkit.Pipeline(selfie, settings).stream()
    client = L.SimulatedClient(live.handle_message, fmt="rgba")
    for frame in frames:
        reply, picture = client.roundtrip(frame)
        assert reply["type"] == "result", reply
        ref_out, ref_seg = ref.process(frame)
    assert live.stream.frames == 3
    np.testing.assert_array_equal(picture, ref_out)
