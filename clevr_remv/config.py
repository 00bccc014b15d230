"""Render and layout configuration: every knob of a dataset, with the published defaults.

A `RenderConfig` is stored in the manifest and in every shard; two runs with equal
`identity()` produce the same dataset, so it is also what a re-run into an existing
output directory is checked against.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from clevr_remv.scene import SPLITS, Vec3

REFERENCE_PIXELS = 480 * 320
REFERENCE_MIN_VISIBLE = 200


@dataclass(frozen=True)
class LayoutConfig:
    """CLEVR's layout rules and the base lighting and camera that get jittered per scene."""

    min_objects: int = 3
    max_objects: int = 10
    position_range: float = 3.0  # x, y uniform in [-range, range]
    min_edge_distance: float = 0.25
    min_direction_margin: float = 0.4  # separation along left/right and front/behind
    camera_position: Vec3 = (7.36, -6.93, 4.96)
    camera_jitter: float = 0.5
    key_light: Vec3 = (6.45, -2.91, 4.26)
    fill_light: Vec3 = (-4.67, -4.01, 3.01)
    back_light: Vec3 = (-1.17, 2.65, 5.82)
    light_jitter: float = 1.0
    object_tries: int = 50  # placements tried per object before the layout restarts
    layout_restarts: int = 500


@dataclass(frozen=True)
class Quality:
    """Cycles sampling and denoising: the knobs that trade render time for image quality.

    Masks and depth do not depend on any of these (Cycles writes data passes from the first
    sample), only the RGB images do. Presets and the measurements behind them: README,
    "Performance".
    """

    samples: int = 12
    adaptive_threshold: float = 0.0  # noise level at which a pixel stops sampling; 0 disables
    denoise: bool = True
    denoiser_quality: str = "HIGH"  # OpenImageDenoise: HIGH, BALANCED or FAST
    denoiser_prefilter: str = "FAST"  # of the albedo/normal guides: NONE, FAST or ACCURATE
    denoiser_passes: str = "RGB_ALBEDO_NORMAL"  # RGB, RGB_ALBEDO or RGB_ALBEDO_NORMAL
    max_bounces: int = 4
    diffuse_bounces: int = 2
    glossy_bounces: int = 4
    fast_gi: bool = False
    light_tree: bool = False  # Cycles' many-light sampler: with three lights it costs more than it saves


# Measured in bench/bench_render.py against a 2048-sample reference (README, "Performance").
QUALITY_PRESETS: dict[str, Quality] = {
    "draft": Quality(samples=4, denoiser_quality="FAST"),
    "default": Quality(),
    "final": Quality(samples=64, denoiser_prefilter="ACCURATE", light_tree=True),
}


@dataclass(frozen=True)
class RenderConfig:
    """One dataset's settings; defaults give the published CLEVR-Remv."""

    scenes: int = 10_000
    seed: int = 0
    width: int = 480
    height: int = 320
    grid: int = 9
    baseline: float = 0.1
    lens_mm: float = 35.0
    sensor_mm: float = 32.0
    quality: Quality = field(default_factory=Quality)
    depth_mantissa_bits: int = 12  # float32 depth rounded to this many mantissa bits (23: lossless)
    device: str = "auto"
    scenes_per_shard: int = 10
    split_fractions: tuple[float, float, float] = (0.7, 0.15, 0.15)
    visibility_attempts: int = 100
    layout: LayoutConfig = field(default_factory=LayoutConfig)

    def __post_init__(self) -> None:
        validate(self)

    @property
    def views(self) -> int:
        return self.grid * self.grid

    @property
    def min_visible_pixels(self) -> int:
        """200 pixels at 480 x 320, scaled with the pixel count."""
        return max(1, math.ceil(REFERENCE_MIN_VISIBLE * self.width * self.height / REFERENCE_PIXELS))

    def split_sizes(self) -> dict[str, int]:
        """Scenes per split by largest remainder, so tiny datasets still fill val before test."""
        exact = [self.scenes * f for f in self.split_fractions]
        sizes = [math.floor(x) for x in exact]
        by_remainder = sorted(range(len(exact)), key=lambda i: (-(exact[i] - sizes[i]), i))
        for i in by_remainder[: self.scenes - sum(sizes)]:
            sizes[i] += 1
        return dict(zip(SPLITS, sizes))

    def identity(self) -> dict[str, Any]:
        """The settings that define the data (the device only decides where it is computed)."""
        d = to_dict(self)
        d.pop("device")
        return json.loads(json.dumps(d))  # the JSON form, as stored, so stored and new compare equal

    def with_(self, **changes: Any) -> "RenderConfig":
        return replace(self, **changes)


def validate(config: RenderConfig) -> None:
    """Reject settings that cannot give a valid dataset, with a message a user can act on."""
    checks = [
        (config.scenes > 0, f"--scenes must be positive, got {config.scenes}"),
        (config.grid > 0 and config.grid % 2 == 1, f"--rig must be a positive odd number, got {config.grid}"),
        (config.width >= 8 and config.height >= 8, f"image must be at least 8x8, got {config.width}x{config.height}"),
        (config.quality.samples > 0, f"--samples must be positive, got {config.quality.samples}"),
        (config.quality.denoiser_quality in ("HIGH", "BALANCED", "FAST"), "denoiser quality must be HIGH, BALANCED or FAST"),
        (config.quality.denoiser_prefilter in ("NONE", "FAST", "ACCURATE"), "denoiser prefilter must be NONE, FAST or ACCURATE"),
        (config.scenes_per_shard > 0, f"--scenes-per-shard must be positive, got {config.scenes_per_shard}"),
        (1 <= config.depth_mantissa_bits <= 23, f"--depth-bits must be 1..23, got {config.depth_mantissa_bits}"),
        (config.baseline > 0, f"--baseline must be positive, got {config.baseline}"),
        (config.device in ("auto", "cpu", "gpu"), f"--device must be auto, cpu or gpu, got {config.device}"),
        (abs(sum(config.split_fractions) - 1.0) < 1e-9, "split fractions must add up to 1"),
    ]
    for ok, message in checks:
        if not ok:
            raise ValueError(message)


def to_dict(config: RenderConfig) -> dict[str, Any]:
    d = asdict(config)
    d["split_fractions"] = list(config.split_fractions)
    return d


def from_dict(d: dict[str, Any]) -> RenderConfig:
    """Rebuild a config stored in a manifest or shard (unknown keys are an error)."""
    known = {f.name for f in fields(RenderConfig)}
    unknown = set(d) - known
    if unknown:
        raise ValueError(f"unknown configuration keys: {', '.join(sorted(unknown))}")
    d = dict(d)
    if "layout" in d:
        layout = {k: tuple(v) if isinstance(v, list) else v for k, v in d["layout"].items()}
        d["layout"] = LayoutConfig(**layout)
    if "quality" in d:
        d["quality"] = Quality(**d["quality"])
    if "split_fractions" in d:
        d["split_fractions"] = tuple(d["split_fractions"])
    return RenderConfig(**d)
