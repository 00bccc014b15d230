"""How occluded the referents are, on many scenes, without rendering images.

Visible fractions need only the masks and the depth, which Cycles writes exactly from a
1-sample, 0-bounce render (docs/output-format.md, "Scene layout"); this renders every view of each scene that
way, makes the pairs as the pipeline does and bins the referent's visible fraction over
(pair, view), centre view against all views, per split. It also times the amodal computation
per scene (with and without keeping the masks) and measures the bytes per scene that
`--amodal-masks` adds, from a shard written both ways.

    python bench/bench_occlusion.py --scenes 30            # per split, 480x320, 9x9 rig

Prints a table per split and ends with one JSON line.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from clevr_remv.config import RenderConfig  # noqa: E402
from clevr_remv.expressions import generate_pairs, language_templates  # noqa: E402
from clevr_remv.produce.pixel_path import draw_scene  # noqa: E402
from clevr_remv.render.cycles import PROBE_QUALITY  # noqa: E402
from clevr_remv.render.renderer import BlenderRenderer  # noqa: E402
from clevr_remv.scene import rig  # noqa: E402
from clevr_remv.store import ShardWriter  # noqa: E402
from clevr_remv.store.records import SceneRender  # noqa: E402
from clevr_remv.truth import amodal  # noqa: E402
from clevr_remv.truth.occlusion import BIN_NAMES, bin_index, ref_fractions  # noqa: E402
from clevr_remv.truth.visibility import visible_pixels  # noqa: E402


def shard_bytes(render: SceneRender, refs, with_masks: bool) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "shard-00000.h5"
        spec = render.scene.rig
        with ShardWriter(path, 1, spec.views, spec.height, spec.width, split=render.scene.split, shard_index=0,
                         amodal_masks=with_masks) as writer:
            writer.add(render, refs)
            writer.commit({})
        return path.stat().st_size


def histogram(fractions: np.ndarray, visible: np.ndarray) -> dict:
    """Counts per bin of the (pair, view)s whose referent is visible, plus those fully hidden or outside."""
    index = bin_index(np.where(visible, fractions, np.nan))
    return {"pairs_views": int(visible.sum()), "bins": {name: int((index == i).sum()) for i, name in enumerate(BIN_NAMES)},
            "not_visible": int((~visible).sum()),
            "mean_visible_fraction": float(np.nanmean(np.where(visible, fractions, np.nan))) if visible.any() else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, default=30, help="scenes per split")
    parser.add_argument("--width", type=int, default=480)
    parser.add_argument("--height", type=int, default=320)
    parser.add_argument("--rig", type=int, default=9)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--bytes-scenes", type=int, default=3, help="scenes whose shard is written both ways")
    args = parser.parse_args()
    config = RenderConfig(width=args.width, height=args.height, grid=args.rig, scenes=10_000, device="cpu",
                          quality=PROBE_QUALITY)
    templates = language_templates()  # the published language
    result = {"width": args.width, "height": args.height, "rig": args.rig, "scenes_per_split": args.scenes,
              "splits": {}, "amodal_seconds": [], "amodal_seconds_keeping_masks": [], "bytes": []}
    centre = config.views // 2
    with BlenderRenderer(config, threads=args.threads) as renderer:
        for split in ("train", "val", "test"):
            fractions, visible, objects = [], [], []
            for index in range(args.scenes):
                scene = draw_scene(config, split, index, renderer.probe_centre_mask)
                views = renderer.render_scene(scene)
                K, w2c = rig.intrinsics(scene.rig), rig.world_to_camera(scene.rig)
                start = time.perf_counter()
                counts, _ = amodal.amodal(scene, views.masks, views.depth, K, w2c)
                result["amodal_seconds"].append(time.perf_counter() - start)
                seen = visible_pixels(views.masks)
                refs = generate_pairs(scene, seen, config.min_visible_pixels, templates).refs
                if refs:
                    f = ref_fractions(seen[None], counts[None], np.zeros(len(refs), int), [r.object for r in refs])
                    fractions.append(f)
                    visible.append(np.array([r.visible for r in refs]))
                objects.append(ref_fractions(seen[None], counts[None], np.zeros(len(scene.objects), int),
                                             [o.id for o in scene.objects]))
                if len(result["bytes"]) < args.bytes_scenes:
                    start = time.perf_counter()
                    _, kept = amodal.amodal(scene, views.masks, views.depth, K, w2c, keep_masks=True)
                    result["amodal_seconds_keeping_masks"].append(time.perf_counter() - start)
                    render = SceneRender(scene, views.images, views.masks, views.depth, K, w2c, seen, counts, kept)
                    without = shard_bytes(render, refs, False)
                    render_without = SceneRender(scene, views.images, views.masks, views.depth, K, w2c, seen, counts)
                    result["bytes"].append({"without": shard_bytes(render_without, refs, False),
                                            "with_amodal_masks": shard_bytes(render, refs, True), "_check": without})
                print(f"{split} scene {index}: {len(scene.objects)} objects, {len(refs)} pairs", flush=True)
            f, v = np.concatenate(fractions), np.concatenate(visible)
            every = np.concatenate(objects)
            result["splits"][split] = {
                "pairs": int(len(f)),
                "all_views": histogram(f, v),
                "centre_view": histogram(f[:, [centre]], v[:, [centre]]),
                "objects_all_views": histogram(every, every > 0),
            }
    for split, entry in result["splits"].items():
        for where in ("centre_view", "all_views", "objects_all_views"):
            h = entry[where]
            shares = "  ".join(f"{name} {100 * n / max(h['pairs_views'], 1):5.1f}%" for name, n in h["bins"].items())
            print(f"{split:5s} {where:17s} {h['pairs_views']:6d}  {shares}  mean {h['mean_visible_fraction']:.3f}")
    print(f"amodal: {np.mean(result['amodal_seconds']):.2f} s per scene; keeping the masks "
          f"{np.mean(result['amodal_seconds_keeping_masks'] or [np.nan]):.2f} s")
    for b in result["bytes"]:
        print(f"shard of one scene (images at 1 sample): {b['without'] / 1e6:.2f} MB, with --amodal-masks "
              f"{b['with_amodal_masks'] / 1e6:.2f} MB (+{(b['with_amodal_masks'] - b['without']) / 1e6:.2f} MB)")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
