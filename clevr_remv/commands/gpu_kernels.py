"""`clevr-remv gpu-kernels [--build CAP|detected]`: which NVIDIA cards make Cycles compile its kernel
on the first render, and building those kernels once, ahead of time, instead of on every node."""

from __future__ import annotations

import logging
import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import click

from clevr_remv.contract import setup_logging

log = logging.getLogger("clevr_remv")


def _report(lib: Path, gpus: list[tuple[str, int]]) -> list[str]:
    """What Cycles in `lib` will load on each card model of this machine."""
    from clevr_remv.gpu.kernels import (
        blender_series,
        format_capability,
        kernel_for,
        ptx_for,
        shipped_kernels,
    )

    shipped = shipped_kernels(lib)
    lines = [f"Cycles kernels of Blender {blender_series(lib)} in {lib}",
             "  prebuilt CUDA kernels (compute capability): "
             + (", ".join(format_capability(c) for c in sorted(shipped.cubins)) or "none"),
             "  PTX the driver compiles for other cards: "
             + (", ".join(format_capability(c) for c in sorted(shipped.ptx)) or "none")]
    if not gpus:
        return [*lines, "no NVIDIA GPU on this machine (nvidia-smi lists none)"]
    lines.append("NVIDIA GPUs on this machine:")
    for (name, capability), count in sorted(Counter(gpus).items()):
        cap = format_capability(capability)
        kind = kernel_for(capability, shipped)
        if kind == "cubin":
            what = "prebuilt kernel, renders at once"
        elif kind == "ptx":
            what = (f"no prebuilt kernel: the driver compiles PTX {format_capability(ptx_for(capability, shipped))} "
                    f"on the first render (many minutes); `clevr-remv gpu-kernels --build {cap}` avoids it")
        else:
            what = "no kernel this Blender can run"
        lines.append(f"  {count} x {name} (compute {cap}): {what}")
    return lines


def _capabilities_to_build(requests: tuple[str, ...], lib: Path, gpus: list[tuple[str, int]]) -> list[int]:
    """The compute capabilities named, `detected` standing for this machine's cards that lack a kernel."""
    from clevr_remv.gpu.kernels import kernel_for, parse_capability, shipped_kernels

    shipped = shipped_kernels(lib)
    wanted: set[int] = set()
    for request in requests:
        if request.strip().lower() != "detected":
            wanted.add(parse_capability(request))
            continue
        if not gpus:
            raise ValueError("--build detected: nvidia-smi lists no NVIDIA GPU here; name the cards' compute "
                             "capability instead, e.g. --build 9.0 (H100, H200) or --build 8.0 (A100)")
        wanted |= {c for _, c in gpus if kernel_for(c, shipped) == "ptx"}
    return sorted(wanted)


@click.command("gpu-kernels")
@click.option("--lib", type=click.Path(path_type=Path, file_okay=False),
              help="Cycles' kernel folder, BLENDER/<version>/scripts/addons_core/cycles/lib [default: that of the "
                   "bpy installed for this Python].")
@click.option("--build", "requests", multiple=True, metavar="CAP|detected",
              help="Compile Cycles' kernel for compute capability CAP (9.0: H100/H200, 8.0: A100, or sm_90) and "
                   "store it beside Blender's own; `detected`: every card model here without one. Repeatable; "
                   "kernels compile in parallel, each about 13 min of one CPU core and 3 GB of memory.")
@click.option("--ptxas", type=click.Path(path_type=Path, dir_okay=False),
              help="NVIDIA's ptxas [default: PATH's, $CUDA_HOME's, or that of the nvidia-cuda-nvcc-cu12 wheel].")
@click.option("-v", "--verbose", is_flag=True)
def command(lib: Path | None, requests: tuple[str, ...], ptxas: Path | None, verbose: bool) -> None:
    """Say which NVIDIA GPUs here have a prebuilt Cycles kernel, and build the missing ones.

    Without a prebuilt kernel the driver compiles Cycles' PTX on a card's first render: many
    minutes with the GPU idle, again on every node whose CUDA cache is empty. Building it once
    here (a login node, a CPU job) and shipping this Blender to the farm removes that step.
    """
    setup_logging(verbose)
    from clevr_remv.gpu.kernel_build import (
        build_cubin,
        check_can_build,
        check_ptxas_builds,
        find_ptxas,
        ptxas_release,
    )
    from clevr_remv.gpu.kernels import (
        cycles_lib_of_installed_bpy,
        nvidia_compute_capabilities,
    )

    lib = lib or cycles_lib_of_installed_bpy()
    gpus = nvidia_compute_capabilities()
    wanted = _capabilities_to_build(requests, lib, gpus)
    if requests and not wanted:
        click.echo("every NVIDIA GPU here has a prebuilt kernel: nothing to build")
    if wanted:
        tool = find_ptxas(ptxas)
        for capability in wanted:  # every reason to fail, before minutes of compiling
            check_can_build(lib, capability)
            check_ptxas_builds(tool, capability)
        release = ptxas_release(tool)
        at_once = min(len(wanted), os.cpu_count() or 1)
        log.info("building %s with %s (CUDA %s: the farm's driver must support CUDA %s or newer) into %s: "
                 "about 13 min of one CPU core and 3 GB of memory each, %d at a time",
                 ", ".join(f"sm_{c}" for c in wanted), tool, release, release.split(".")[0] + ".0", lib, at_once)
        with ThreadPoolExecutor(max_workers=at_once) as pool:
            for built in pool.map(lambda c: build_cubin(lib, c, tool), wanted):
                log.info("built %s", built.describe())
    for line in _report(lib, gpus):
        click.echo(line)
