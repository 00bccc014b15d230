"""Amodal footprints: the pixels each object would cover in a view with nothing in front of it.

Every CLEVR shape is a convex mesh (render/assets.py: a bevelled cube, a 48 x 24 UV sphere, a
48-sided cylinder; all their vertices lie on their convex hull), so its image under a pinhole
camera is the convex hull of its projected vertices. Rasterising that polygon at the pixel
centres, where Cycles aims the first sample that writes the object-index pass, gives the
object's mask as Cycles would render it alone, without rendering: about a millisecond per
object and view instead of a 1-sample render per object and view (docs/occlusion.md).

`amodal_masks` refines the polygons with the rendered masks and depth, so that the result
always contains the rendered (visible) mask and equals it where nothing covers the object:
- a pixel where the render shows the object is the object's;
- a polygon pixel where the render shows the ground is not (nothing can hide an object from
  a camera above the ground but another object): that removes the polygon's boundary pixels
  Cycles did not count;
- a polygon pixel where the render shows another object farther than the object's farthest
  point is not either (that object is behind it, so the pixel missed it).
Only the pixels another object covers are the polygon's guess: an object cut by the image
border counts its in-image pixels only.
"""

from __future__ import annotations

import itertools
from functools import lru_cache

import numpy as np

from clevr_remv.scene.description import Scene, SceneObject
from clevr_remv.scene.vocabulary import MAX_OBJECTS, half_height

SEGMENTS = 48  # render/assets.py's SEGMENTS (a test compares these vertices with Blender's meshes)
# The bevelled cube's vertices in the (+, +, +) corner, up to a permutation of the axes (bmesh's
# bevel of the unit cube by 0.08 in 3 segments, as float32 coordinates).
_CUBE_CORNER = ((0.9200000166893005, 0.9200000166893005, 1.0),
                (0.9200000762939453, 0.9599475860595703, 0.9893123507499695),
                (0.9582570195198059, 0.9582570195198059, 0.978930652141571))


@lru_cache(maxsize=None)
def unit_vertices(shape: str) -> np.ndarray:
    """(P, 3) vertices of the unit mesh of `shape` (half-extent 1), as render/assets.py builds it."""
    turn = 2 * np.pi * np.arange(SEGMENTS) / SEGMENTS
    if shape == "cube":
        corner = {perm for point in _CUBE_CORNER for perm in itertools.permutations(point)}
        signs = itertools.product((-1.0, 1.0), repeat=3)
        return np.array([np.multiply(s, p) for s in signs for p in sorted(corner)])
    if shape == "sphere":
        polar = np.pi * np.arange(1, SEGMENTS // 2) / (SEGMENTS // 2)
        p, t = np.meshgrid(polar, turn, indexing="ij")
        rings = np.stack([np.sin(p) * np.sin(t), np.sin(p) * np.cos(t), np.cos(p)], -1).reshape(-1, 3)
        return np.vstack([rings, [[0.0, 0.0, 1.0], [0.0, 0.0, -1.0]]])
    if shape == "cylinder":
        circle = np.stack([np.sin(turn), np.cos(turn)], -1)
        return np.vstack([np.c_[circle, -np.ones(SEGMENTS)], np.c_[circle, np.ones(SEGMENTS)]])
    raise ValueError(f"unknown shape {shape!r}")


def object_vertices(obj: SceneObject) -> np.ndarray:
    """(P, 3) world coordinates of an object's mesh vertices (Blender: scale, then z rotation, then move)."""
    angle = np.radians(obj.rotation)
    c, s = np.cos(angle), np.sin(angle)
    rotation = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    return half_height(obj.shape, obj.size) * unit_vertices(obj.shape) @ rotation.T + np.asarray(obj.position)


def camera_points(points: np.ndarray, K: np.ndarray, w2c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates (P, 2) (OpenCV, pixel centres at integers) and depths (P,) in one view."""
    cam = points @ w2c[:3, :3].T + w2c[:3, 3]
    return cam[:, :2] / cam[:, 2:3] * np.diag(K)[:2] + K[:2, 2], cam[:, 2]


_DIRECTIONS = np.array([[np.cos(a), np.sin(a)] for a in np.arange(16) * np.pi / 8])


def _outer_points(uv: np.ndarray) -> np.ndarray:
    """`uv` without points strictly inside the polygon of its extremes in 16 directions (Akl-Toussaint):
    the convex hull is the same, and qhull gets a tenth of a sphere's 1,106 vertices."""
    if len(uv) < 64:
        return uv
    best = np.argmax(uv @ _DIRECTIONS.T, axis=0)  # in the directions' (counter-clockwise) order
    _, first = np.unique(best, return_index=True)
    extremes = uv[best[np.sort(first)]]
    if len(extremes) < 3:
        return uv
    p, q = extremes, np.roll(extremes, -1, axis=0)  # counter-clockwise: in the order of the directions
    cross = (q[:, 0] - p[:, 0]) * (uv[:, None, 1] - p[:, 1]) - (q[:, 1] - p[:, 1]) * (uv[:, None, 0] - p[:, 0])
    inside = (cross > 1e-9).all(axis=1)
    return uv[~inside]


def convex_row_spans(uv: np.ndarray, height: int, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows, first and last column (inclusive) of the pixel centres inside the convex hull of `uv`.

    Rows whose span is empty are left out; everything is clipped to the image.
    """
    from scipy.spatial import ConvexHull, QhullError

    uv = _outer_points(uv)
    try:
        hull = uv[ConvexHull(uv).vertices]
    except QhullError:  # degenerate (a point or a line): covers no pixel centre
        return np.zeros(0, int), np.zeros(0, int), np.zeros(0, int)
    top, bottom = max(0, int(np.ceil(hull[:, 1].min()))), min(height - 1, int(np.floor(hull[:, 1].max())))
    rows = np.arange(top, bottom + 1)
    if not len(rows):
        return rows, rows, rows
    p, q = hull, np.roll(hull, -1, axis=0)
    dy = q[:, 1] - p[:, 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (rows[:, None] - p[None, :, 1]) / dy[None, :]
        x = p[None, :, 0] + t * (q[None, :, 0] - p[None, :, 0])
    crossing = (dy[None, :] != 0) & (t >= 0) & (t <= 1)
    first = np.ceil(np.where(crossing, x, np.inf).min(axis=1))
    last = np.floor(np.where(crossing, x, -np.inf).max(axis=1))
    first, last = np.maximum(first, 0), np.minimum(last, width - 1)
    keep = np.isfinite(first) & np.isfinite(last) & (first <= last)
    return rows[keep], first[keep].astype(int), last[keep].astype(int)


def footprint(obj: SceneObject, K: np.ndarray, w2c: np.ndarray, height: int, width: int) -> np.ndarray:
    """bool (H, W): the pixel centres the object covers in one view, alone (its silhouette polygon)."""
    mask = np.zeros((height, width), bool)
    uv, _ = camera_points(object_vertices(obj), K, w2c)
    for row, first, last in zip(*convex_row_spans(uv, height, width)):
        mask[row, first:last + 1] = True
    return mask


def footprints(scene: Scene, intrinsics: np.ndarray, world_to_camera: np.ndarray,
               views: list[int] | None = None) -> np.ndarray:
    """bool (V, MAX_OBJECTS, H, W): every object's silhouette polygon in every view (`views`: these only)."""
    views = list(range(len(intrinsics))) if views is None else list(views)
    h, w = scene.rig.height, scene.rig.width
    out = np.zeros((len(views), MAX_OBJECTS, h, w), bool)
    for i, view in enumerate(views):
        for obj in scene.objects:
            out[i, obj.id - 1] = footprint(obj, intrinsics[view], world_to_camera[view], h, w)
    return out


def amodal_view(scene: Scene, mask: np.ndarray, depth: np.ndarray, K: np.ndarray, w2c: np.ndarray) -> np.ndarray:
    """bool (MAX_OBJECTS, H, W) amodal masks of every object in one rendered view.

    `mask` uint8 (H, W) and `depth` (H, W) are the render's; the polygons are refined with them as
    the module's docstring says, so each amodal mask contains the object's rendered mask.
    """
    h, w = mask.shape
    out = np.zeros((MAX_OBJECTS, h, w), bool)
    ys, xs = np.nonzero(mask)  # the rendered objects' pixels, put back after the polygons' refinement
    ids = mask[ys, xs]
    for obj in scene.objects:
        uv, z = camera_points(object_vertices(obj), K, w2c)
        rows, first, last = convex_row_spans(uv, h, w)
        if len(rows):  # only the polygon's bounding box is touched
            top, left = rows[0], first.min()
            box = (slice(top, rows[-1] + 1), slice(left, last.max() + 1))
            amodal = out[obj.id - 1][box]
            for row, a, b in zip(rows - top, first - left, last - left):
                amodal[row, a:b + 1] = True
            amodal &= (mask[box] != 0) & (depth[box] <= z.max())
        mine = ids == obj.id
        out[obj.id - 1, ys[mine], xs[mine]] = True
    return out


def amodal(scene: Scene, masks: np.ndarray, depth: np.ndarray, intrinsics: np.ndarray,
           world_to_camera: np.ndarray, keep_masks: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """(amodal_pixels int32 (V, MAX_OBJECTS), amodal masks bool (V, MAX_OBJECTS, H, W) or None unless
    `keep_masks`) of every object in every rendered view (`masks`, `depth`: (V, H, W))."""
    v, h, w = masks.shape
    pixels = np.zeros((v, MAX_OBJECTS), np.int32)
    kept = np.zeros((v, MAX_OBJECTS, h, w), bool) if keep_masks else None
    for view in range(v):
        view_masks = amodal_view(scene, masks[view], depth[view], intrinsics[view], world_to_camera[view])
        pixels[view] = view_masks.sum(axis=(1, 2))
        if kept is not None:
            kept[view] = view_masks
    return pixels, kept
