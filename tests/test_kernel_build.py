"""Building Cycles' missing CUDA kernels ahead of time with NVIDIA's real ptxas (no GPU needed:
ptxas is a compiler). Blender's own PTX takes 13 minutes, so a small kernel in a Cycles-shaped
folder stands in for it; the folder logic and the file Cycles loads are the same."""

from __future__ import annotations

import platform
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
import zstandard
from click.testing import CliRunner

from clevr_remv.cli import main
from clevr_remv.gpu.kernel_build import (
    KNOWN_ARCHITECTURES,
    KernelBuildError,
    build_cubin,
    cubin_capability,
    cubin_kernels,
    find_ptxas,
    ptx_entries,
    ptxas_release,
    ptxas_targets,
)
from clevr_remv.gpu.kernels import (
    blender_series,
    cycles_lib_of_installed_bpy,
    format_capability,
    jit_warnings,
    kernel_for,
    parse_capability,
    shipped_kernels,
)

PROBE_PTX = b"""
.version 7.0
.target sm_75
.address_size 64

.visible .entry kernel_gpu_probe(.param .u64 out)
{
    .reg .b64 %rd<3>;
    .reg .b32 %r<2>;
    ld.param.u64 %rd1, [out];
    cvta.to.global.u64 %rd2, %rd1;
    mov.u32 %r1, 42;
    st.global.u32 [%rd2], %r1;
    ret;
}
"""


def _wheel_ptxas() -> Path | None:
    try:
        return find_ptxas(environ={}, which=lambda name: None)  # the search's last place: the wheel
    except KernelBuildError:
        return None


def _every_ptxas() -> list[Path]:
    """The test extra's CUDA 12 wheel, and a CUDA toolkit's where the machine has one (13 here)."""
    found = [p for p in (_wheel_ptxas(), shutil.which("ptxas")) if p]
    if not found and platform.system() == "Linux" and platform.machine() == "x86_64":
        pytest.fail("the test extra installs nvidia-cuda-nvcc-cu12 on this platform, yet no ptxas is found")
    return [Path(p) for p in dict.fromkeys(str(p) for p in found)]


@pytest.fixture
def lib(tmp_path: Path) -> Path:
    """A Cycles kernel folder shaped like pip's bpy: <version>/scripts/addons_core/cycles/lib."""
    folder = tmp_path / "bpy" / "4.5" / "scripts" / "addons_core" / "cycles" / "lib"
    folder.mkdir(parents=True)
    (folder / "kernel_compute_75.ptx.zst").write_bytes(zstandard.ZstdCompressor().compress(PROBE_PTX))
    (folder / "kernel_sm_89.cubin.zst").write_bytes(b"")
    (folder / "kernel_optix.ptx.zst").write_bytes(b"")
    return folder


@pytest.mark.parametrize("ptxas", _every_ptxas(), ids=lambda p: "wheel" if "cuda_nvcc" in str(p) else "toolkit")
def test_a_built_kernel_is_the_cubin_cycles_loads_for_that_card(lib: Path, ptxas: Path) -> None:
    assert kernel_for(90, shipped_kernels(lib)) == "ptx"
    built = build_cubin(lib, 90, ptxas)
    assert built.path == lib / "kernel_sm_90.cubin.zst" and built.ptx == 75 and built.capability == 90
    cubin = zstandard.ZstdDecompressor().stream_reader(built.path.read_bytes()).read()
    assert len(cubin) == built.cubin_bytes and built.path.stat().st_size == built.stored_bytes
    assert cubin_capability(cubin) == 90 and cubin_kernels(cubin) == ptx_entries(PROBE_PTX) == {"kernel_gpu_probe"}
    assert kernel_for(90, shipped_kernels(lib)) == "cubin"
    assert jit_warnings([("NVIDIA H100 80GB HBM3", 90)], shipped_kernels(lib), "4.5") == []
    assert oct(built.path.stat().st_mode & 0o777) == "0o644"
    assert "compute 9.0 from PTX 7.5" in built.describe()
    assert ptxas_release(ptxas)[:2] in ("12", "13")


def test_a_ptxas_failure_is_one_line_and_leaves_no_kernel_behind(lib: Path) -> None:
    (lib / "kernel_compute_75.ptx.zst").write_bytes(zstandard.ZstdCompressor().compress(b".version 7.0\nnonsense"))
    with pytest.raises(KernelBuildError, match=r"ptxas failed for sm_90 \(exit \d+\): .+"):
        build_cubin(lib, 90, _every_ptxas()[0])
    assert sorted(p.name for p in lib.iterdir()) == ["kernel_compute_75.ptx.zst", "kernel_optix.ptx.zst",
                                                     "kernel_sm_89.cubin.zst"]


def test_builds_that_cannot_succeed_fail_before_compiling(lib: Path, tmp_path: Path) -> None:
    never = tmp_path / "never-run"
    with pytest.raises(KernelBuildError, match="compute 7.2 is older than every PTX"):
        build_cubin(lib, 72, never)
    with pytest.raises(KernelBuildError, match="is not a folder"):
        build_cubin(tmp_path / "missing", 90, never)


def test_only_nvidia_cubins_are_accepted() -> None:
    with pytest.raises(KernelBuildError, match="not an NVIDIA cubin"):
        cubin_capability(b"\x7fELF" + bytes(60))  # an ELF for no machine
    with pytest.raises(KernelBuildError):
        cubin_capability(b"PTX text")


def test_ptxas_is_looked_for_where_cuda_installs_put_it(tmp_path: Path) -> None:
    fake = tmp_path / "cuda" / "bin" / "ptxas"
    fake.parent.mkdir(parents=True)
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    nowhere = dict(environ={}, which=lambda name: None, find_spec=lambda name: None)
    assert find_ptxas(fake, **nowhere) == fake
    assert find_ptxas(**{**nowhere, "which": lambda name: "/opt/cuda/bin/ptxas"}) == Path("/opt/cuda/bin/ptxas")
    assert find_ptxas(**{**nowhere, "environ": {"CUDA_HOME": str(tmp_path / "cuda")}}) == fake
    wheel = SimpleNamespace(submodule_search_locations=[str(tmp_path / "cuda")])
    assert find_ptxas(**{**nowhere, "find_spec": lambda name: wheel}) == fake
    with pytest.raises(KernelBuildError, match=r"no ptxas found: pip install 'clevr-remv\[cuda\]'"):
        find_ptxas(**nowhere)
    with pytest.raises(KernelBuildError, match="no executable file"):
        find_ptxas(tmp_path / "absent", **nowhere)
    with pytest.raises(KernelBuildError, match="not NVIDIA's ptxas"):
        ptxas_release(Path(shutil.which("true")))


def test_compute_capabilities_are_read_as_nvidia_writes_them() -> None:
    assert [parse_capability(t) for t in ("9.0", "sm_90", "90", "8.6", "12.0", "sm_120")] == [90, 90, 90, 86, 120, 120]
    assert [format_capability(c) for c in (90, 86, 120)] == ["9.0", "8.6", "12.0"]
    for bad in ("9", "nine", "9.10", ""):
        with pytest.raises(ValueError, match="not a compute capability"):
            parse_capability(bad)


def test_the_installed_bpy_kernel_folder_is_found_without_loading_blender() -> None:
    from importlib.metadata import version

    found = cycles_lib_of_installed_bpy()
    assert found.name == "lib" and found.parent.name == "cycles"
    assert any(found.glob("kernel_compute_*.ptx*"))  # every NVIDIA-enabled build ships a PTX fallback
    assert version("bpy").startswith(blender_series(found) + ".")
    with pytest.raises(ValueError, match="no bpy module"):
        cycles_lib_of_installed_bpy(find_spec=lambda name: None)


def _cli(*args: str):
    return CliRunner().invoke(main, ["gpu-kernels", *args])


def test_the_command_builds_what_is_missing_and_reports_it(lib: Path, monkeypatch) -> None:
    ptxas = str(_every_ptxas()[0])
    monkeypatch.setattr("clevr_remv.gpu.kernels.nvidia_compute_capabilities",
                        lambda: [("NVIDIA H100 80GB HBM3", 90)] * 2 + [("NVIDIA GeForce RTX 4090", 89)])
    before = _cli("--lib", str(lib))
    assert before.exit_code == 0, before.output
    assert "Cycles kernels of Blender 4.5" in before.output and "compute capability): 8.9\n" in before.output
    assert "2 x NVIDIA H100 80GB HBM3 (compute 9.0): no prebuilt kernel" in before.output
    assert "1 x NVIDIA GeForce RTX 4090 (compute 8.9): prebuilt kernel" in before.output

    built = _cli("--lib", str(lib), "--build", "detected", "--ptxas", ptxas)
    assert built.exit_code == 0, built.output
    assert sorted(p.name for p in lib.glob("kernel_sm_*")) == ["kernel_sm_89.cubin.zst", "kernel_sm_90.cubin.zst"]
    assert "compute capability): 8.9, 9.0\n" in built.output
    assert "(compute 9.0): prebuilt kernel" in built.output
    again = _cli("--lib", str(lib), "--build", "detected", "--ptxas", ptxas)
    assert again.exit_code == 0 and "nothing to build" in again.output


def test_the_command_fails_in_one_line(lib: Path, monkeypatch) -> None:
    monkeypatch.setattr("clevr_remv.gpu.kernels.nvidia_compute_capabilities", lambda: [])
    cases = {("--build", "detected"): "nvidia-smi lists no NVIDIA GPU here",
             ("--build", "7.2"): "older than every PTX",
             ("--build", "nine"): "not a compute capability",
             ("--build", "7.7"): "compute 7.7 (sm_77) is not an NVIDIA GPU architecture",
             ("--build", "9.0", "--ptxas", "/nonexistent/ptxas"): "no executable file"}
    for args, message in cases.items():
        result = _cli("--lib", str(lib), *args)
        assert result.exit_code == 1 and message in result.output, (args, result.output)
        assert result.output.count("\n") == 1 and "Traceback" not in result.output
    assert not list(lib.glob("kernel_sm_9*"))
    report = _cli("--lib", str(lib))
    assert report.exit_code == 0 and "no NVIDIA GPU on this machine" in report.output


@pytest.mark.parametrize("ptxas", _every_ptxas(), ids=lambda p: "wheel" if "cuda_nvcc" in str(p) else "toolkit")
def test_ptxas_says_which_gpus_it_builds_for(ptxas: Path) -> None:
    targets = ptxas_targets(ptxas)
    assert targets and {80, 86, 89, 90} <= targets and 77 not in targets
    assert targets <= KNOWN_ARCHITECTURES, sorted(targets - KNOWN_ARCHITECTURES)  # the fallback list is current


@pytest.mark.parametrize("allowed, build, message", [
    ("'sm_80','sm_86','sm_90a'", "9.0", "cannot build sm_90: it builds sm_80, sm_86; a newer CUDA's ptxas can"),
    ("'sm_80','sm_86'", "7.5", "cannot build sm_75: it builds sm_80, sm_86; an older CUDA's"),
    ("", "7.7", "compute 7.7 (sm_77) is not an NVIDIA GPU architecture"),  # no list: the known GPUs
])
def test_a_gpu_ptxas_cannot_build_is_refused_before_the_compile_is_announced(
        lib: Path, tmp_path: Path, monkeypatch, caplog, allowed: str, build: str, message: str) -> None:
    fake = tmp_path / "ptxas"
    fake.write_text(f"#!/bin/sh\necho \"Allowed values for this option:  {allowed}.\"\n")
    fake.chmod(0o755)
    monkeypatch.setattr("clevr_remv.gpu.kernels.nvidia_compute_capabilities", lambda: [])
    result = CliRunner().invoke(main, ["gpu-kernels", "--lib", str(lib), "--build", build, "--ptxas", str(fake)])
    assert result.exit_code == 1 and message in result.output, result.output
    assert result.output.count("\n") == 1 and "building" not in result.output + caplog.text
    assert not list(lib.glob("kernel_sm_[!8]*"))
