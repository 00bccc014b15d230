"""Render a CLEVR-Remv dataset on a Ray cluster from Python (what `clevr-remv render --executor ray` does).

    python examples/ray/render_on_ray.py --address auto --out /shared/clevr-remv --scenes 10000

--out must be on a filesystem every node mounts at the same path: each task writes its shard there.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from clevr_remv import pipeline
from clevr_remv.config import RenderConfig
from clevr_remv.runners.ray_runner import RayExecutor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--address", default=None, help="Ray cluster address (auto, ray://head:10001); none: local")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--scenes", type=int, default=10_000)
    parser.add_argument("--workers-per-gpu", type=int, default=1)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="clevr-remv: %(message)s")

    config = RenderConfig(scenes=args.scenes)
    result = pipeline.run(config, args.out, executor=RayExecutor(args.address, args.workers_per_gpu))
    for name, error in result.failed.items():
        print(f"failed: {name}: {error}")
    print(f"dataset complete: {result.manifest}" if result.manifest else "incomplete: run the same command again")


if __name__ == "__main__":
    main()
