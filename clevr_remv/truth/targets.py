"""A sentence's ground-truth mask in one view: the union of the objects it names.

One function for every reader of it (the loader, evaluate, the Hugging Face export), so that "what the
mask of a sentence is" has one answer: `== object` for the one referent of the published data, the
union for several targets, all False for a sentence that names nothing (`--targets any`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def target_mask(instances: np.ndarray, targets: Sequence[int]) -> np.ndarray:
    """bool, the shape of `instances` (one view's instance mask, or a stack of them): pixels of any of
    the 1-based object ids `targets`; all False where there are none."""
    instances = np.asarray(instances)
    return np.isin(instances, np.asarray(list(targets), dtype=instances.dtype))
