"""The names of a shard's datasets (docs/output-format.md, "Shard datasets"): the one place that spells them.

The writer, the reader, `verify` and the split files take the names from here, and nothing outside
`store/` spells one (tests/test_read_path.py checks it), so a renamed or added column is a change
to this module and the code that reads it, not a search through every consumer.
"""

from __future__ import annotations

import h5py
import numpy as np

# One row per scene (S): the pixel datasets, chunked one view per chunk.
IMAGES = "images"
MASKS = "masks"
DEPTH = "depth"
# Optional (render --amodal-masks): uint8 (S, V, N_max, H, ceil(W / 8)), each mask row bit-packed.
AMODAL_MASKS = "amodal_masks"
# One row per scene: the small ones.
INTRINSICS = "cameras/intrinsics"
WORLD_TO_CAMERA = "cameras/world_to_camera"
VISIBLE_PIXELS = "visible_pixels"
AMODAL_PIXELS = "amodal_pixels"
SCENES = "scenes"

# One row per referring pair (R), in the group REFS.
REFS = "refs"
REF_SCENE = f"{REFS}/scene"
REF_OBJECT = f"{REFS}/object"
REF_EXPRESSION = f"{REFS}/expression"
REF_FAMILY = f"{REFS}/family"
REF_PROGRAM = f"{REFS}/program"
REF_VISIBLE = f"{REFS}/visible"
REF_VISIBLE_FRACTION = f"{REFS}/visible_fraction"
REF_ID = f"{REFS}/id"
# Schema 4: bool (R, N_max), column k-1 = object k is named; int8 (R,) how many (0 = no target).
REF_TARGETS = f"{REFS}/targets"
REF_TARGET_COUNT = f"{REFS}/target_count"

# Every dataset a complete shard holds, per scene and per pair, in the order they are written.
SCENE_DATASETS: tuple[str, ...] = (IMAGES, MASKS, DEPTH, INTRINSICS, WORLD_TO_CAMERA, VISIBLE_PIXELS,
                                   AMODAL_PIXELS, SCENES)
REF_DATASETS: tuple[str, ...] = (REF_SCENE, REF_OBJECT, REF_EXPRESSION, REF_FAMILY, REF_PROGRAM, REF_VISIBLE,
                                 REF_VISIBLE_FRACTION, REF_ID, REF_TARGETS, REF_TARGET_COUNT)
# Datasets added after version 2, with the schema version that added them: a file of an older version
# lacks them, and readers give one documented value instead (store/refs.py for the visible fraction).
DATASETS_SINCE: dict[str, int] = {AMODAL_PIXELS: 3, REF_VISIBLE_FRACTION: 3, REF_TARGETS: 4, REF_TARGET_COUNT: 4}
# Every name a shard may hold (the optional amodal masks too).
COLUMNS: tuple[str, ...] = SCENE_DATASETS + (AMODAL_MASKS,) + REF_DATASETS

# How HDF5 stores the text columns (scenes, expression, family, program).
STRING = h5py.string_dtype("utf-8")


def read_column(f: h5py.File | h5py.Group, name: str) -> np.ndarray:
    """The whole dataset `name` of an open file, text decoded to `str` (an object array)."""
    dataset = f[name]
    return dataset.asstr()[()] if dataset.dtype == STRING else dataset[()]
