"""The closed vocabulary of CLEVR objects: shapes, sizes, materials and colours.

Kept in one place because the layout sampler, the Blender backend and the expression
engine must agree on every name; the values follow the original CLEVR generator.
"""

from __future__ import annotations

import math

SHAPES: tuple[str, ...] = ("cube", "sphere", "cylinder")

# Size name -> nominal half-extent in scene units (CLEVR's "r").
SIZES: dict[str, float] = {"large": 0.7, "small": 0.35}

MATERIALS: tuple[str, ...] = ("rubber", "metal")

# sRGB 0-255 values of CLEVR's eight colours.
COLORS: dict[str, tuple[int, int, int]] = {
    "gray": (87, 87, 87),
    "red": (173, 35, 35),
    "blue": (42, 75, 215),
    "green": (29, 105, 20),
    "brown": (129, 74, 25),
    "purple": (129, 38, 192),
    "cyan": (41, 208, 208),
    "yellow": (255, 238, 51),
}

# The attribute kinds a referring expression may filter on, in CLEVR's order.
ATTRIBUTES: tuple[str, ...] = ("size", "color", "material", "shape")

MAX_OBJECTS = 10


def half_height(shape: str, size: str) -> float:
    """Height of the object's centre above the ground.

    A cube's nominal size is divided by sqrt(2) as in CLEVR, so that its footprint
    diagonal, not its side, matches the sphere's and cylinder's diameter.
    """
    r = SIZES[size]
    return r / math.sqrt(2.0) if shape == "cube" else r


def footprint_radius(shape: str, size: str) -> float:
    """Radius of a circle on the ground that contains the object whatever its rotation."""
    return SIZES[size]


def srgb_to_linear(rgb255: tuple[int, int, int]) -> tuple[float, float, float]:
    """Blender material colours are linear; CLEVR's table is sRGB."""

    def channel(c: float) -> float:
        c = c / 255.0
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    return tuple(channel(c) for c in rgb255)  # type: ignore[return-value]
