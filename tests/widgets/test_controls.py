"""The settings controls made from the schema (bgkit.widgets.controls)."""

from __future__ import annotations

import ipywidgets as W

from bgkit.pipeline.settings import SCHEMA, EffectSettings
from bgkit.widgets.controls import SettingsControls


def test_every_setting_has_a_control_with_its_help_and_no_box_has_a_tooltip():
    settings = EffectSettings()
    controls = SettingsControls(lambda: settings, lambda **changes: None)
    knobs = SCHEMA
    assert set(controls.widgets) == set(knobs)
    for name, w in controls.widgets.items():
        # ipywidgets 8 cannot render a box (HBox of a colour picker and its alpha, ...) with a
        # tooltip: the page shows "Click to show javascript error." instead of the control
        if isinstance(w, W.Box):
            assert not w.tooltip, name
            assert w.children[0].tooltip == knobs[name].help, name
        else:
            assert w.tooltip == knobs[name].help, name
