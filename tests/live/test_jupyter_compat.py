"""bgkit.live.jupyter_compat: the comm routing is pinned in a real kernel on the pinned versions."""

from __future__ import annotations

import json

import nbformat

from bgkit.live.jupyter_compat import IPYKERNEL_MIN, compat_report, pin_comm_routing, version_tuple


def test_versions_are_read_and_old_kernels_are_left_alone(caplog, monkeypatch):
    assert version_tuple("ipykernel") >= IPYKERNEL_MIN, "the notebook extra pins ipykernel >= 7 (subshells)"
    assert version_tuple("no-such-package-here") is None

    class Widget:
        comm = None

    import bgkit.live.jupyter_compat as jc

    monkeypatch.setattr(jc, "version_tuple", lambda name: (6, 29, 5))
    with caplog.at_level("INFO", logger="bgkit"):
        assert not pin_comm_routing(Widget())
    assert "has no subshells" in caplog.text


def test_comm_routing_is_pinned_in_a_real_kernel(tmp_path, run_notebook):
    """Fails loudly if the installed (pinned) ipykernel no longer has what the widget relies on."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells.append(nbformat.v4.new_code_cell(
        "import json, bgkit\n"
        "from bgkit.widgets import LiveBackground\n"
        "from bgkit.live.jupyter_compat import compat_report\n"
        "live = LiveBackground(bgkit.load_segmenter('selfie', device='cpu'), autostart=False)\n"
        "print(json.dumps(compat_report(live)))\n"
        "print(json.dumps(live._kernel_compat))"
    ))
    path = tmp_path / "compat.ipynb"
    nbformat.write(nb, path)
    run = run_notebook(path, tmp_path)
    report, synced = (json.loads(line) for line in run.stream_text.strip().splitlines()[-2:])
    assert report["subshells"] and report["comm_routing_pinned"], report
    assert synced["comm_routing_pinned"]  # and the page is told so
    assert report["frame_status_quiet"] and synced["frame_status_quiet"]


QUIET_CHECK = """
import json, bgkit
from bgkit.widgets import LiveBackground
live = LiveBackground(bgkit.load_segmenter('selfie', device='cpu'), autostart=False)
k = get_ipython().kernel
published = []
send = k.session.send
def spy(stream, msg_type, content=None, parent=None, **kw):
    if msg_type == 'status':
        published.append(content['execution_state'])
        return None
    return send(stream, msg_type, content, parent=parent, **kw)
k.session.send = spy
def msg(comm_id, data):
    return {'msg_type': 'comm_msg', 'header': {'msg_type': 'comm_msg'}, 'content': {'comm_id': comm_id, 'data': data}}
frame = {'method': 'custom', 'content': {'type': 'frame', 'seq': 1}}
cases = {
    'frame': msg(live.comm.comm_id, frame),
    'ping': msg(live.comm.comm_id, {'method': 'custom', 'content': {'type': 'ping'}}),
    'settings change': msg(live.comm.comm_id, {'method': 'update', 'state': {'running': True}}),
    'snapshot': msg(live.comm.comm_id, {'method': 'custom', 'content': {'type': 'snapshot'}}),
    'another comm': msg('not-bgkit', frame),
}
out = {}
for name, m in cases.items():
    published.clear(); k._publish_status('busy', 'shell', m); k._publish_status('idle', 'shell', m)
    out[name] = list(published)
live.close()
published.clear(); k._publish_status('busy', 'shell', cases['frame'])
out['frame after close'] = list(published)
k.session.send = send
print(json.dumps(out))
"""


def test_frame_messages_get_no_busy_idle_status_in_a_real_kernel(tmp_path, run_notebook):
    """Only the live widget's own frame and ping messages lose their status messages; settings
    changes (which ipywidgets' throttling waits on), other messages and other comms keep them."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells.append(nbformat.v4.new_code_cell(QUIET_CHECK))
    path = tmp_path / "quiet.ipynb"
    nbformat.write(nb, path)
    out = json.loads(run_notebook(path, tmp_path).stream_text.strip().splitlines()[-1])
    assert out == {"frame": [], "ping": [], "settings change": ["busy", "idle"], "snapshot": ["busy", "idle"],
                   "another comm": ["busy", "idle"], "frame after close": ["busy"]}, out


def test_report_without_a_widget():
    report = compat_report()
    assert set(report) >= {"ipykernel", "ipywidgets", "jupyterlab", "notebook", "subshells", "comm_routing_pinned",
                           "frame_status_quiet"}
    assert report["comm_routing_pinned"] is False and report["frame_status_quiet"] is False
