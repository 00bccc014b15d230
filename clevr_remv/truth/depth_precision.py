"""Depth precision: rounding float32 mantissas so depth maps compress.

A Cycles depth pass carries 23 mantissa bits of which the lowest are noise for every
purpose (the meshes themselves approximate spheres and cylinders to ~1e-3 of their
size), and noise does not compress: lossless depth is the largest part of a shard.
Rounding to `bits` mantissa bits bounds the relative error by 2^-(bits+1) and lets
shuffle+gzip remove the zeroed low bytes ("bit rounding", as in netCDF/Zarr quantize).
"""

from __future__ import annotations

import numpy as np

FLOAT32_MANTISSA_BITS = 23


def round_mantissa(values: np.ndarray, bits: int) -> np.ndarray:
    """float32 values rounded to nearest with `bits` mantissa bits; inf and nan unchanged."""
    values = np.asarray(values, dtype=np.float32)
    if bits >= FLOAT32_MANTISSA_BITS:
        return values
    if bits < 1:
        raise ValueError(f"depth mantissa bits must be 1..23, got {bits}")
    drop = FLOAT32_MANTISSA_BITS - bits
    raw = values.view(np.uint32)
    rounded = (raw + np.uint32(1 << (drop - 1))) & np.uint32((0xFFFFFFFF << drop) & 0xFFFFFFFF)
    return np.where(np.isfinite(values), rounded.view(np.float32), values)


def max_relative_error(bits: int) -> float:
    return 0.0 if bits >= FLOAT32_MANTISSA_BITS else 2.0 ** -(bits + 1)
