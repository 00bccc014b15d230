"""Light-field camera maths: the N x N array of parallel, off-axis cameras.

Conventions (README, "Light-field rig"): OpenCV cameras (x right, y down, z forward), pixel centres at
integer coordinates, view k = row * N + col with row 0 at the top and col 0 at the left as
seen from behind the cameras. All cameras share the central camera's rotation and focal
length; camera (row, col) sits (col - c, row - c) * baseline from the centre in the camera's
x/y plane, and its principal point is shifted so the plane through the scene centre,
perpendicular to the optical axis, has zero disparity. A point at depth z then moves by
d = f * b * (1/z - 1/z_focus) pixels per view step, towards smaller x as col grows.
"""

from __future__ import annotations

import numpy as np

from clevr_remv.scene.description import RigSpec, Vec3

WORLD_UP = np.array([0.0, 0.0, 1.0])

# Blender cameras look down -Z with +Y up; OpenCV looks down +Z with +Y down.
OPENCV_TO_BLENDER = np.diag([1.0, -1.0, -1.0, 1.0])


def look_at_rotation(position: Vec3, target: Vec3) -> np.ndarray:
    """Camera-to-world rotation (columns: right, down, forward) of a level camera aimed at target."""
    forward = np.asarray(target, float) - np.asarray(position, float)
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, WORLD_UP)
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    return np.stack([right, down, forward], axis=1)


def ground_directions(position: Vec3, target: Vec3) -> dict[str, Vec3]:
    """CLEVR's cardinal directions: the camera's left and forward axes projected on the ground."""
    rotation = look_at_rotation(position, target)

    def on_ground(v: np.ndarray) -> np.ndarray:
        v = np.array([v[0], v[1], 0.0])
        return v / np.linalg.norm(v)

    left = on_ground(-rotation[:, 0])
    behind = on_ground(rotation[:, 2])
    as_vec = lambda v: tuple(float(x) + 0.0 for x in v)  # noqa: E731  (+0.0 drops -0.0)
    return {"left": as_vec(left), "right": as_vec(-left), "front": as_vec(-behind), "behind": as_vec(behind)}


def focal_px(spec: RigSpec) -> float:
    """Focal length in pixels; Blender's sensor size applies to the larger image dimension."""
    return spec.lens_mm / spec.sensor_mm * max(spec.width, spec.height)


def focus_depth(spec: RigSpec) -> float:
    """Depth of the zero-disparity plane: the scene centre seen from the central camera."""
    rotation = look_at_rotation(spec.position, spec.look_at)
    return float((np.asarray(spec.look_at) - np.asarray(spec.position)) @ rotation[:, 2])


def view_position(view: int, grid: int) -> tuple[int, int]:
    """(row, col) of view `k = row·N + col` of an N×N rig, row 0 at the top, col 0 at the left."""
    return divmod(int(view), grid)


def centre_view(grid: int) -> int:
    return grid * grid // 2


def corner_views(grid: int) -> tuple[int, int, int, int]:
    """Top-left, top-right, bottom-left, bottom-right: the thesis' multi-view test views."""
    return (0, grid - 1, grid * (grid - 1), grid * grid - 1)


def grid_offsets(grid: int) -> np.ndarray:
    """(V, 2) view steps (col - c, row - c) of every view, in view-index order."""
    c = grid // 2
    rows, cols = np.divmod(np.arange(grid * grid), grid)
    return np.stack([cols - c, rows - c], axis=1).astype(float)


def intrinsics(spec: RigSpec) -> np.ndarray:
    """(V, 3, 3) OpenCV intrinsics; only the principal point varies across views."""
    f = focal_px(spec)
    z_focus = focus_depth(spec)
    steps = grid_offsets(spec.grid)
    K = np.zeros((spec.views, 3, 3))
    K[:, 0, 0] = K[:, 1, 1] = f
    K[:, 0, 2] = spec.width / 2 - 0.5 + f * steps[:, 0] * spec.baseline / z_focus
    K[:, 1, 2] = spec.height / 2 - 0.5 + f * steps[:, 1] * spec.baseline / z_focus
    K[:, 2, 2] = 1.0
    return K


def camera_centres(spec: RigSpec) -> np.ndarray:
    """(V, 3) world positions of the camera centres."""
    rotation = look_at_rotation(spec.position, spec.look_at)
    steps = grid_offsets(spec.grid) * spec.baseline
    return np.asarray(spec.position) + steps[:, 0:1] * rotation[:, 0] + steps[:, 1:2] * rotation[:, 1]


def world_to_camera(spec: RigSpec) -> np.ndarray:
    """(V, 4, 4) OpenCV world-to-camera matrices."""
    rotation = look_at_rotation(spec.position, spec.look_at)
    centres = camera_centres(spec)
    w2c = np.tile(np.eye(4), (spec.views, 1, 1))
    w2c[:, :3, :3] = rotation.T
    w2c[:, :3, 3] = -centres @ rotation
    return w2c


def blender_matrix_world(w2c: np.ndarray) -> np.ndarray:
    """Blender camera matrix_world for an OpenCV world-to-camera matrix."""
    return np.linalg.inv(w2c) @ OPENCV_TO_BLENDER


def blender_shift(K: np.ndarray, width: int, height: int) -> tuple[float, float]:
    """Blender's (shift_x, shift_y) that put the principal point where K says.

    Both shifts are fractions of the larger image dimension (measured with bpy 4.5).
    """
    larger = max(width, height)
    shift_x = (width / 2 - 0.5 - K[0, 2]) / larger
    shift_y = (K[1, 2] - height / 2 + 0.5) / larger
    return float(shift_x), float(shift_y)


def project(points: np.ndarray, K: np.ndarray, w2c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates (P, 2) and depths (P,) of world points (P, 3) in one view."""
    cam = points @ w2c[:3, :3].T + w2c[:3, 3]
    z = cam[:, 2]
    uv = (cam[:, :2] / z[:, None]) * np.diag(K)[:2] + K[:2, 2]
    return uv, z


def disparity(spec: RigSpec, depth: np.ndarray | float) -> np.ndarray | float:
    """Pixels a point at `depth` (central camera) moves per view step."""
    return focal_px(spec) * spec.baseline * (1.0 / np.asarray(depth) - 1.0 / focus_depth(spec))
