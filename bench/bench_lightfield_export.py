"""How fast are the light-field exports, per written view and per process, beside `export refcoco`?
And what do the zero and plane-sweep baselines score on real 480x320 scenes?

Renders (once, cached in bench/results/lightfield-<W>x<H>/) a small real dataset: 9x9 views,
draft quality, one scene per shard. Then runs each export as a library call in this one process
(workers=1, no progress bar), timing wall-clock and CPU time, and counts what it wrote:

    refcoco      --views all: one PNG per view (the existing export, for comparison)
    hci          every view's PNG and mask PNG, centre ground truth
    hci-all      the same with --all-views (every view's PFMs and valid masks)
    lf-mat       one .mat per scene (uncompressed), and lf-mat-z with --compress
    focal-stack  12 refocused slices + the all-in-focus image per scene

"written view" is a view image the format writes: 81 per scene for refcoco, hci and lf-mat,
13 for focal-stack (its slices each average all 81 views). Prints a table and one JSON line.

    python bench/bench_lightfield_export.py                    # 3 scenes, 480x320
    python bench/bench_lightfield_export.py --dataset out/     # an existing dataset
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from clevr_remv.evaluation.disparity_scoring import evaluate_disparity  # noqa: E402
from clevr_remv.export import export_refcoco  # noqa: E402
from clevr_remv.export.focal_stack import export_focal_stack  # noqa: E402
from clevr_remv.export.hci import export_hci  # noqa: E402
from clevr_remv.export.lf_mat import export_lf_mat  # noqa: E402
from clevr_remv.store import DatasetReader  # noqa: E402


def dataset(width: int, height: int, scenes: int) -> Path:
    out = ROOT / "bench" / "results" / f"lightfield-{width}x{height}-{scenes}"
    if not (out / "dataset.json").is_file():
        subprocess.run([sys.executable, "-c", "from clevr_remv.cli import main; main()", "render", "--scenes",
                        str(scenes), "--width", str(width), "--height", str(height), "--quality", "draft",
                        "--scenes-per-shard", "1", "--seed", "1", "--no-progress", "--out", str(out)], check=True, cwd=ROOT)
    return out


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, default=None, help="an existing dataset (default: render one)")
    parser.add_argument("--scenes", type=int, default=3, help="scenes to render when no --dataset is given")
    parser.add_argument("--width", type=int, default=480)
    parser.add_argument("--height", type=int, default=320)
    args = parser.parse_args()
    root = args.dataset or dataset(args.width, args.height, args.scenes)
    reader = DatasetReader(root)
    scenes = sum(int(e.get("scenes", 0)) for e in reader.manifest["splits"].values())
    grid = int(reader.manifest["config"]["grid"])
    views = grid * grid
    formats = {
        "refcoco": (lambda out: export_refcoco(root, out, "all"), views),
        "hci": (lambda out: export_hci(root, out), views),
        "hci-all": (lambda out: export_hci(root, out, all_views=True), views),
        "lf-mat": (lambda out: export_lf_mat(root, out), views),
        "lf-mat-z": (lambda out: export_lf_mat(root, out, compress=True), views),
        "focal-stack": (lambda out: export_focal_stack(root, out, slices=12), 13),
    }
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench-lf-") as tmp:
        for name, (run, per_scene) in formats.items():
            out = Path(tmp) / name
            wall, cpu = time.perf_counter(), time.process_time()
            run(out)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            written = scenes * per_scene
            results[name] = {"scenes": scenes, "written_views": written, "wall_s": round(wall, 2),
                             "ms_per_view_wall": round(1000 * wall / written, 1),
                             "ms_per_view_cpu": round(1000 * cpu / written, 1),
                             "s_per_scene_wall": round(wall / scenes, 2),
                             "mb_per_scene": round(folder_bytes(out) / scenes / 1e6, 2)}
            shutil.rmtree(out)
    baselines = {}
    for baseline in ("zero", "plane-sweep"):
        wall = time.perf_counter()
        scored = [evaluate_disparity(root, split, baseline=baseline) for split in reader.splits
                  if int(reader.manifest["splits"][split].get("scenes", 0))]
        wall = time.perf_counter() - wall
        per_scene = {name: s for e in scored for name, s in e.scenes.items()}
        baselines[baseline] = {"s_per_scene": round(wall / len(per_scene), 2),
                               "scenes": {n: {k: round(v, 3) for k, v in s.items()} for n, s in per_scene.items()}}
    print(f"{scenes} scenes of {grid}x{grid} views, {reader.manifest['config']['width']}x"
          f"{reader.manifest['config']['height']}, one process")
    print(f"{'format':12} {'ms/view wall':>12} {'ms/view cpu':>12} {'s/scene':>8} {'MB/scene':>9}")
    for name, r in results.items():
        print(f"{name:12} {r['ms_per_view_wall']:12.1f} {r['ms_per_view_cpu']:12.1f} {r['s_per_scene_wall']:8.2f} "
              f"{r['mb_per_scene']:9.2f}")
    for baseline, b in baselines.items():
        for name, s in b["scenes"].items():
            print(f"{baseline:12} {name}: MSE*100 {s['mse_100']:.3f}  BadPix(0.07) {s['badpix_0070']:.2f}  "
                  f"Q25 {s['q_25_100']:.2f}")
        print(f"{baseline:12} {b['s_per_scene']:.2f} s per scene")
    print(json.dumps({"dataset": str(root), "formats": results, "baselines": baselines}))


if __name__ == "__main__":
    main()
