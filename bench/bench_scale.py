"""How rendering scales with local worker processes (`clevr-remv render --workers N`).

For each N in --workers (default 1 and 2) the same small dataset is rendered into a fresh
directory by N spawned worker processes (pipeline.run with a LocalExecutor, as the CLI does
for N > 1; for N = 1 the CLI renders in its own process, here a worker is spawned too, so
both rows pay one process start per worker). Printed per N: wall time, scenes per hour,
views per second, the start-up of a worker (spawn + import bpy + renderer set-up, until its
first shard starts), and the peak resident memory (VmHWM) of each worker; then the ratio of
the throughputs. Rounds alternate the N values (1, 2, 1, 2, ...) so that a change in the
machine's load hits both alike. Ends with one JSON line.

    python bench/bench_scale.py                       # 8 scenes, 3x3 views, 96x64, 4 spp, ~3 min on 2 cores
    python bench/bench_scale.py --workers 1 2 4 --rounds 2
    python bench/bench_scale.py --device auto --gpus 0 --workers 1 2 4 --width 480 --height 320 --rig 9 --samples 12
                                                      # N workers sharing GPU 0 (OptiX if present, else CUDA...)
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from clevr_remv.config import Quality, RenderConfig
from clevr_remv.gpu.devices import DEVICE_REQUESTS, DeviceChoice, plan_workers
from clevr_remv.produce.run import run
from clevr_remv.runners.choose import device_choice
from clevr_remv.runners.local import LocalExecutor


def render_once(config: RenderConfig, choice: DeviceChoice, gpus: str | None, workers: int, root: Path) -> dict:
    out = Path(tempfile.mkdtemp(prefix=f"w{workers}-", dir=root))
    executor = LocalExecutor(plan_workers(choice, gpus, workers), choice)
    start = time.perf_counter()
    result = run(config, out, executor=executor)
    wall = time.perf_counter() - start
    assert result.manifest is not None and not result.failed, result
    shutil.rmtree(out)
    return {"wall_s": wall, "startup_s": executor.stats.startup_s, "peak_rss_mb": executor.stats.peak_rss_mb}


def summarise(config: RenderConfig, workers: int, runs: list[dict]) -> dict:
    wall = statistics.mean(r["wall_s"] for r in runs)
    startups = [s for r in runs for s in r["startup_s"]]
    rss = [m for r in runs for m in r["peak_rss_mb"]]
    return {
        "workers": workers,
        "wall_s": round(wall, 2),
        "scenes_per_hour": round(config.scenes / wall * 3600, 1),
        "views_per_s": round(config.scenes * config.views / wall, 3),
        "worker_startup_s": round(statistics.mean(startups), 2),
        "worker_startup_s_range": [round(min(startups), 2), round(max(startups), 2)],
        "peak_rss_mb_per_worker": round(max(rss), 1) if rss else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rounds", type=int, default=1, help="Renders per N, alternating the N values.")
    parser.add_argument("--scenes", type=int, default=8)
    parser.add_argument("--scenes-per-shard", type=int, default=1)
    parser.add_argument("--rig", type=int, default=3)
    parser.add_argument("--width", type=int, default=96)
    parser.add_argument("--height", type=int, default=64)
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--device", choices=DEVICE_REQUESTS, default="cpu")
    parser.add_argument("--gpus", default=None, help="GPUs the workers share, as render --gpus (e.g. 0)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="clevr-remv: %(message)s")

    config = RenderConfig(scenes=args.scenes, grid=args.rig, width=args.width, height=args.height,
                          quality=Quality(samples=args.samples), device=args.device, scenes_per_shard=args.scenes_per_shard,
                          seed=0)
    import os

    print(f"machine: {platform.machine()} {platform.system()}, {os.cpu_count()} CPU(s), {platform.processor() or '?'}; "
          f"Python {platform.python_version()}")
    print(f"config: {config.scenes} scenes in shards of {config.scenes_per_shard}, {config.grid}x{config.grid} views "
          f"of {config.width}x{config.height} px, {config.quality.samples} spp")
    choice = device_choice(config)
    print("device:", choice.describe(), f"(workers on GPU(s) {args.gpus})" if args.gpus else "")
    runs: dict[int, list[dict]] = {n: [] for n in args.workers}
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        for round_ in range(args.rounds):
            for n in args.workers:
                run = render_once(config, choice, args.gpus, n, Path(tmp))
                runs[n].append(run)
                print(f"round {round_ + 1}, {n} worker(s): {run['wall_s']:.1f} s", flush=True)
    rows = [summarise(config, n, runs[n]) for n in args.workers]
    print(f"{'workers':>7} {'wall s':>8} {'scenes/h':>9} {'views/s':>8} {'start-up s':>11} {'peak RSS MB':>12}")
    for r in rows:
        print(f"{r['workers']:>7} {r['wall_s']:>8.1f} {r['scenes_per_hour']:>9.1f} {r['views_per_s']:>8.3f} "
              f"{r['worker_startup_s']:>11.2f} {r['peak_rss_mb_per_worker']:>12.1f}")
    base = rows[0]["scenes_per_hour"]
    ratios = {str(r["workers"]): round(r["scenes_per_hour"] / base, 3) for r in rows}
    print("throughput relative to", rows[0]["workers"], "worker(s):", ratios)
    print(json.dumps({"config": config.identity(), "rows": rows, "ratio": ratios, "rounds": args.rounds}))


if __name__ == "__main__":
    main()
