"""`export hci`: the layout of the HCI 4D Light Field Benchmark (Honauer et al., ACCV 2016), which
light-field depth networks (EPINET, LFattNet, OACC-Net, DistgDisp, BasicLFDisp) and the
benchmark's own toolkit read unchanged.

    OUT/<split>/<scene>/input_Cam000.png ... input_Cam080.png   8-bit RGB views, k = row·N + col
    OUT/<split>/<scene>/parameters.cfg          [intrinsics], [extrinsics], [meta] (file_io.read_parameters)
    OUT/<split>/<scene>/gt_disp_lowres.pfm      centre view's disparity (Pf, little-endian, bottom row first)
    OUT/<split>/<scene>/gt_depth_lowres.pfm     centre view's depth (scene units = metres)
    OUT/<split>/<scene>/valid_mask.png          RGB, green 255 where the ground truth is a surface
    OUT/<split>/<scene>/mask_Cam000.png ...     object masks (0 background, k = object k)
    OUT/<split>/<scene>/sentences.json          the scene's referring pairs
    OUT/export.json                             what was exported, with each scene's disparity range

With `--all-views`, `gt_disp_lowres_CamNNN.pfm`, `gt_depth_lowres_CamNNN.pfm` and
`valid_mask_CamNNN.png` for every view as well. One scene unit is written as one metre, so the
benchmark's conversion (`base_scene.py`: depth = 1 / (1000·sensor_mm·disp / (baseline_mm·
focal_length_mm·max(W, H)) + 1 / focus_distance_m)) maps gt_disp to gt_depth.
"""

from __future__ import annotations

import configparser
import io
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from clevr_remv import __version__
from clevr_remv.data.lightfield_scenes import LightFieldScene, scenes_json
from clevr_remv.export.light_field_plan import export_lightfield
from clevr_remv.export.pfm import write_pfm
from clevr_remv.export.png import write_png
from clevr_remv.lightfield.disparity import infinity_disparity
from clevr_remv.scene import rig

# Cycles renders through pinholes: no depth of field. The benchmark's files give 100 for theirs.
PINHOLE_FSTOP = 100.0


def camera_euler_xyz(spec) -> tuple[float, float, float]:
    """The central camera's rotation as Blender's XYZ Euler angles (radians), as the benchmark
    gives `center_cam_r{x,y,z}_rad`: matrix_world's rotation = Rz(z) · Ry(y) · Rx(x)."""
    w2c = rig.world_to_camera(spec)[rig.centre_view(spec.grid)]
    rotation = rig.blender_matrix_world(w2c)[:3, :3]
    y = float(np.arcsin(np.clip(-rotation[2, 0], -1.0, 1.0)))
    x = float(np.arctan2(rotation[2, 1], rotation[2, 2]))
    z = float(np.arctan2(rotation[1, 0], rotation[0, 0]))
    # A level camera has y = 0 up to rounding (3.7e-17): written as 0.0, as the benchmark's -0.0.
    return tuple(0.0 if abs(a) < 1e-12 else a for a in (x, y, z))  # type: ignore[return-value]


def parameters(scene: LightFieldScene, date: str) -> configparser.ConfigParser:
    """parameters.cfg: every key the benchmark's `file_io.read_parameters` reads, one scene unit = 1 m."""
    spec = scene.spec
    rx, ry, rz = camera_euler_xyz(spec)
    frustum_min = min(infinity_disparity(spec), scene.disp_min)
    cfg = configparser.ConfigParser()
    cfg["intrinsics"] = {
        "focal_length_mm": repr(float(spec.lens_mm)),
        "image_resolution_x_px": str(spec.width),
        "image_resolution_y_px": str(spec.height),
        "sensor_size_mm": repr(float(spec.sensor_mm)),  # along the larger image side, as Blender's
        "fstop": repr(PINHOLE_FSTOP),
    }
    cfg["extrinsics"] = {
        "num_cams_x": str(spec.grid),
        "num_cams_y": str(spec.grid),
        "baseline_mm": repr(float(spec.baseline) * 1000.0),
        "focus_distance_m": repr(rig.focus_depth(spec)),
        "center_cam_x_m": repr(float(spec.position[0])),
        "center_cam_y_m": repr(float(spec.position[1])),
        "center_cam_z_m": repr(float(spec.position[2])),
        "center_cam_rx_rad": repr(rx),
        "center_cam_ry_rad": repr(ry),
        "center_cam_rz_rad": repr(rz),
    }
    cfg["meta"] = {
        "scene": scene.name,
        "category": scene.split,
        "date": date,
        "version": __version__,
        "authors": "clevr-remv",
        "contact": "the dataset's README.md",
        "disp_min": repr(scene.disp_min),
        "disp_max": repr(scene.disp_max),
        "frustum_disp_min": repr(frustum_min),
        "frustum_disp_max": repr(scene.disp_max),
        "depth_map_scale": "1.0",
        "seed": " ".join(str(s) for s in scene.scene.seed),
    }
    return cfg


def _cfg_text(cfg: configparser.ConfigParser) -> str:
    buffer = io.StringIO()
    buffer.write("# clevr-remv scene in the HCI 4D light-field benchmark's layout; 1 scene unit = 1 m.\n"
                 "# disp_min/disp_max: the disparity range of every view's surfaces (the background, if any,\n"
                 "# is at frustum_disp_min: a point at infinity). fstop: pinholes, no depth of field.\n")
    cfg.write(buffer)
    return buffer.getvalue()


def valid_mask_image(valid: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8, green 255 where the ground truth is valid (OACC-Net and DistgDisp read
    `[:, :, 1] > 0`), black elsewhere."""
    image = np.zeros((*valid.shape, 3), np.uint8)
    image[..., 1] = np.where(valid, 255, 0)
    return image


def write_hci_scene(scene: LightFieldScene, staging: Path, options: dict[str, Any]) -> int:
    """Write one scene's folder; returns the views written (input images)."""
    from clevr_remv.export.common import write_json

    folder = staging / scene.split / scene.name
    folder.mkdir(parents=True)
    views = scene.grid * scene.grid
    for view in range(views):
        write_png(scene.images[view], folder / f"input_Cam{view:03d}.png")
        write_png(scene.masks[view], folder / f"mask_Cam{view:03d}.png")
    (folder / "parameters.cfg").write_text(_cfg_text(parameters(scene, options["date"])), encoding="utf-8")
    disparity, depth, valid = scene.disparity, scene.depth, scene.valid
    c = scene.centre
    write_pfm(disparity[c], folder / "gt_disp_lowres.pfm")
    write_pfm(depth[c], folder / "gt_depth_lowres.pfm")
    write_png(valid_mask_image(valid[c]), folder / "valid_mask.png")
    if options.get("all_views"):
        for view in range(views):
            write_pfm(disparity[view], folder / f"gt_disp_lowres_Cam{view:03d}.pfm")
            write_pfm(depth[view], folder / f"gt_depth_lowres_Cam{view:03d}.pfm")
            write_png(valid_mask_image(valid[view]), folder / f"valid_mask_Cam{view:03d}.png")
    write_json(scenes_json(scene), folder / "sentences.json")
    return views


def dataset_date(root: Path) -> str:
    """The day the dataset was completed (its dataset.json), for `[meta] date`: the same for every export."""
    from clevr_remv.store.manifest import manifest_path

    stamp = manifest_path(root).stat().st_mtime
    return datetime.fromtimestamp(stamp, timezone.utc).date().isoformat()


def export_hci(root: Path, out: Path, views: Any = "all", splits: list[str] | None = None, *,
               scenes: str | None = None, all_views: bool = False, overwrite: bool = False, workers: int = 1,
               progress: bool = False) -> dict[str, Any]:
    """Export the chosen splits and scenes of `root` to `out` in the HCI benchmark's layout.

    `views` is accepted for the export commands' common signature: every view is always written.
    """
    from clevr_remv.store import require_manifest

    require_manifest(root)  # before reading its date: one 'not a dataset' message for every command
    return export_lightfield("hci", write_hci_scene, Path(root), Path(out), splits, scenes=scenes,
                             options={"all_views": all_views, "date": dataset_date(Path(root))},
                             overwrite=overwrite, workers=workers, progress=progress)
