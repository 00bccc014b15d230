"""How long does `clevr-remv stats` take on 10,000 scenes? It must stay well under a minute.

Builds (once, cached in bench/results/stats-<scenes>/) a synthetic dataset laid out exactly
like a rendered one: 9x9 views, real layouts and referring pairs written by the real shard
writer, but 1x1-pixel images, masks and depth, since stats never reads pixels. Per-view
pixel counts are drawn at random (the centre view always visible) so `refs/visible` varies.
`--distinct` layouts are drawn and reused cyclically, which keeps the build short; stats'
work per scene does not depend on which layout it is. Then it times the command as a user
runs it (a fresh process, imports included), with and without figures, and prints one JSON
line at the end.

    python bench/bench_stats.py                 # 10,000 scenes
    python bench/bench_stats.py --scenes 1000 --distinct 200
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from clevr_remv.config import RenderConfig  # noqa: E402
from clevr_remv.expressions import (  # noqa: E402
    expression_attrs,  # noqa: E402
    generate_pairs,
    language_templates,
)
from clevr_remv.produce.finish import finish_dataset  # noqa: E402
from clevr_remv.produce.pixel_path import shard_attrs  # noqa: E402
from clevr_remv.scene.layout import draw_layout, scene_rng  # noqa: E402
from clevr_remv.scene.vocabulary import MAX_OBJECTS  # noqa: E402
from clevr_remv.store import write_shard  # noqa: E402
from clevr_remv.store.plan import plan_shards  # noqa: E402
from clevr_remv.store.records import SceneRender  # noqa: E402


def tiny_render(scene, visible_pixels: np.ndarray) -> SceneRender:
    """A SceneRender whose pixel arrays are 1x1: the shapes the writer checks, no real pixels."""
    views = len(visible_pixels)
    return SceneRender(scene, np.zeros((views, 1, 1, 3), np.uint8), np.zeros((views, 1, 1), np.uint8),
                       np.zeros((views, 1, 1), np.float32), np.tile(np.eye(3), (views, 1, 1)),
                       np.tile(np.eye(4), (views, 1, 1)), visible_pixels, visible_pixels)


def build(out: Path, scenes: int, distinct: int, seed: int = 0) -> None:
    """Write the synthetic dataset into `out` (dataset.json last, as the pipeline does)."""
    config = RenderConfig(scenes=scenes, seed=seed, scenes_per_shard=10)
    templates = language_templates()  # the published language
    rng = np.random.default_rng(seed)
    pool = []
    started = time.perf_counter()
    for i in range(distinct):
        scene = draw_layout(scene_rng(seed, "train", i), config, "train", i)
        pixels = rng.integers(0, 4 * config.min_visible_pixels, (config.views, MAX_OBJECTS)).astype(np.int32)
        pixels[scene.rig.centre_view] = 10 * config.min_visible_pixels
        pool.append((scene, pixels))
    print(f"drew {distinct} layouts in {time.perf_counter() - started:.1f} s", flush=True)
    started = time.perf_counter()
    for shard in plan_shards(config):
        renders, results = [], []
        for index in shard.scene_indices:
            scene, pixels = pool[index % distinct]
            scene = replace(scene, split=shard.split, index=index)
            renders.append(tiny_render(scene, pixels))
            results.append(generate_pairs(scene, pixels, config.min_visible_pixels, templates))
        attrs = {**shard_attrs(config, shard, "none (synthetic)"), **expression_attrs(results)}
        write_shard(shard.path(out), renders, [r.refs for r in results], attrs, split=shard.split,
                    shard_index=shard.index)
    print(f"wrote {len(plan_shards(config))} shards in {time.perf_counter() - started:.1f} s", flush=True)
    finish_dataset(config, out, "none (synthetic)")


def timed(*args: str) -> tuple[float, float]:
    """(wall, CPU) seconds of one `clevr-remv stats` run in a fresh process.

    CPU time (user + system) is reported beside the wall time because a shared machine's
    load stretches the wall time but hardly the CPU time.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    command = [sys.executable, "-c", "from clevr_remv.cli import main; main()", *args]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, cwd=ROOT)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, default=10_000)
    parser.add_argument("--distinct", type=int, default=1_000, help="distinct layouts, reused cyclically")
    parser.add_argument("--out", type=Path, default=None, help="dataset folder (default bench/results/stats-N)")
    args = parser.parse_args()
    out = args.out or ROOT / "bench" / "results" / f"stats-{args.scenes}"
    if not (out / "dataset.json").exists():
        build(out, args.scenes, min(args.distinct, args.scenes))
    size_mb = sum(p.stat().st_size for p in out.rglob("*.h5")) / 1e6
    figdir = out.parent / f"{out.name}-figures"
    table_only = timed("stats", str(out), "--out", str(figdir), "--no-progress", "--no-figures")
    full = timed("stats", str(out), "--out", str(figdir), "--no-progress")
    stats = json.loads((figdir / "stats.json").read_text())
    scenes = sum(s["scenes"] for s in stats["splits"].values())
    pairs = sum(s["pairs"] for s in stats["splits"].values())
    load = os.getloadavg()[0]
    print(stats["table"])
    print(f"{scenes:,} scenes, {pairs:,} pairs in {size_mb:.0f} MB of shards, {os.cpu_count()} CPUs, load {load:.1f}:")
    print(f"  stats --no-figures  {table_only[0]:6.1f} s wall  {table_only[1]:6.1f} s CPU")
    print(f"  stats with figures  {full[0]:6.1f} s wall  {full[1]:6.1f} s CPU")
    print(json.dumps({"scenes": scenes, "pairs": pairs, "wall_s": round(full[0], 2), "cpu_s": round(full[1], 2),
                      "wall_s_no_figures": round(table_only[0], 2), "cpu_s_no_figures": round(table_only[1], 2),
                      "figure_files": len(stats["figures"]), "load_average": round(load, 1)}))


if __name__ == "__main__":
    main()
