"""PFM files as the HCI 4D light-field benchmark writes and reads them (its `file_io.py`):
identifier `Pf` (one channel), `width height`, a scale whose sign gives the byte order (−1:
little-endian), then float32 rows from the bottom of the image to the top."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def write_pfm(data: np.ndarray, path: Path | str) -> None:
    """Write a 2-D array as a little-endian `Pf` file (rows bottom to top), scale −1."""
    data = np.asarray(data)
    if data.ndim != 2:
        raise ValueError(f"a Pf file holds one channel: got an array of shape {data.shape}")
    height, width = data.shape
    with open(path, "wb") as f:
        f.write(f"Pf\n{width} {height}\n-1\n".encode("ascii"))
        f.write(np.ascontiguousarray(np.flipud(data), dtype="<f4").tobytes())


def _next_line(f) -> bytes:
    line = f.readline()
    while line.startswith(b"#"):
        line = f.readline()
    return line.rstrip()


def read_pfm(path: Path | str) -> np.ndarray:
    """A `Pf` file as a (height, width) float32 array, top row first.

    Either byte order (the scale's sign) is read; anything else is a ValueError naming the file.
    """
    path = Path(path)
    with open(path, "rb") as f:
        identifier = _next_line(f)
        if identifier != b"Pf":
            what = "a colour PFM (PF)" if identifier == b"PF" else f"identifier {identifier[:10]!r}"
            raise ValueError(f"{path}: not a one-channel PFM file ('Pf' expected, found {what})")
        try:
            width, height = (int(v) for v in _next_line(f).split())
            scale = float(_next_line(f))
            if scale == 0 or width <= 0 or height <= 0:
                raise ValueError
        except ValueError:
            raise ValueError(f"{path}: PFM header is not 'Pf', 'width height', 'scale'") from None
        values = np.frombuffer(f.read(), dtype="<f4" if scale < 0 else ">f4")
    if values.size != width * height:
        raise ValueError(f"{path}: PFM says {width}x{height} but holds {values.size} values")
    return np.flipud(values.reshape(height, width)).astype(np.float32) * np.float32(abs(scale))
