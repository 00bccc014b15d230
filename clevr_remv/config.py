"""Render and layout configuration: every knob of a dataset, with the published defaults.

A `RenderConfig` is stored in the manifest and in every shard; two runs with equal
`identity()` produce the same dataset, so it is also what a re-run into an existing
output directory is checked against.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from clevr_remv.scene.description import SPLITS, Vec3
from clevr_remv.scene.vocabulary import MAX_OBJECTS

# Cycles' GPU backends, best first, and what --device accepts: a policy (auto, cpu, gpu = the best GPU
# backend) or one backend by name, for a card both OptiX and CUDA drive (benchmarks, a driver whose
# OptiX is broken). gpu/devices.py decides among them; the configuration only validates the request.
GPU_BACKENDS: tuple[str, ...] = ("OPTIX", "CUDA", "HIP", "ONEAPI", "METAL")
DEVICE_REQUESTS: tuple[str, ...] = ("auto", "cpu", "gpu", *(b.lower() for b in GPU_BACKENDS))

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
    # Reflective caustics (light focused by the metal objects onto the ground): Blender's default
    # physics. On in every preset since 0.3.0: they cost no measurable time and bring the images
    # closer to the full-physics reference (README, "Performance"); 0.2 rendered them only in `final`.
    caustics: bool = True
    # Filter Glossy (Cycles' blur_glossy) and the clamp on indirect light's samples (0: off), at
    # Blender's defaults; every render before these fields existed used those defaults.
    blur_glossy: float = 1.0
    sample_clamp_indirect: float = 10.0


# Measured in bench/bench_render.py against full-physics references (README, "Performance").
# `draft-0.2` and `default-0.2` are what `draft` and `default` rendered before 0.3.0 (no caustics):
# datasets made with them resume and finalize with `--quality default-0.2` (finalize names it).
QUALITY_PRESETS: dict[str, Quality] = {
    "draft": Quality(samples=4, denoiser_quality="FAST"),
    "default": Quality(),
    "final": Quality(samples=64, denoiser_prefilter="ACCURATE", light_tree=True),
    "draft-0.2": Quality(samples=4, denoiser_quality="FAST", caustics=False),
    "default-0.2": Quality(samples=12, caustics=False),
}

# Quality fields added after datasets were first stored, with the value every render had before
# they existed. identity() leaves such a field out at that value, so a config stored without it
# (which from_dict fills with the same default) still compares equal to the same settings today.
_QUALITY_FIELDS_ADDED_LATER: dict[str, Any] = {"caustics": False, "blur_glossy": 1.0, "sample_clamp_indirect": 10.0}
# The same for RenderConfig's own fields.
_FIELDS_ADDED_LATER: dict[str, Any] = {"amodal_masks": False, "max_hops": 1, "targets": "one", "ordinals": False}


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
    amodal_masks: bool = False  # store every object's amodal mask per view (render --amodal-masks)
    # The language (docs/expressions.md): relations chained per sentence, and whether a sentence may name
    # several objects or none. 1 and "one" are the published CLEVR-Remv.
    max_hops: int = 1
    targets: str = "one"
    ordinals: bool = False  # also "the second cube from the left" (render --ordinals)

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
        for name, before in _QUALITY_FIELDS_ADDED_LATER.items():
            if d["quality"][name] == before:
                del d["quality"][name]
        for name, before in _FIELDS_ADDED_LATER.items():
            if d[name] == before:
                del d[name]
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
        (config.device in DEVICE_REQUESTS, f"--device must be one of {', '.join(DEVICE_REQUESTS)}, got {config.device}"),
        (abs(sum(config.split_fractions) - 1.0) < 1e-9, "split fractions must add up to 1"),
        (config.max_hops in (1, 2, 3), f"--max-hops must be 1, 2 or 3, got {config.max_hops}"),
        (config.targets in ("one", "any"), f"--targets must be one or any, got {config.targets}"),
    ]
    for ok, message in checks:
        if not ok:
            raise ValueError(message)


# What one scene costs in memory while it renders (the pipeline holds one scene at a time:
# shards are streamed to disk). Per pixel of every view: the image (3 bytes), mask (1) and
# depth (4) plus the depth's rounded copy (4). Per pixel of the view Blender is rendering:
# Cycles' float render buffers, the denoiser's guides and the multilayer EXR read back
# (a generous 256 bytes). Plus Blender itself (a worker measured 290 MB resident).
SCENE_BYTES_PER_VIEW_PIXEL = 3 + 1 + 4 + 4
RENDER_BYTES_PER_PIXEL = 256
BLENDER_BASE_BYTES = 512 * 2**20


def scene_memory_bytes(config: RenderConfig) -> int:
    """An estimate (on the high side) of the memory one worker needs to render one scene."""
    pixels = config.width * config.height
    per_view_pixel = SCENE_BYTES_PER_VIEW_PIXEL + (MAX_OBJECTS if config.amodal_masks else 0)  # bool amodal masks
    return config.views * pixels * per_view_pixel + pixels * RENDER_BYTES_PER_PIXEL + BLENDER_BASE_BYTES


def machine_memory_bytes() -> int:
    """Physical memory of this machine, or the cgroup limit (containers, Slurm) if lower."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    for limit_file in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = open(limit_file, encoding="ascii").read().strip()
        except OSError:
            continue
        if text.isdigit():
            total = min(total, int(text))
    return total


def check_fits_in_memory(config: RenderConfig, available_bytes: int | None = None) -> None:
    """Refuse, before anything renders, settings whose single scene cannot fit in memory.

    `available_bytes` defaults to the machine's memory (see machine_memory_bytes); tests
    pass their own. Whether several workers fit together is the runner's business.
    """
    need = scene_memory_bytes(config)
    have = machine_memory_bytes() if available_bytes is None else available_bytes
    if need > have:
        raise ValueError(
            f"one scene of {config.views} views at {config.width}x{config.height} needs about "
            f"{need / 2**30:.1f} GiB of memory, more than the {have / 2**30:.1f} GiB here; "
            f"use a smaller --width/--height or --rig"
        )


# Settings `clevr-remv render` has no option for: a config that changes them cannot be
# reproduced from the command line.
_NOT_OPTIONS = ("lens_mm", "sensor_mm", "split_fractions", "visibility_attempts", "layout")


def quality_preset(quality: Quality) -> str | None:
    """The first preset that `quality` equals except perhaps in samples (`--quality P --samples N`
    gives it back); None when no preset does."""
    return next((name for name, q in QUALITY_PRESETS.items() if replace(q, samples=quality.samples) == quality), None)


# The render option behind each setting that has one: what render_arguments writes, and how `_compare`
# (produce/run.py) names a difference.
OPTION_OF = {"scenes": "--scenes", "seed": "--seed", "width": "--width", "height": "--height", "grid": "--rig",
             "baseline": "--baseline", "quality.samples": "--samples", "depth_mantissa_bits": "--depth-bits",
             "scenes_per_shard": "--scenes-per-shard", "amodal_masks": "--amodal-masks", "max_hops": "--max-hops",
             "targets": "--targets", "ordinals": "--ordinals"}


def describe_difference(key: str, stored: Any, now: Any) -> str:
    """One setting that differs, in the words of the options: "--rig 3 (now 5)", "--amodal-masks on (now
    off)", "--quality's denoise True (now False)"; a setting without an option by its field name."""
    option = OPTION_OF.get(key)
    if option is None:
        if key.startswith("quality."):
            return f"--quality's {key.removeprefix('quality.')} {stored!r} (now {now!r})"
        return f"{key}={stored!r} (now {now!r})"
    if isinstance(stored, bool) or isinstance(now, bool):
        return f"{option} {'on' if stored else 'off'} (now {'on' if now else 'off'})"
    return f"{option} {stored} (now {now})"


def render_arguments(config: RenderConfig) -> list[str]:
    """The `clevr-remv render` options that give back a config with this `identity()`.

    What `clevr-remv finalize` prints so a user can render a missing shard by copying a
    line. The device is left out: it decides where the data is computed, not what it is.
    Raises ValueError for settings no option can express (changed in code, not on the CLI).
    """
    default = RenderConfig()
    changed = [name for name in _NOT_OPTIONS if getattr(config, name) != getattr(default, name)]
    if changed:
        raise ValueError(f"the settings {', '.join(changed)} differ from the defaults and have no render option")
    preset = quality_preset(config.quality)
    if preset is None:
        raise ValueError(f"the quality settings {config.quality} match no --quality preset")
    args = []
    for key in ("scenes", "seed", "width", "height", "grid"):
        args += [OPTION_OF[key], str(getattr(config, key))]
    args += [OPTION_OF["baseline"], repr(float(config.baseline)), "--quality", preset]
    if config.quality.samples != QUALITY_PRESETS[preset].samples:
        args += [OPTION_OF["quality.samples"], str(config.quality.samples)]
    for key in ("depth_mantissa_bits", "scenes_per_shard"):
        args += [OPTION_OF[key], str(getattr(config, key))]
    for key, published in (("max_hops", 1), ("targets", "one")):
        if getattr(config, key) != published:
            args += [OPTION_OF[key], str(getattr(config, key))]
    args += [OPTION_OF["ordinals"]] if config.ordinals else []
    return args + ([OPTION_OF["amodal_masks"]] if config.amodal_masks else [])


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
        # A field stored configs lack was added later: those datasets were rendered with its value
        # from before (not today's default, which may have moved: caustics are on since 0.3.0).
        d["quality"] = Quality(**{**_QUALITY_FIELDS_ADDED_LATER, **d["quality"]})
    if "split_fractions" in d:
        d["split_fractions"] = tuple(d["split_fractions"])
    return RenderConfig(**d)
