"""Light-field maths on arrays: disparity from depth, shift-and-add refocusing and focal stacks, a
plane-sweep disparity estimate. Reading whole light-field scenes from a dataset is
`clevr_remv.data` (`read_lightfield_scene`, `read_disparity`); the light-field exports are in
`clevr_remv.export`, the disparity metrics in `clevr_remv.evaluation`.

Conventions (docs/output-format.md, "Light-field rig"): view k = row·N + col, row 0 at the top, col 0 at the
left seen from behind the cameras; disparity d = f·b·(1/z − 1/z_focus) pixels per view step
(`rig.disparity`), positive nearer than the focus plane; the centre view's pixel (y, x) is seen in
view (r, c) at (y − (r − c₀)·d, x − (c − c₀)·d). This is the HCI 4D benchmark's convention.

    from clevr_remv.data import read_disparity, read_lightfield_scene
    from clevr_remv.lightfield import refocus

    disparity = read_disparity("out", "test", 3)          # (V, H, W) float32, every view
    scene = read_lightfield_scene("out", "test", 3)       # images, masks, depth, refs, disp range
    slice_ = refocus(scene.images, grid=scene.grid, disparity=0.8)

Nothing here reads a file: NumPy only.
"""

from clevr_remv.lightfield.disparity import (
    disparity_from_depth,
    disparity_range,
    infinity_disparity,
)
from clevr_remv.lightfield.refocus import focal_stack, focal_stack_disparities, refocus

__all__ = [
    "disparity_from_depth",
    "disparity_range",
    "focal_stack",
    "focal_stack_disparities",
    "infinity_disparity",
    "refocus",
]
