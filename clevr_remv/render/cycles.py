"""Cycles settings and compute devices.

What to pick is decided in `clevr_remv.gpu.devices` (pure, tested without a GPU); this module
only asks Cycles what it sees and applies the choice.
"""

from __future__ import annotations

import ctypes
import logging
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import bpy

from clevr_remv.config import Quality, RenderConfig
from clevr_remv.gpu.devices import (
    GPU_BACKENDS,
    DeviceChoice,
    choose_denoiser,
    choose_device,
)
from clevr_remv.gpu.kernels import (
    jit_warnings,
    nvidia_compute_capabilities,
    raise_jit_cache_limit,
    shipped_kernels,
)

log = logging.getLogger(__name__)

# The cheapest render whose object-index pass is still exact: 1 sample, no bounces.
PROBE_QUALITY = Quality(samples=1, denoise=False, max_bounces=0)


def _cycles_preferences():
    return bpy.context.preferences.addons["cycles"].preferences


@contextmanager
def native_stdout_to_log(what: str) -> Iterator[None]:
    """What native code prints on this process's stdout meanwhile (Cycles' `WARNING CUEW
    initialization failed` and `HIPEW` on a machine without those drivers, at every render), kept
    out of the user's output and replayed as debug lines (`-v`).

    Blender's C code writes to file descriptor 1, past Python's sys.stdout, so the descriptor
    itself is pointed at a temporary file, and C's stdio buffers are flushed before it is put back.
    """
    sys.stdout.flush()
    saved = os.dup(1)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 1)
        try:
            yield
        finally:
            _flush_c_stdio()
            os.dup2(saved, 1)
            os.close(saved)
            sink.seek(0)
            printed = sink.read().decode(errors="replace")
    for line in printed.splitlines():
        if line.strip():
            log.debug("%s printed: %s", what, line.rstrip())


def _flush_c_stdio() -> None:
    try:
        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError, TypeError):  # no C library handle (Windows): nothing buffered there to lose
        pass


def available_gpus() -> dict[str, list[str]]:
    """GPU device names per backend, as Cycles reports them on this machine."""
    if raise_jit_cache_limit():  # before Cycles starts CUDA, which reads it once
        log.debug("CUDA_CACHE_MAXSIZE set to the driver's maximum, so a compiled Cycles kernel is kept")
    prefs = _cycles_preferences()
    found: dict[str, list[str]] = {}
    with native_stdout_to_log("Cycles listing its devices"):  # where it loads its GPU backends
        prefs.refresh_devices()
        for backend in GPU_BACKENDS:
            try:
                devices = prefs.get_devices_for_type(backend)
            except (TypeError, ValueError):  # backend not compiled into this Blender
                continue
            names = [d.name for d in devices if d.type == backend]
            if names:
                found[backend] = names
    return found


def apply_device(scene: bpy.types.Scene, choice: DeviceChoice) -> None:
    """Enable exactly the chosen GPUs (not the CPU beside them) or render on the CPU."""
    if not choice.is_gpu:
        scene.cycles.device = "CPU"
        return
    prefs = _cycles_preferences()
    prefs.compute_device_type = choice.backend
    gpus = [d for d in prefs.get_devices_for_type(choice.backend) if d.type == choice.backend]
    for index, device in enumerate(gpus):  # the order available_gpus() reported
        device.use = choice.indices is None or index in choice.indices
    for device in prefs.get_devices_for_type(choice.backend):
        if device.type != choice.backend:
            device.use = False
    scene.cycles.device = "GPU"


def select_device(scene: bpy.types.Scene, requested: str, gpu_index: int | None = None) -> DeviceChoice:
    """Set up the device for `requested`; `gpu_index` pins a worker to one GPU of the backend."""
    choice = choose_device(requested, available_gpus()).pinned(gpu_index)
    apply_device(scene, choice)
    log.info("Cycles device: %s (requested %s); denoiser %s", choice.describe(), requested,
             choose_denoiser(choice).denoiser)
    if choice.backend in ("CUDA", "OPTIX"):
        warn_about_kernel_compilation()
    return choice


def warn_about_kernel_compilation() -> None:
    """Say so where the driver must compile Cycles' kernel first: the progress bar then sits at
    0 views for many minutes, which otherwise looks like a hang (clevr_remv.gpu.kernels)."""
    lib = Path(bpy.utils.system_resource("SCRIPTS", path="addons_core/cycles/lib"))
    for line in jit_warnings(nvidia_compute_capabilities(), shipped_kernels(lib), bpy.app.version_string):
        log.warning(line)


def apply_threads(scene: bpy.types.Scene, threads: int | None) -> None:
    """A fixed number of CPU render threads, or Blender's automatic one thread per core."""
    if threads:
        scene.render.threads_mode = "FIXED"
        scene.render.threads = threads
        log.info("Cycles CPU threads: %d", threads)
    else:
        scene.render.threads_mode = "AUTO"


def apply_settings(scene: bpy.types.Scene, config: RenderConfig, device: DeviceChoice) -> None:
    """Resolution, samples, denoiser, light paths and the pass outputs the pipeline reads."""
    render = scene.render
    render.engine = "CYCLES"
    render.resolution_x = config.width
    render.resolution_y = config.height
    render.resolution_percentage = 100
    render.film_transparent = False
    render.use_persistent_data = True  # keeps the BVH while only the camera moves
    scene.view_settings.view_transform = "Standard"
    scene.view_settings.look = "None"

    apply_quality(scene, config.quality, device)

    layer = scene.view_layers[0]
    layer.use_pass_z = True
    layer.use_pass_object_index = True

    image = render.image_settings
    if bpy.app.version >= (5, 0, 0):
        # 5.0 groups file formats by media type: multilayer EXR exists only under this one.
        image.media_type = "MULTI_LAYER_IMAGE"
    image.file_format = "OPEN_EXR_MULTILAYER"
    image.color_depth = "32"
    image.exr_codec = "NONE"  # a RAM file read once: compression only costs time


def apply_quality(scene: bpy.types.Scene, quality: Quality, device: DeviceChoice) -> None:
    """Sampling, denoiser and light paths.

    CLEVR scenes are opaque, matte or metallic, with no glass: transmission and volume
    bounces are off. Caustics follow the quality: the metal objects focus light onto the
    ground (reflective caustics), on in every preset since 0.3.0; refraction has no glass to
    go through and follows the same switch. Filter Glossy and the indirect clamp default to
    Blender's (1 and 10), which every render before they were fields had.
    """
    cycles = scene.cycles
    cycles.samples = quality.samples
    cycles.use_adaptive_sampling = quality.adaptive_threshold > 0
    cycles.adaptive_threshold = quality.adaptive_threshold
    cycles.use_denoising = quality.denoise
    denoiser = choose_denoiser(device)
    cycles.denoiser = denoiser.denoiser
    cycles.denoising_use_gpu = denoiser.use_gpu
    cycles.denoising_quality = quality.denoiser_quality
    cycles.denoising_prefilter = quality.denoiser_prefilter
    cycles.denoising_input_passes = quality.denoiser_passes
    cycles.max_bounces = quality.max_bounces
    cycles.diffuse_bounces = quality.diffuse_bounces
    cycles.glossy_bounces = quality.glossy_bounces
    cycles.use_fast_gi = quality.fast_gi
    cycles.use_light_tree = quality.light_tree
    cycles.transmission_bounces = 0
    cycles.volume_bounces = 0
    cycles.transparent_max_bounces = 0
    cycles.caustics_reflective = quality.caustics
    cycles.caustics_refractive = quality.caustics
    cycles.blur_glossy = quality.blur_glossy
    cycles.sample_clamp_indirect = quality.sample_clamp_indirect
    cycles.seed = 0

