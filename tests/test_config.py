"""Configuration validation, split sizes and the shard plan (no Blender)."""

from __future__ import annotations

import pytest

from clevr_remv.config import Quality, RenderConfig, from_dict, to_dict
from clevr_remv.store.plan import parse_shard, plan_shards


def test_published_split_sizes() -> None:
    assert RenderConfig(scenes=10_000).split_sizes() == {"train": 7000, "val": 1500, "test": 1500}
    assert RenderConfig(scenes=3).split_sizes() == {"train": 2, "val": 1, "test": 0}
    assert RenderConfig(scenes=4).split_sizes() == {"train": 3, "val": 1, "test": 0}
    assert RenderConfig(scenes=5).split_sizes() == {"train": 3, "val": 1, "test": 1}
    for n in range(1, 200):
        assert sum(RenderConfig(scenes=n).split_sizes().values()) == n


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"scenes": 0}, "--scenes"),
        ({"scenes": -3}, "--scenes"),
        ({"grid": 4}, "odd"),
        ({"grid": 0}, "odd"),
        ({"quality": Quality(samples=0)}, "--samples"),
        ({"quality": Quality(denoiser_quality="ULTRA")}, "denoiser quality"),
        ({"scenes_per_shard": 0}, "--scenes-per-shard"),
        ({"device": "tpu"}, "--device"),
    ],
)
def test_bad_settings_are_rejected_with_the_option_named(changes, message) -> None:
    with pytest.raises(ValueError, match=message):
        RenderConfig(**changes)


def test_min_visible_pixels_scales_with_resolution() -> None:
    assert RenderConfig().min_visible_pixels == 200
    assert RenderConfig(width=240, height=160).min_visible_pixels == 50
    assert RenderConfig(width=48, height=32).min_visible_pixels == 2


def test_config_round_trips_through_json_dict() -> None:
    config = RenderConfig(scenes=12, seed=5, grid=3, quality=Quality(samples=3, denoise=False))
    assert from_dict(to_dict(config)) == config
    assert "device" not in config.identity()


def test_shard_plan_covers_every_scene_once() -> None:
    config = RenderConfig(scenes=47, scenes_per_shard=4)
    shards = plan_shards(config)
    for split, count in config.split_sizes().items():
        indices = [i for s in shards if s.split == split for i in s.scene_indices]
        assert indices == list(range(count))
    assert shards[0].name == "train/shard-00000.h5"
    assert parse_shard("val:1", shards).first_scene == 4
    with pytest.raises(ValueError, match="no shard 'val:99'"):
        parse_shard("val:99", shards)
