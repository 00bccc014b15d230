"""The selection vocabulary every reader of a dataset shares: which views (`center`, `corners`, `all`,
a list) and which scenes (`A:B`). The loader, the exports and the evaluation all take the same
words, so they live here rather than in any one of them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from math import isqrt
from typing import Any

import numpy as np

from clevr_remv.scene.rig import centre_view, corner_views

ViewSpec = str | int | Sequence[int]


def select_views(views: ViewSpec, grid: int) -> list[int]:
    """View indices of an N x N rig named by "center", "corners", "all", "0,2,6" or a list.

    One-line ValueError for anything that is not a view of this rig, so a typo on the
    command line never silently selects nothing.
    """
    n_views = grid * grid
    if isinstance(views, str):
        name = views.strip().lower()
        if name in ("center", "centre"):
            return [centre_view(grid)]
        if name == "corners":
            return list(corner_views(grid))
        if name == "all":
            return list(range(n_views))
        try:  # an empty item ("1,,2", "0,") is a typo too: a view may have been lost there
            chosen = [int(part) for part in name.split(",")]
        except ValueError:
            raise ValueError(f"views {views!r}: expected center, corners, all or a comma-separated list of "
                             f"view indices 0..{n_views - 1}") from None
    elif isinstance(views, (int, np.integer)):
        chosen = [int(views)]
    else:
        chosen = [int(v) for v in views]
    if not chosen:
        raise ValueError("views: no view given")
    for v in chosen:
        if not 0 <= v < n_views:
            raise ValueError(f"view {v} is outside the {grid}x{grid} rig (views 0..{n_views - 1})")
    if len(set(chosen)) != len(chosen):
        raise ValueError(f"views {chosen}: a view is listed twice")
    return chosen


def describe_views(views: Sequence[int], grid: int) -> str:
    """Short words for a view selection, for logs: "center (40)", "corners (0,8,72,80)", "all 81"."""
    listed = ",".join(str(v) for v in views)
    for name in ("center", "corners", "all"):
        if list(views) == select_views(name, grid):
            return f"all {len(views)}" if name == "all" else f"{name} ({listed})"
    return listed


def views_caption(views: Sequence[int], grid: int, width: int = 48) -> str:
    """A view selection as a figure's caption, never wider than about `width` characters: "all 81
    views", "center view (40)", "corners (0,8,72,80)", "views 0,1,2"; a longer list keeps its ends
    and its count: "41 views: 0,2,4,6,...,76,78,80"."""
    words = describe_views(views, grid)
    if words.startswith("all "):
        return f"{words} views"
    if words.startswith("center "):
        return words.replace("center", "center view", 1)
    if words.startswith("corners "):
        return words
    caption = f"view{'s' if len(views) != 1 else ''} {words}"
    if len(caption) <= width:
        return caption
    listed = [str(v) for v in views]

    def shortened(n: int) -> str:
        return f"{len(views)} views: {','.join(listed[:n])},...,{','.join(listed[-n:])}"

    n = 1
    while 2 * (n + 1) < len(listed) and len(shortened(n + 1)) <= width:
        n += 1
    return shortened(n)


def rig_grid(manifest: dict[str, Any]) -> int:
    """N of the N x N rig a dataset was rendered with, from its manifest."""
    grid = manifest.get("config", {}).get("grid")
    if grid is None:
        grid = isqrt(int(manifest["views"]))
    return int(grid)


_RANGE = re.compile(r"^\s*(\d*)\s*(:?)\s*(\d*)\s*$")


def parse_scene_range(text: str | None) -> range | None:
    """`A:B` (scene indices A ... B−1 of each split, as Python slices), `A:`, `:B`, or `A` alone."""
    if text is None:
        return None
    match = _RANGE.match(text)
    if not match or not (match[1] or match[3]) or (not match[2] and not match[1]):
        raise ValueError(f"--scenes {text!r}: expected A:B (scenes A to B-1), A: or :B, or one index A")
    start = int(match[1]) if match[1] else 0
    if not match[2]:
        return range(start, start + 1)
    stop = int(match[3]) if match[3] else 2**62
    if stop <= start:
        raise ValueError(f"--scenes {text!r}: selects no scene (B must be larger than A)")
    return range(start, stop)


def describe_range(indices: range | None) -> str:
    if indices is None:
        return "all scenes"
    return f"scenes {indices.start}:{indices.stop}" if indices.stop < 2**62 else f"scenes {indices.start}:"
