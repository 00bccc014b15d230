"""Which Cycles device renders: pure selection logic, testable without Blender or a GPU.

The Blender backend reports the GPUs Cycles sees per backend; this module decides. `auto`
takes the best backend present (OptiX is NVIDIA's ray-tracing path and beats CUDA on the
same card), otherwise the CPU; `gpu` without any GPU is an error the user must see.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

GPU_BACKENDS: tuple[str, ...] = ("OPTIX", "CUDA", "HIP", "ONEAPI", "METAL")


class DeviceUnavailable(RuntimeError):
    """A GPU was asked for and Cycles reports none."""


@dataclass(frozen=True)
class DeviceChoice:
    backend: str  # "CPU" or one of GPU_BACKENDS
    devices: tuple[str, ...]  # names of the enabled devices

    @property
    def is_gpu(self) -> bool:
        return self.backend != "CPU"

    def describe(self) -> str:
        if not self.is_gpu:
            return "CPU"
        return f"{self.backend} on {len(self.devices)} GPU(s): {', '.join(self.devices)}"


def choose_device(requested: str, available: Mapping[str, Sequence[str]]) -> DeviceChoice:
    """Pick the backend and devices for `requested` in auto / cpu / gpu.

    `available` maps a backend name to the GPU device names Cycles lists for it.
    Every GPU of the chosen backend is enabled: Cycles splits each frame across them.
    """
    if requested not in ("auto", "cpu", "gpu"):
        raise ValueError(f"device must be auto, cpu or gpu, got {requested!r}")
    if requested == "cpu":
        return DeviceChoice("CPU", ())
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
