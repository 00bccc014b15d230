"""Shift-and-add refocusing (issue #17 item 4): the public `refocus` function and `export focal-stack`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import scipy.io as scio
from click.testing import CliRunner
from PIL import Image

from clevr_remv.cli import main
from clevr_remv.data import read_lightfield_scene
from clevr_remv.lightfield import focal_stack, focal_stack_disparities, refocus


def export(*args: str):
    return CliRunner().invoke(main, ["export", *args, "--no-progress"])


def synthetic_light_field(base: np.ndarray, grid: int, d: int) -> np.ndarray:
    """Views of a flat texture at integer disparity d, made by the convention: centre (y, x) is at
    (y − (r − c₀)·d, x − (c − c₀)·d) in view (r, c)."""
    c0 = grid // 2
    views = [np.roll(base, (-(r - c0) * d, -(c - c0) * d), axis=(0, 1)) for r in range(grid) for c in range(grid)]
    return np.stack(views)


def test_refocusing_at_zero_is_the_plain_mean_of_the_views() -> None:
    views = np.random.default_rng(0).integers(0, 256, (9, 20, 30, 3), dtype=np.uint8)
    np.testing.assert_allclose(refocus(views, 0.0), views.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(refocus(views.reshape(3, 3, 20, 30, 3), 0.0), views.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(refocus(views[..., 0], 0.0), views[..., 0].mean(axis=0), rtol=1e-6)


def test_refocusing_at_a_planes_disparity_gives_it_back_exactly() -> None:
    base = np.random.default_rng(1).random((40, 50)).astype(np.float32)
    views = synthetic_light_field(base, 5, 2)
    # view (r, c) shows centre pixel (y, x) at (y − (r − 2)·2, x − (c − 2)·2): check one view directly
    assert views[0][10 - (0 - 2) * 2, 10 - (0 - 2) * 2] == base[10, 10]
    inner = (slice(9, -9), slice(9, -9))
    np.testing.assert_allclose(refocus(views, 2.0)[inner], base[inner], atol=1e-6)
    assert np.abs(refocus(views, -2.0)[inner] - base[inner]).mean() > 0.1  # the other sign blurs
    np.testing.assert_allclose(focal_stack(views, [2.0, 0.0])[0], refocus(views, 2.0), atol=1e-6)


def test_a_scene_objects_slice_is_sharper_at_its_disparity_than_on_the_focus_plane(lightfield_dataset: Path) -> None:
    scene = read_lightfield_scene(lightfield_dataset, "train", 0)
    centre_mask, centre_disparity = scene.masks[scene.centre], scene.disparity[scene.centre]
    objects = [k for k in np.unique(centre_mask) if k > 0 and (centre_mask == k).sum() > 40]
    target = max(objects, key=lambda k: abs(np.median(centre_disparity[centre_mask == k])))
    d = float(np.median(centre_disparity[centre_mask == target]))
    assert abs(d) > 1.0  # far enough from the focus plane to blur there
    ys, xs = np.nonzero(centre_mask == target)
    window = (slice(max(ys.min() - 3, 0), ys.max() + 4), slice(max(xs.min() - 3, 0), xs.max() + 4))

    def contrast(image: np.ndarray) -> float:
        grey = image[window].mean(axis=-1)
        return float(np.mean(np.diff(grey, axis=0) ** 2) + np.mean(np.diff(grey, axis=1) ** 2))

    sharp, blurred = contrast(refocus(scene.images, d)), contrast(refocus(scene.images, 0.0))
    assert sharp > 1.5 * blurred


def test_focal_stack_disparities_span_the_range() -> None:
    np.testing.assert_allclose(focal_stack_disparities(-1.0, 2.0, 4), [-1.0, 0.0, 1.0, 2.0])
    assert focal_stack_disparities(-1.0, 2.0, 1).tolist() == [0.5]
    with pytest.raises(ValueError, match="at least 1 slice"):
        focal_stack_disparities(0.0, 1.0, 0)


def test_focal_stack_export_is_the_salient_object_detection_layout(lightfield_dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "fs"
    result = export("focal-stack", str(lightfield_dataset), "--out", str(out), "--split", "train,test",
                    "--scenes", "0:2")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (out / "train").iterdir()) == ["allfocus", "masks", "mat", "sentences"]
    assert sorted(p.name for p in (out / "test" / "mat").iterdir()) == ["test_00000.mat"]
    scene = read_lightfield_scene(lightfield_dataset, "train", 1)
    mat = scio.loadmat(str(out / "train" / "mat" / "train_00001.mat"))
    img, disparities = mat["img"], mat["disparities"].ravel()
    assert img.shape == (80, 120, 36) and img.dtype == np.uint8
    np.testing.assert_allclose(disparities, np.linspace(scene.disp_min, scene.disp_max, 12))
    for k in (0, 7, 11):
        expected = np.clip(np.rint(refocus(scene.images, disparities[k])), 0, 255)
        np.testing.assert_array_equal(img[:, :, 3 * k:3 * k + 3], expected)
    np.testing.assert_array_equal(np.asarray(Image.open(out / "train/allfocus/train_00001.png")), scene.images[4])
    np.testing.assert_array_equal(np.asarray(Image.open(out / "train/masks/train_00001.png")), scene.masks[4])
    sentences = json.loads((out / "train/sentences/train_00001.json").read_text())
    assert [p["sentence"] for p in sentences["pairs"]] == [p.sentence for p in scene.pairs]
    assert sentences["focal_stack"]["disparities"] == pytest.approx(disparities.tolist())


def test_slices_option(lightfield_dataset: Path, tmp_path: Path) -> None:
    result = export("focal-stack", str(lightfield_dataset), "--out", str(tmp_path / "a"), "--split", "val",
                    "--slices", "3", "--compress")
    assert result.exit_code == 0, result.output
    assert scio.loadmat(str(tmp_path / "a/val/mat/val_00000.mat"))["img"].shape == (80, 120, 9)
    result = export("focal-stack", str(lightfield_dataset), "--out", str(tmp_path / "b"), "--slices", "0")
    assert result.exit_code == 2 and "--slices" in result.output


def test_the_public_functions_survive_importing_every_submodule() -> None:
    """A submodule named like a function of the package would replace it once imported."""
    import importlib
    import pkgutil

    import clevr_remv.lightfield as lightfield

    for info in pkgutil.iter_modules(lightfield.__path__):
        importlib.import_module(f"clevr_remv.lightfield.{info.name}")
    for name in lightfield.__all__:
        assert callable(getattr(lightfield, name)) and not isinstance(getattr(lightfield, name), type(lightfield)), name
