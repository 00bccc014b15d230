"""Renderer housekeeping: RAM scratch folders of killed workers are swept; a built scene is reused only for itself."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from clevr_remv.config import RenderConfig
from clevr_remv.render.renderer import (
    SCRATCH_PREFIX,
    BlenderRenderer,
    sweep_dead_scratch,
)


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_only_folders_of_dead_processes_are_swept(tmp_path: Path) -> None:
    dead = tmp_path / f"{SCRATCH_PREFIX}{dead_pid()}-abc"
    live = tmp_path / f"{SCRATCH_PREFIX}{os.getpid()}-def"
    foreign = tmp_path / f"{SCRATCH_PREFIX}notapid-ghi"
    for folder in (dead, live, foreign):
        folder.mkdir()
        (folder / "view.exr").write_bytes(b"x")
    assert sweep_dead_scratch(tmp_path) == [dead]
    assert not dead.exists() and live.exists() and foreign.exists()


def test_renderer_scratch_carries_its_pid_and_is_removed_on_close() -> None:
    renderer = BlenderRenderer(RenderConfig(scenes=1, grid=1, width=16, height=16))
    scratch = renderer._tmp
    assert scratch.name.startswith(f"{SCRATCH_PREFIX}{os.getpid()}-") and scratch.is_dir()
    renderer.close()
    assert not scratch.exists()


def test_a_scene_with_the_same_index_but_another_seed_is_rebuilt() -> None:
    """The renderer keeps a built scene between calls; it must not mistake another scene for it."""
    from clevr_remv.scene.layout import draw_layout, scene_rng

    config = RenderConfig(scenes=1, grid=1, width=32, height=24)
    first = draw_layout(scene_rng(1, "test", 0), config.with_(seed=1), "test", 0)
    second = draw_layout(scene_rng(2, "test", 0), config.with_(seed=2), "test", 0)
    with BlenderRenderer(config) as renderer:
        masks = [renderer.probe_centre_mask(s) for s in (first, second, first)]
    assert not (masks[0] == masks[1]).all()
    assert (masks[0] == masks[2]).all()


def test_cpu_threads_reach_cycles() -> None:
    import bpy

    config = RenderConfig(scenes=1, grid=1, width=16, height=16)
    with BlenderRenderer(config, threads=1):
        assert (bpy.context.scene.render.threads_mode, bpy.context.scene.render.threads) == ("FIXED", 1)
    with BlenderRenderer(config):
        assert bpy.context.scene.render.threads_mode == "AUTO"
