"""Using a dataset: the training loader and whole light-field scenes, with the selection vocabulary
(views, scene ranges) that the loader, the exports and the evaluation share.

    from clevr_remv.data import RefDataset, read_lightfield_scene

    train = RefDataset("out", "train", views="center")
    scene = read_lightfield_scene("out", "test", 3)    # images, masks, depth, refs, disparity range

Everything here reads shards through `clevr_remv.store` and needs no Blender.
"""

from clevr_remv.data.dataset import RefDataset
from clevr_remv.data.lightfield_scenes import (
    LightFieldScene,
    iter_lightfield_scenes,
    read_disparity,
    read_lightfield_scene,
)
from clevr_remv.data.selection import describe_views, parse_scene_range, rig_grid, select_views

__all__ = [
    "LightFieldScene",
    "RefDataset",
    "describe_views",
    "iter_lightfield_scenes",
    "parse_scene_range",
    "read_disparity",
    "read_lightfield_scene",
    "rig_grid",
    "select_views",
]
