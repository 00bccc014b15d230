"""The Cycles seed of each view: a pure function of the scene's seed and the view index.

With one seed for every view, Cycles draws the same sample pattern in all 81 views, so the
residual noise is fixed to the screen and identical across the light field, which no real
camera array shows. Deriving the seed per view decorrelates the noise while keeping every
render reproducible and independent of the order in which views or scenes are rendered.
"""

from __future__ import annotations

import numpy as np

CYCLES_STREAM = 2  # the scene seed's sub-stream for render noise (expressions use 1)
MAX_CYCLES_SEED = 2**31 - 1  # scene.cycles.seed is a signed 32-bit property


def cycles_seed(scene_seed: tuple[int, ...], view: int) -> int:
    """Seed for `view` of the scene with `scene_seed` (master seed, split number, scene index)."""
    if view < 0:
        raise ValueError(f"view index must be >= 0, got {view}")
    state = np.random.SeedSequence([*scene_seed, CYCLES_STREAM, view]).generate_state(1, dtype=np.uint32)
    return int(state[0]) & MAX_CYCLES_SEED
