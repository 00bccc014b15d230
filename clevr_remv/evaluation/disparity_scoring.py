"""`clevr-remv evaluate-disparity`: a depth estimator's centre-view disparity maps scored against
the ground truth with the HCI benchmark's general metrics (`disparity_metrics.py`), per scene and
on average, or a reference point scored instead (`zero`: everything on the focus plane;
`plane-sweep`: the classical estimate of `plane_sweep.py`).

Predictions are laid out as the benchmark's `algo_results/<algo>/disp_maps/<scene>.pfm`: give the
`<algo>` folder (or its `disp_maps`), one `Pf` file per scene named as the exports name scenes
(`test_00003.pfm`), at the dataset's resolution, in pixels per view step with the benchmark's sign
(positive nearer than the focus plane).

The file names carry the split, so a folder made for another split is refused naming both; nothing in
the benchmark's layout records which dataset the maps were made for (a predictions file of
`evaluate` does), so that is not checked here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from clevr_remv.data.lightfield_scenes import (
    LightFieldScene,
    iter_lightfield_scenes,
    scene_name,
)
from clevr_remv.data.selection import describe_range, parse_scene_range
from clevr_remv.evaluation.disparity_metrics import (
    BORDER,
    METRICS,
    mean_metrics,
    scene_metrics,
)
from clevr_remv.export.pfm import read_pfm

BASELINES = ("zero", "plane-sweep")

SceneCallback = Callable[[LightFieldScene, np.ndarray, np.ndarray, dict[str, float]], None]


@dataclass
class DisparityEvaluation:
    split: str
    source: str
    grid: int
    width: int
    height: int
    border: int
    scene_range: str
    scenes: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def mean(self) -> dict[str, float]:
        return mean_metrics(list(self.scenes.values()))


def prediction_folder(path: Path) -> Path:
    """The folder holding `<scene>.pfm`: `path/disp_maps` when there is one (the benchmark's
    `algo_results/<algo>`), else `path` itself."""
    path = Path(path)
    if not path.is_dir():
        raise ValueError(f"--predictions {path}: {'not a folder' if path.exists() else 'no such folder'}")
    return path / "disp_maps" if (path / "disp_maps").is_dir() else path


def check_predictions(folder: Path, names: list[str], split: str, shape: tuple[int, int]) -> None:
    """One line naming the first problem and how many there are: missing scenes, then files that
    are no PFM, of the wrong size, or hold NaN or infinite values."""
    missing = [n for n in names if not (folder / f"{n}.pfm").is_file()]
    if len(missing) == len(names):  # the split is in the file names: a folder made for another split
        others = sorted({p.stem.rsplit("_", 1)[0] for p in folder.glob("*_*.pfm")} - {split})
        if others:
            raise ValueError(f"{folder} holds predictions for the {' and '.join(map(repr, others))} split, not "
                             f"for {split!r} (no {missing[0]}.pfm): evaluate it with --split {others[0]}")
    if missing:
        raise ValueError(f"{folder}: no prediction for {len(missing)} of the {len(names)} scene(s) of split "
                         f"{split!r} (first: {missing[0]}.pfm)")
    problems: list[str] = []
    for name in names:
        path = folder / f"{name}.pfm"
        try:
            data = read_pfm(path)
        except (ValueError, OSError) as error:
            problems.append(str(error))
            continue
        if data.shape != shape:
            problems.append(f"{path} is {data.shape[1]}x{data.shape[0]}, the dataset's views are "
                            f"{shape[1]}x{shape[0]}")
        elif not np.all(np.isfinite(data)):
            problems.append(f"{path} has {int(np.sum(~np.isfinite(data)))} NaN or infinite value(s)")
    if problems:
        more = f" ({len(problems)} bad prediction files in all)" if len(problems) > 1 else ""
        raise ValueError(problems[0] + more)


def estimate(scene: LightFieldScene, baseline: str) -> np.ndarray:
    """A reference point's centre-view disparity for one scene."""
    if baseline == "zero":
        return np.zeros(scene.depth.shape[1:], np.float32)
    from clevr_remv.lightfield.plane_sweep import candidate_disparities, plane_sweep

    # The candidates span the scene's range, as the benchmark gives disp_min/disp_max in parameters.cfg.
    return plane_sweep(scene.images, candidate_disparities(scene.disp_min, scene.disp_max), scene.grid)


def evaluate_disparity(root: Path, split: str = "test", *, predictions: Path | None = None,
                       baseline: str | None = None, scenes: str | None = None, border: int = BORDER,
                       progress: Callable[[int], Callable[[], Any]] | None = None,
                       on_scene: SceneCallback | None = None) -> DisparityEvaluation:
    """Score the centre-view disparity of every chosen scene of `split`; `on_scene` sees each
    scene with its ground truth, prediction and scores (for pictures) as it is scored."""
    from clevr_remv.data.selection import rig_grid
    from clevr_remv.store import DatasetReader

    if (predictions is None) == (baseline is None):
        raise ValueError("give --predictions FOLDER or --baseline zero|plane-sweep (one of them)")
    if baseline is not None and baseline not in BASELINES:
        raise ValueError(f"--baseline {baseline!r}: choose {' or '.join(BASELINES)}")
    indices = parse_scene_range(scenes)
    reader = DatasetReader(root)
    reader.require_split(split)
    grid = rig_grid(reader.manifest)
    config = reader.manifest.get("config", {})
    count = int(reader.manifest["splits"][split].get("scenes", 0))
    chosen = range(count) if indices is None else range(count)[indices.start:indices.stop]
    if not chosen:
        raise ValueError(f"no scene to evaluate: split {split!r} of {root} has {count} scene(s) "
                         f"({describe_range(indices)} asked for)")
    names = [scene_name(split, i) for i in chosen]
    width, height = int(config.get("width", 0)), int(config.get("height", 0))
    folder = None
    if predictions is not None:
        folder = prediction_folder(predictions)
        if not (width and height):  # an old manifest: the size from the first shard
            from clevr_remv.store import ShardReader

            with ShardReader(reader.shard_paths(split)[0], reader.root) as shard:
                height, width = shard.image_size
        check_predictions(folder, names, split, (height, width))
    source = f"predictions {predictions}" if predictions is not None else f"baseline {baseline}"
    evaluation = DisparityEvaluation(split, source, grid, width, height, border, describe_range(indices))
    tick = progress(len(chosen)) if progress is not None else None
    what = ("images", "depth") if baseline == "plane-sweep" else ("depth",)
    for scene in iter_lightfield_scenes(reader.root, split, indices, what):
        truth, valid = scene.disparity[scene.centre], scene.valid[scene.centre]
        if folder is not None:
            prediction = read_pfm(folder / f"{scene.name}.pfm")
        else:
            prediction = estimate(scene, baseline)
        scores = scene_metrics(prediction, truth, valid, border)
        evaluation.scenes[scene.name] = scores
        evaluation.width, evaluation.height = truth.shape[1], truth.shape[0]
        if on_scene is not None:
            on_scene(scene, truth, prediction, scores)
        if tick is not None:
            tick()
    return evaluation


def _cells(scores: dict[str, float]) -> list[str]:
    return [f"{scores[key]:.3f}" if key == "mse_100" else f"{scores[key]:.2f}" for key in METRICS]


def format_report(evaluation: DisparityEvaluation) -> str:
    """The printed table: one row per scene and the mean (BadPix in %, MSE and Q25 times 100)."""
    e = evaluation
    headers = ["scene", *METRICS.values(), "pixels"]
    rows = [[name, *_cells(s), str(s["pixels"])] for name, s in e.scenes.items()]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    mean = e.mean
    lines = [f"{e.source} on {e.split} ({len(e.scenes)} scene(s), {e.grid}x{e.grid} views of {e.width}x{e.height}, "
             f"centre view, {e.border}-pixel border and pixels without a surface left out)",
             "  ".join(h.rjust(w) if i else h.ljust(w) for i, (h, w) in enumerate(zip(headers, widths)))]
    lines += ["  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))) for row in rows]
    lines.append("  ".join("-" * w for w in widths))
    cells = ["mean", *_cells(mean), str(mean["pixels"])]
    lines.append("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths))))
    lines.append("MSE*100: mean squared error x 100; BadPix(t): % of pixels off by more than t px; "
                 "Q25: 25th percentile of the absolute error x 100 (the HCI benchmark's definitions)")
    return "\n".join(lines)


def report_json(evaluation: DisparityEvaluation) -> dict[str, Any]:
    e = evaluation
    return {"split": e.split, "source": e.source, "grid": e.grid, "width": e.width, "height": e.height,
            "border": e.border, "scene_range": e.scene_range, "metrics": METRICS,
            "scenes": e.scenes, "mean": e.mean}


def write_report_json(evaluation: DisparityEvaluation, path: Path) -> None:
    from clevr_remv.store import write_json_atomic

    write_json_atomic(Path(path), report_json(evaluation))


class ErrorPictures:
    """`on_scene` callback writing FOLDER/<scene>.png: ground truth, prediction, signed error
    (truth − prediction, ±0.2 px as the toolkit draws it) and BadPix(0.07), border and invalid grey."""

    def __init__(self, folder: Path, border: int = BORDER) -> None:
        self.folder, self.border = Path(folder), border
        self.folder.mkdir(parents=True, exist_ok=True)

    def __call__(self, scene: LightFieldScene, truth: np.ndarray, prediction: np.ndarray,
                 scores: dict[str, float]) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from clevr_remv.evaluation.disparity_metrics import evaluation_mask
        from clevr_remv.store import atomic_path

        mask = evaluation_mask(scene.valid[scene.centre], self.border)
        low, high = scene.disp_min, scene.disp_max
        error = np.ma.masked_array(truth - prediction, ~mask)
        bad = np.ma.masked_array((np.abs(truth - prediction) > 0.07).astype(float), ~mask)
        height, width = truth.shape
        fig, axes = plt.subplots(1, 4, figsize=(4 * 3.2, 3.2 * height / width + 0.9))
        panels = [(truth, "ground truth", dict(cmap="viridis", vmin=low, vmax=high)),
                  (prediction, "prediction", dict(cmap="viridis", vmin=low, vmax=high)),
                  (error, "truth - prediction", dict(cmap="seismic", vmin=-0.2, vmax=0.2)),
                  (bad, "BadPix(0.07)", dict(cmap="RdYlGn_r", vmin=0, vmax=1))]
        for ax, (data, title, style) in zip(axes, panels):
            cmap = plt.get_cmap(style.pop("cmap")).with_extremes(bad="0.6")  # border, no surface: grey
            image = ax.imshow(data, cmap=cmap, interpolation="none", **style)
            ax.set_title(title, fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])
            fig.colorbar(image, ax=ax, fraction=0.046, pad=0.02)
        fig.suptitle(f"{scene.name}: MSE*100 {scores['mse_100']:.3f}, BadPix(0.07) {scores['badpix_0070']:.2f} %, "
                     f"Q25 {scores['q_25_100']:.2f}", fontsize=10)
        fig.tight_layout()
        with atomic_path(self.folder / f"{scene.name}.png") as tmp:
            fig.savefig(tmp, format="png", dpi=100)
        plt.close(fig)

