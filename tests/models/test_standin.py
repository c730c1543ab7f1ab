"""Stand-in weights make the torchvision architectures numerically alive (for speed and parity checks)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import bgkit
from bgkit.models.standin import stand_in_state_dict


@pytest.mark.parametrize("name", ["deeplabv3", "lraspp"])
def test_stand_in_probabilities_span_the_range_on_real_photos(name, dev_rows):
    state = stand_in_state_dict(name)
    assert all(torch.equal(v, state[k]) for k, v in stand_in_state_dict(name).items())  # deterministic
    seg = bgkit.load_segmenter(name, device="cpu", weights=state, backend="eager")
    fractions = []
    for row in dev_rows[:4]:
        p = seg.segment_person(row["image"], segmentation_threshold=0.5).probabilities
        lo, hi = np.percentile(p, [1, 99])
        assert hi - lo > 0.25, (row["stem"], lo, hi)
        fractions.append(float((p > 0.5).mean()))
    assert 0.02 < np.mean(fractions) < 0.98


def test_plain_random_init_is_what_stand_ins_fix():
    # the reason the module exists: a default-initialised DeepLabV3 gives one constant probability
    torch.manual_seed(0)
    from torchvision.models import segmentation as tvseg

    net = tvseg.deeplabv3_mobilenet_v3_large(weights=None, weights_backbone=None, num_classes=21, aux_loss=True)
    seg = bgkit.load_segmenter("deeplabv3", device="cpu", weights=net.state_dict(), backend="eager")
    p = seg.segment_person(np.random.default_rng(0).integers(0, 256, (120, 160, 3), np.uint8)).probabilities
    assert float(p.max() - p.min()) < 1e-3


def test_unknown_name():
    with pytest.raises(ValueError, match="stand-in weights exist for"):
        stand_in_state_dict("selfie")
