"""The Blender renderer: one per worker process, reused for every scene it renders."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import bpy
import numpy as np

from clevr_remv import rig
from clevr_remv.config import RenderConfig
from clevr_remv.render.assets import AssetLibrary
from clevr_remv.render.build import build_scene, build_static_world, reset_blender
from clevr_remv.render.cycles import apply_probe_settings, apply_settings, select_device
from clevr_remv.render.passes import ViewPasses, read_passes
from clevr_remv.scene import Scene
from clevr_remv.timing import Stopwatch

log = logging.getLogger(__name__)


@dataclass
class RenderedViews:
    images: np.ndarray  # uint8 (V, H, W, 3)
    masks: np.ndarray  # uint8 (V, H, W)
    depth: np.ndarray  # float32 (V, H, W)


@contextlib.contextmanager
def quiet_stdout() -> Iterator[None]:
    """Cycles prints a status line per tile to fd 1; keep it off the user's terminal."""
    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)


def blender_version() -> str:
    return bpy.app.version_string


class BlenderRenderer:
    """Renders scene descriptions with Cycles.

    Blender state is global to the process, so only one renderer should exist per process;
    the static world and the device are set up once here, not per scene (GPU kernels
    compile once per worker).
    """

    def __init__(self, config: RenderConfig) -> None:
        self.config = config
        with quiet_stdout():
            self._scene = reset_blender()
            self._camera = build_static_world(self._scene)
        self._assets = AssetLibrary()
        self.device = select_device(self._scene, config.device)
        apply_settings(self._scene, config, self.device)
        ram = "/dev/shm" if os.path.isdir("/dev/shm") else None
        self._tmp = Path(tempfile.mkdtemp(prefix="clevr-remv-", dir=ram))
        self._scene.render.filepath = str(self._tmp / "view.exr")
        self._built: tuple[str, int, int] | None = None
        self.stopwatch = Stopwatch()

    def close(self) -> None:
        shutil.rmtree(self._tmp, ignore_errors=True)

    def __enter__(self) -> "BlenderRenderer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _ensure_built(self, scene: Scene) -> None:
        key = (scene.split, scene.index, scene.attempt)
        if key != self._built:
            with self.stopwatch.section("build"):
                build_scene(scene, self._assets)
            self._camera.data.lens = scene.rig.lens_mm
            self._camera.data.sensor_width = scene.rig.sensor_mm
            self._built = key

    def _place_camera(self, spec: rig.RigSpec, K: np.ndarray, w2c: np.ndarray) -> None:
        from mathutils import Matrix

        self._camera.matrix_world = Matrix(rig.blender_matrix_world(w2c).tolist())
        self._camera.data.shift_x, self._camera.data.shift_y = rig.blender_shift(K, spec.width, spec.height)

    def _render_view(self, with_image: bool = True, section: str = "render") -> ViewPasses:
        with self.stopwatch.section(section), quiet_stdout():
            bpy.ops.render.render(write_still=True)
        with self.stopwatch.section("readback"):
            return read_passes(self._scene.render.filepath, with_image=with_image)

    def probe_centre_mask(self, scene: Scene) -> np.ndarray:
        """Instance mask of the central view from a 1-sample render (the index pass is exact)."""
        self._ensure_built(scene)
        spec = scene.rig
        view = spec.centre_view
        self._place_camera(spec, rig.intrinsics(spec)[view], rig.world_to_camera(spec)[view])
        apply_probe_settings(self._scene, self.device)
        try:
            return self._render_view(with_image=False, section="probe").mask
        finally:
            apply_settings(self._scene, self.config, self.device)

    def render_scene(self, scene: Scene, on_view: Callable[[], None] | None = None) -> RenderedViews:
        """All views of one scene: the scene is built once, only the camera moves."""
        self._ensure_built(scene)
        spec = scene.rig
        Ks, w2cs = rig.intrinsics(spec), rig.world_to_camera(spec)
        images = np.empty((spec.views, spec.height, spec.width, 3), np.uint8)
        masks = np.empty((spec.views, spec.height, spec.width), np.uint8)
        depth = np.empty((spec.views, spec.height, spec.width), np.float32)
        for view in range(spec.views):
            self._place_camera(spec, Ks[view], w2cs[view])
            passes = self._render_view()
            images[view], masks[view], depth[view] = passes.image, passes.mask, passes.depth
            if on_view is not None:
                on_view()
        return RenderedViews(images, masks, depth)
