"""Light-field rig maths: projections follow the disparity formula (no Blender)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clevr_remv.scene import rig
from clevr_remv.scene.description import RigSpec


def spec(grid: int = 9, baseline: float = 0.1, position=(7.36, -6.93, 4.96)) -> RigSpec:
    return RigSpec(grid=grid, baseline=baseline, lens_mm=35.0, sensor_mm=32.0, width=480, height=320, position=position)


def test_view_indexing_centre_and_corners() -> None:
    s = spec()
    assert s.views == 81 and s.centre_view == 40
    steps = rig.grid_offsets(9)
    np.testing.assert_array_equal(steps[40], [0, 0])
    np.testing.assert_array_equal(steps[[0, 8, 72, 80]], [[-4, -4], [4, -4], [-4, 4], [4, 4]])
    centres = rig.camera_centres(s)
    rotation = rig.look_at_rotation(s.position, s.look_at)
    local = (centres - centres[40]) @ rotation  # camera-frame offsets (x right, y down)
    assert local[0, 0] < 0 and local[0, 1] < 0  # view 0: left and top
    assert local[80, 0] > 0 and local[80, 1] > 0
    np.testing.assert_allclose(local[:, 2], 0, atol=1e-12)  # all centres on one plane


@settings(max_examples=100, deadline=None)
@given(
    point=st.tuples(st.floats(-3, 3), st.floats(-3, 3), st.floats(0, 2)),
    grid=st.sampled_from([3, 5, 9]),
    baseline=st.floats(0.01, 0.3),
)
def test_every_view_sees_a_point_where_the_disparity_formula_says(point, grid, baseline) -> None:
    s = spec(grid, baseline)
    K, w2c = rig.intrinsics(s), rig.world_to_camera(s)
    p = np.array([point])
    centre_uv, centre_z = rig.project(p, K[s.centre_view], w2c[s.centre_view])
    d = rig.disparity(s, centre_z[0])
    for view, (du, dv) in enumerate(rig.grid_offsets(grid)):
        uv, z = rig.project(p, K[view], w2c[view])
        assert z[0] == pytest.approx(centre_z[0])  # parallel cameras: same depth everywhere
        # LF(x, y, u, v) = LF(x + (u_c - u) d, y + (v_c - v) d, u_c, v_c)
        np.testing.assert_allclose(uv[0], centre_uv[0] - np.array([du, dv]) * d, atol=1e-8)


def test_scene_centre_has_zero_disparity_and_lands_on_the_image_centre() -> None:
    s = spec()
    K, w2c = rig.intrinsics(s), rig.world_to_camera(s)
    for view in range(s.views):
        uv, z = rig.project(np.zeros((1, 3)), K[view], w2c[view])
        np.testing.assert_allclose(uv[0], [239.5, 159.5], atol=1e-9)
        assert z[0] == pytest.approx(rig.focus_depth(s))


def test_default_baseline_keeps_disparity_within_a_few_pixels_per_step() -> None:
    s = spec()
    centre = rig.world_to_camera(s)[s.centre_view]
    corners = np.array([[x, y, z] for x in (-3, 3) for y in (-3, 3) for z in (0, 1.4)])
    depths = corners @ centre[:3, :3].T + centre[:3, 3]
    d = rig.disparity(s, depths[:, 2])
    assert np.abs(d).max() < 4.0
    assert np.abs(d).max() > 0.5  # and still a real light field


def test_intrinsics_and_extrinsics_are_opencv() -> None:
    s = spec()
    K, w2c = rig.intrinsics(s), rig.world_to_camera(s)
    f = rig.focal_px(s)
    assert f == pytest.approx(35 / 32 * 480)
    np.testing.assert_allclose(K[:, 0, 0], f)
    np.testing.assert_allclose(K[:, 2], np.tile([0, 0, 1], (s.views, 1)))
    for m in w2c:
        np.testing.assert_allclose(m[:3, :3] @ m[:3, :3].T, np.eye(3), atol=1e-12)
        assert np.linalg.det(m[:3, :3]) == pytest.approx(1.0)
    # The world's up (z) points to negative image y (up in the picture).
    up_in_camera = w2c[40, :3, :3] @ np.array([0, 0, 1.0])
    assert up_in_camera[1] < 0


def test_blender_shift_inverts_the_principal_point_rule() -> None:
    s = spec()
    for K in rig.intrinsics(s):
        sx, sy = rig.blender_shift(K, s.width, s.height)
        # README "Light-field rig": cx = W/2 - 0.5 - shift_x W, cy = H/2 - 0.5 + shift_y W.
        assert K[0, 2] == pytest.approx(s.width / 2 - 0.5 - sx * s.width)
        assert K[1, 2] == pytest.approx(s.height / 2 - 0.5 + sy * s.width)


@pytest.mark.parametrize("grid", [1, 3, 9, 15])
def test_view_index_conventions(grid: int) -> None:
    """k = row·N + col, row 0 at the top: the centre is (c, c), the corners are the grid's corners."""
    c, last = grid // 2, grid - 1
    assert [rig.view_position(row * grid + col, grid) for row in range(grid) for col in range(grid)] == \
        [(row, col) for row in range(grid) for col in range(grid)]
    assert rig.view_position(rig.centre_view(grid), grid) == (c, c)
    assert [rig.view_position(k, grid) for k in rig.corner_views(grid)] == [(0, 0), (0, last), (last, 0), (last, last)]
