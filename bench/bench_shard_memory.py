"""Does a worker's memory grow with the scenes per shard? Streaming writes against holding the shard.

Why: before streaming, a shard's images, masks and depth stayed in memory until the shard was
written (about 1 GB at 10 scenes of 81 views at 480x320, 10 GB at 100). `pipeline.render_shard`
now writes each scene into the temporary shard as soon as it is rendered. This renders one shard
of 1 and of --scenes scenes both ways in one process and prints the peak Python/NumPy memory
(tracemalloc: every array the pipeline allocates; Blender's own buffers are not included, and
they do not depend on the shard either):

  * streaming: `pipeline.render_shard` (the pipeline's path);
  * holding: every scene rendered first, then `write_shard` (the path before streaming).

    python bench/bench_shard_memory.py --scenes 6 --width 160 --height 120

Prints one line per case, then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import tracemalloc
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from clevr_remv.config import Quality, RenderConfig  # noqa: E402
from clevr_remv.produce.pixel_path import render_scene, render_shard  # noqa: E402
from clevr_remv.store import write_shard  # noqa: E402
from clevr_remv.store.plan import ShardSpec  # noqa: E402


def peak_mb(write: Callable[[Path, int], None], scenes: int) -> float:
    with tempfile.TemporaryDirectory() as out:
        tracemalloc.start()
        try:
            tracemalloc.reset_peak()
            write(Path(out), scenes)
            return tracemalloc.get_traced_memory()[1] / 1e6
        finally:
            tracemalloc.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, default=6, help="scenes in the large shard")
    parser.add_argument("--rig", type=int, default=3)
    parser.add_argument("--width", type=int, default=160)
    parser.add_argument("--height", type=int, default=120)
    args = parser.parse_args()
    from clevr_remv.render.renderer import BlenderRenderer

    config = RenderConfig(scenes=2 * args.scenes, seed=3, grid=args.rig, width=args.width, height=args.height,
                          quality=Quality(samples=1, denoise=False), scenes_per_shard=args.scenes)
    renderer = BlenderRenderer(config)

    def streaming(out: Path, n: int) -> None:
        render_shard(config, ShardSpec("train", 0, 0, n), out, renderer, "bench")

    def holding(out: Path, n: int) -> None:
        rendered = [render_scene(config, "train", i, renderer) for i in range(n)]
        write_shard(out / "train" / "shard-00000.h5", [r for r, _ in rendered], [e.refs for _, e in rendered], {},
                    split="train", shard_index=0)

    streaming(Path(tempfile.mkdtemp()), 1)  # warm-up: meshes, materials, caches
    scene_mb = config.views * config.width * config.height * (3 + 1 + 4) / 1e6
    figures = {"scene_mb": round(scene_mb, 3)}
    for name, write in (("streaming", streaming), ("holding", holding)):
        one, many = peak_mb(write, 1), peak_mb(write, args.scenes)
        figures[name] = [round(one, 2), round(many, 2)]
        print(f"{name:10} peak {one:7.2f} MB for 1 scene per shard, {many:7.2f} MB for {args.scenes}", flush=True)
    renderer.close()
    print(json.dumps({"scenes": args.scenes, "views": config.views, "width": config.width,
                      "height": config.height, **figures}))


if __name__ == "__main__":
    main()
