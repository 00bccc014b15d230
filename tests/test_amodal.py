"""Amodal masks and visible fractions against Cycles and against geometry (docs/occlusion.md)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import h5py
import numpy as np
import pytest

from clevr_remv.config import RenderConfig
from clevr_remv.produce.pixel_path import draw_scene
from clevr_remv.scene import rig
from clevr_remv.scene.description import SceneObject
from clevr_remv.store import DatasetReader
from clevr_remv.truth import amodal
from clevr_remv.truth.occlusion import BINS, bin_index, ref_fractions, visible_fraction
from clevr_remv.truth.visibility import visible_pixels

CONFIG = RenderConfig(scenes=20, width=120, height=80, grid=3, device="cpu", seed=5)
VIEWS = [*rig.corner_views(3), 4]  # the four corners and the centre


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


@pytest.fixture(scope="module")
def renderer():
    from clevr_remv.render.renderer import BlenderRenderer

    with BlenderRenderer(CONFIG, threads=2) as r:
        yield r


def three_shapes(renderer):
    """A drawn scene whose first three objects become a large cube, sphere and cylinder, rotated."""
    scene = draw_scene(CONFIG, "train", 3, renderer.probe_centre_mask)
    spots = [(-1.6, 0.9), (0.2, -1.4), (1.7, 1.2)]
    objects = [replace(o, shape=shape, size="large", rotation=25.0 + 20 * i,
                       position=(*spots[i], 0.7 / np.sqrt(2) if shape == "cube" else 0.7))
               for i, (o, shape) in enumerate(zip(scene.objects[:3], ("cube", "sphere", "cylinder")))]
    return replace(scene, objects=tuple(objects))


def test_unit_vertices_are_blenders_meshes() -> None:
    import bpy  # noqa: F401  (bmesh exists once bpy is loaded)
    from scipy.spatial import cKDTree

    from clevr_remv.render.assets import make_mesh

    for shape in ("cube", "sphere", "cylinder"):
        blender = np.array([v.co[:] for v in make_mesh(shape).vertices])
        ours = amodal.unit_vertices(shape)
        assert len(ours) == len(blender)
        assert cKDTree(blender).query(ours)[0].max() < 2e-6 and cKDTree(ours).query(blender)[0].max() < 2e-6


def test_unoccluded_polygon_equals_cycles_alone(renderer) -> None:
    """Each shape rendered alone by Cycles (the others invisible to camera rays) against its polygon."""
    from clevr_remv.render.amodal_reference import render_amodal_reference

    scene = three_shapes(renderer)
    reference = render_amodal_reference(renderer, scene, VIEWS)
    polygons = amodal.footprints(scene, rig.intrinsics(scene.rig), rig.world_to_camera(scene.rig), VIEWS)
    for obj in scene.objects:
        for i, view in enumerate(VIEWS):
            cycles = reference[i, obj.id - 1]
            assert cycles.sum() > 50, (obj.shape, view)
            assert iou(cycles, polygons[i, obj.id - 1]) >= 0.98, (obj.shape, view)


def test_rendered_scene_amodal_contains_and_matches_visible(renderer) -> None:
    """In a real render: amodal == visible where nothing covers an object; amodal contains the visible mask
    (the raw polygon 99.5 % of it) where something does; both shapes of objects are exercised."""
    seen = {"unoccluded": set(), "occluded": 0}
    for index in range(6):
        scene = draw_scene(CONFIG, "train", index, renderer.probe_centre_mask)
        views = renderer.render_scene(scene)
        K, w2c = rig.intrinsics(scene.rig), rig.world_to_camera(scene.rig)
        counts, masks = amodal.amodal(scene, views.masks, views.depth, K, w2c, keep_masks=True)
        polygons = amodal.footprints(scene, K, w2c)
        np.testing.assert_array_equal(counts, masks.sum(axis=(2, 3)))
        for view in range(CONFIG.views):
            for obj in scene.objects:
                k = obj.id - 1
                rendered = views.masks[view] == obj.id
                assert not (rendered & ~masks[view, k]).any()
                others = polygons[view, [o.id - 1 for o in scene.objects if o is not obj]].any(axis=0)
                if rendered.sum() < 20:
                    continue
                if not (others & polygons[view, k]).any():  # nothing can cover it here
                    np.testing.assert_array_equal(masks[view, k], rendered)
                    # Polygon and Cycles differ only by ties: pixel centres within 1e-3 px of an edge.
                    assert (polygons[view, k] != rendered).sum() <= 2
                    if rendered.sum() >= 100:  # below, one tie pixel is over 1 % of the object
                        assert iou(polygons[view, k], rendered) >= 0.98
                    seen["unoccluded"].add(obj.shape)
                elif masks[view, k].sum() > rendered.sum():
                    assert (rendered & polygons[view, k]).sum() >= 0.995 * rendered.sum()
                    seen["occluded"] += 1
    assert seen["unoccluded"] == {"cube", "sphere", "cylinder"} and seen["occluded"] > 0


def ray_cast_fraction(scene, view: int, back: SceneObject, front: SceneObject) -> float:
    """Visible share of ideal sphere `back` behind ideal sphere `front`, from rays through pixel centres."""
    K, w2c = rig.intrinsics(scene.rig)[view], rig.world_to_camera(scene.rig)[view]
    v, u = np.mgrid[0:scene.rig.height, 0:scene.rig.width]
    rays = np.stack([u, v, np.ones_like(u)], -1).reshape(-1, 3) @ np.linalg.inv(K).T @ w2c[:3, :3]
    origin = -w2c[:3, :3].T @ w2c[:3, 3]

    def hit(obj: SceneObject) -> np.ndarray:
        oc = origin - np.asarray(obj.position)
        radius = 0.7 if obj.size == "large" else 0.35
        b, c = rays @ oc, oc @ oc - radius**2
        return b * b - (rays * rays).sum(1) * c >= 0

    behind, in_front = hit(back), hit(front)
    return float((behind & ~in_front).sum() / behind.sum())


def test_two_spheres_visible_fraction_matches_geometry(renderer) -> None:
    """A small sphere between the camera and a large one, partly covering it: the pipeline's
    visible / amodal pixels of the large one equal the share the ray casting of ideal spheres leaves."""
    base = draw_scene(CONFIG, "train", 0, renderer.probe_centre_mask)
    camera = np.asarray(base.rig.position)
    right = rig.look_at_rotation(base.rig.position, base.rig.look_at)[:, 0]
    back_centre = np.array([0.0, 0.0, 0.7])
    checked = []
    for shift in (0.25, 0.45):  # the small sphere floats on the way from the camera, off to one side
        front_centre = camera + 0.7 * (back_centre - camera) + shift * right
        template = base.objects[0]
        back = replace(template, id=1, shape="sphere", size="large", position=tuple(back_centre))
        front = replace(template, id=2, shape="sphere", size="small", position=tuple(front_centre), color="red")
        scene = replace(base, objects=(back, front))
        views = renderer.render_scene(scene)
        K, w2c = rig.intrinsics(scene.rig), rig.world_to_camera(scene.rig)
        counts, _ = amodal.amodal(scene, views.masks, views.depth, K, w2c)
        fraction = visible_fraction(visible_pixels(views.masks), counts)[:, 0]
        for view in VIEWS:
            expected = ray_cast_fraction(scene, view, back, front)
            assert 0.2 < expected < 0.95
            assert abs(fraction[view] - expected) <= 0.02, (shift, view, fraction[view], expected)
            checked.append(expected)
    assert max(checked) - min(checked) > 0.1  # two quite different occlusions


def test_visible_fraction_and_bins() -> None:
    fraction = visible_fraction(np.array([10, 0, 5, 0, 3]), np.array([10, 10, 20, 0, 4]))
    np.testing.assert_array_equal(fraction[:3], np.float32([1.0, 0.0, 0.25]))
    assert np.isnan(fraction[3]) and fraction[4] == np.float32(0.75)
    np.testing.assert_array_equal(bin_index(np.array([1.0, 0.999, 0.75, 0.5, 0.25, 0.2, 1e-6, 0.0, np.nan])),
                                  [0, 1, 1, 2, 3, 4, 4, -1, -1])
    assert [b[0] for b in BINS] == ["1.0", "[0.75,1)", "[0.5,0.75)", "[0.25,0.5)", "(0,0.25)"]


def test_dataset_holds_amodal_pixels_and_visible_fraction(tiny_dataset: Path) -> None:
    reader = DatasetReader(tiny_dataset)
    for split in reader.splits:
        for path in [*reader.shard_paths(split), tiny_dataset / f"{split}.h5"]:
            with h5py.File(path, "r") as f:
                assert f.attrs["schema_version"] == 4  # 3 added these; 4 the targets
                visible, amodal_counts = f["visible_pixels"][()], f["amodal_pixels"][()]
                assert f["amodal_pixels"].dtype == np.int32 and (amodal_counts >= visible).all()
                fraction = f["refs/visible_fraction"][()]
                assert fraction.dtype == np.float32 and fraction.shape == f["refs/visible"].shape
                expected = ref_fractions(visible, amodal_counts, f["refs/scene"][()], f["refs/object"][()])
                np.testing.assert_array_equal(fraction, expected)
                assert np.nanmax(fraction, initial=0) <= 1.0


def make_old(source: Path, dest: Path) -> Path:
    """A copy of a dataset as schema version 2 wrote it: no amodal_pixels, no refs/visible_fraction."""
    import shutil

    from clevr_remv.store.split_files import split_file_path, write_split_file

    shutil.copytree(source, dest)
    reader = DatasetReader(dest)
    for split in reader.splits:
        for path in reader.shard_paths(split):
            with h5py.File(path, "r+") as f:
                del f["amodal_pixels"], f["refs/visible_fraction"]
                f.attrs["schema_version"] = 2
        config = reader.manifest["config"]
        write_split_file(dest, split, reader.manifest["splits"][split]["shards"], reader.manifest["views"],
                         config["height"], config["width"])
        with h5py.File(split_file_path(dest, split), "r") as f:
            if f["scenes"].shape[0]:  # an empty split has no shard to take the version from
                assert f.attrs["schema_version"] == 2 and "amodal_pixels" not in f
    return dest


def test_old_datasets_still_load_verify_show_and_evaluate(tiny_dataset: Path, tmp_path: Path) -> None:
    from conftest import run_cli

    from clevr_remv import RefDataset

    old = make_old(tiny_dataset, tmp_path / "old")
    result = run_cli("verify", str(old))
    assert result.exit_code == 0, result.output
    sample = RefDataset(old, "train", views="all")[0]
    assert np.isnan(sample["visible_fraction"]) and sample["mask"].any()
    new = RefDataset(tiny_dataset, "train", views="all")
    assert all(0 < new[i]["visible_fraction"] <= 1 for i in range(len(new)))
    result = run_cli("show", str(old), "--out", str(tmp_path / "old.png"), "--html", str(tmp_path / "old.html"))
    assert result.exit_code == 0, result.output
    result = run_cli("evaluate", str(old), "--split", "train", "--baseline", "centre-mask", "--no-progress")
    assert result.exit_code == 0, result.output
    for shard in DatasetReader(old).iter_shards("train"):
        assert shard.amodal_pixels(0) is None and "visible_fraction" not in shard.refs()[0]


def test_verify_checks_the_occlusion_fields(tiny_dataset: Path, tmp_path: Path) -> None:
    import shutil

    from clevr_remv.store.verify import verify_dataset

    bad = tmp_path / "bad"
    shutil.copytree(tiny_dataset, bad)
    shard = DatasetReader(bad).shard_paths("train")[0]
    with h5py.File(shard, "r+") as f:
        fraction = f["refs/visible_fraction"][()]
        fraction[0, 0] = 0.5 if fraction[0, 0] != 0.5 else 0.25
        f["refs/visible_fraction"][...] = fraction
        amodal_counts = f["amodal_pixels"][()]
        amodal_counts[1, 2, 0] = 0
        f["amodal_pixels"][...] = amodal_counts
    problems = " ".join(verify_dataset(bad).problems[shard.relative_to(bad).as_posix()])
    assert "amodal_pixels[1, 2] of object 1 is below its visible pixels" in problems
    assert "refs/visible_fraction differs" in problems


def test_render_amodal_masks_are_stored_bit_packed_and_verified(tmp_path: Path) -> None:
    from conftest import TINY_ARGS, run_cli

    from clevr_remv.config import from_dict, render_arguments
    from clevr_remv.store import read_manifest
    from clevr_remv.store.shard import unpack_masks

    out = tmp_path / "out"
    args = [a for a in TINY_ARGS if a != "--no-progress"]
    args[args.index("--scenes") + 1] = "2"
    result = run_cli("render", *args, "--amodal-masks", "--no-progress", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "--amodal-masks" in render_arguments(from_dict(read_manifest(out)["config"]))
    result = run_cli("verify", str(out))
    assert result.exit_code == 0, result.output
    reader = DatasetReader(out)
    for path in [*reader.shard_paths("train"), out / "train.h5"]:
        with h5py.File(path, "r") as f:
            packed = f["amodal_masks"]
            assert packed.dtype == np.uint8 and packed.shape == (2, 9, 10, 48, 8)
            assert packed.is_virtual or packed.chunks == (1, 1, 10, 48, 8)  # one view per chunk
            for row in range(2):
                masks = unpack_masks(packed[row], 64)
                np.testing.assert_array_equal(masks.sum(axis=(2, 3)), f["amodal_pixels"][row])
                for k in range(10):
                    assert not ((f["masks"][row] == k + 1) & ~masks[:, k]).any()
    for shard in reader.iter_shards("train"):
        assert shard.amodal_masks(0, 4).shape == (10, 48, 64)
    # A resume with the flag off is another dataset.
    result = run_cli("render", *args, "--no-progress", "--out", str(out))
    assert result.exit_code == 1 and "--amodal-masks on (now off)" in result.output
