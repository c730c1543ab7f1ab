"""Process settings made at import: OpenMP spin capped before torch loads, malloc stops re-faulting pages."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

PROBE = "import {first}; import os; print(os.environ.get('GOMP_SPINCOUNT'), os.environ.get('KMP_BLOCKTIME'))"
TUNING_VARS = ("GOMP_SPINCOUNT", "KMP_BLOCKTIME", "BGKIT_NO_PROCESS_TUNING")


def _run(code: str, **env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if k not in TUNING_VARS}
    out = subprocess.run([sys.executable, "-c", code], env={**clean, **env}, capture_output=True, text=True,
                         check=True, timeout=300)
    return out.stdout.strip().splitlines()[-1]


def test_defaults_set_when_bgkit_loads_torch():
    assert _run(PROBE.format(first="bgkit")) == "1000 1"


def test_user_values_kept():
    assert _run(PROBE.format(first="bgkit"), GOMP_SPINCOUNT="50000", KMP_BLOCKTIME="20") == "50000 20"


def test_nothing_changed_when_torch_came_first():
    assert _run(PROBE.format(first="torch, bgkit")) == "None None"


def test_opt_out():
    assert _run(PROBE.format(first="bgkit"), BGKIT_NO_PROCESS_TUNING="1") == "None None"
    assert _run("import bgkit._process as p; print(p.TUNED)", BGKIT_NO_PROCESS_TUNING="1") == (
        "{'openmp_wait': False, 'malloc': False}"
    )


FAULTS = """
import resource, numpy as np, bgkit
from PIL import Image
from bgkit._process import TUNED
from bgkit.sample import sample_image
from bgkit.models.standin import stand_in_state_dict
name, backend = "{name}", "{backend}"
weights = stand_in_state_dict(name) if name == "lraspp" else None
seg = bgkit.load_segmenter(name, device="cpu", weights=weights, backend=backend)
frame = np.array(Image.fromarray(sample_image()).resize((640, 480)))
settings = bgkit.EffectSettings(effect="mask", internal_resolution="low")
def frame_once():
    bgkit.render(frame, seg.segment_person(frame, internal_resolution="low"), settings)
for _ in range(10):
    frame_once()
r0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(30):
    frame_once()
print(TUNED["malloc"], (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - r0) / 30)
"""


@pytest.mark.skipif(sys.platform != "linux", reason="glibc's malloc only")
@pytest.mark.parametrize("name, backend", [("selfie", "onnxruntime"), ("lraspp", "eager")])
def test_frames_do_not_page_fault_once_warm(name, backend):
    tuned, faults = _run(FAULTS.replace("{name}", name).replace("{backend}", backend)).split()
    assert tuned == "True"
    # measured: 0.2 faults per frame tuned, 300-1,800 without (one per 4 KiB page re-taken), and
    # thousands for eager torch if only the heap-top pad were set
    assert float(faults) < 50, faults
