"""Whether Cycles has a prebuilt CUDA kernel for an NVIDIA GPU, or the driver must compile one first.

Cycles (CUDA and OptiX alike: OptiX loads the CUDA module for its utility kernels) loads
`kernel_sm_XY.cubin` for a GPU of compute capability X.Y only where that exact file ships;
otherwise it hands the driver the closest older PTX (`kernel_compute_75.ptx`), which the driver
compiles before the first sample. For the Cycles kernel that takes many minutes on one CPU core,
with nothing on screen: on an H100 (9.0) with Blender 4.5 it was still compiling after 5 min 21 s
(docs/performance.md, "GPU"). The PyPI builds ship no 8.0 (A100) or 9.0 (H100, H200) cubin, and 5.3 none for
8.9 either, so a farm of such cards meets this on every node.

The driver keeps what it compiled in its JIT cache (CUDA_CACHE_PATH, default ~/.nv/ComputeCache),
but only if it fits CUDA_CACHE_MAXSIZE; `raise_jit_cache_limit` lifts an unset limit to the
driver's maximum so the compile happens once per node and user, not once per job.

Pure Python apart from asking `nvidia-smi`: testable without Blender or a GPU.
"""

from __future__ import annotations

import importlib.util
import os
import platform
import re
import subprocess
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path

from clevr_remv.contract import bpy_pythons

JIT_CACHE_MAX_BYTES = 4 << 30  # the largest CUDA_CACHE_MAXSIZE the driver accepts
_KERNEL_FILE = re.compile(r"^kernel_(sm|compute)_(\d+)\.(cubin|ptx)(\.zst)?$")


@dataclass(frozen=True)
class ShippedKernels:
    """Compute capabilities as integers (8.6 -> 86) for which Cycles ships binaries, and PTX."""

    cubins: frozenset[int]
    ptx: frozenset[int]


def shipped_kernels(cycles_lib: Path) -> ShippedKernels:
    """The CUDA kernels in Cycles' `lib` folder (`.../scripts/addons_core/cycles/lib`)."""
    cubins, ptx = set(), set()
    for path in cycles_lib.iterdir() if cycles_lib.is_dir() else ():
        match = _KERNEL_FILE.match(path.name)
        if match:
            (cubins if match[1] == "sm" else ptx).add(int(match[2]))
    return ShippedKernels(frozenset(cubins), frozenset(ptx))


def ptx_for(capability: int, shipped: ShippedKernels) -> int | None:
    """The PTX Cycles falls back to on a GPU of `capability`: the newest not newer than the GPU."""
    return max((p for p in shipped.ptx if p <= capability), default=None)


def kernel_for(capability: int, shipped: ShippedKernels) -> str:
    """What Cycles loads on a GPU of `capability`: 'cubin', 'ptx' (compiled by the driver) or 'none'.

    Mirrors Cycles' CUDADevice::compile_kernel: the exact cubin, else the newest PTX that is not
    newer than the GPU."""
    if capability in shipped.cubins:
        return "cubin"
    return "ptx" if ptx_for(capability, shipped) is not None else "none"


def format_capability(capability: int) -> str:
    """90 -> '9.0', 120 -> '12.0' (how NVIDIA writes compute capabilities)."""
    return f"{capability // 10}.{capability % 10}"


def parse_capability(text: str) -> int:
    """'9.0', 'sm_90', '90' or '12.0' -> 90 / 120; ValueError naming the text otherwise."""
    value = text.strip().lower().removeprefix("sm_")
    major, dot, minor = value.partition(".")
    if dot and major.isdigit() and minor.isdigit() and len(minor) == 1:
        return int(major) * 10 + int(minor)
    if not dot and value.isdigit() and len(value) >= 2:
        return int(value)
    raise ValueError(f"{text!r} is not a compute capability: write it as 9.0 or sm_90")


def cycles_lib_of_installed_bpy(find_spec: Callable = importlib.util.find_spec) -> Path:
    """Cycles' kernel folder in the `bpy` this Python would import, found without importing it
    (loading Blender takes seconds and is not needed to read a folder)."""
    spec = find_spec("bpy")
    if spec is None or not spec.origin:
        raise ValueError(f"no bpy module is installed for this Python {platform.python_version()}: name Cycles' kernel "
                         "folder with --lib (BLENDER/<version>/scripts/addons_core/cycles/lib); pip has bpy for "
                         f"{bpy_pythons()}")
    found = sorted(Path(spec.origin).parent.glob("*/scripts/addons_core/cycles/lib"))
    if not found:
        raise ValueError(f"no scripts/addons_core/cycles/lib under {Path(spec.origin).parent}: name the folder "
                         "with --lib")
    return found[-1]


def blender_series(cycles_lib: Path) -> str:
    """'4.5' for `.../4.5/scripts/addons_core/cycles/lib`, the layout of pip's bpy and Blender installs."""
    return cycles_lib.parents[3].name if len(cycles_lib.parents) > 3 else "?"


def parse_compute_capabilities(text: str) -> list[tuple[str, int]]:
    """`nvidia-smi --query-gpu=name,compute_cap --format=csv,noheader` -> [(name, 90), ...]."""
    gpus = []
    for line in text.splitlines():
        name, _, cap = line.rpartition(",")
        try:
            capability = parse_capability(cap)
        except ValueError:
            continue
        if name.strip():
            gpus.append((name.strip(), capability))
    return gpus


def nvidia_compute_capabilities(run: Callable[..., subprocess.CompletedProcess] = subprocess.run
                                ) -> list[tuple[str, int]]:
    """The NVIDIA GPUs' names and compute capabilities, or [] where nvidia-smi is missing or fails."""
    try:
        done = run(["nvidia-smi", "--query-gpu=name,compute_cap", "--format=csv,noheader"],
                   capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return []
    return parse_compute_capabilities(done.stdout) if done.returncode == 0 else []


def jit_warnings(gpus: list[tuple[str, int]], shipped: ShippedKernels, blender: str,
                 environ: Mapping[str, str] = os.environ) -> list[str]:
    """One line per GPU model that has no prebuilt kernel: what happens and where it is cached."""
    lines = []
    for name, capability in sorted(set(gpus)):
        kind = kernel_for(capability, shipped)
        if kind == "cubin":
            continue
        cap = format_capability(capability)
        if kind == "none":
            lines.append(f"{name} (compute {cap}): Blender {blender} ships no CUDA kernel it can run; "
                         "Cycles will fail to load its kernels on it")
            continue
        cache = environ.get("CUDA_CACHE_PATH", "~/.nv/ComputeCache")
        disabled = " (but CUDA_CACHE_DISABLE is set: every process compiles again)" \
            if environ.get("CUDA_CACHE_DISABLE") == "1" else ""
        lines.append(f"{name} (compute {cap}): Blender {blender} ships no prebuilt kernel for it, so the driver "
                     f"compiles Cycles' PTX before the first view: many minutes on one CPU core, once per "
                     f"node and user; it is kept in the CUDA cache at {cache}{disabled}. `clevr-remv "
                     f"gpu-kernels --build {cap}` builds the kernel once ahead of time instead")
    return lines


def raise_jit_cache_limit(environ: MutableMapping[str, str] = os.environ) -> bool:
    """Set CUDA_CACHE_MAXSIZE to the driver's maximum where the user has not set it, so that the
    compiled Cycles kernel fits the cache. Must run before CUDA starts in this process; child
    processes inherit it. Returns whether it changed anything."""
    if "CUDA_CACHE_MAXSIZE" in environ:
        return False
    environ["CUDA_CACHE_MAXSIZE"] = str(JIT_CACHE_MAX_BYTES)
    return True
