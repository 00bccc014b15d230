"""The scene description: pure data that the renderer and the expression engine both consume.

Everything random about a scene (layout, light and camera jitter, retries) is resolved
here, so a stored description is enough to re-render the scene or to regenerate its
expressions. The JSON form is the `scenes` dataset of every shard (README, "Output layout").
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

SPLITS: tuple[str, ...] = ("train", "val", "test")

Vec3 = tuple[float, float, float]


@dataclass(frozen=True)
class SceneObject:
    """One CLEVR object; `id` is 1-based and equals its value in the instance masks."""

    id: int
    shape: str
    size: str
    material: str
    color: str
    position: Vec3  # centre in world coordinates, z up, ground at z = 0
    rotation: float  # degrees about z


@dataclass(frozen=True)
class Light:
    """A square area light aimed at the scene centre."""

    name: str  # key, fill or back
    position: Vec3
    energy: float  # watts
    size: float  # side length in scene units


@dataclass(frozen=True)
class RigSpec:
    """The light-field camera array: the central camera plus the grid around it.

    Cameras share the central camera's orientation and intrinsics; their centres lie on
    the plane perpendicular to its optical axis, `baseline` apart, and their sensors are
    shifted so that all frusta meet on the plane through `look_at` (zero disparity there).
    """

    grid: int  # N for an N x N array, odd
    baseline: float  # scene units between neighbouring cameras
    lens_mm: float
    sensor_mm: float  # sensor size along the larger image dimension
    width: int
    height: int
    position: Vec3  # central camera centre (jittered)
    look_at: Vec3 = (0.0, 0.0, 0.0)

    @property
    def views(self) -> int:
        return self.grid * self.grid

    @property
    def centre_view(self) -> int:
        return self.views // 2


@dataclass(frozen=True)
class Scene:
    """A complete, renderable scene."""

    split: str
    index: int
    seed: tuple[int, int, int]  # (master seed, split number, scene index)
    attempt: int  # how many layouts were drawn before this one was accepted
    directions: dict[str, Vec3]  # ground-plane unit vectors of the central camera
    objects: tuple[SceneObject, ...]
    lights: tuple[Light, ...]
    rig: RigSpec
    extras: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> "Scene":
        return scene_from_dict(json.loads(text))

    def object(self, object_id: int) -> SceneObject:
        return self.objects[object_id - 1]


def _vec(values: Any) -> Vec3:
    x, y, z = (float(v) for v in values)
    return (x, y, z)


def scene_from_dict(d: dict[str, Any]) -> Scene:
    """Inverse of `dataclasses.asdict`, turning JSON lists back into tuples."""
    rig = dict(d["rig"])
    rig["position"] = _vec(rig["position"])
    rig["look_at"] = _vec(rig.get("look_at", (0.0, 0.0, 0.0)))
    return Scene(
        split=d["split"],
        index=int(d["index"]),
        seed=tuple(int(s) for s in d["seed"]),  # type: ignore[arg-type]
        attempt=int(d.get("attempt", 0)),
        directions={k: _vec(v) for k, v in d["directions"].items()},
        objects=tuple(
            SceneObject(**{**o, "position": _vec(o["position"]), "rotation": float(o["rotation"])})
            for o in d["objects"]
        ),
        lights=tuple(Light(**{**li, "position": _vec(li["position"])}) for li in d["lights"]),
        rig=RigSpec(**rig),
        extras=dict(d.get("extras", {})),
    )
