"""Does a long-running render worker stay healthy? Resident memory over many scenes.

Blender is known to leak across many scenes in one process; the renderer reuses meshes
and materials and deletes each scene's objects and lights. This renders --scenes tiny
scenes (geometry and object churn are what leak, not pixels) in one process and prints
the resident set size after each tenth, then the growth per scene as one JSON line.

    python bench/bench_memory.py --scenes 100
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from clevr_remv.config import Quality, RenderConfig  # noqa: E402
from clevr_remv.produce.pixel_path import render_scene  # noqa: E402
from clevr_remv.render.renderer import BlenderRenderer  # noqa: E402
from clevr_remv.runners.local import process_memory_mb  # noqa: E402


def rss_mb() -> float:
    """Current resident set size (Linux /proc), falling back to the peak."""
    rss = process_memory_mb("VmRSS")
    return rss if rss is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, default=100)
    args = parser.parse_args()
    config = RenderConfig(scenes=args.scenes, grid=3, width=64, height=48, quality=Quality(samples=1, denoise=False))
    renderer = BlenderRenderer(config)
    samples = []
    for index in range(args.scenes):
        render_scene(config, "train", index, renderer)
        if index in (0, 9) or (index + 1) % max(1, args.scenes // 10) == 0:
            samples.append((index + 1, rss_mb()))
            print(f"after {index + 1:5d} scenes: {samples[-1][1]:8.1f} MB", flush=True)
    # Growth after warm-up (the first scenes create meshes, materials and caches).
    (n0, m0), (n1, m1) = samples[1], samples[-1]
    growth = (m1 - m0) / max(1, n1 - n0)
    renderer.close()
    print(json.dumps({"scenes": args.scenes, "rss_first_mb": round(samples[0][1], 1), "rss_last_mb": round(m1, 1),
                      "growth_mb_per_scene": round(growth, 4),
                      "growth_gb_per_1000_scenes": round(growth * 1000 / 1024, 3)}))


if __name__ == "__main__":
    main()
