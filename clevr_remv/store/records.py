"""In-memory records that flow from the renderer and the expression engine to the shard writer.

They mirror the per-scene slices of the shard datasets on docs/output-format.md, so the writer only
stacks them and the reader only slices them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from clevr_remv.scene.description import Scene


@dataclass
class SceneRender:
    """Everything rendered for one scene, V views of H x W pixels."""

    scene: Scene
    images: np.ndarray  # uint8 (V, H, W, 3), sRGB
    masks: np.ndarray  # uint8 (V, H, W), 0 background, k = object id
    depth: np.ndarray  # float32 (V, H, W), along the optical axis, +inf background
    intrinsics: np.ndarray  # float64 (V, 3, 3)
    world_to_camera: np.ndarray  # float64 (V, 4, 4)
    visible_pixels: np.ndarray  # int32 (V, MAX_OBJECTS)
    amodal_pixels: np.ndarray | None = None  # int32 (V, MAX_OBJECTS), in-image (clevr_remv/truth/amodal.py)
    amodal_masks: np.ndarray | None = None  # bool (V, MAX_OBJECTS, H, W), only under render --amodal-masks


@dataclass(frozen=True)
class Ref:
    """One referring pair: a sentence and the objects it names (one in the published data; several or
    none under `--targets any`)."""

    id: int  # stable, unique within the split
    object: int  # the referent, 1-based like the masks; 0 when the sentence names several objects or none
    expression: str
    family: str
    program: str  # JSON functional program the sentence realises
    visible: np.ndarray  # bool (V,), every target visible in that view (always true with no target)
    targets: tuple[int, ...] | None = None  # the 1-based objects named, ascending; None: just `object`

    @property
    def target_ids(self) -> tuple[int, ...]:
        return (self.object,) if self.targets is None else self.targets
