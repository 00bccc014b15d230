"""Quality presets: caustics in every current preset (since 0.3.0), the settings reach Cycles, and configs
stored by older versions still load as they were made (so old datasets resume, finalize and verify)."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from clevr_remv.config import (
    QUALITY_PRESETS,
    Quality,
    RenderConfig,
    from_dict,
    render_arguments,
)
from clevr_remv.gpu.devices import DeviceChoice


def test_current_presets_render_caustics() -> None:
    for preset in ("draft", "default", "final"):
        assert QUALITY_PRESETS[preset].caustics, preset
    assert Quality() == QUALITY_PRESETS["default"]  # a Quality built in code renders like the default preset
    # The 0.2 presets, kept so datasets made with them resume and finalize from the command line.
    assert not QUALITY_PRESETS["default-0.2"].caustics
    assert not QUALITY_PRESETS["draft-0.2"].caustics


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
    assert bpy_scene.cycles.blur_glossy == pytest.approx(quality.blur_glossy)
    assert bpy_scene.cycles.sample_clamp_indirect == pytest.approx(quality.sample_clamp_indirect)


def _stored_before_caustics(config: RenderConfig) -> dict:
    """The config as a shard or manifest written before `caustics` existed stores it."""
    stored = config.identity()  # what a shard or manifest stores
    stored["quality"].pop("caustics", None)
    return stored


@pytest.mark.parametrize("preset", ["default-0.2", "draft-0.2"])
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


# What 0.2.0 stored for a dataset made with `--quality default` (its identity(): the fields added
# later at their old values are left out, so neither `caustics` nor the 0.3.0 fields are there).
STORED_0_2_DEFAULT_QUALITY = {"samples": 12, "adaptive_threshold": 0.0, "denoise": True, "denoiser_quality": "HIGH",
                              "denoiser_prefilter": "FAST", "denoiser_passes": "RGB_ALBEDO_NORMAL", "max_bounces": 4,
                              "diffuse_bounces": 2, "glossy_bounces": 4, "fast_gi": False, "light_tree": False}


def test_config_stored_by_0_2_loads_as_it_was_made() -> None:
    """A 0.2.0 default dataset's stored config has none of the fields added since: it loads with the
    values it was rendered with (no caustics, Blender's Filter Glossy 1 and indirect clamp 10), not
    today's defaults, compares equal to itself (resume, verify) and finalize names its preset."""
    stored = RenderConfig(scenes=5, seed=3).identity()
    stored["quality"] = dict(STORED_0_2_DEFAULT_QUALITY)
    loaded = from_dict(stored)
    assert loaded.quality == QUALITY_PRESETS["default-0.2"]
    assert not loaded.quality.caustics
    assert loaded.quality.blur_glossy == 1.0 and loaded.quality.sample_clamp_indirect == 10.0
    assert loaded.identity() == stored
    assert RenderConfig(scenes=5, seed=3, quality=QUALITY_PRESETS["default-0.2"]).identity() == stored
    # Today's default makes other images: a re-run with it into the old dataset is refused.
    assert RenderConfig(scenes=5, seed=3).identity() != stored
    args = render_arguments(loaded)
    assert args[args.index("--quality") + 1] == "default-0.2"


def test_new_quality_fields_are_stored_when_they_differ() -> None:
    config = RenderConfig(quality=replace(QUALITY_PRESETS["default"], blur_glossy=0.5, sample_clamp_indirect=3.0))
    stored = json.loads(json.dumps(config.identity()))
    assert stored["quality"]["blur_glossy"] == 0.5 and stored["quality"]["sample_clamp_indirect"] == 3.0
    assert from_dict(stored).quality == config.quality
