"""bgkit caps OpenMP busy-waiting before torch loads, and respects what the user set."""

from __future__ import annotations

import os
import subprocess
import sys

PROBE = "import {first}; import os; print(os.environ.get('GOMP_SPINCOUNT'), os.environ.get('KMP_BLOCKTIME'))"


def _probe(first: str, **env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if k not in ("GOMP_SPINCOUNT", "KMP_BLOCKTIME")}
    out = subprocess.run([sys.executable, "-c", PROBE.format(first=first)], env={**clean, **env},
                         capture_output=True, text=True, check=True)
    return out.stdout.strip()


def test_defaults_set_when_bgkit_loads_torch():
    assert _probe("bgkit") == "1000 1"


def test_user_values_kept():
    assert _probe("bgkit", GOMP_SPINCOUNT="50000", KMP_BLOCKTIME="20") == "50000 20"


def test_nothing_changed_when_torch_came_first():
    assert _probe("torch, bgkit") == "None None"
