"""The CLEVR layout sampler: objects, lights and camera jitter drawn from an explicit Generator.

No Blender here: a layout is judged by geometry alone (edge distance and cardinal-direction
margins relative to the jittered central camera). Whether every object is visible enough is
decided later, from a cheap render, by `produce.pixel_path.draw_scene`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from clevr_remv.config import LayoutConfig, RenderConfig
from clevr_remv.contract import UserError
from clevr_remv.scene.description import SPLITS, Light, RigSpec, Scene, SceneObject, Vec3
from clevr_remv.scene.rig import ground_directions
from clevr_remv.scene.vocabulary import COLORS, MATERIALS, SHAPES, SIZES, footprint_radius, half_height

LIGHT_ENERGY = {"key": 400.0, "fill": 120.0, "back": 200.0}
LIGHT_SIZE = {"key": 1.5, "fill": 2.0, "back": 1.5}


class LayoutError(UserError, RuntimeError):
    """No valid layout within the configured number of restarts."""


def scene_rng(master_seed: int, split: str, index: int) -> np.random.Generator:
    """The one source of randomness for a scene: independent of every other scene."""
    return np.random.default_rng(np.random.SeedSequence([master_seed, SPLITS.index(split), index]))


def _jitter(rng: np.random.Generator, base: Vec3, amount: float) -> Vec3:
    offset = rng.uniform(-amount, amount, size=3)
    return tuple(float(b + o) for b, o in zip(base, offset))  # type: ignore[return-value]


def draw_rig(rng: np.random.Generator, config: RenderConfig) -> RigSpec:
    layout = config.layout
    return RigSpec(
        grid=config.grid,
        baseline=config.baseline,
        lens_mm=config.lens_mm,
        sensor_mm=config.sensor_mm,
        width=config.width,
        height=config.height,
        position=_jitter(rng, layout.camera_position, layout.camera_jitter),
    )


def draw_lights(rng: np.random.Generator, layout: LayoutConfig) -> tuple[Light, ...]:
    bases = {"key": layout.key_light, "fill": layout.fill_light, "back": layout.back_light}
    return tuple(
        Light(name, _jitter(rng, base, layout.light_jitter), LIGHT_ENERGY[name], LIGHT_SIZE[name])
        for name, base in bases.items()
    )


def placement_ok(
    xy: np.ndarray,
    radius: float,
    placed: list[tuple[np.ndarray, float]],
    directions: dict[str, Vec3],
    layout: LayoutConfig,
) -> bool:
    """CLEVR's rules against every placed object: edge gap and unambiguous relations."""
    axes = [np.asarray(directions["left"][:2]), np.asarray(directions["behind"][:2])]
    for other_xy, other_radius in placed:
        delta = xy - other_xy
        if np.linalg.norm(delta) - radius - other_radius < layout.min_edge_distance:
            return False
        if any(abs(float(delta @ axis)) < layout.min_direction_margin for axis in axes):
            return False
    return True


def draw_objects(
    rng: np.random.Generator, count: int, directions: dict[str, Vec3], layout: LayoutConfig
) -> tuple[SceneObject, ...] | None:
    """Place `count` objects one by one; None when one of them finds no room."""
    placed: list[tuple[np.ndarray, float]] = []
    objects: list[SceneObject] = []
    for object_id in range(1, count + 1):
        shape = SHAPES[rng.integers(len(SHAPES))]
        size = list(SIZES)[rng.integers(len(SIZES))]
        material = MATERIALS[rng.integers(len(MATERIALS))]
        color = list(COLORS)[rng.integers(len(COLORS))]
        radius = footprint_radius(shape, size)
        for _ in range(layout.object_tries):
            xy = rng.uniform(-layout.position_range, layout.position_range, size=2)
            if placement_ok(xy, radius, placed, directions, layout):
                break
        else:
            return None
        placed.append((xy, radius))
        rotation = float(rng.uniform(0.0, 360.0))
        position = (float(xy[0]), float(xy[1]), half_height(shape, size))
        objects.append(SceneObject(object_id, shape, size, material, color, position, rotation))
    return tuple(objects)


@dataclass(frozen=True)
class SceneFrame:
    """What a scene keeps across its re-draws: object count, camera and lights.

    CLEVR re-places the objects of a scene that fails its visibility check but keeps its
    object count, camera and lights. Re-drawing the count as well would bias the dataset
    towards few objects (crowded scenes fail most often), so the frame is drawn once.
    """

    count: int
    rig: RigSpec
    directions: dict[str, Vec3]
    lights: tuple[Light, ...]


def draw_frame(rng: np.random.Generator, config: RenderConfig) -> SceneFrame:
    layout = config.layout
    count = int(rng.integers(layout.min_objects, layout.max_objects + 1))
    rig = draw_rig(rng, config)
    directions = ground_directions(rig.position, rig.look_at)
    return SceneFrame(count, rig, directions, draw_lights(rng, layout))


def draw_candidate(
    rng: np.random.Generator, config: RenderConfig, frame: SceneFrame, split: str, index: int, attempt: int
) -> Scene:
    """The frame's objects placed anew (attributes, positions, rotations); bounded restarts."""
    for _ in range(config.layout.layout_restarts):
        objects = draw_objects(rng, frame.count, frame.directions, config.layout)
        if objects is not None:
            return Scene(
                split=split,
                index=index,
                seed=(config.seed, SPLITS.index(split), index),
                attempt=attempt,
                directions=frame.directions,
                objects=objects,
                lights=frame.lights,
                rig=frame.rig,
            )
    raise LayoutError(
        f"no valid layout of {frame.count} objects for {split} scene {index} "
        f"after {config.layout.layout_restarts} restarts"
    )


def layout_candidates(rng: np.random.Generator, config: RenderConfig, split: str, index: int) -> Iterator[Scene]:
    """Successive candidates of one scene from one generator: attempt 0, 1, 2 ...

    All share the frame (count, camera, lights); the caller takes the first one that passes
    its visibility check, so the accepted scene is deterministic.
    """
    frame = draw_frame(rng, config)
    for attempt in itertools.count():
        yield draw_candidate(rng, config, frame, split, index, attempt)


def draw_layout(rng: np.random.Generator, config: RenderConfig, split: str, index: int) -> Scene:
    """The first candidate: a valid layout before any visibility check."""
    return next(layout_candidates(rng, config, split, index))


def relation_holds(a: SceneObject, b: SceneObject, direction: Vec3, threshold: float = 0.2) -> bool:
    """CLEVR's spatial relation: a is `direction` of b when (a - b) . direction > threshold."""
    delta = np.asarray(a.position[:2]) - np.asarray(b.position[:2])
    return float(delta @ np.asarray(direction[:2])) > threshold


def ground_distance(a: SceneObject, b: SceneObject) -> float:
    return math.dist(a.position[:2], b.position[:2])
