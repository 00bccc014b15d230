"""Amodal masks: the silhouette polygons (clevr_remv.truth.amodal) against Cycles rendering each object alone.

For each scene, every object in the centre and the four corner views (or every view with
--all-views) is rendered by Cycles with the other objects invisible to camera rays
(clevr_remv.render.amodal_reference, 1 sample, 0 bounces) and compared with its polygon: pixels only one
of them covers, IoU per shape, and the time per object and view of each method.

    python bench/bench_amodal.py --scenes 10            # 480x320, 9x9 rig
    python bench/bench_amodal.py --scenes 2 --width 120 --height 80 --rig 3

Prints one line per shape and a JSON line at the end.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from clevr_remv.config import RenderConfig  # noqa: E402
from clevr_remv.produce.pixel_path import draw_scene  # noqa: E402
from clevr_remv.render.amodal_reference import render_amodal_reference  # noqa: E402
from clevr_remv.render.renderer import BlenderRenderer  # noqa: E402
from clevr_remv.scene import rig  # noqa: E402
from clevr_remv.truth import amodal  # noqa: E402


def edge_distance(obj, K: np.ndarray, w2c: np.ndarray, x: int, y: int) -> float:
    """Distance in pixels from the pixel centre (x, y) to the nearest edge of the object's polygon."""
    from scipy.spatial import ConvexHull

    uv, _ = amodal.camera_points(amodal.object_vertices(obj), K, w2c)
    hull = uv[ConvexHull(uv).vertices]
    edge = np.roll(hull, -1, axis=0) - hull
    t = np.clip(((np.array([x, y]) - hull) * edge).sum(1) / (edge * edge).sum(1), 0, 1)
    return float(np.linalg.norm(hull + t[:, None] * edge - np.array([x, y]), axis=1).min())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, default=10)
    parser.add_argument("--first", type=int, default=0, help="first train scene index")
    parser.add_argument("--width", type=int, default=480)
    parser.add_argument("--height", type=int, default=320)
    parser.add_argument("--rig", type=int, default=9)
    parser.add_argument("--all-views", action="store_true")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    config = RenderConfig(width=args.width, height=args.height, grid=args.rig, scenes=10_000, device="cpu")
    views = list(range(config.views)) if args.all_views else sorted({*rig.corner_views(args.rig), config.views // 2})
    per_shape = defaultdict(lambda: np.zeros(4, np.int64))  # pixels both, only reference, only polygon, objects
    exact = defaultdict(int)
    seconds = {"reference": 0.0, "polygon": 0.0}
    far = 0.0  # the largest distance of a pixel centre on which the two disagree to the polygon's edge
    object_views = 0
    with BlenderRenderer(config, threads=args.threads) as renderer:
        for index in range(args.first, args.first + args.scenes):
            scene = draw_scene(config, "train", index, renderer.probe_centre_mask)
            K, w2c = rig.intrinsics(scene.rig), rig.world_to_camera(scene.rig)
            start = time.perf_counter()
            reference = render_amodal_reference(renderer, scene, views)
            seconds["reference"] += time.perf_counter() - start
            start = time.perf_counter()
            polygons = amodal.footprints(scene, K, w2c, views)
            seconds["polygon"] += time.perf_counter() - start
            object_views += len(scene.objects) * len(views)
            for obj in scene.objects:
                a, b = reference[:, obj.id - 1], polygons[:, obj.id - 1]
                for i, view in enumerate(views):
                    for y, x in zip(*np.nonzero(a[i] != b[i])):
                        far = max(far, edge_distance(obj, K[view], w2c[view], x, y))
                per_shape[obj.shape] += [(a & b).sum(), (a & ~b).sum(), (b & ~a).sum(), len(views)]
                exact[obj.shape] += int(sum(np.array_equal(a[i], b[i]) for i in range(len(views))))
            print(f"scene {index}: {len(scene.objects)} objects", flush=True)
    result = {"width": args.width, "height": args.height, "rig": args.rig, "views": views, "scenes": args.scenes,
              "ms_per_object_view": {k: round(1000 * v / object_views, 2) for k, v in seconds.items()},
              "largest_edge_distance_px": far,
              "shapes": {}}
    for shape, (both, only_ref, only_poly, count) in sorted(per_shape.items()):
        iou = both / max(both + only_ref + only_poly, 1)
        result["shapes"][shape] = {"object_views": int(count), "identical": exact[shape], "pixels": int(both + only_ref),
                                   "only_cycles": int(only_ref), "only_polygon": int(only_poly), "iou": round(float(iou), 6)}
        print(f"{shape:9s} {count:5d} object-views, {exact[shape]:5d} identical; {both + only_ref:9d} pixels, "
              f"{only_ref} only Cycles', {only_poly} only the polygon's; IoU {iou:.6f}")
    print(f"per object and view: Cycles alone {result['ms_per_object_view']['reference']} ms, "
          f"polygon {result['ms_per_object_view']['polygon']} ms")
    print(f"pixels the two disagree on lie within {far:.2g} px of the polygon's edge")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
