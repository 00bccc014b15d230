"""Per-view visible pixel counts and the rule that decides whether an object is seen."""

from __future__ import annotations

import numpy as np

from clevr_remv.scene.vocabulary import MAX_OBJECTS


def visible_pixels(masks: np.ndarray) -> np.ndarray:
    """(V, MAX_OBJECTS) int32 pixel counts of objects 1..MAX_OBJECTS in (V, H, W) masks."""
    flat = masks.reshape(masks.shape[0], -1)
    counts = np.stack([np.bincount(view, minlength=MAX_OBJECTS + 1) for view in flat])
    return counts[:, 1 : MAX_OBJECTS + 1].astype(np.int32)


def hidden_objects(mask: np.ndarray, object_count: int, min_pixels: int) -> list[int]:
    """Ids of objects with fewer than `min_pixels` visible pixels in one view."""
    counts = visible_pixels(mask[None])[0]
    return [k for k in range(1, object_count + 1) if counts[k - 1] < min_pixels]
