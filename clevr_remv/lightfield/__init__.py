"""The dataset as a light field: disparity ground truth, shift-and-add refocusing, a plane-sweep
depth estimate, the light-field exports (HCI 4D benchmark, BasicLFSR `.mat`, focal stacks) and
the HCI benchmark's disparity metrics.

Conventions (docs/output-format.md, "Light-field rig"): view k = row·N + col, row 0 at the top, col 0 at the
left seen from behind the cameras; disparity d = f·b·(1/z − 1/z_focus) pixels per view step
(`rig.disparity`), positive nearer than the focus plane; the centre view's pixel (y, x) is seen in
view (r, c) at (y − (r − c₀)·d, x − (c − c₀)·d). This is the HCI 4D benchmark's convention.

    from clevr_remv.lightfield import read_disparity, refocus

    disparity = read_disparity("out", "test", 3)          # (V, H, W) float32, every view
    scene = read_lightfield_scene("out", "test", 3)       # images, masks, depth, refs, disp range
    slice_ = refocus(scene.images, grid=scene.grid, disparity=0.8)

Nothing here imports h5py until a function reads a dataset.
"""

from clevr_remv.lightfield.disparity import disparity_from_depth, disparity_range, infinity_disparity
from clevr_remv.lightfield.refocus import focal_stack, focal_stack_disparities, refocus
from clevr_remv.lightfield.scenes import LightFieldScene, iter_lightfield_scenes, read_disparity, read_lightfield_scene

__all__ = [
    "LightFieldScene",
    "disparity_from_depth",
    "disparity_range",
    "focal_stack",
    "focal_stack_disparities",
    "infinity_disparity",
    "iter_lightfield_scenes",
    "read_disparity",
    "read_lightfield_scene",
    "refocus",
]
