"""Build the CUDA kernel Cycles lacks for a GPU model once, ahead of time, with NVIDIA's `ptxas`.

Where Blender ships no `kernel_sm_XY.cubin` for a card (A100, H100, H200; see gpu_kernels), the
driver compiles Cycles' PTX on the first render: 13 minutes of one CPU core and 3 GB, on every
node whose JIT cache is empty, while the GPU sits idle. The same compile done once by `ptxas`
(the CUDA toolkit's, or the `nvidia-cuda-nvcc-cu12` wheel's) gives the cubin Blender would have
shipped; saved next to the shipped ones as `kernel_sm_XY.cubin.zst`, Cycles loads it like any
other, and no node compiles anything.

A cubin built for X.Y runs on cards of exactly that capability; one made by a CUDA 12 `ptxas`
loads under any CUDA 12 or newer driver (NVIDIA's minor-version compatibility).
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import struct
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from clevr_remv.gpu.kernels import format_capability, ptx_for, shipped_kernels
from clevr_remv.store import atomic_path

PTXAS_WHEEL = "nvidia-cuda-nvcc-cu12"
_EM_CUDA = 190  # ELF e_machine of NVIDIA GPU code
_ZSTD_LEVEL = 12  # 26 MB -> ~4 MB in seconds; Blender's own cubins are no smaller


class KernelBuildError(ValueError):
    """A kernel that cannot be built, with the reason in one line."""


@dataclass(frozen=True)
class BuiltKernel:
    path: Path
    capability: int
    ptx: int
    seconds: float
    cubin_bytes: int
    stored_bytes: int

    def describe(self) -> str:
        return (f"{self.path.name}: compute {format_capability(self.capability)} from PTX "
                f"{format_capability(self.ptx)} in {self.seconds / 60:.1f} min, "
                f"{self.cubin_bytes / 1e6:.1f} MB ({self.stored_bytes / 1e6:.1f} MB stored)")


def _ptxas_of_wheel(find_spec: Callable) -> Path | None:
    try:
        spec = find_spec("nvidia.cuda_nvcc")
    except (ImportError, ValueError):
        return None
    for folder in (spec.submodule_search_locations or []) if spec else []:
        if (Path(folder) / "bin" / "ptxas").is_file():
            return Path(folder) / "bin" / "ptxas"
    return None


def find_ptxas(explicit: Path | None = None, environ: Mapping[str, str] = os.environ,
               which: Callable[[str], str | None] = shutil.which,
               find_spec: Callable | None = None) -> Path:
    """The ptxas to use: the one named, else PATH's, else $CUDA_HOME's, else the PyPI wheel's."""
    if explicit is not None:
        if not (explicit.is_file() and os.access(explicit, os.X_OK)):
            raise KernelBuildError(f"--ptxas {explicit}: no executable file there")
        return explicit
    if found := which("ptxas"):
        return Path(found)
    for variable in ("CUDA_HOME", "CUDA_PATH"):
        candidate = Path(environ.get(variable, "/nonexistent")) / "bin" / "ptxas"
        if candidate.is_file():
            return candidate
    if wheel := _ptxas_of_wheel(find_spec or importlib.util.find_spec):
        return wheel
    raise KernelBuildError(f"no ptxas found: pip install 'clevr-remv[cuda]' (NVIDIA's {PTXAS_WHEEL}), "
                           "install the CUDA toolkit, or name it with --ptxas")


def cubin_capability(data: bytes) -> int | None:
    """The compute capability a cubin was built for, read from its ELF header; None where the
    header layout is one this code does not know. KernelBuildError if `data` is not NVIDIA GPU
    code at all."""
    if len(data) < 52 or data[:4] != b"\x7fELF" or struct.unpack_from("<H", data, 18)[0] != _EM_CUDA:
        raise KernelBuildError("ptxas wrote something that is not an NVIDIA cubin")
    flags = struct.unpack_from("<I", data, 48 if data[4] == 2 else 36)[0]  # e_flags, 64- or 32-bit ELF
    abi_version = data[8]
    if abi_version <= 7:  # up to CUDA 12: the SM number in bits 0-7
        return flags & 0xFF
    if abi_version == 8:  # CUDA 13: in bits 8-15
        return (flags >> 8) & 0xFF
    return None


def cubin_kernels(data: bytes) -> set[str] | None:
    """The functions with code in a 64-bit cubin (its `.text.<name>` sections: every kernel, and
    any device function left un-inlined); None for a 32-bit one. Cycles looks every kernel up by
    name when it loads the module, so each `.entry` of the PTX must be among them."""
    if data[4] != 2:
        return None
    shoff, = struct.unpack_from("<Q", data, 0x28)
    entry_size, count, names_index = struct.unpack_from("<HHH", data, 0x3A)

    def header(index: int) -> tuple[int, ...]:  # sh_name, sh_type, sh_flags, sh_addr, sh_offset, sh_size
        return struct.unpack_from("<IIQQQQ", data, shoff + index * entry_size)

    names_at, names_size = header(names_index)[4:6]
    names = data[names_at:names_at + names_size]
    kernels = set()
    for index in range(count):
        start = header(index)[0]
        name = names[start:names.index(b"\0", start)].decode()
        if name.startswith(".text."):
            kernels.add(name.removeprefix(".text."))
    return kernels


def ptx_entries(ptx: bytes) -> set[str]:
    """The kernels a PTX module defines (`.entry NAME`)."""
    return {m.decode() for m in re.findall(rb"\.entry\s+([A-Za-z_$][\w$]*)", ptx)}


def ptxas_release(ptxas: Path) -> str:
    """'12.9' for a CUDA 12.9 ptxas: its cubins load under drivers of that CUDA major version or newer."""
    try:
        done = subprocess.run([str(ptxas), "--version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as error:
        raise KernelBuildError(f"{ptxas} does not run: {error}") from None
    found = re.search(r"release (\d+\.\d+)", done.stdout)
    if done.returncode != 0 or not found:
        raise KernelBuildError(f"{ptxas} is not NVIDIA's ptxas (`--version` says {done.stdout.strip()[:80]!r})")
    return found[1]


def _read_ptx(path: Path) -> bytes:
    data = path.read_bytes()
    if path.suffix != ".zst":
        return data
    import zstandard

    return zstandard.ZstdDecompressor().stream_reader(data).read()


def _compress(data: bytes) -> bytes:
    import zstandard

    return zstandard.ZstdCompressor(level=_ZSTD_LEVEL).compress(data)


def _ptx_file(lib: Path, ptx: int) -> Path:
    for name in (f"kernel_compute_{ptx}.ptx.zst", f"kernel_compute_{ptx}.ptx"):
        if (lib / name).is_file():
            return lib / name
    raise KernelBuildError(f"kernel_compute_{ptx}.ptx is missing from {lib}")


# The compute capabilities of real NVIDIA GPUs (x10), from Kepler to Blackwell: the list used when
# a ptxas does not say which it builds. 7.7 or 9.5 name no GPU; ptxas would reject them only after
# reading Blender's 100 MB PTX.
KNOWN_ARCHITECTURES = frozenset({30, 32, 35, 37, 50, 52, 53, 60, 61, 62, 70, 72, 75, 80, 86, 87, 88, 89, 90,
                                 100, 101, 103, 110, 120, 121})


def ptxas_targets(ptxas: Path) -> frozenset[int] | None:
    """The GPUs `ptxas` builds for: the `sm_XY` values its `--help` allows for --gpu-name (CUDA 12.9:
    sm_50 ... sm_121; 13.0 drops sm_50 to sm_72); None where the help does not list them."""
    try:
        done = subprocess.run([str(ptxas), "--help"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None
    return frozenset(int(m) for m in re.findall(r"'sm_(\d+)'", done.stdout)) or None


def check_ptxas_builds(ptxas: Path, capability: int) -> None:
    """KernelBuildError, before any compiling, unless `capability` is a GPU this `ptxas` builds for."""
    builds = ptxas_targets(ptxas) or KNOWN_ARCHITECTURES
    if capability in builds:
        return
    listed = ", ".join(f"sm_{c}" for c in sorted(builds))
    if capability not in KNOWN_ARCHITECTURES | builds:
        raise KernelBuildError(f"compute {format_capability(capability)} (sm_{capability}) is not an NVIDIA GPU "
                               f"architecture; {ptxas} builds {listed}")
    other = f"an older CUDA's ({PTXAS_WHEEL}, the cuda extra's)" if capability < min(builds) else "a newer CUDA's"
    raise KernelBuildError(f"{ptxas} cannot build sm_{capability}: it builds {listed}; {other} ptxas can (--ptxas)")


def check_can_build(lib: Path, capability: int) -> int:
    """The PTX the kernel for `capability` is built from; fails before any compiling where the
    build could not end in a usable file."""
    if not lib.is_dir():
        raise KernelBuildError(f"{lib} is not a folder (Cycles' kernels live in "
                               ".../<version>/scripts/addons_core/cycles/lib)")
    ptx = ptx_for(capability, shipped_kernels(lib))
    if ptx is None:
        raise KernelBuildError(f"compute {format_capability(capability)} is older than every PTX in {lib}: "
                               "this Blender cannot run on such a card")
    if not os.access(lib, os.W_OK):
        raise KernelBuildError(f"cannot write to {lib}: run as its owner, or build into a copy of "
                               "Blender and point the farm at that")
    return ptx


def build_cubin(lib: Path, capability: int, ptxas: Path) -> BuiltKernel:
    """Compile Cycles' PTX in `lib` for `capability` and store it as `lib/kernel_sm_XY.cubin.zst`.

    Written through a temporary file, so an interrupted build leaves no half kernel that Cycles
    would try to load."""
    ptx = check_can_build(lib, capability)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="clevr-remv-kernel-") as scratch:
        source, cubin = Path(scratch) / "kernel.ptx", Path(scratch) / "kernel.cubin"
        text = _read_ptx(_ptx_file(lib, ptx))
        source.write_bytes(text)
        done = subprocess.run([str(ptxas), f"-arch=sm_{capability}", "-O3", "-o", str(cubin), str(source)],
                              capture_output=True, text=True)
        if done.returncode != 0 or not cubin.is_file():
            detail = (done.stderr or done.stdout).strip().splitlines()
            raise KernelBuildError(f"ptxas failed for sm_{capability} (exit {done.returncode}): "
                                   f"{detail[-1] if detail else 'no message'}")
        data = cubin.read_bytes()
    built_for = cubin_capability(data)
    if built_for not in (None, capability):
        raise KernelBuildError(f"ptxas built sm_{built_for} code when sm_{capability} was asked for")
    missing = ptx_entries(text) - (cubin_kernels(data) or ptx_entries(text))
    if missing:
        raise KernelBuildError(f"the cubin lacks {len(missing)} of the PTX's kernels, e.g. {sorted(missing)[0]}")
    stored = _compress(data)
    final = lib / f"kernel_sm_{capability}.cubin.zst"
    with atomic_path(final) as tmp:
        tmp.write_bytes(stored)
    return BuiltKernel(final, capability, ptx, time.perf_counter() - started, len(data), len(stored))
