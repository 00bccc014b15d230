"""Which Cycles device renders: pure selection logic, testable without Blender or a GPU.

The Blender backend reports the GPUs Cycles sees per backend; this module decides. `auto`
takes the best backend present (OptiX is NVIDIA's ray-tracing path and beats CUDA on the
same card), otherwise the CPU; `gpu` without any GPU is an error the user must see.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from clevr_remv.config import DEVICE_REQUESTS, GPU_BACKENDS
from clevr_remv.contract import UserError


class DeviceUnavailable(UserError, RuntimeError):
    """A GPU was asked for and Cycles reports none."""


@dataclass(frozen=True)
class DeviceChoice:
    backend: str  # "CPU" or one of GPU_BACKENDS
    devices: tuple[str, ...]  # names of the enabled devices
    # Positions of the enabled devices among the backend's GPUs; None: all of them. Names
    # alone cannot pin a worker: identical cards have identical names.
    indices: tuple[int, ...] | None = None

    @property
    def is_gpu(self) -> bool:
        return self.backend != "CPU"

    def describe(self) -> str:
        if not self.is_gpu:
            return "CPU"
        return f"{self.backend} on {len(self.devices)} GPU(s): {', '.join(self.devices)}"

    def pinned(self, gpu_index: int | None) -> "DeviceChoice":
        """The same backend with only GPU `gpu_index` enabled (None: unchanged)."""
        if gpu_index is None:
            return self
        if not self.is_gpu or not 0 <= gpu_index < len(self.devices):
            raise DeviceUnavailable(f"GPU {gpu_index} not found: Cycles lists {len(self.devices)} "
                                    f"{self.backend} GPU(s)")
        return DeviceChoice(self.backend, (self.devices[gpu_index],), (gpu_index,))


def choose_device(requested: str, available: Mapping[str, Sequence[str]]) -> DeviceChoice:
    """Pick the backend and devices for `requested`, one of DEVICE_REQUESTS.

    `available` maps a backend name to the GPU device names Cycles lists for it.
    Every GPU of the chosen backend is enabled: Cycles splits each frame across them.
    """
    if requested not in DEVICE_REQUESTS:
        raise ValueError(f"device must be one of {', '.join(DEVICE_REQUESTS)}, got {requested!r}")
    if requested == "cpu":
        return DeviceChoice("CPU", ())
    if requested.upper() in GPU_BACKENDS:
        names = tuple(available.get(requested.upper(), ()))
        if not names:
            found = ", ".join(f"{b} ({len(n)})" for b, n in available.items() if n) or "no GPU"
            raise DeviceUnavailable(f"--device {requested}: Cycles found no {requested.upper()} device "
                                    f"(it found {found}); check the driver or use --device gpu or cpu")
        return DeviceChoice(requested.upper(), names)
    for backend in GPU_BACKENDS:
        names = tuple(available.get(backend, ()))
        if names:
            return DeviceChoice(backend, names)
    if requested == "gpu":
        raise DeviceUnavailable(
            "--device gpu: Cycles found no GPU (OptiX, CUDA, HIP, oneAPI or Metal); "
            "check the driver or use --device cpu"
        )
    return DeviceChoice("CPU", ())


@dataclass(frozen=True)
class DenoiserChoice:
    denoiser: str  # Cycles' enum: OPENIMAGEDENOISE or OPTIX
    use_gpu: bool  # run OpenImageDenoise on the GPU (Cycles 4.1+ supports NVIDIA, AMD, Intel, Apple)


def choose_denoiser(device: DeviceChoice) -> DenoiserChoice:
    """OptiX's denoiser on OptiX devices (it runs beside the render on the same card);
    OpenImageDenoise elsewhere, on the GPU when rendering on one, so frames never
    travel back to the CPU just to be denoised."""
    if device.backend == "OPTIX":
        return DenoiserChoice("OPTIX", True)
    return DenoiserChoice("OPENIMAGEDENOISE", device.is_gpu)


# ------------------------------------------------------------------ workers and their GPUs


@dataclass(frozen=True)
class WorkerDevice:
    """What one worker process renders on: one GPU of the chosen backend, or Cycles' own choice.

    `gpu_index` counts among the backend's GPUs as Cycles lists them (0 = the first OptiX
    device, say); None leaves the device to `--device` (the CPU, or every GPU at once).
    """

    worker: int
    gpu_index: int | None = None
    threads: int | None = None  # Cycles' CPU threads; None: all of the machine's

    def describe(self, choice: DeviceChoice) -> str:
        if self.gpu_index is None:
            threads = f", {self.threads} thread(s)" if self.threads else ""
            return f"worker {self.worker}: {choice.describe()}{threads}"
        return f"worker {self.worker}: {choice.backend} GPU {self.gpu_index} ({choice.devices[self.gpu_index]})"


def parse_gpus(text: str, choice: DeviceChoice) -> list[int]:
    """'all' or '0,2' -> GPU indices among the chosen backend's devices, checked to exist."""
    if not choice.is_gpu:
        raise DeviceUnavailable(f"--gpus {text}: Cycles found no GPU (OptiX, CUDA, HIP, oneAPI or Metal) "
                                "with --device auto/gpu; leave out --gpus to render on the CPU")
    count = len(choice.devices)
    if text.strip() == "all":
        return list(range(count))
    try:
        indices = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ValueError(f"--gpus must be 'all' or GPU numbers such as 0,2, got {text!r}") from None
    listed = ", ".join(f"{i} {name}" for i, name in enumerate(choice.devices))
    for index in indices:
        if not 0 <= index < count:
            raise DeviceUnavailable(f"--gpus {text}: no GPU {index}; Cycles lists {count} {choice.backend} "
                                    f"GPU(s): {listed}")
    if not indices or len(set(indices)) != len(indices):
        raise ValueError(f"--gpus {text!r}: name each GPU once, e.g. 0,2")
    return indices


def split_threads(workers: int, cores: int) -> list[int]:
    """Cores shared out between CPU workers (the first ones get the remainder).

    Each Cycles instance would otherwise start a thread per core: N workers on C cores run
    N x C threads that fight over the caches.
    """
    return [max(1, cores // workers + (1 if i < cores % workers else 0)) for i in range(workers)]


def plan_workers(choice: DeviceChoice, gpus: str | None, workers: int | None,
                 workers_per_gpu: int = 1, cores: int | None = None) -> list[WorkerDevice]:
    """How many worker processes to start and the GPU each one is pinned to.

    - `--gpus LIST|all`: worker i renders on GPU LIST[i mod len(LIST)]; without `--workers`
      there are `workers_per_gpu` workers per listed GPU.
    - no `--gpus`, GPUs present: the same over every GPU, except that an explicit
      `--workers 1` keeps today's single process on all GPUs (Cycles splits each frame).
    - the CPU: `--workers` processes (default 1), none pinned; several share the `cores`
      (default: this machine's) between them (`split_threads`).
    """
    if workers is not None and workers < 1:
        raise ValueError(f"--workers must be positive, got {workers}")
    if workers_per_gpu < 1:
        raise ValueError(f"--workers-per-gpu must be positive, got {workers_per_gpu}")
    if gpus is not None:
        indices = parse_gpus(gpus, choice)
    elif choice.is_gpu and workers != 1:
        indices = list(range(len(choice.devices)))
    else:
        count = workers or 1
        if count == 1:
            return [WorkerDevice(0)]
        shares = split_threads(count, cores or os.cpu_count() or 1)
        return [WorkerDevice(i, None, threads) for i, threads in enumerate(shares)]
    count = workers if workers is not None else len(indices) * workers_per_gpu
    return [WorkerDevice(i, indices[i % len(indices)]) for i in range(count)]
