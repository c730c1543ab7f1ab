"""bgkit.pipeline.settings: one schema, every field validated with a message that names it."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from bgkit import SCHEMA, EffectSettings
from bgkit.pipeline.settings import EFFECTS

# (field, a bad value) for every field of the schema: each must be refused, naming the field
BAD = {
    "effect": "sepia",
    "internal_resolution": "ultra",
    "segmentation_threshold": -3,
    "opacity": 5,
    "mask_blur_amount": 21,
    "background_blur_amount": -1,
    "edge_blur_amount": float("nan"),
    "edge_softness": 9,
    "foreground": "not a colour",
    "background": (300, 0, 0),
    "background_image": 42,
    "flip_horizontal": "yes",
    "refine_edges": 1,
    "refine_radius": 0,
    "refine_eps": 0,
    "temporal_smoothing": None,
    "temporal_ema": 0,
    "temporal_motion_gate": 1.5,
    "hysteresis": 1.0,
    "people": "me",
    "pixel_cell_width": 0,
}


def test_every_field_has_a_schema_entry_and_a_bad_value_here():
    fields = [f.name for f in dataclasses.fields(EffectSettings)]
    assert list(SCHEMA) == fields
    assert set(BAD) == set(fields)


@pytest.mark.parametrize("name", list(BAD))
def test_every_bad_value_is_refused_with_the_field_and_value_named(name):
    with pytest.raises((TypeError, ValueError)) as err:
        EffectSettings(**{name: BAD[name]})
    assert name in str(err.value)
    with pytest.raises((TypeError, ValueError)):
        EffectSettings().updated(**{name: BAD[name]})


def test_the_issue_example_is_refused():
    with pytest.raises(ValueError, match="3 settings are not valid") as err:
        EffectSettings(opacity=5, segmentation_threshold=-3, internal_resolution="ultra")
    for part in ("opacity must be in [0, 1]; got 5", "segmentation_threshold must be in [0, 1]; got -3",
                 "internal_resolution must be one of", "got 'ultra'"):
        assert part in str(err.value)


def test_values_are_normalised():
    s = EffectSettings(foreground="#ff000080", background=(0, 0, 255), internal_resolution="MEDIUM",
                       background_image=np.zeros((4, 5, 4), np.uint8))
    assert s.foreground == (255, 0, 0, 128) and s.background == (0, 0, 255, 255)
    assert s.internal_resolution == "medium"
    assert s.background_image.shape == (4, 5, 3) and not s.background_image.flags.writeable
    assert EffectSettings(internal_resolution=1).internal_resolution == 1.0


def test_model_defaults_are_none_and_updated_checks_names():
    s = EffectSettings()
    assert s.segmentation_threshold is None and s.internal_resolution is None
    with pytest.raises(TypeError, match="unknown setting"):
        s.updated(threshold=0.5)
    assert s.updated(effect="bokeh").effect == "bokeh" and s.effect == "mask"
    assert list(s.updated(opacity=0.2).changed(s)) == ["opacity"]
    assert "background_image" not in s.as_dict() and s.as_dict()["foreground"] == [0, 0, 0, 0]


def test_schema_carries_what_controls_need():
    for knob in SCHEMA.values():
        assert knob.label and knob.help and knob.group in ("segmentation", "effect", "stream") and knob.flag
        if knob.kind == "number":
            assert knob.lo is not None and knob.hi is not None and knob.step
            assert knob.range_text
    assert SCHEMA["effect"].choices == EFFECTS
    assert SCHEMA["mask_blur_amount"].unit == "px"
