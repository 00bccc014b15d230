"""Reading one render back: RGB, depth and object index from a multilayer EXR.

The three come from the same Cycles render, so masks and depth are registered with the
image by construction. Blender's in-memory render result has no pixel access headless,
hence the file (kept in RAM under /dev/shm where it exists).

Blender 4.5 writes one EXR part holding every pass, the object index named `IndexOB`;
Blender 5.x writes one part per pass and names it `Object Index`. The reader gathers the
channels of all parts and accepts either name, so one code path serves both.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import OpenEXR

LAYER = "ViewLayer"
INDEX_PASS_NAMES = ("IndexOB", "Object Index")  # Blender 4.5, Blender 5.x
BACKGROUND_DEPTH = 1e9  # Cycles writes 1e10 where a ray hits nothing


@dataclass
class ViewPasses:
    image: np.ndarray  # uint8 (H, W, 3) sRGB
    mask: np.ndarray  # uint8 (H, W)
    depth: np.ndarray  # float32 (H, W), +inf background


def linear_to_srgb8(linear: np.ndarray) -> np.ndarray:
    """Blender's 'Standard' view transform followed by 8-bit quantisation."""
    x = np.clip(linear, 0.0, 1.0)
    srgb = np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(x, 1.0 / 2.4) - 0.055)
    return np.rint(srgb * 255.0).astype(np.uint8)


def index_to_mask(index: np.ndarray) -> np.ndarray:
    """IndexOB holds exact integers (the objects' pass_index), 0 elsewhere."""
    return np.rint(index).astype(np.uint8)


def planar_depth(z: np.ndarray) -> np.ndarray:
    depth = z.astype(np.float32, copy=True)
    depth[depth >= BACKGROUND_DEPTH] = np.inf
    return depth


def _index_channel(channels: dict, path: str):
    for name in INDEX_PASS_NAMES:
        if f"{LAYER}.{name}.X" in channels:
            return channels[f"{LAYER}.{name}.X"]
    raise KeyError(f"{path}: no object-index pass ({' or '.join(INDEX_PASS_NAMES)}) among {sorted(channels)}")


def read_passes(path: str, with_image: bool = True) -> ViewPasses:
    """Rows come top-down, matching image convention."""
    with OpenEXR.File(path, separate_channels=False) as exr:
        channels = {name: channel for part in exr.parts for name, channel in part.channels.items()}
        mask = index_to_mask(_index_channel(channels, path).pixels)
        if not with_image:
            return ViewPasses(np.empty((0,), np.uint8), mask, np.empty((0,), np.float32))
        image = linear_to_srgb8(channels[f"{LAYER}.Combined"].pixels[..., :3])
        depth = planar_depth(channels[f"{LAYER}.Depth.Z"].pixels)
    return ViewPasses(image, mask, depth)
