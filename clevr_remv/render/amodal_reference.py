"""Amodal masks rendered by Cycles: each object alone, the others invisible to camera rays.

The reference that clevr_remv.truth.amodal's silhouette polygons are measured against (tests,
bench/bench_amodal.py): one 1-sample, 0-bounce render per object and view, whose exact
object-index pass is the object's mask with nothing in front of it. The pipeline does not use
it: the polygons agree with it up to boundary pixels at a small fraction of its cost
(README, "Occlusion").
"""

from __future__ import annotations

import bpy
import numpy as np

from clevr_remv.render.build import SCENE_COLLECTION
from clevr_remv.render.cycles import PROBE_QUALITY
from clevr_remv.render.renderer import BlenderRenderer
from clevr_remv.scene.description import Scene
from clevr_remv.scene.vocabulary import MAX_OBJECTS


def render_amodal_reference(renderer: BlenderRenderer, scene: Scene, views: list[int]) -> np.ndarray:
    """bool (len(views), MAX_OBJECTS, H, W): each object's mask rendered with the others hidden."""
    renderer._ensure_built(scene)
    objects = {obj.pass_index: obj for obj in bpy.data.collections[SCENE_COLLECTION].objects if obj.type == "MESH"}
    out = np.zeros((len(views), MAX_OBJECTS, scene.rig.height, scene.rig.width), bool)
    try:
        with renderer._quality(PROBE_QUALITY):
            for k, alone in objects.items():
                for obj in objects.values():
                    obj.visible_camera = obj is alone
                for i, view in enumerate(views):
                    renderer._set_view(view)
                    out[i, k - 1] = renderer._render_view(with_image=False, section="amodal reference").mask == k
    finally:
        for obj in objects.values():
            obj.visible_camera = True
    return out
