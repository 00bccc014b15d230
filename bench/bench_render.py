"""Render benchmark: time per view, pipeline overhead, image quality per setting, bytes on disk.

Everything is measured side by side in one run, on the same scene, on this machine:

1. the pipeline at the chosen settings (probe, build, render, pass read-back, annotation,
   HDF5 write) on one scene, against a bare `bpy.ops.render.render` of each view (no file
   written) interleaved right after it: `overhead_ratio` = pipeline time / bare time;
2. image quality of sampling/denoising settings against a high-sample denoised reference
   of the same views (PSNR on the 8-bit sRGB images, share of pixels off by more than 3
   levels), with their time per view, including the baseline (16 samples with Blender's
   default denoiser, bounces and adaptive sampling);
3. bytes per scene on disk from the written shard, and the full 10,000-scene size.

    python bench/bench_render.py            # 9x9 rig, 480x320, 2048-sample reference (~25 min on 2 cores)
    python bench/bench_render.py --quick    # 3x3 rig, 512-sample reference (~5 min)

Prints tables and ends with one JSON line.
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

from clevr_remv import pipeline  # noqa: E402
from clevr_remv.config import QUALITY_PRESETS, Quality, RenderConfig  # noqa: E402
from clevr_remv.render.renderer import BlenderRenderer, blender_version, quiet_stdout  # noqa: E402
from clevr_remv.scene import Scene  # noqa: E402
from clevr_remv.shards import ShardSpec  # noqa: E402

DATASET_SCENES = 10_000
RESULTS = Path(__file__).resolve().parent / "results"

# Blender 4.5's defaults for a new scene, at 16 samples: the baseline the issue names.
BASELINE = Quality(samples=16, adaptive_threshold=0.01, denoise=True, denoiser_quality="HIGH",
                   denoiser_prefilter="ACCURATE", denoiser_passes="RGB_ALBEDO_NORMAL",
                   max_bounces=12, diffuse_bounces=4, glossy_bounces=4, light_tree=True)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))


def off_share(a: np.ndarray, b: np.ndarray, levels: int = 3) -> float:
    """Share of pixels whose worst channel is off by more than `levels`."""
    return float((np.abs(a.astype(int) - b).max(axis=-1) > levels).mean())


def render_views(renderer: BlenderRenderer, scene, views: list[int], quality: Quality) -> tuple[np.ndarray, float]:
    """Images of `views` at `quality` and the mean seconds per view (render + read-back)."""
    start = time.perf_counter()
    images = renderer.render_images(scene, views, quality)
    return images, (time.perf_counter() - start) / len(views)


def measure_pipeline(config: RenderConfig) -> dict:
    """The pipeline on one scene, with a bare render of each view interleaved right after it.

    After the pipeline renders (and reads back) view k, the camera is still there: the
    `on_view` hook times a bare `bpy.ops.render.render` of the same view (no file, no
    read-back) and its time is taken out of the pipeline's. Interleaving view by view
    keeps the machine's drift out of the ratio, which sequential loops did not (±10 %).
    """
    renderer = BlenderRenderer(config)
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
        pipeline.render_shard(config, shard, Path(tmp), renderer, blender_version(),
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


def quality_candidates(samples_list: list[int]) -> dict[str, Quality]:
    """The settings the table compares; the presets are among them."""
    rows = {"baseline (Blender defaults, 16 spp)": BASELINE}
    light_tree = replace(BASELINE, adaptive_threshold=0.0)  # the baseline without adaptive sampling
    for samples in samples_list:
        rows[f"{samples} spp, no denoiser"] = Quality(samples=samples, denoise=False)
        rows[f"{samples} spp, light tree, bounces 12, OIDN accurate"] = replace(light_tree, samples=samples)
        rows[f"{samples} spp, OIDN accurate"] = Quality(samples=samples, denoiser_prefilter="ACCURATE")
        rows[f"{samples} spp, OIDN prefilter fast"] = Quality(samples=samples)
        rows[f"{samples} spp, OIDN fast"] = Quality(samples=samples, denoiser_quality="FAST")
    rows[f"{max(samples_list)} spp, adaptive 0.01"] = Quality(samples=max(samples_list), adaptive_threshold=0.01)
    rows["12 spp, fast GI"] = Quality(fast_gi=True)
    rows["12 spp, bounces 2/1/2"] = Quality(max_bounces=2, diffuse_bounces=1, glossy_bounces=2)
    for name, preset in QUALITY_PRESETS.items():
        rows[f"preset {name}"] = preset
    return rows


def cached_reference(renderer: BlenderRenderer, scene, views: list[int], quality: Quality) -> tuple[np.ndarray, float]:
    """The reference takes minutes per view: keep it under bench/results/, keyed by everything it depends on."""
    key = json.dumps([scene.to_json(), views, asdict(quality), blender_version()], sort_keys=True)
    path = RESULTS / f"reference-{hashlib.sha256(key.encode()).hexdigest()[:16]}.npz"
    if path.exists():
        cached = np.load(path)
        return cached["images"], float(cached["seconds"])
    images, seconds = render_views(renderer, scene, views, quality)
    RESULTS.mkdir(parents=True, exist_ok=True)
    np.savez(path, images=images, seconds=seconds)
    return images, seconds


def measure_quality(renderer: BlenderRenderer, scene, views: list[int], reference_samples: int,
                    candidates: dict[str, Quality]) -> tuple[dict, float]:
    reference_quality = replace(BASELINE, samples=reference_samples, adaptive_threshold=0.0)
    reference, reference_s = cached_reference(renderer, scene, views, reference_quality)
    rows = {}
    for name, quality in candidates.items():
        images, seconds = render_views(renderer, scene, views, quality)
        rows[name] = {"s_per_view": seconds, "psnr_db": psnr(images, reference),
                      "off_by_more_than_3": off_share(images, reference), "quality": asdict(quality)}
    return rows, reference_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3x3 rig and a 512-sample reference")
    parser.add_argument("--preset", default="default", choices=list(QUALITY_PRESETS))
    parser.add_argument("--width", type=int, default=480)
    parser.add_argument("--height", type=int, default=320)
    args = parser.parse_args()

    grid = 3 if args.quick else 9
    reference_samples = 512 if args.quick else 2048
    config = RenderConfig(scenes=1, grid=grid, width=args.width, height=args.height,
                          quality=QUALITY_PRESETS[args.preset], device="auto")
    print(f"machine: {platform.processor() or platform.machine()}, Blender {blender_version()}, "
          f"{config.width}x{config.height}, {grid}x{grid} rig, preset {args.preset}")

    run = measure_pipeline(config)
    renderer, scene = run["renderer"], run["scene"]
    print(f"device: {renderer.device.describe()}")
    per_view = run["total_s"] / run["views"]
    print(f"\npipeline, one scene of {run['views']} views: {run['total_s']:.1f} s, {per_view:.3f} s/view")
    for name, seconds in sorted(run["breakdown_s"].items(), key=lambda kv: -kv[1]):
        print(f"  {name:<10} {seconds:8.2f} s  {seconds / run['views']:.4f} s/view")
    overhead = run["total_s"] / run["bare_s"]
    print(f"bare bpy.ops.render.render of the same views, interleaved: {run['bare_s']:.1f} s "
          f"({run['bare_s'] / run['views']:.3f} s/view) -> overhead ratio {overhead:.3f}")

    views = sorted({scene.rig.centre_view, 0})
    rows, reference_s = measure_quality(renderer, scene, views, reference_samples,
                                        quality_candidates([4, 8, 12, 16]))
    print(f"\nquality vs a {reference_samples}-spp denoised reference ({reference_s:.0f} s/view), views {views}:")
    print(f"  {'setting':<44} {'s/view':>7} {'PSNR dB':>8} {'>3 levels':>10}")
    for name, row in rows.items():
        print(f"  {name:<44} {row['s_per_view']:7.3f} {row['psnr_db']:8.2f} {row['off_by_more_than_3']:10.4%}")
    chosen = rows[f"preset {args.preset}"]
    baseline = rows["baseline (Blender defaults, 16 spp)"]

    # Pixel datasets scale with views x pixels, the rest (cameras, counts, JSON) with views only.
    pixel_scale = 81 * 480 * 320 / (run["views"] * config.width * config.height)
    per_scene = {k: v * (81 / run["views"] if k == "other" else pixel_scale) for k, v in run["bytes"].items()}
    bytes_per_scene = sum(per_scene.values())
    print("\nbytes per scene on disk (scaled to 81 views at 480x320):")
    for name, value in per_scene.items():
        print(f"  {name:<8} {value / 1e6:8.2f} MB")
    print(f"  total    {bytes_per_scene / 1e6:8.2f} MB -> {DATASET_SCENES:,} scenes: "
          f"{bytes_per_scene * DATASET_SCENES / 1e9:.1f} GB")

    result = {
        "s_per_view": round(per_view, 4),
        "overhead_ratio": round(overhead, 4),
        "psnr_db": round(chosen["psnr_db"], 2),
        "speedup_vs_baseline": round(baseline["s_per_view"] / chosen["s_per_view"], 3),
        "baseline_s_per_view": round(baseline["s_per_view"], 4),
        "baseline_psnr_db": round(baseline["psnr_db"], 2),
        "bytes_per_scene": int(bytes_per_scene),
        "full_dataset_gb": round(bytes_per_scene * DATASET_SCENES / 1e9, 2),
        "breakdown_s_per_view": {k: round(v / run["views"], 4) for k, v in run["breakdown_s"].items()},
        "device": renderer.device.describe(),
        "grid": grid, "width": config.width, "height": config.height, "preset": args.preset,
        "reference_samples": reference_samples,
    }
    renderer.close()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
