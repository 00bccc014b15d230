"""The benchmark: the reference model trained three ways, scored in the thesis's table shapes.

Rows: (a) trained on the centre view (the thesis's protocol), (b) trained on all 81 views, (c) the
text-blind control (`--text none`: the same network, every sentence blanked), (d) `evaluate`'s
reference points (the ground truth, and the centre view's mask used in every view). Every row is
scored on the test split's centre view and four corners:

    Table 7.1 shape: P@0.5 ... P@0.9, mIoU, oIoU on the centre view
    Table 7.3 shape: oIoU at the four corners, their mean and SD
    Table 7.4 shape: MVR from overall IoU and from mean IoU

beside the thesis's own rows (trained 800,000 iterations at 480x320 on a GPU), and the cost of each
training run: time, samples per second, peak memory, the loader's share of a step.

    python bench/bench_reference_model.py --dataset DATA --runs RUNS --steps 3000 [--render] [--parallel]

`--render` first renders DATA if it has no dataset.json (the command below, on this machine's CPU). Every
stage resumes: a run that is complete is not trained again, predictions that exist are not redone,
so an interrupted benchmark goes on where it stopped. Writes RUNS/benchmark.json and prints the tables
as Markdown (bench/measured/ keeps the record).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from clevr_remv.evaluation.scorecard import report_json  # noqa: E402
from clevr_remv.evaluation.scoring import evaluate  # noqa: E402
from clevr_remv.model.checkpoint import read_log  # noqa: E402

CLI = str(Path(sys.executable).with_name("clevr-remv"))
# The dataset: 600 scenes (420 / 90 / 90) of 9x9 views at 96x64, draft quality: the whole rig, as the
# thesis, so that the corners are the thesis's corners and MVR's view distances are its own.
RENDER = ["--scenes", "600", "--width", "96", "--height", "64", "--quality", "draft", "--workers", "2",
          "--scenes-per-shard", "10", "--seed", "0", "--no-progress"]
ROWS = {  # name -> (label, train options)
    "centre": ("(a) trained on the centre view", ["--views", "center"]),
    "all-views": ("(b) trained on all 81 views", ["--views", "all"]),
    "text-blind": ("(c) text-blind control (--text none)", ["--views", "center", "--text", "none"]),
}
BASELINES = {"oracle": "(d) ground truth (evaluate --baseline oracle)",
             "centre-mask": "(d) centre-view mask in every view (--baseline centre-mask)"}
# The thesis's rows (chapter 7), as fractions; None where the thesis gives no figure we carry.
THESIS = [
    {"row": "thesis: CNN-LSTM baseline", "centre_oiou": 0.4290},
    {"row": "thesis: RMI", "centre_oiou": 0.4693, "mvr_oiou": 0.078259},
    {"row": "thesis: CMPC", "centre_oiou": 0.9301},
    {"row": "thesis: LAVT", "centre_oiou": 0.9472, "corners": [0.8755, 0.8945, 0.9204, 0.9270], "mvr_oiou": 0.021996},
]
PRECISIONS = ("0.5", "0.6", "0.7", "0.8", "0.9")


def run(args: list[str], log: Path | None = None) -> float:
    """Run a command to the end (its output into `log`); the seconds it took."""
    started = time.perf_counter()
    with open(log, "a") if log else open(os.devnull, "w") as out:
        subprocess.run(args, check=True, stdout=out, stderr=subprocess.STDOUT)
    return time.perf_counter() - started


def render(dataset: Path) -> float | None:
    if (dataset / "dataset.json").exists():
        return None
    print(f"rendering {dataset}: clevr-remv render {' '.join(RENDER)}", flush=True)
    return run([CLI, "render", *RENDER, "--out", str(dataset)])


def train_all(dataset: Path, runs: Path, options: argparse.Namespace) -> None:
    """Train every row's run (side by side with --parallel); a complete run returns at once."""
    procs = []
    for name, (_, extra) in ROWS.items():
        if options.only and name not in options.only:
            continue
        args = [CLI, "train", str(dataset), "--out", str(runs / name), *extra, "--steps", str(options.steps),
                "--batch-size", str(options.batch_size), "--val-every", str(options.val_every),
                "--threads", str(options.threads), "--seed", "0", "--no-progress"]
        print("$", " ".join(args[1:]), flush=True)
        log = runs / f"{name}.train.log"
        if options.parallel:
            procs.append(subprocess.Popen(args, stdout=open(log, "a"), stderr=subprocess.STDOUT))
        else:
            run(args, log)
    for proc in procs:
        if proc.wait():
            raise SystemExit(f"a training run failed (exit {proc.returncode}): see {runs}/*.train.log")


def scored(dataset: Path, source: dict) -> dict:
    """evaluate's figures for the test split's corners (and centre) as the JSON report."""
    evaluation = evaluate(dataset, "test", views="corners", **source)
    return report_json(evaluation)


def row_figures(report: dict, grid: int) -> dict:
    views = {int(k): v for k, v in report["views"].items()}
    centre = views[grid * grid // 2]
    corners = [views[v]["oiou"] for v in (0, grid - 1, grid * (grid - 1), grid * grid - 1)]
    return {"centre": {**{f"P@{k}": centre[f"p@{k}"] for k in PRECISIONS},
                       "miou": centre["miou"], "oiou": centre["oiou"]},
            "corners": corners, "corner_mean": float(np.mean(corners)), "corner_sd": float(np.std(corners)),
            "mvr_oiou": report["mvr_oiou"], "mvr_miou": report["mvr_miou"]}


def training_cost(run_dir: Path) -> dict:
    end = [r for r in read_log(run_dir) if r.get("event") == "end"][-1]
    config = json.loads((run_dir / "config.json").read_text())
    return {"steps": end["steps"], "epochs": end["epochs"], "train_s": end["elapsed_s"],
            "samples_per_s": end["samples_per_s"], "loader_share": end["loader_share"],
            "peak_memory_mb": end["peak_memory_mb"], "best": end["best"], "batch_size": config["batch_size"],
            "size": config["size"], "device": end["device"]}


def pct(x: float | None, digits: int = 2) -> str:
    return "—" if x is None else f"{100 * x:.{digits}f}"


def tables(results: dict) -> str:
    rows, thesis = results["rows"], THESIS
    out = ["### Table 7.1 shape: test split, centre view (%)", "",
           "| row | " + " | ".join(f"P@{k}" for k in PRECISIONS) + " | mIoU | oIoU |",
           "| --- |" + " ---: |" * 7]
    for r in rows:
        c = r["figures"]["centre"]
        out.append(f"| {r['label']} | " + " | ".join(pct(c[f'P@{k}']) for k in PRECISIONS)
                   + f" | {pct(c['miou'])} | {pct(c['oiou'])} |")
    for t in thesis:
        out.append(f"| {t['row']} | " + " | ".join("—" for _ in PRECISIONS) + f" | — | {pct(t.get('centre_oiou'))} |")
    out += ["", "### Table 7.3 shape: test split, oIoU at the four corner views (fraction)", "",
            "| row | view 0 | view 8 | view 72 | view 80 | mean | SD |", "| --- |" + " ---: |" * 6]
    for r in rows:
        f = r["figures"]
        out.append(f"| {r['label']} | " + " | ".join(f"{v:.4f}" for v in f["corners"])
                   + f" | {f['corner_mean']:.4f} | {f['corner_sd']:.4f} |")
    for t in thesis:
        if "corners" in t:
            c = t["corners"]
            out.append(f"| {t['row']} | " + " | ".join(f"{v:.4f}" for v in c)
                       + f" | {np.mean(c):.4f} | {np.std(c):.4f} |")
    out += ["", "### Table 7.4 shape: Multi-View Robustness (%, lower is more robust)", "",
            "| row | MVR from oIoU | MVR from mIoU |", "| --- | ---: | ---: |"]
    for r in rows:
        f = r["figures"]
        out.append(f"| {r['label']} | {pct(f['mvr_oiou'], 4)} | {pct(f['mvr_miou'], 4)} |")
    for t in thesis:
        if "mvr_oiou" in t:
            out.append(f"| {t['row']} | {pct(t['mvr_oiou'], 4)} | — |")
    out += ["", "### Training cost", "",
            "| row | steps × batch | epochs | training time | samples/s | peak memory | loader share | best val oIoU (step) |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        c = r.get("training")
        if c is None:
            continue
        best = c["best"] or {}
        out.append(f"| {r['label']} | {c['steps']} × {c['batch_size']} | {c['epochs']:.2f} | "
                   f"{c['train_s'] / 60:.1f} min | {c['samples_per_s']:.1f} | {c['peak_memory_mb']:.0f} MB | "
                   f"{100 * c['loader_share']:.1f} % | {best.get('val_oiou', float('nan')):.4f} ({best.get('step')}) |")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", type=Path, required=True)
    parser.add_argument("--runs", type=Path, required=True)
    parser.add_argument("--render", action="store_true", help="render --dataset first if it is not there")
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--val-every", type=int, default=250)
    parser.add_argument("--threads", type=int, default=1, help="torch threads per run")
    parser.add_argument("--parallel", action="store_true", help="train the three runs side by side")
    parser.add_argument("--only", nargs="*", choices=list(ROWS), help="train and score these rows only")
    options = parser.parse_args()
    options.runs.mkdir(parents=True, exist_ok=True)

    render_s = render(options.dataset) if options.render else None
    train_all(options.dataset, options.runs, options)
    manifest = json.loads((options.dataset / "dataset.json").read_text())
    grid = manifest["config"]["grid"]
    results = {"dataset": str(options.dataset), "render_s": render_s, "machine": {
        "cpus": os.cpu_count(), "processor": platform.processor() or platform.machine(),
        "python": platform.python_version()}, "splits": {s: v["scenes"] for s, v in manifest["splits"].items()},
        "render": manifest["config"], "options": {k: str(v) for k, v in vars(options).items()}, "rows": []}
    for name, (label, _) in ROWS.items():
        run_dir = options.runs / name
        if not (run_dir / "config.json").exists():
            continue
        pred = run_dir / "pred-test.h5"
        started = time.perf_counter()
        if not pred.exists():
            run([CLI, "predict", str(options.dataset), str(run_dir), "--split", "test", "--views", "corners",
                 "--out", str(pred), "--no-progress"])
        predict_s = time.perf_counter() - started
        report = scored(options.dataset, {"predictions": pred})
        results["rows"].append({"name": name, "label": label, "figures": row_figures(report, grid),
                                "training": training_cost(run_dir), "predict_s": round(predict_s, 1)})
    for name, label in BASELINES.items():
        report = scored(options.dataset, {"baseline": name})
        results["rows"].append({"name": name, "label": label, "figures": row_figures(report, grid)})
    (options.runs / "benchmark.json").write_text(json.dumps(results, indent=2))
    print(tables(results))


if __name__ == "__main__":
    main()
