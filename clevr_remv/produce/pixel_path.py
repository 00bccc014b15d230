"""The pixel path: one scene from its seed to its rendered views and annotations, and one shard of
them written atomically.

seed -> layout (re-drawn while the cheap centre-view probe shows a hidden object)
     -> render all views -> visibility -> expressions -> amodal masks -> shard (atomic).
This module and what it calls to decide pixels (scene/, render/, config.py, truth/visibility.py,
truth/depth_precision.py) are what `render_code` fingerprints (produce/provenance.py): finishing,
resuming and regenerating live beside it in produce/, so editing them never makes a resume warn
that shards were rendered by other code. The renderer is passed in, so this module never imports
Blender.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import numpy as np

from clevr_remv import __version__
from clevr_remv.config import RenderConfig
from clevr_remv.expressions import ExpressionResult, expression_attrs, generate_pairs, language_templates
from clevr_remv.produce import provenance
from clevr_remv.scene import rig
from clevr_remv.scene.description import Scene
from clevr_remv.scene.layout import LayoutError, layout_candidates, scene_rng
from clevr_remv.store import ShardWriter
from clevr_remv.store.plan import ShardSpec
from clevr_remv.store.records import SceneRender
from clevr_remv.timing import Stopwatch
from clevr_remv.truth.amodal import amodal
from clevr_remv.truth.depth_precision import round_mantissa
from clevr_remv.truth.visibility import hidden_objects, visible_pixels


class Renderer(Protocol):
    """What the pipeline needs from a backend (see render.renderer.BlenderRenderer)."""

    def probe_centre_mask(self, scene: Scene) -> np.ndarray: ...

    def render_scene(self, scene: Scene, on_view: Callable[[], None] | None = None): ...


def draw_scene(config: RenderConfig, split: str, index: int, probe: Callable[[Scene], np.ndarray]) -> Scene:
    """The first candidate layout whose every object is seen in the centre view.

    A re-draw re-places the objects but keeps the object count, camera and lights
    (layout.SceneFrame), as CLEVR does.
    """
    rng = scene_rng(config.seed, split, index)
    candidates = layout_candidates(rng, config, split, index)
    for scene in itertools.islice(candidates, config.visibility_attempts):
        if not hidden_objects(probe(scene), len(scene.objects), config.min_visible_pixels):
            return scene
    raise LayoutError(
        f"{split} scene {index}: an object stayed below {config.min_visible_pixels} visible pixels "
        f"in {config.visibility_attempts} layouts"
    )


def render_scene(config: RenderConfig, split: str, index: int, renderer: Renderer,
                 on_view: Callable[[], None] | None = None,
                 stopwatch: Stopwatch | None = None) -> tuple[SceneRender, ExpressionResult]:
    """One scene, seed to annotations."""
    stopwatch = stopwatch or Stopwatch()
    scene = draw_scene(config, split, index, renderer.probe_centre_mask)
    views = renderer.render_scene(scene, on_view)
    intrinsics, world_to_camera = rig.intrinsics(scene.rig), rig.world_to_camera(scene.rig)
    with stopwatch.section("annotate"):
        counts = visible_pixels(views.masks)
        expressions = generate_pairs(scene, counts, config.min_visible_pixels,
                                     language_templates(None, config.max_hops, config.targets,
                                                        config.ordinals))
    with stopwatch.section("amodal"):
        amodal_counts, amodal_kept = amodal(scene, views.masks, views.depth, intrinsics, world_to_camera,
                                            keep_masks=config.amodal_masks)
    render = SceneRender(
        scene=scene,
        images=views.images,
        masks=views.masks,
        depth=round_mantissa(views.depth, config.depth_mantissa_bits),
        intrinsics=intrinsics,
        world_to_camera=world_to_camera,
        visible_pixels=counts,
        amodal_pixels=amodal_counts,
        amodal_masks=amodal_kept,
    )
    return render, expressions


def shard_attrs(config: RenderConfig, shard: ShardSpec, blender: str) -> dict:
    return {
        "config": json.dumps(config.identity(), sort_keys=True),
        "generator_version": __version__,
        "blender_version": blender,
        provenance.ATTRIBUTE: provenance.render_code_fingerprint(),
        "first_scene": shard.first_scene,
        "scene_count": shard.scene_count,
        "rig_grid": config.grid,
        "rig_baseline": config.baseline,
        "rig_lens_mm": config.lens_mm,
        "rig_sensor_mm": config.sensor_mm,
        "depth_mantissa_bits": config.depth_mantissa_bits,
        "width": config.width,
        "height": config.height,
    }


def render_shard(config: RenderConfig, shard: ShardSpec, out: Path, renderer: Renderer, blender: str,
                 on_view: Callable[[], None] | None = None, stopwatch: Stopwatch | None = None) -> int:
    """Render and write one shard atomically; returns its number of referring pairs.

    This is the function every runner calls (local loop, farm job, Blender script).
    """
    stopwatch = stopwatch or Stopwatch()
    expressions = []  # a few refs per scene; the pixels go to disk scene by scene
    with ShardWriter(shard.path(out), shard.scene_count, config.views, config.height, config.width,
                     split=shard.split, shard_index=shard.index, amodal_masks=config.amodal_masks) as writer:
        for index in shard.scene_indices:
            render, scene_expressions = render_scene(config, shard.split, index, renderer, on_view, stopwatch)
            with stopwatch.section("write"):
                writer.add(render, scene_expressions.refs)
            del render  # so a worker holds one scene, whatever the shard's size
            expressions.append(scene_expressions)
        attrs = {**shard_attrs(config, shard, blender), **expression_attrs(expressions)}
        with stopwatch.section("write"):
            writer.commit(attrs)
    return attrs["pair_count"]
