"""What a process that has loaded Blender must know before it starts another one."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def blender_script_paths() -> list[str]:
    """The sys.path entries that importing `bpy` added: its bundled scripts and the user's add-ons.

    A spawned child inherits its parent's sys.path; with these entries first in line it
    imports Blender's Python-level `bpy` package instead of the compiled module and fails
    with "No module named '_bpy'".
    """
    if "bpy" not in sys.modules:
        return []
    import bpy

    roots = [Path(r) for r in (bpy.utils.resource_path(k) for k in ("LOCAL", "USER", "SYSTEM")) if r]
    return [p for p in sys.path if p and any(Path(p).is_relative_to(root) for root in roots)]


@contextmanager
def sys_path_for_children() -> Iterator[None]:
    """Start spawned processes inside this block: they get sys.path as it was before `bpy`."""
    saved = list(sys.path)
    added = set(blender_script_paths())
    sys.path[:] = [p for p in sys.path if p not in added]
    try:
        yield
    finally:
        sys.path[:] = saved
