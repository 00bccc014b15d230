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


def test_native_prints_while_cycles_lists_its_devices_stay_out_of_stdout(capfd) -> None:
    """Issue item 7: Cycles' `WARNING CUEW/HIPEW initialization failed`, printed by C code on file
    descriptor 1 at every render, reached the user's output; now a debug line (`-v`)."""
    import ctypes
    import logging
    from unittest import mock

    from clevr_remv.render import cycles

    libc = ctypes.CDLL(None)

    class Preferences:  # Cycles' preferences, printing as its C code does
        def refresh_devices(self) -> None:
            libc.printf(b"WARNING CUEW initialization failed\n")
            libc.fflush(None)
            libc.printf(b"WARNING HIPEW initialization failed\n")  # still in C's buffer when the call returns

        def get_devices_for_type(self, backend: str) -> list:
            return []

    records: list[str] = []
    handler = logging.Handler(logging.DEBUG)
    handler.emit = lambda record: records.append(record.getMessage())
    logger = logging.getLogger("clevr_remv")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        with mock.patch.object(cycles, "_cycles_preferences", Preferences):
            print("before", flush=True)
            assert cycles.available_gpus() == {}
            print("after", flush=True)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    libc.fflush(None)
    out, err = capfd.readouterr()
    assert out == "before\nafter\n" and "CUEW" not in err, (out, err)
    assert [m for m in records if "initialization failed" in m] == [
        "Cycles listing its devices printed: WARNING CUEW initialization failed",
        "Cycles listing its devices printed: WARNING HIPEW initialization failed"]
