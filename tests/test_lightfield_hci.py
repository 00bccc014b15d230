"""`export hci` (issue #17 item 2): the folder reads back through code that does what the HCI 4D
benchmark's own `file_io.py` and `base_scene.py` do, and holds the shards' views, masks, depth and
disparity."""

from __future__ import annotations

import configparser
import json
import os
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from clevr_remv.cli import main
from clevr_remv.export.hci import camera_euler_xyz, export_hci
from clevr_remv.data import read_disparity, read_lightfield_scene
from clevr_remv.scene import rig
from clevr_remv.store import DatasetReader


def export(*args: str):
    return CliRunner().invoke(main, ["export", *args, "--no-progress"])


# -- what the benchmark's python-tools/file_io.py and evaluation-toolkit base_scene.py do, in Python 3

def read_parameters(data_folder: Path) -> dict:
    params = {}
    parser = configparser.ConfigParser()
    with open(data_folder / "parameters.cfg") as f:
        parser.read_file(f)
    section = "intrinsics"
    params["width"] = int(parser.get(section, "image_resolution_x_px"))
    params["height"] = int(parser.get(section, "image_resolution_y_px"))
    params["focal_length_mm"] = float(parser.get(section, "focal_length_mm"))
    params["sensor_size_mm"] = float(parser.get(section, "sensor_size_mm"))
    params["fstop"] = float(parser.get(section, "fstop"))
    section = "extrinsics"
    params["num_cams_x"] = int(parser.get(section, "num_cams_x"))
    params["num_cams_y"] = int(parser.get(section, "num_cams_y"))
    params["baseline_mm"] = float(parser.get(section, "baseline_mm"))
    params["focus_distance_m"] = float(parser.get(section, "focus_distance_m"))
    for key in ("center_cam_x_m", "center_cam_y_m", "center_cam_z_m",
                "center_cam_rx_rad", "center_cam_ry_rad", "center_cam_rz_rad"):
        params[key] = float(parser.get(section, key))
    section = "meta"
    for key in ("disp_min", "disp_max", "frustum_disp_min", "frustum_disp_max", "depth_map_scale"):
        params[key] = float(parser.get(section, key))
    for key in ("scene", "category", "date", "version", "contact"):
        params[key] = parser.get(section, key)
    params["authors"] = parser.get(section, "authors").split(", ")
    return params


def read_pfm(fpath: Path) -> np.ndarray:
    def next_line(f) -> str:
        line = f.readline().decode("latin-1").rstrip()
        while line.startswith("#"):
            line = f.readline().decode("latin-1").rstrip()
        return line

    with open(fpath, "rb") as f:
        assert next_line(f) == "Pf"
        width, height = (int(d.strip()) for d in next_line(f).split(" "))
        scale = float(next_line(f))
        endianness = "<" if scale < 0 else ">"
        data = np.fromfile(f, f"{endianness}f")
    data = np.flipud(np.reshape(data, (height, width)))
    with np.errstate(invalid="ignore"):
        return data * abs(scale)


def read_lightfield(data_folder: Path, params: dict) -> np.ndarray:
    light_field = np.zeros((params["num_cams_x"], params["num_cams_y"], params["height"], params["width"], 3),
                           dtype=np.uint8)
    views = sorted(f for f in os.listdir(data_folder) if f.startswith("input_") and f.endswith(".png"))
    for idx, view in enumerate(views):
        light_field[idx // params["num_cams_x"], idx % params["num_cams_y"]] = np.asarray(Image.open(data_folder / view))
    return light_field


def disp2depth(params: dict, disp_map: np.ndarray) -> np.ndarray:
    q = params["baseline_mm"] * params["focal_length_mm"] * max(params["width"], params["height"])
    return 1.0 / ((1000.0 * params["sensor_size_mm"]) * disp_map / q + (1.0 / params["focus_distance_m"]))


def depth2disp(params: dict, depth_map: np.ndarray) -> np.ndarray:
    f = (params["baseline_mm"] / 1000.0) * params["focal_length_mm"] * max(params["width"], params["height"])
    return (f * params["focus_distance_m"] / depth_map - f) / params["focus_distance_m"] / params["sensor_size_mm"]


@pytest.fixture(scope="module")
def hci_export(lightfield_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("hci") / "hci"
    result = export("hci", str(lightfield_dataset), "--out", str(out), "--all-views")
    assert result.exit_code == 0, result.output
    assert "train: 3 scene folders" in result.output
    return out


def test_every_scene_reads_back_through_the_benchmarks_file_io(lightfield_dataset: Path, hci_export: Path) -> None:
    reader = DatasetReader(lightfield_dataset)
    scenes = 0
    for split in reader.splits:
        for path in reader.shard_paths(split):
            with h5py.File(path) as f:
                first = int(f.attrs["first_scene"])
                for row in range(f["scenes"].shape[0]):
                    folder = hci_export / split / f"{split}_{first + row:05d}"
                    params = read_parameters(folder)
                    assert (params["width"], params["height"], params["num_cams_x"]) == (120, 80, 3)
                    assert params["scene"] == folder.name and params["category"] == split
                    lf = read_lightfield(folder, params)
                    np.testing.assert_array_equal(lf.reshape(9, 80, 120, 3), f["images"][row])
                    for view in range(9):
                        mask = np.asarray(Image.open(folder / f"mask_Cam{view:03d}.png"))
                        np.testing.assert_array_equal(mask, f["masks"][row, view])
                    scenes += 1
    assert scenes == 5


def test_ground_truth_is_the_centre_views_and_the_benchmarks_conversion_links_them(
        lightfield_dataset: Path, hci_export: Path) -> None:
    folder = hci_export / "train" / "train_00002"
    params = read_parameters(folder)
    disparity, depth = read_pfm(folder / "gt_disp_lowres.pfm"), read_pfm(folder / "gt_depth_lowres.pfm")
    scene = read_lightfield_scene(lightfield_dataset, "train", 2)
    np.testing.assert_array_equal(disparity, read_disparity(lightfield_dataset, "train", 2)[4])
    np.testing.assert_array_equal(depth, scene.depth[4])
    np.testing.assert_allclose(disp2depth(params, disparity.astype(np.float64)), depth, rtol=2e-6)
    np.testing.assert_allclose(depth2disp(params, depth.astype(np.float64)), disparity, atol=2e-6)
    assert params["disp_min"] == pytest.approx(scene.disp_min) and params["disp_max"] == pytest.approx(scene.disp_max)
    assert params["disp_min"] <= disparity.min() and disparity.max() <= params["disp_max"]
    assert params["frustum_disp_min"] <= params["disp_min"] < params["disp_max"] <= params["frustum_disp_max"]
    valid = np.asarray(Image.open(folder / "valid_mask.png"))
    assert valid.shape == (80, 120, 3) and valid.dtype == np.uint8
    np.testing.assert_array_equal(valid[:, :, 1] > 0, np.isfinite(depth))
    for view in (0, 8):  # --all-views: every view's, suffixed
        np.testing.assert_array_equal(read_pfm(folder / f"gt_disp_lowres_Cam{view:03d}.pfm"), scene.disparity[view])
        np.testing.assert_array_equal(read_pfm(folder / f"gt_depth_lowres_Cam{view:03d}.pfm"), scene.depth[view])
        assert (folder / f"valid_mask_Cam{view:03d}.png").is_file()


def test_pfm_is_little_endian_pf_with_the_bottom_row_first(hci_export: Path) -> None:
    raw = (hci_export / "val" / "val_00000" / "gt_disp_lowres.pfm").read_bytes()
    header = b"Pf\n120 80\n-1\n"
    assert raw.startswith(header) and len(raw) == len(header) + 120 * 80 * 4
    values = np.frombuffer(raw[len(header):], "<f4").reshape(80, 120)
    np.testing.assert_array_equal(values[::-1], read_pfm(hci_export / "val" / "val_00000" / "gt_disp_lowres.pfm"))


def test_background_disparity_is_that_of_infinity_and_its_depth_is_infinite(tmp_path: Path) -> None:
    """No fixture scene shows the sky, so the writer is given one pixel of it."""
    from clevr_remv.export.pfm import write_pfm
    from clevr_remv.lightfield.disparity import disparity_from_depth, infinity_disparity
    from clevr_remv.scene.description import RigSpec

    spec = RigSpec(grid=3, baseline=0.4, lens_mm=35.0, sensor_mm=32.0, width=4, height=2, position=(7.0, -7.0, 5.0))
    depth = np.array([[np.inf, 8.0, 11.0, 14.0], [9.0, 10.0, 12.0, 13.0]], np.float32)
    write_pfm(disparity_from_depth(spec, depth), tmp_path / "d.pfm")
    write_pfm(depth, tmp_path / "z.pfm")
    disparity = read_pfm(tmp_path / "d.pfm")
    assert disparity[0, 0] == pytest.approx(infinity_disparity(spec)) and np.isposinf(read_pfm(tmp_path / "z.pfm")[0, 0])
    params = {"baseline_mm": 400.0, "focal_length_mm": 35.0, "sensor_size_mm": 32.0, "width": 4, "height": 2,
              "focus_distance_m": rig.focus_depth(spec)}
    with np.errstate(divide="ignore"):
        assert disp2depth(params, disparity.astype(np.float64))[0, 0] > 1e5  # the benchmark's maths: ~infinite


def test_camera_angles_are_blenders_xyz_euler_of_the_centre_camera(lightfield_dataset: Path) -> None:
    spec = read_lightfield_scene(lightfield_dataset, "test", 0, what=()).spec
    x, y, z = camera_euler_xyz(spec)

    def turn(axis: int, angle: float) -> np.ndarray:
        c, s = np.cos(angle), np.sin(angle)
        i, j = [k for k in range(3) if k != axis]
        m = np.eye(3)
        m[i, i], m[i, j], m[j, i], m[j, j] = c, -s, s, c
        return m if axis != 1 else m.T

    expected = rig.blender_matrix_world(rig.world_to_camera(spec)[4])[:3, :3]
    np.testing.assert_allclose(turn(2, z) @ turn(1, y) @ turn(0, x), expected, atol=1e-12)
    assert y == 0.0  # a level camera


def test_sentences_and_export_json(lightfield_dataset: Path, hci_export: Path) -> None:
    sentences = json.loads((hci_export / "test" / "test_00000" / "sentences.json").read_text())
    with h5py.File(DatasetReader(lightfield_dataset).shard_paths("test")[0]) as f:
        expressions = f["refs/expression"].asstr()[()].tolist()
        visible = f["refs/visible"][()]
    assert [p["sentence"] for p in sentences["pairs"]] == expressions
    assert [p["visible_views"] for p in sentences["pairs"]] == [np.flatnonzero(v).tolist() for v in visible]
    assert sentences["grid"] == 3 and sentences["centre_view"] == 4
    summary = json.loads((hci_export / "export.json").read_text())
    assert summary["format"] == "hci" and len(summary["scenes"]) == 5
    assert all(s["disp_min"] < s["disp_max"] for s in summary["scenes"])
    # As export hf's (issue item 7): no absolute local path, the folder names only.
    assert summary["source"] == lightfield_dataset.resolve().name and summary["out"] == "."
    assert str(lightfield_dataset.resolve().parent) not in (hci_export / "export.json").read_text()


def test_split_and_scene_range_choose_the_folders(lightfield_dataset: Path, tmp_path: Path) -> None:
    result = export("hci", str(lightfield_dataset), "--out", str(tmp_path / "o"), "--split", "train",
                    "--scenes", "1:3")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["export.json", "train"]
    assert sorted(p.name for p in (tmp_path / "o" / "train").iterdir()) == ["train_00001", "train_00002"]
    assert not list((tmp_path / "o" / "train" / "train_00001").glob("*_Cam000.pfm"))  # centre only without --all-views
    result = export("hci", str(lightfield_dataset), "--out", str(tmp_path / "p"), "--scenes", "3:")
    assert result.exit_code == 1 and result.output.splitlines() == [
        "Error: nothing to export: no scene in scenes 3: (train has 3, val has 1, test has 1)"]
    assert not (tmp_path / "p").exists()


@pytest.mark.parametrize("value", ["x", "3:1", "1:2:3", ":", "-1:2"])
def test_a_malformed_scene_range_is_a_usage_error(lightfield_dataset: Path, tmp_path: Path, value: str) -> None:
    result = export("hci", str(lightfield_dataset), "--out", str(tmp_path / "o"), "--scenes", value)
    assert result.exit_code == 2, result.output
    [line] = result.output.splitlines()
    assert line.startswith("Error: Invalid value for '--scenes'")


def test_workers_write_the_same_files(lightfield_dataset: Path, hci_export: Path, tmp_path: Path) -> None:
    result = export("hci", str(lightfield_dataset), "--out", str(tmp_path / "w"), "--all-views", "--workers", "2")
    assert result.exit_code == 0, result.output
    files = sorted(p.relative_to(hci_export) for p in hci_export.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(tmp_path / "w") for p in (tmp_path / "w").rglob("*") if p.is_file())
    for name in files:
        if name.name != "export.json":
            assert (hci_export / name).read_bytes() == (tmp_path / "w" / name).read_bytes(), name


def test_a_failure_half_way_leaves_no_export(lightfield_dataset: Path, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from clevr_remv.export import hci

    calls = []

    def failing(data: np.ndarray, path: Path) -> None:
        calls.append(path)
        if len(calls) == 3:
            raise OSError(28, "No space left on device", str(path))
        hci.__dict__["_real_write_pfm"](data, path)

    monkeypatch.setitem(hci.__dict__, "_real_write_pfm", hci.write_pfm)
    monkeypatch.setattr(hci, "write_pfm", failing)
    out = tmp_path / "half"
    with pytest.raises(OSError, match="No space left"):
        export_hci(lightfield_dataset, out)
    assert not out.exists() and list(tmp_path.iterdir()) == []
