"""Which NVIDIA GPUs make the driver compile Cycles' kernel first; runs without a GPU."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from clevr_remv.gpu.kernels import (
    JIT_CACHE_MAX_BYTES,
    ShippedKernels,
    jit_warnings,
    cycles_lib_of_installed_bpy,
    kernel_for,
    nvidia_compute_capabilities,
    parse_compute_capabilities,
    raise_jit_cache_limit,
    shipped_kernels,
)

# What Blender 4.5.15's PyPI build ships (5.0 drops 3.x, 5.3 also drops 6.1 and 8.9).
BLENDER_45 = ["kernel_compute_75.ptx.zst", "kernel_optix.ptx.zst", "kernel_gfx1030.fatbin.zst",
              *(f"kernel_sm_{a}.cubin.zst" for a in (30, 35, 37, 50, 52, 60, 61, 70, 75, 86, 89, 120))]


@pytest.fixture
def blender_45(tmp_path: Path) -> ShippedKernels:
    for name in BLENDER_45:
        (tmp_path / name).write_bytes(b"")
    return shipped_kernels(tmp_path)


def test_the_shipped_kernels_are_read_from_the_file_names(blender_45: ShippedKernels) -> None:
    assert blender_45.ptx == {75}  # kernel_optix.ptx is OptiX's own, not a CUDA fallback
    assert {86, 89, 120} <= blender_45.cubins and 80 not in blender_45.cubins and 90 not in blender_45.cubins
    assert shipped_kernels(Path("/nonexistent")) == ShippedKernels(frozenset(), frozenset())


def test_an_exact_cubin_loads_directly_and_anything_else_falls_back_to_older_ptx(blender_45) -> None:
    assert kernel_for(86, blender_45) == "cubin"  # RTX 3090, A40
    assert kernel_for(90, blender_45) == "ptx"  # H100, H200
    assert kernel_for(80, blender_45) == "ptx"  # A100: no sm_80 although sm_86 ships (Cycles wants the exact one)
    assert kernel_for(72, blender_45) == "none"  # older than every PTX: Cycles cannot run at all


def test_nvidia_smi_output_is_parsed_and_its_absence_means_no_gpus() -> None:
    text = "NVIDIA H100 80GB HBM3, 9.0\nNVIDIA A100-SXM4-40GB, 8.0\n\ngarbage\n"
    assert parse_compute_capabilities(text) == [("NVIDIA H100 80GB HBM3", 90), ("NVIDIA A100-SXM4-40GB", 80)]

    def missing(*args, **kwargs):
        raise FileNotFoundError("nvidia-smi")

    def failing(args, **kwargs):
        return subprocess.CompletedProcess(args, 9, stdout="", stderr="NVIDIA-SMI has failed")

    def h100(args, **kwargs):
        assert "--query-gpu=name,compute_cap" in args
        return subprocess.CompletedProcess(args, 0, stdout="NVIDIA H100 80GB HBM3, 9.0\n", stderr="")

    assert nvidia_compute_capabilities(missing) == []
    assert nvidia_compute_capabilities(failing) == []
    assert nvidia_compute_capabilities(h100) == [("NVIDIA H100 80GB HBM3", 90)]


def test_one_warning_per_gpu_model_without_a_prebuilt_kernel(blender_45) -> None:
    gpus = [("NVIDIA H100 80GB HBM3", 90)] * 8 + [("NVIDIA GeForce RTX 4090", 89), ("Quadro old", 72)]
    lines = jit_warnings(gpus, blender_45, "4.5.15 LTS", environ={"CUDA_CACHE_PATH": "/scratch/nv"})
    assert len(lines) == 2
    h100 = next(line for line in lines if "H100" in line)
    assert "compute 9.0" in h100 and "4.5.15" in h100 and "/scratch/nv" in h100 and "minutes" in h100
    assert "`clevr-remv gpu-kernels --build 9.0`" in h100  # what to do about it
    assert "fail" in next(line for line in lines if "Quadro" in line)
    disabled = jit_warnings(gpus[:1], blender_45, "4.5", environ={"CUDA_CACHE_DISABLE": "1"})
    assert "every process compiles again" in disabled[0] and "~/.nv/ComputeCache" in disabled[0]
    assert jit_warnings([("NVIDIA GeForce RTX 4090", 89)], blender_45, "4.5") == []


def test_the_cache_limit_is_raised_only_where_the_user_left_it_unset() -> None:
    unset: dict[str, str] = {}
    assert raise_jit_cache_limit(unset) is True and unset["CUDA_CACHE_MAXSIZE"] == str(JIT_CACHE_MAX_BYTES)
    chosen = {"CUDA_CACHE_MAXSIZE": "1000"}
    assert raise_jit_cache_limit(chosen) is False and chosen["CUDA_CACHE_MAXSIZE"] == "1000"


# The CUDA kernels each Blender series ships (its cycles/lib folder, listed by hand): 5.0 drops the 3.x cubins,
# 5.3 also 6.1 and 8.9. A series not listed here (5.1, 5.2) is checked against its own folder's listing only.
SHIPPED_CUBINS = {(4, 5): {30, 35, 37, 50, 52, 60, 61, 70, 75, 86, 89, 120},
                  (5, 0): {50, 52, 60, 61, 70, 75, 86, 89, 120},
                  (5, 3): {50, 52, 60, 70, 75, 86, 120}}


def test_the_installed_blender_ships_cuda_kernels_where_this_module_looks() -> None:
    """The folder the warning reads is the installed Blender's, and every CUDA kernel file in it is read:
    the cubins and PTX found equal a plain listing of the folder (and, for a known series, the list above)."""
    import bpy

    lib = Path(bpy.utils.system_resource("SCRIPTS", path="addons_core/cycles/lib"))
    assert lib == cycles_lib_of_installed_bpy(), "the warning (gpu-kernels, render) reads another folder"
    names = [p.name for p in lib.iterdir()]
    listed = {int(n.split("_")[2].split(".")[0]) for n in names if n.startswith("kernel_sm_") and ".cubin" in n}
    ptx = {int(n.split("_")[2].split(".")[0]) for n in names if n.startswith("kernel_compute_") and ".ptx" in n}
    shipped = shipped_kernels(lib)
    assert shipped == ShippedKernels(frozenset(listed), frozenset(ptx)) and listed and ptx, names
    series = bpy.app.version[:2]
    if series in SHIPPED_CUBINS:
        assert listed == SHIPPED_CUBINS[series], (bpy.app.version_string, sorted(listed))
