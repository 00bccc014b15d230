"""Disparity ground truth from the stored depth and cameras (issue #17 item 1): the rig's formula,
the background at infinity, agreement with the stored cameras, and the convention checked on real
renders by warping every view's object masks into the centre view."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
from scipy.ndimage import maximum_filter, minimum_filter

from clevr_remv.data.lightfield_scenes import read_lightfield_scene
from clevr_remv.data import iter_lightfield_scenes, read_disparity
from clevr_remv.lightfield import disparity_from_depth, infinity_disparity
from clevr_remv.lightfield.disparity import (
    centre_coordinates,
    depth_from_disparity,
    disparity_range,
)
from clevr_remv.scene import rig
from clevr_remv.scene.description import RigSpec
from clevr_remv.store import DatasetReader

SPEC = RigSpec(grid=9, baseline=0.1, lens_mm=35.0, sensor_mm=32.0, width=480, height=320, position=(7.0, -7.0, 5.0))


def test_disparity_is_the_rigs_formula_with_infinity_for_the_background() -> None:
    z_focus = rig.focus_depth(SPEC)
    depth = np.array([z_focus, z_focus / 2, 2 * z_focus, np.inf], np.float32)
    d = disparity_from_depth(SPEC, depth)
    f_b = rig.focal_px(SPEC) * SPEC.baseline
    assert d.dtype == np.float32
    np.testing.assert_allclose(d, [0.0, f_b / z_focus, -f_b / (2 * z_focus), -f_b / z_focus], atol=1e-6)
    assert d[1] > 0 > d[2]  # positive nearer than the focus plane
    assert d[3] == pytest.approx(infinity_disparity(SPEC)) and d[3] < d[2]
    np.testing.assert_allclose(depth_from_disparity(SPEC, d), depth, rtol=1e-6)
    assert disparity_range(d, depth) == (pytest.approx(d[2]), pytest.approx(d[1]))  # background left out


def test_read_disparity_is_every_views_depth_through_the_rig(lightfield_dataset: Path) -> None:
    reader = DatasetReader(lightfield_dataset)
    with h5py.File(reader.shard_paths("train")[0]) as f:
        depth = f["depth"][1]
    scene = read_lightfield_scene(lightfield_dataset, "train", 1)
    disparity = read_disparity(lightfield_dataset, "train", 1)
    assert disparity.shape == depth.shape == (9, 80, 120)
    np.testing.assert_allclose(disparity, rig.disparity(scene.spec, depth.astype(np.float64)), atol=1e-6, rtol=0)
    np.testing.assert_array_equal(read_disparity(lightfield_dataset, "train", 1, views=[4, 0]), disparity[[4, 0]])
    low, high = scene.disp_min, scene.disp_max
    assert low == pytest.approx(disparity.min()) and high == pytest.approx(disparity.max())  # no background here
    assert low < 0 < high  # the focus plane runs through the scene
    with pytest.raises(ValueError, match="no scene 7 in split 'train'"):
        read_disparity(lightfield_dataset, "train", 7)


def test_the_stored_cameras_give_the_same_disparity(lightfield_dataset: Path) -> None:
    """f from the intrinsics, the baseline from the camera centres, z_focus from the principal points'
    shift: the cameras in the shard, not the scene description, say the same disparity."""
    reader = DatasetReader(lightfield_dataset)
    with h5py.File(reader.shard_paths("val")[0]) as f:
        K, w2c, depth = f["cameras/intrinsics"][0], f["cameras/world_to_camera"][0], f["depth"][0]
    centres = np.array([-np.linalg.inv(m[:3, :3]) @ m[:3, 3] for m in w2c])
    f_px = K[4, 0, 0]
    baseline = np.linalg.norm(centres[5] - centres[4])
    z_focus = f_px * baseline / (K[5, 0, 2] - K[4, 0, 2])  # the shift that puts z_focus at zero disparity
    from_cameras = f_px * baseline * (1 / depth.astype(np.float64) - 1 / z_focus)
    np.testing.assert_allclose(read_disparity(lightfield_dataset, "val", 0), from_cameras, atol=1e-4)


def warped_mask_agreement(root: Path, sign: float) -> float:
    """Each view's object pixels moved into the centre view by the convention (view pixel (y', x') is
    centre (y' + (r − c₀)·d, x' + (c − c₀)·d)), with `sign` times the disparity; the share that lands
    on the same object, over the points the depths say the centre sees too: the centre pixel there is
    not nearer (no occluder) and has no depth edge around it (its footprint is one surface)."""
    agree = total = 0
    for split in ("train", "val", "test"):
        for scene in iter_lightfield_scenes(root, split, what=("masks", "depth")):
            c, (h, w) = scene.centre, scene.depth.shape[1:]
            centre_depth, centre_mask = scene.depth[c], scene.masks[c]
            smooth = maximum_filter(centre_depth, 3, mode="nearest") <= 1.03 * minimum_filter(centre_depth, 3,
                                                                                              mode="nearest")
            for view in range(scene.grid ** 2):
                if view == c:
                    continue
                y, x = centre_coordinates(scene.grid, view, sign * scene.disparity[view])
                yi, xi = np.rint(y).astype(int), np.rint(x).astype(int)
                chosen = (scene.masks[view] > 0) & (yi >= 0) & (yi < h) & (xi >= 0) & (xi < w)
                yc, xc = yi[chosen], xi[chosen]
                seen = (centre_depth[yc, xc] >= 0.99 * scene.depth[view][chosen]) & smooth[yc, xc]
                agree += int(np.sum(scene.masks[view][chosen][seen] == centre_mask[yc, xc][seen]))
                total += int(np.sum(seen))
    assert total > 10_000
    return agree / total


def test_every_views_masks_warp_onto_the_centre_masks(lightfield_dataset: Path) -> None:
    assert warped_mask_agreement(lightfield_dataset, +1.0) >= 0.98


def test_with_the_sign_flipped_the_masks_do_not_warp_onto_the_centre(lightfield_dataset: Path) -> None:
    assert warped_mask_agreement(lightfield_dataset, -1.0) < 0.98
