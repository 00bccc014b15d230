"""Quality presets: caustics only in `final`, the switch reaches Cycles, old stored configs still load."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from clevr_remv.config import QUALITY_PRESETS, Quality, RenderConfig, from_dict, to_dict
from clevr_remv.devices import DeviceChoice


def test_only_final_renders_caustics() -> None:
    assert QUALITY_PRESETS["final"].caustics
    assert not QUALITY_PRESETS["default"].caustics
    assert not QUALITY_PRESETS["draft"].caustics
    assert not Quality().caustics  # a Quality built in code renders like the default preset


@pytest.fixture
def bpy_scene():
    """A scratch scene in this process's Blender, removed afterwards."""
    bpy = pytest.importorskip("bpy")
    scene = bpy.data.scenes.new("test-quality")
    scene.render.engine = "CYCLES"
    yield scene
    bpy.data.scenes.remove(scene)


@pytest.mark.parametrize("preset", sorted(QUALITY_PRESETS))
def test_caustics_reach_cycles(bpy_scene, preset: str) -> None:
    from clevr_remv.render.cycles import apply_quality

    quality = QUALITY_PRESETS[preset]
    # Start from the opposite value, so a setting left untouched would show.
    bpy_scene.cycles.caustics_reflective = not quality.caustics
    bpy_scene.cycles.caustics_refractive = not quality.caustics
    apply_quality(bpy_scene, quality, DeviceChoice("CPU", ()))
    assert bpy_scene.cycles.caustics_reflective is quality.caustics
    assert bpy_scene.cycles.caustics_refractive is quality.caustics
    assert bpy_scene.cycles.samples == quality.samples


def _stored_before_caustics(config: RenderConfig) -> dict:
    """The config as a shard or manifest written before `caustics` existed stores it."""
    stored = json.loads(json.dumps(to_dict(config)))
    del stored["quality"]["caustics"]
    stored.pop("device")
    stored.pop("amodal_masks", None)  # added later still (and left out of identity() when off)
    return stored


@pytest.mark.parametrize("preset", ["default", "draft"])
def test_config_stored_without_caustics_loads_and_matches(preset: str) -> None:
    config = RenderConfig(scenes=5, seed=3, quality=QUALITY_PRESETS[preset])
    stored = _stored_before_caustics(config)
    loaded = from_dict(stored)
    assert loaded.quality == config.quality
    assert not loaded.quality.caustics
    # A re-run with the same settings, and verify, compare identities: old and new must agree.
    assert loaded.identity() == stored
    assert config.identity() == stored


def test_old_final_config_keeps_what_it_rendered() -> None:
    """`final` stored before caustics existed was rendered without them: it loads that way and
    does not pass for today's `final`, whose images differ."""
    old_final = replace(QUALITY_PRESETS["final"], caustics=False)
    stored = _stored_before_caustics(RenderConfig(quality=old_final))
    loaded = from_dict(stored)
    assert loaded.quality == old_final
    assert RenderConfig(quality=QUALITY_PRESETS["final"]).identity() != stored
    assert RenderConfig(quality=QUALITY_PRESETS["final"]).identity()["quality"]["caustics"] is True
