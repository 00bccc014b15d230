"""From `render`'s options to an executor: this process, local worker processes, or Ray.

One worker (the default without GPUs) renders in this process: no process start, and the
only way inside a Blender install (`blender -b -P`), whose bundled Python cannot start
further Blenders. Several render in spawned processes, pinned to GPUs as planned by
`devices.plan_workers`.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from clevr_remv.config import RenderConfig
from clevr_remv.gpu.devices import DeviceChoice, choose_device, plan_workers

log = logging.getLogger(__name__)


def device_choice(config: RenderConfig) -> DeviceChoice:
    """What Cycles would render on here; asks Blender only when a GPU is possible."""
    if config.device == "cpu":
        return DeviceChoice("CPU", ())
    from clevr_remv.render.cycles import (
        available_gpus,  # imports bpy: the parent stays light otherwise
    )

    return choose_device(config.device, available_gpus())


def blender_factory(config: RenderConfig, gpu_index: int | None = None, threads: int | None = None):
    """A renderer for this process (set up when first called, i.e. only if there is work)."""
    def factory():
        from clevr_remv.render.renderer import BlenderRenderer, blender_version

        return BlenderRenderer(config, gpu_index, threads), blender_version()

    return factory


def make_executor(config: RenderConfig, executor: str, workers: int | None, gpus: str | None,
                  workers_per_gpu: int, ray_address: str | None, single_process: bool = False,
                  threads: int | None = None):
    """The executor `produce.run.run` renders with; the log says which worker got which device.

    `threads` fixes Cycles' CPU threads per worker (or per Ray task); by default local CPU
    workers share this machine's cores and a Ray task on CPUs takes the smallest node's.
    """
    if threads is not None and threads < 1:
        raise ValueError(f"--threads must be positive, got {threads}")
    if executor == "ray":
        if single_process:
            raise ValueError("--executor ray cannot run inside Blender (blender -b -P); use clevr-remv render")
        if workers is not None or gpus is not None:
            raise ValueError("--workers and --gpus are for --executor local; Ray places one task per shard "
                             "(a GPU each, or 1/K with --workers-per-gpu K)")
        from clevr_remv.runners.ray_runner import RayExecutor

        return RayExecutor(ray_address, workers_per_gpu, threads)
    if executor != "local":
        raise ValueError(f"--executor must be local or ray, got {executor!r}")
    choice = device_choice(config) if gpus is not None or config.device != "cpu" else DeviceChoice("CPU", ())
    plan = plan_workers(choice, gpus, workers, workers_per_gpu)
    if threads is not None:
        plan = [replace(device, threads=threads) for device in plan]
    if len(plan) == 1:
        log.info("one process: %s", plan[0].describe(choice))
        from clevr_remv.runners.serial import SerialExecutor

        return SerialExecutor(blender_factory(config, plan[0].gpu_index, plan[0].threads))
    if single_process:
        raise ValueError(f"inside Blender (blender -b -P) one process renders on one device, but this plan has "
                         f"{len(plan)} workers: give --gpus I (one GPU) and start one Blender per GPU, or use "
                         "clevr-remv render --workers")
    from clevr_remv.runners.local import LocalExecutor

    return LocalExecutor(plan, choice)
