"""Render a CLEVR-Remv dataset on a Ray cluster from Python (what `clevr-remv render --executor ray` does).

    python examples/ray/render_on_ray.py --address auto --out /shared/clevr-remv --scenes 10000

--out must be on a filesystem every node mounts at the same path: each task writes its shard there.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from clevr_remv.config import RenderConfig, validate
from clevr_remv.contract import EXIT_ERROR, EXIT_OK, ScriptParser, require_blender, run_script
from clevr_remv.produce.run import run
from clevr_remv.runners.ray_runner import RayExecutor


def main() -> int:
    parser = ScriptParser(description=__doc__.splitlines()[0])
    parser.add_argument("--address", default=None, help="Ray cluster address (auto, ray://head:10001); none: local")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--scenes", type=int, default=10_000)
    parser.add_argument("--workers-per-gpu", type=int, default=1)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="clevr-remv: %(message)s")

    config = RenderConfig(scenes=args.scenes)
    validate(config)  # a bad value in one line, before Ray starts
    require_blender()  # so is a Python without bpy (Ray's nodes run the driver's Python version)
    result = run(config, args.out, executor=RayExecutor(args.address, args.workers_per_gpu))
    for name, error in result.failed.items():
        print(f"failed: {name}: {error}", file=sys.stderr)
    print(f"dataset complete: {result.manifest}" if result.manifest else "incomplete: run the same command again")
    return EXIT_ERROR if result.failed or not result.manifest else EXIT_OK


if __name__ == "__main__":
    run_script(main)
