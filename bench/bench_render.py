"""Render benchmark: time per view, pipeline overhead, image quality per setting over several scenes, bytes on disk.

Everything is measured side by side in one run, on this machine:

1. the pipeline at the chosen settings (probe, build, render, pass read-back, annotation,
   HDF5 write) on one scene, against a bare `bpy.ops.render.render` of each view (no file
   written) interleaved right after it: `overhead_ratio` = pipeline time / bare time;
2. image quality of sampling/denoising settings on several scenes (different seeds and object
   counts, metal objects in each), centre and corner view, against two denoised high-sample
   references of the same views: Blender's default physics (caustics on, 12 bounces, light
   tree, no adaptive stopping), the full physics reported first, and the same without caustics
   (--full-physics-only skips that one). PSNR on the 8-bit sRGB images
   and the share of pixels off by more than 3 levels, with each setting's time per view,
   including the baseline (Blender's defaults at 16 samples), and the default preset with
   one Cycles seed for every view against its per-view seeds;
3. bytes per scene on disk from the written shard, and the full 10,000-scene size.

    python bench/bench_render.py            # 9x9 rig, 480x320, 2048-spp references (~2.5 h on 2 cores, cached after)
    python bench/bench_render.py --quick    # 3x3 rig, 160x120, 512-spp references (~6 min on 2 cores)
    python bench/bench_render.py --device gpu --picture docs/caustics.png
    python bench/bench_render.py --search --full-physics-only --views centre --rig 1 --sample-counts \
        --presets default draft default-0.2 draft-0.2 --reference-samples 1024   # issue 16's search

References are cached in bench/results/ (git-ignored; --results DIR elsewhere), whichever device made
them: a GPU's serve a CPU run (bench/compare_references.py shows the two agree). Prints tables and
ends with one JSON line.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import sys
import tempfile
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import bpy  # noqa: E402
import h5py  # noqa: E402

from clevr_remv.config import (  # noqa: E402
    _QUALITY_FIELDS_ADDED_LATER,
    QUALITY_PRESETS,
    Quality,
    RenderConfig,
)
from clevr_remv.gpu.devices import DEVICE_REQUESTS  # noqa: E402
from clevr_remv.gpu.image_quality import off_share, psnr  # noqa: E402
from clevr_remv.produce.pixel_path import draw_scene, render_shard  # noqa: E402
from clevr_remv.render.renderer import BlenderRenderer, blender_version, quiet_stdout  # noqa: E402
from clevr_remv.scene.description import Scene  # noqa: E402
from clevr_remv.scene.seeds import MAX_CYCLES_SEED, cycles_seed  # noqa: E402
from clevr_remv.store.atomic import atomic_path  # noqa: E402
from clevr_remv.store.plan import ShardSpec  # noqa: E402

DATASET_SCENES = 10_000
RESULTS = Path(__file__).resolve().parent / "results"

# Blender 4.5's defaults for a new scene (caustics included), at 16 samples: the baseline the issue names.
BASELINE = Quality(samples=16, adaptive_threshold=0.01, denoise=True, denoiser_quality="HIGH",
                   denoiser_prefilter="ACCURATE", denoiser_passes="RGB_ALBEDO_NORMAL",
                   max_bounces=12, diffuse_bounces=4, glossy_bounces=4, light_tree=True, caustics=True)
REFERENCES = {"full physics": True, "no caustics": False}  # reference name -> caustics; the first leads every table
FIXED_SEED_ROW = "preset default, one seed for all views"


def reference_seed(scene_seed: tuple[int, ...], view: int) -> int:
    """A seed no benchmarked setting uses, so a reference never shares a candidate's sample pattern."""
    return (cycles_seed(scene_seed, view) + 1) & MAX_CYCLES_SEED


class SeededRenderer(BlenderRenderer):
    """The pipeline's renderer, whose per-view Cycles seed the benchmark can replace for a while."""

    seed_for_view = None  # None: the pipeline's per-view seed (clevr_remv.scene.seeds.cycles_seed)

    def _set_view(self, view: int) -> None:
        super()._set_view(view)
        if self.seed_for_view is not None:
            self._scene.cycles.seed = self.seed_for_view(self._scene_seed, view)


def render_views(renderer: SeededRenderer, scene, views: list[int], quality: Quality,
                 seed_for_view=None) -> tuple[np.ndarray, float]:
    """Images of `views` at `quality` and the mean seconds per view (render + read-back).

    `seed_for_view(scene_seed, view)` replaces the pipeline's per-view Cycles seed for these renders.
    """
    renderer.seed_for_view = seed_for_view
    try:
        start = time.perf_counter()
        images = renderer.render_images(scene, views, quality)
        return images, (time.perf_counter() - start) / len(views)
    finally:
        renderer.seed_for_view = None


def measure_pipeline(config: RenderConfig) -> dict:
    """The pipeline on one scene, with a bare render of each view interleaved right after it.

    After the pipeline renders (and reads back) view k, the camera is still there: the
    `on_view` hook times a bare `bpy.ops.render.render` of the same view (no file, no
    read-back) and its time is taken out of the pipeline's. Interleaving view by view
    keeps the machine's drift out of the ratio, which sequential loops did not (±10 %).
    """
    renderer = SeededRenderer(config)
    shard = ShardSpec("train", 0, 0, 1)
    bare: list[float] = []

    def bare_render_of_this_view() -> None:
        start = time.perf_counter()
        with quiet_stdout():
            bpy.ops.render.render()
        bare.append(time.perf_counter() - start)

    with tempfile.TemporaryDirectory() as tmp:
        watch = renderer.stopwatch
        start = time.perf_counter()
        render_shard(config, shard, Path(tmp), renderer, blender_version(),
                              on_view=bare_render_of_this_view, stopwatch=watch)
        total = time.perf_counter() - start - sum(bare)
        with h5py.File(shard.path(Path(tmp)), "r") as f:
            sizes = {name: f[name].id.get_storage_size() for name in ("images", "masks", "depth")}
            sizes["other"] = shard.path(Path(tmp)).stat().st_size - sum(sizes.values())
            scene = Scene.from_json(f["scenes"].asstr()[0])
    breakdown = dict(watch.seconds)
    breakdown["other"] = total - sum(breakdown.values())
    return {"scene": scene, "renderer": renderer, "total_s": total, "bare_s": sum(bare), "views": config.views,
            "breakdown_s": breakdown, "bytes": sizes}


def quality_candidates(samples_list: list[int], presets=tuple(QUALITY_PRESETS)) -> dict[str, Quality]:
    """The settings the table compares; the presets are among them."""
    rows = {"baseline (Blender defaults, 16 spp)": BASELINE}
    light_tree = replace(BASELINE, adaptive_threshold=0.0, caustics=False)  # the baseline, fixed samples, no caustics
    for samples in samples_list:
        plain = Quality(samples=samples, denoiser_prefilter="FAST", caustics=False)  # the 0.2.0 default's kind
        rows[f"{samples} spp, no denoiser"] = replace(plain, denoise=False)
        rows[f"{samples} spp, light tree, bounces 12, OIDN accurate"] = replace(light_tree, samples=samples)
        rows[f"{samples} spp, OIDN accurate"] = replace(plain, denoiser_prefilter="ACCURATE")
        rows[f"{samples} spp, OIDN prefilter fast"] = plain
        rows[f"{samples} spp, OIDN prefilter fast, caustics"] = replace(plain, caustics=True)
        rows[f"{samples} spp, OIDN fast"] = replace(plain, denoiser_quality="FAST")
    for samples in samples_list[-1:]:
        rows[f"{samples} spp, adaptive 0.01"] = Quality(samples=samples, adaptive_threshold=0.01,
                                                    denoiser_prefilter="FAST", caustics=False)
    for name in presets:
        rows[f"preset {name}"] = QUALITY_PRESETS[name]
    rows[FIXED_SEED_ROW] = QUALITY_PRESETS["default"]
    return rows


def search_candidates() -> dict[str, Quality]:
    """--search: caustics on, the cheap knobs one or two at a time (samples, adaptive stopping,
    the denoiser's prefilter, Filter Glossy, clamping of indirect light), from the 0.2.0 default."""
    base = Quality(samples=12, adaptive_threshold=0.0, denoiser_quality="HIGH", denoiser_prefilter="FAST",
                   max_bounces=4, diffuse_bounces=2, glossy_bounces=4, light_tree=False, caustics=True,
                   blur_glossy=1.0, sample_clamp_indirect=10.0)
    rows = {}  # the default and draft presets (12 and 4 spp, caustics on) are rows of their own
    for samples in (8, 16):
        rows[f"search: {samples} spp, caustics"] = replace(base, samples=samples)
    rows["search: 8 spp, caustics, prefilter accurate"] = replace(base, samples=8, denoiser_prefilter="ACCURATE")
    rows["search: 12 spp, caustics, prefilter none"] = replace(base, denoiser_prefilter="NONE")
    rows["search: 12 spp, caustics, filter glossy 2"] = replace(base, blur_glossy=2.0)
    for clamp in (3.0, 1.0):
        rows[f"search: 12 spp, caustics, clamp indirect {clamp:g}"] = replace(base, sample_clamp_indirect=clamp)
    rows["search: 12 spp, caustics, filter glossy 2, clamp 3"] = replace(base, blur_glossy=2.0,
                                                                        sample_clamp_indirect=3.0)
    rows["search: 24 spp, caustics, adaptive 0.02"] = replace(base, samples=24, adaptive_threshold=0.02)
    rows["search: 6 spp, caustics, OIDN fast"] = replace(base, samples=6, denoiser_quality="FAST")
    return rows


def reference_path(results: Path, scene, views: list[int], quality: Quality) -> Path:
    """Where a reference is cached, keyed by everything its pixels depend on. Not the device: a
    converged reference should be the same picture from any device, so references made on a fast
    GPU can serve a CPU run (bench/compare_references.py measures how far two devices' references
    are apart); the npz records the device that made it."""
    settings = {k: v for k, v in asdict(quality).items()  # fields added later, at the value they had before
                if k not in _QUALITY_FIELDS_ADDED_LATER or k == "caustics" or v != _QUALITY_FIELDS_ADDED_LATER[k]}
    key = json.dumps([scene.to_json(), views, settings, blender_version(),
                      "reference_seed: cycles_seed + 1"], sort_keys=True)
    return results / f"reference-{hashlib.sha256(key.encode()).hexdigest()[:16]}.npz"


def cached_reference(renderer: SeededRenderer, scene, views: list[int], quality: Quality,
                     results: Path, wait_s: float = 0) -> tuple[np.ndarray, float, str]:
    """A reference takes minutes per view on a CPU: keep it under `results`. Returns the images,
    seconds per view and the device that rendered it."""
    path = reference_path(results, scene, views, quality)
    deadline = time.monotonic() + wait_s  # another process may be rendering it (--wait-for-references)
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(5)
    if path.exists():
        cached = np.load(path)
        return cached["images"], float(cached["seconds"]), str(cached["device"])
    images, seconds = render_views(renderer, scene, views, quality, seed_for_view=reference_seed)
    results.mkdir(parents=True, exist_ok=True)
    device = renderer.device.describe()
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, images=images, seconds=seconds, device=device)
    return images, seconds, device


def benchmark_scenes(config: RenderConfig, renderer: SeededRenderer, count: int) -> list[Scene]:
    """Test scene k of master seed k, for k = 0, 1, 2, ..., kept when it has a metal object and an
    object count no earlier pick has: the same scenes on every machine (the layouts are drawn
    from the seeds, the probe only rejects hidden objects). The index grows with the seed because
    the renderer knows a built scene by split, index and attempt, not by seed."""
    picked: list[Scene] = []
    seed = 0
    while len(picked) < count:
        scene = draw_scene(config.with_(seed=seed), "test", seed, renderer.probe_centre_mask)
        has_metal = any(o.material == "metal" for o in scene.objects)
        if has_metal and len(scene.objects) not in {len(s.objects) for s in picked}:
            picked.append(scene)
        seed += 1
    return picked


def measure_quality(renderer: SeededRenderer, scene, views: list[int], reference_samples: int,
                    candidates: dict[str, Quality], results: Path,
                    reference_names=tuple(REFERENCES), wait_s: float = 0) -> tuple[dict, dict, dict, dict]:
    """Per setting: seconds per view and, per reference, PSNR and the share off by > 3 levels for each view."""
    references, reference_s, reference_device = {}, {}, {}
    for name in reference_names:
        caustics = REFERENCES[name]
        quality = replace(BASELINE, samples=reference_samples, adaptive_threshold=0.0, caustics=caustics)
        references[name], reference_s[name], reference_device[name] = cached_reference(
            renderer, scene, views, quality, results, wait_s)
    rows = {}
    for name, quality in candidates.items():
        fixed = (lambda scene_seed, view: 0) if name == FIXED_SEED_ROW else None
        images, seconds = render_views(renderer, scene, views, quality, seed_for_view=fixed)
        rows[name] = {"s_per_view": seconds, "quality": asdict(quality)}
        for ref, reference in references.items():
            rows[name][ref] = {"psnr_db": [psnr(i, r) for i, r in zip(images, reference)],
                               "off": [off_share(i, r) for i, r in zip(images, reference)]}
    return rows, references, reference_s, reference_device


def summarise(per_scene: list[dict], name: str, reference_names=tuple(REFERENCES)) -> dict:
    """One setting over every scene: mean over scenes and views, the worst scene (mean over its views)."""
    out = {"s_per_view": float(np.mean([rows[name]["s_per_view"] for rows in per_scene]))}
    for ref in reference_names:
        by_scene = [float(np.mean(rows[name][ref]["psnr_db"])) for rows in per_scene]
        out[ref] = {"psnr_db": float(np.mean([p for rows in per_scene for p in rows[name][ref]["psnr_db"]])),
                    "psnr_db_worst": min(by_scene), "by_scene": by_scene,
                    "off": float(np.mean([o for rows in per_scene for o in rows[name][ref]["off"]]))}
    return out


def write_picture(path: Path, references: dict[str, np.ndarray], view_label: str, amplify: int = 8) -> None:
    """The two references side by side and their difference, amplified."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    full, plain = references["full physics"], references["no caustics"]
    diff = np.clip(np.abs(full.astype(int) - plain.astype(int)).max(axis=-1) * amplify, 0, 255).astype(np.uint8)
    height, width = full.shape[:2]
    scale = max(1.0, 320 / width)  # small quick renders are shown larger, pixels kept sharp
    fig, axes = plt.subplots(1, 3, figsize=(3 * width * scale / 100, height * scale / 100 + 0.45), dpi=100)
    panels = [(full, "Blender default physics (caustics on)"), (plain, "without caustics (default, draft)"),
              (diff, f"difference x{amplify} ({view_label})")]
    for ax, (image, title) in zip(axes, panels):
        ax.imshow(image, cmap="gray" if image.ndim == 2 else None, vmin=0, vmax=255, interpolation="nearest")
        ax.set_title(title, fontsize=8)
        ax.axis("off")
    fig.subplots_adjust(left=0.005, right=0.995, bottom=0.005, top=0.9, wspace=0.02)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3x3 rig, 160x120, 512-sample references")
    parser.add_argument("--reference-samples", type=int, help="default 2048 (512 with --quick)")
    parser.add_argument("--preset", default="default", choices=list(QUALITY_PRESETS))
    parser.add_argument("--width", type=int, help="default 480 (160 with --quick)")
    parser.add_argument("--height", type=int, help="default 320 (120 with --quick)")
    parser.add_argument("--scenes", type=int, default=3, help="scenes for the quality figures (default 3)")
    parser.add_argument("--views", choices=["centre+corner", "centre"], default="centre+corner",
                        help="views of each scene in the quality figures (default: centre and top-left corner)")
    parser.add_argument("--rig", type=int, help="rig of the pipeline measurement (default 9, 3 with --quick)")
    parser.add_argument("--full-physics-only", action="store_true",
                        help="only the full-physics reference (caustics on): half the reference rendering")
    parser.add_argument("--sample-counts", type=int, nargs="*", help="samples of the comparison rows "
                        "(default 4 8 12 16, 12 with --quick; none: only the baseline, presets and --search)")
    parser.add_argument("--presets", nargs="+", choices=list(QUALITY_PRESETS), default=list(QUALITY_PRESETS),
                        help="preset rows (default all; --preset is always among them)")
    parser.add_argument("--search", action="store_true",
                        help="add the caustics-on search rows (samples, adaptive, prefilter, filter glossy, clamping)")
    parser.add_argument("--wait-for-references", type=float, default=0, metavar="SECONDS",
                        help="wait this long for a reference another process is rendering into --results")
    parser.add_argument("--device", default="auto", choices=DEVICE_REQUESTS)
    parser.add_argument("--results", type=Path, default=RESULTS,
                        help="where references are cached (default bench/results)")
    parser.add_argument("--picture", type=Path, help="write the two references of one centre view (the scene "
                        "where they differ most) side by side with their difference to this PNG (docs/caustics.png)")
    args = parser.parse_args()
    if args.scenes < 1:
        parser.error(f"--scenes must be positive, got {args.scenes}")

    grid = 3 if args.quick else 9  # the scenes' rig (their views, so the cached references) stays this
    pipeline_grid = args.rig or grid
    reference_names = ("full physics",) if args.full_physics_only else tuple(REFERENCES)
    reference_samples = args.reference_samples or (512 if args.quick else 2048)
    width = args.width or (160 if args.quick else 480)
    height = args.height or (120 if args.quick else 320)
    config = RenderConfig(scenes=1, grid=grid, width=width, height=height,
                          quality=QUALITY_PRESETS[args.preset], device=args.device)
    print(f"machine: {platform.processor() or platform.machine()}, Blender {blender_version()}, "
          f"{config.width}x{config.height}, {grid}x{grid} rig ({pipeline_grid}x{pipeline_grid} for the pipeline), "
          f"preset {args.preset}")

    run = measure_pipeline(config.with_(grid=pipeline_grid))
    renderer = run["renderer"]
    print(f"device: {renderer.device.describe()}")
    per_view = run["total_s"] / run["views"]
    print(f"\npipeline, one scene of {run['views']} views: {run['total_s']:.1f} s, {per_view:.3f} s/view")
    for name, seconds in sorted(run["breakdown_s"].items(), key=lambda kv: -kv[1]):
        print(f"  {name:<10} {seconds:8.2f} s  {seconds / run['views']:.4f} s/view")
    overhead = run["total_s"] / run["bare_s"]
    print(f"bare bpy.ops.render.render of the same views, interleaved: {run['bare_s']:.1f} s "
          f"({run['bare_s'] / run['views']:.3f} s/view) -> overhead ratio {overhead:.3f}")

    scenes = benchmark_scenes(config, renderer, args.scenes)
    sample_counts = ([12] if args.quick else [4, 8, 12, 16]) if args.sample_counts is None else args.sample_counts
    presets = list(dict.fromkeys([args.preset, *args.presets]))
    candidates = quality_candidates(sample_counts, presets)
    if args.search:
        candidates.update(search_candidates())
    per_scene, scene_info, centres = [], [], []
    for number, scene in enumerate(scenes):
        views = [scene.rig.centre_view] + ([0] if args.views == "centre+corner" else [])  # centre, top-left corner
        rows, references, reference_s, reference_device = measure_quality(
            renderer, scene, views, reference_samples, candidates, args.results, reference_names,
            args.wait_for_references)
        per_scene.append(rows)
        between = [psnr(a, b) for a, b in zip(references["full physics"], references.get("no caustics", []))]
        metal = sum(o.material == "metal" for o in scene.objects)
        scene_info.append({"seed": scene.seed[0], "split": scene.split, "index": scene.index,
                           "objects": len(scene.objects), "metal": metal, "views": views,
                           "references_psnr_db": round(float(np.mean(between)), 2) if between else None,
                           "reference_s_per_view": {k: round(v, 1) for k, v in reference_s.items()},
                           "reference_device": reference_device})
        print(f"\nscene {number}: seed {scene.seed[0]} test scene {scene.index}, {len(scene.objects)} objects ({metal} metal), "
              f"views {views}; references " + " / ".join(f"{reference_s[r]:.1f}" for r in reference_names)
              + f" s/view ({' / '.join(reference_names)}, rendered on "
              f"{', '.join(sorted(set(reference_device.values())))})"
              + (f", {np.mean(between):.2f} dB apart" if between else ""))
        if between:
            centres.append(({k: v[0] for k, v in references.items()}, between[0], scene))
    if args.picture and centres:  # the scene whose references differ most in the centre view
        centre, between, scene = min(centres, key=lambda c: c[1])
        write_picture(args.picture, centre, f"seed {scene.seed[0]} test {scene.index}, centre view, {between:.1f} dB")
        print(f"\npicture: {args.picture} ({args.picture.stat().st_size / 1e3:.0f} kB), seed {scene.seed[0]}")

    summary = {name: summarise(per_scene, name, reference_names) for name in candidates}
    base_s = summary["baseline (Blender defaults, 16 spp)"]["s_per_view"]
    print(f"\nquality vs {reference_samples}-spp denoised references over {len(scenes)} scenes x {len(views)} "
          f"view(s) (mean PSNR dB / worst scene / share > 3 levels; speed-up vs the 16-spp baseline):")
    print(f"  {'setting':<52} {'s/view':>7} {'speed-up':>8} | " + " | ".join(f"{r:^24}" for r in reference_names))
    for name, row in summary.items():
        cells = " | ".join(f"{row[r]['psnr_db']:7.2f} {row[r]['psnr_db_worst']:7.2f} {row[r]['off']:8.2%}"
                           for r in reference_names)
        print(f"  {name:<52} {row['s_per_view']:7.3f} {base_s / row['s_per_view']:7.2f}x | {cells}")
    print(f"\nper scene (mean of its views, dB vs {' / '.join(reference_names)}):")
    for name in ("baseline (Blender defaults, 16 spp)", *(f"preset {p}" for p in presets), FIXED_SEED_ROW):
        cells = "  ".join("/".join(f"{summary[name][r]['by_scene'][k]:6.2f}" for r in reference_names)
                          for k in range(len(scenes)))
        print(f"  {name:<52} {cells}")
    if args.search:  # cheapest first among those that meet the criteria
        print("\nsearch, caustics on: >= 45 dB (full physics) on every scene at >= 2x the baseline's speed:")
        meeting = [(row["s_per_view"], name) for name, row in summary.items()
                   if row["full physics"]["psnr_db_worst"] >= 45 and base_s / row["s_per_view"] >= 2]
        for seconds, name in sorted(meeting):
            print(f"  {name:<52} {seconds:7.3f} s/view, worst scene {summary[name]['full physics']['psnr_db_worst']:.2f} dB")
        if not meeting:
            fast = [(row["full physics"]["psnr_db_worst"], name) for name, row in summary.items()
                    if base_s / row["s_per_view"] >= 2]
            print("  none; at >= 2x, the best worst scene: " + ", ".join(
                f"{name} ({worst:.2f} dB)" for worst, name in sorted(fast, reverse=True)[:3]))
    chosen = summary[f"preset {args.preset}"]
    baseline = summary["baseline (Blender defaults, 16 spp)"]
    fixed = summary[FIXED_SEED_ROW]
    default = summary["preset default"]
    print("\nper-view seeds vs one seed for all views (preset default, same views): " + ", ".join(
        f"{default[r]['psnr_db']:.2f} vs {fixed[r]['psnr_db']:.2f} dB ({r})" for r in reference_names))

    # Pixel datasets scale with views x pixels, the rest (cameras, counts, JSON) with views only.
    pixel_scale = 81 * 480 * 320 / (run["views"] * config.width * config.height)
    sizes = {k: v * (81 / run["views"] if k == "other" else pixel_scale) for k, v in run["bytes"].items()}
    bytes_per_scene = sum(sizes.values())
    print("\nbytes per scene on disk (scaled to 81 views at 480x320):")
    for name, value in sizes.items():
        print(f"  {name:<8} {value / 1e6:8.2f} MB")
    print(f"  total    {bytes_per_scene / 1e6:8.2f} MB -> {DATASET_SCENES:,} scenes: "
          f"{bytes_per_scene * DATASET_SCENES / 1e9:.1f} GB")

    for number, info in enumerate(scene_info):
        info["psnr_db_full_physics"] = round(chosen["full physics"]["by_scene"][number], 2)
        if "no caustics" in reference_names:
            info["psnr_db"] = round(chosen["no caustics"]["by_scene"][number], 2)

    def figure(row: dict, ref: str, key: str = "psnr_db"):
        return round(row[ref][key], 2) if ref in row else None

    # Full physics (Blender's own light paths, caustics included) first: the other reference is the
    # renderer with a feature missing. The no-caustics figures are null with --full-physics-only.
    result = {
        "psnr_db_full_physics": figure(chosen, "full physics"),
        "psnr_db_full_physics_worst": figure(chosen, "full physics", "psnr_db_worst"),
        "off_share_full_physics": round(chosen["full physics"]["off"], 5),
        "speedup_vs_baseline": round(baseline["s_per_view"] / chosen["s_per_view"], 3),
        "s_per_view": round(per_view, 4),
        "quality_s_per_view": round(chosen["s_per_view"], 4),
        "overhead_ratio": round(overhead, 4),
        "psnr_db": figure(chosen, "no caustics"),
        "psnr_db_worst": figure(chosen, "no caustics", "psnr_db_worst"),
        "baseline_s_per_view": round(baseline["s_per_view"], 4),
        "baseline_psnr_db_full_physics": figure(baseline, "full physics"),
        "baseline_psnr_db": figure(baseline, "no caustics"),
        "one_seed_psnr_db_full_physics": figure(fixed, "full physics"),
        "one_seed_psnr_db": figure(fixed, "no caustics"),
        "scenes": scene_info,
        "bytes_per_scene": int(bytes_per_scene),
        "full_dataset_gb": round(bytes_per_scene * DATASET_SCENES / 1e9, 2),
        "breakdown_s_per_view": {k: round(v / run["views"], 4) for k, v in run["breakdown_s"].items()},
        "device": renderer.device.describe(),
        "grid": grid, "pipeline_grid": pipeline_grid, "width": config.width, "height": config.height, "preset": args.preset,
        "reference_samples": reference_samples, "views_per_scene": len(views),
        "quality_settings": asdict(QUALITY_PRESETS[args.preset]),
    }
    renderer.close()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
