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

from clevr_remv.config import Quality, RenderConfig
from clevr_remv.render.assets import AssetLibrary
from clevr_remv.render.build import build_scene, build_static_world, reset_blender
from clevr_remv.render.cycles import (
    PROBE_QUALITY,
    apply_quality,
    apply_settings,
    apply_threads,
    select_device,
)
from clevr_remv.render.passes import ViewPasses, read_passes
from clevr_remv.scene import rig
from clevr_remv.scene.description import Scene
from clevr_remv.scene.seeds import cycles_seed
from clevr_remv.store.atomic import pid_is_alive
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


SCRATCH_PREFIX = "clevr-remv-"


def scratch_directory() -> Path:
    """A private folder for the view EXRs, in RAM where there is /dev/shm.

    The name carries the pid, so that the folders of killed workers (SIGKILL runs no
    cleanup) are found and removed by the next renderer on this machine.
    """
    ram = Path("/dev/shm") if os.path.isdir("/dev/shm") else Path(tempfile.gettempdir())
    sweep_dead_scratch(ram)
    return Path(tempfile.mkdtemp(prefix=f"{SCRATCH_PREFIX}{os.getpid()}-", dir=ram))


def sweep_dead_scratch(parent: Path) -> list[Path]:
    """Remove scratch folders under `parent` whose process is gone; returns them."""
    swept = []
    for path in parent.glob(f"{SCRATCH_PREFIX}*-*"):
        pid = path.name[len(SCRATCH_PREFIX):].partition("-")[0]
        if path.is_dir() and pid.isdigit() and not pid_is_alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)
            swept.append(path)
    if swept:
        log.info("removed %d scratch folder(s) of dead render processes under %s", len(swept), parent)
    return swept


def blender_version() -> str:
    return bpy.app.version_string


class BlenderRenderer:
    """Renders scene descriptions with Cycles.

    Blender state is global to the process, so only one renderer should exist per process;
    the static world and the device are set up once here, not per scene (GPU kernels
    compile once per worker).
    """

    def __init__(self, config: RenderConfig, gpu_index: int | None = None, threads: int | None = None) -> None:
        """`gpu_index` pins this process to one GPU of the chosen backend (one worker per GPU);
        `threads` caps Cycles' CPU threads (several workers or Ray tasks on one machine)."""
        self.config = config
        with quiet_stdout():
            self._scene = reset_blender()
            self._camera = build_static_world(self._scene)
        self._assets = AssetLibrary()
        self.device = select_device(self._scene, config.device, gpu_index)
        apply_settings(self._scene, config, self.device)
        apply_threads(self._scene, threads)
        self._tmp = scratch_directory()
        self._scene.render.filepath = str(self._tmp / "view.exr")
        self._built: str | None = None  # JSON of the scene now in Blender
        self._rig: tuple[rig.RigSpec, np.ndarray, np.ndarray] | None = None  # built scene's rig, K, w2c
        self._scene_seed: tuple[int, ...] = ()
        self.stopwatch = Stopwatch()

    def close(self) -> None:
        shutil.rmtree(self._tmp, ignore_errors=True)

    def __enter__(self) -> "BlenderRenderer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _ensure_built(self, scene: Scene) -> None:
        key = scene.to_json()  # the whole description: another seed or any edit rebuilds
        if key != self._built:
            with self.stopwatch.section("build"):
                build_scene(scene, self._assets)
            self._camera.data.lens = scene.rig.lens_mm
            self._camera.data.sensor_width = scene.rig.sensor_mm
            self._rig = (scene.rig, rig.intrinsics(scene.rig), rig.world_to_camera(scene.rig))
            self._scene_seed = scene.seed
            self._built = key

    def _set_view(self, view: int) -> None:
        """Move the one camera to `view` of the built scene's rig and give Cycles that view's seed.

        A seed per view decorrelates the residual noise across the light field (see seeds.py).
        """
        from mathutils import Matrix

        spec, Ks, w2cs = self._rig
        self._camera.matrix_world = Matrix(rig.blender_matrix_world(w2cs[view]).tolist())
        self._camera.data.shift_x, self._camera.data.shift_y = rig.blender_shift(Ks[view], spec.width, spec.height)
        self._scene.cycles.seed = cycles_seed(self._scene_seed, view)

    def _render_view(self, with_image: bool = True, section: str = "render") -> ViewPasses:
        with self.stopwatch.section(section), quiet_stdout():
            bpy.ops.render.render(write_still=True)
        with self.stopwatch.section("readback"):
            return read_passes(self._scene.render.filepath, with_image=with_image)

    @contextlib.contextmanager
    def _quality(self, quality: Quality) -> Iterator[None]:
        """Render with other sampling settings for a while, then back to the configured ones.

        The restore re-applies every setting, not only the quality: restoring just the
        quality after the 1-sample probe made later renders differ between runs (caught by
        the determinism tests), so the full re-apply is what keeps runs reproducible.
        """
        apply_quality(self._scene, quality, self.device)
        try:
            yield
        finally:
            apply_settings(self._scene, self.config, self.device)

    def probe_centre_mask(self, scene: Scene) -> np.ndarray:
        """Instance mask of the central view from a 1-sample render (the index pass is exact)."""
        self._ensure_built(scene)
        self._set_view(scene.rig.centre_view)
        with self._quality(PROBE_QUALITY):
            return self._render_view(with_image=False, section="probe").mask

    def render_images(self, scene: Scene, views: list[int], quality: Quality) -> np.ndarray:
        """(len(views), H, W, 3) images at another quality: benchmarks compare settings on one scene."""
        self._ensure_built(scene)
        images = []
        with self._quality(quality):
            for view in views:
                self._set_view(view)
                images.append(self._render_view().image)
        return np.stack(images)

    def render_scene(self, scene: Scene, on_view: Callable[[], None] | None = None) -> RenderedViews:
        """All views of one scene: the scene is built once, only the camera moves."""
        self._ensure_built(scene)
        spec = scene.rig
        images = np.empty((spec.views, spec.height, spec.width, 3), np.uint8)
        masks = np.empty((spec.views, spec.height, spec.width), np.uint8)
        depth = np.empty((spec.views, spec.height, spec.width), np.float32)
        for view in range(spec.views):
            self._set_view(view)
            passes = self._render_view()
            images[view], masks[view], depth[view] = passes.image, passes.mask, passes.depth
            if on_view is not None:
                on_view()
        return RenderedViews(images, masks, depth)
