"""`export focal-stack`: refocused slices of each scene's centre view in the layout that
light-field salient-object-detection code reads (a `.mat` per scene whose key `img` is an
H×W×(3·N) uint8 array, beside the all-in-focus image), with masks and sentences for referring
segmentation.

    OUT/<split>/allfocus/<scene>.png     the centre view (pinhole renders are in focus everywhere)
    OUT/<split>/mat/<scene>.mat          img: H×W×(3·N) uint8, slice k in channels 3k..3k+2 (RGB),
                                         nearest focus last; disparities: the N slices' d (px per step)
    OUT/<split>/masks/<scene>.png        centre view object masks (0 background, k = object k)
    OUT/<split>/sentences/<scene>.json   the referring pairs (a pair's mask is masks == any of its targets)
    OUT/export.json                      what was exported, with each scene's disparity range

Slice k refocuses at d_k, N disparities evenly spread over the scene's range [disp_min, disp_max]
(the surfaces of every view), by `clevr_remv.lightfield.refocus`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from clevr_remv.data.lightfield_scenes import LightFieldScene, scenes_json
from clevr_remv.export.light_field_plan import export_lightfield
from clevr_remv.export.png import write_png
from clevr_remv.lightfield.refocus import focal_stack, focal_stack_disparities

FOLDERS = ("allfocus", "mat", "masks", "sentences")


def scene_focal_stack(scene: LightFieldScene, slices: int) -> tuple[np.ndarray, np.ndarray]:
    """(N, H, W, 3) uint8 slices and their disparities for one scene."""
    disparities = focal_stack_disparities(scene.disp_min, scene.disp_max, slices)
    return to_uint8(focal_stack(scene.images, disparities, scene.grid)), disparities


def write_focal_stack_scene(scene: LightFieldScene, staging: Path, options: dict[str, Any]) -> int:
    from scipy.io import savemat

    from clevr_remv.export.common import write_json

    base = staging / scene.split
    for folder in FOLDERS:
        (base / folder).mkdir(exist_ok=True)
    stack, disparities = scene_focal_stack(scene, int(options["slices"]))
    img = np.concatenate(list(stack), axis=-1)  # H x W x 3N, slice k at channels 3k..3k+2
    savemat(base / "mat" / f"{scene.name}.mat", {"img": img, "disparities": disparities.reshape(1, -1)},
            do_compression=bool(options.get("compress")))
    write_png(scene.images[scene.centre], base / "allfocus" / f"{scene.name}.png")
    write_png(scene.masks[scene.centre], base / "masks" / f"{scene.name}.png")
    record = scenes_json(scene)
    record["focal_stack"] = {"disparities": [float(d) for d in disparities],
                             "disp_min": scene.disp_min, "disp_max": scene.disp_max}
    write_json(record, base / "sentences" / f"{scene.name}.json")
    return len(disparities) + 1  # the slices and the all-in-focus image


def export_focal_stack(root: Path, out: Path, views: Any = "all", splits: list[str] | None = None, *,
                       scenes: str | None = None, slices: int = 12, compress: bool = False,
                       overwrite: bool = False, workers: int = 1, progress: bool = False) -> dict[str, Any]:
    """Export focal stacks of the chosen splits and scenes of `root` to `out`."""
    if slices < 1:
        raise ValueError(f"--slices {slices}: a focal stack needs at least 1 slice")
    return export_lightfield("focal-stack", write_focal_stack_scene, Path(root), Path(out), splits, scenes=scenes,
                             views_per_scene=slices + 1, options={"slices": slices, "compress": compress},
                             overwrite=overwrite, workers=workers, progress=progress)


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Round a float image in 0..255 to uint8."""
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)
