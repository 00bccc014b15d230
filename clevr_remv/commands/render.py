"""`clevr-remv render`: the main job, a dataset rendered into OUT, resumable shard by shard.

The options become a `RenderConfig`; produce/run.py checks the output and renders what is pending
through the executor that runners/choose.py picks; this module only parses, logs the decisions and
reports (the resume command on SIGINT or SIGTERM, the shards that failed twice).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import click

from clevr_remv.config import QUALITY_PRESETS, RenderConfig
from clevr_remv.contract import counted, language_options, require_blender, setup_logging
from clevr_remv.gpu.devices import DEVICE_REQUESTS

log = logging.getLogger("clevr_remv")


def _progress_bar(total_views: int) -> Callable[[int], None]:
    """One bar over every view of the run (all workers), with rate and ETA; tick(n) counts n views."""
    from tqdm import tqdm

    bar = tqdm(total=total_views, unit="view", dynamic_ncols=True, smoothing=0.05)
    return bar.update


@click.command()
@click.option("--scenes", type=int, default=10_000, show_default=True, help="Total scenes, split 70/15/15 into train/val/test.")
@click.option("--out", "out", type=click.Path(path_type=Path), required=True, help="Output directory.")
@click.option("--seed", type=int, default=0, show_default=True, help="Master seed: same seed and options, same dataset.")
@click.option("--width", type=int, default=480, show_default=True)
@click.option("--height", type=int, default=320, show_default=True)
@click.option("--rig", "grid", type=int, default=9, show_default=True, help="Light-field array size N (N x N views, N odd).")
@click.option("--baseline", type=float, default=0.1, show_default=True, help="Distance between neighbouring cameras (scene units).")
@click.option("--quality", "preset", type=click.Choice(list(QUALITY_PRESETS)), default="default", show_default=True,
              help="Sampling and denoising preset (docs: Performance).")
@click.option("--samples", type=int, default=None, help="Cycles samples per pixel, overriding the preset's.")
@click.option("--device", type=click.Choice(DEVICE_REQUESTS), default="auto", show_default=True,
              help="auto: best GPU backend Cycles finds (OptiX, CUDA, HIP, oneAPI, Metal), else CPU; gpu: the "
                   "same but a missing GPU is an error; optix, cuda, ...: that backend only.")
@click.option("--depth-bits", type=int, default=12, show_default=True,
              help="Mantissa bits kept in float32 depth: relative error < 2^-(bits+1) (12: < 1.2e-4, "
                   "5.5x smaller); 23 = lossless.")
@click.option("--scenes-per-shard", type=int, default=10, show_default=True, help="Scenes per HDF5 shard file.")
@click.option("--shard", "only", default=None, metavar="SPLIT:N|I/N|auto",
              help="Render only some shards: one (train:3), job I of N's share (0-based, e.g. 3/100), or auto "
                   "(I and N from the job array's variables: Slurm, SGE, LSF, PBS). The job that completes the "
                   "dataset writes dataset.json.")
@click.option("--workers", type=int, default=None,
              help="Worker processes, one Blender each, rendering shards in parallel [default: one per GPU "
                   "(times --workers-per-gpu), else 1].")
@click.option("--gpus", default=None, metavar="LIST|all",
              help="Pin each worker to one of these GPUs (indices among the backend's, e.g. 0,2).")
@click.option("--workers-per-gpu", type=int, default=1, show_default=True,
              help="Workers sharing one GPU (small images keep a GPU busier with several).")
@click.option("--executor", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="local: this machine's processes; ray: Ray tasks on a cluster (pip install 'clevr-remv[ray]'; "
                   "--out must be on a filesystem every node shares).")
@click.option("--threads", type=int, default=None, metavar="N",
              help="Cycles CPU threads per worker or Ray task (default: local workers share this machine's "
                   "cores; a Ray task on CPUs takes the smallest node's CPUs).")
@click.option("--ray-address", default=None, metavar="ADDR",
              help="Ray cluster to join (e.g. ray://head:10001 or auto); default: a local Ray instance.")
@click.option("--amodal-masks", is_flag=True,
              help="Also store every object's amodal mask in every view (bit-packed, about 0.12 MB per "
                   "480x320 9x9 scene; docs: Occlusion). amodal_pixels and refs/visible_fraction are "
                   "always written.")
@language_options()
@click.option("--no-progress", is_flag=True, help="No progress bar (logs only).")
@click.option("-v", "--verbose", is_flag=True)
def render(scenes: int, out: Path, seed: int, width: int, height: int, grid: int, baseline: float, preset: str,
           samples: int | None, device: str, depth_bits: int, scenes_per_shard: int, only: str | None,
           workers: int | None, gpus: str | None, workers_per_gpu: int, executor: str, threads: int | None,
           ray_address: str | None, amodal_masks: bool, max_hops: int, targets: str, ordinals: bool,
           no_progress: bool, verbose: bool) -> None:
    """Render a dataset into OUT (resumable: complete shards are skipped).

    Exit status: 0 done (or this job's shards done), 1 an error or shards that failed twice,
    130 / 143 stopped by SIGINT / SIGTERM (temporary files removed; the same command resumes).
    """
    setup_logging(verbose)
    import os

    from clevr_remv.produce.run import refuse_foreign_output, run
    from clevr_remv.runners.choose import make_executor
    from clevr_remv.runners.job_array import select_shards
    from clevr_remv.runners.stopping import RenderInterrupted, resume_command
    from clevr_remv.store.plan import plan_shards

    single_process = bool((click.get_current_context().find_root().obj or {}).get("single_process"))
    quality = QUALITY_PRESETS[preset]
    if samples is not None:
        quality = replace(quality, samples=samples)
    config = RenderConfig(scenes=scenes, seed=seed, width=width, height=height, grid=grid, baseline=baseline,
                          quality=quality, device=device, scenes_per_shard=scenes_per_shard,
                          depth_mantissa_bits=depth_bits, amodal_masks=amodal_masks, max_hops=max_hops,
                          targets=targets, ordinals=ordinals)
    shards = None
    if only:
        shards, which = select_shards(only, plan_shards(config), os.environ)
    # The options are valid; before anything is logged, asked of Cycles or written: no bpy, one line saying
    # what to install on which Python (pip's bpy exists for 3.11 and 3.13 only).
    require_blender()
    refuse_foreign_output(out)
    if only:
        log.info("%s: %d shard(s)%s", which, len(shards), "" if shards else ", nothing to render")
    sizes = config.split_sizes()
    log.info("%s (train/val/test %d/%d/%d), %dx%d views of %dx%d px, seed %d",
             counted(scenes, "scene"), sizes["train"], sizes["val"], sizes["test"], grid, grid, width, height, seed)
    log.info("quality %s: %s, %s", preset, counted(quality.samples, "sample"),
             f"denoiser {quality.denoiser_quality.lower()}" if quality.denoise else "no denoiser")
    log.info("language: up to %s per sentence, %s%s", counted(max_hops, "relation"),
             "one target" if targets == "one" else "one, several or no target", ", ordinals" if ordinals else "")
    chosen = make_executor(config, executor, workers, gpus, workers_per_gpu, ray_address, single_process,
                           threads)
    from tqdm.contrib.logging import logging_redirect_tqdm

    try:
        with logging_redirect_tqdm():
            result = run(config, out, only=shards, executor=chosen,
                                  progress=None if no_progress else _progress_bar)
    except RenderInterrupted as stop:
        click.echo(f"{stop}: unfinished shards' temporary files removed; complete shards are kept. "
                   f"Resume with:\n  {resume_command()}", err=True)
        raise click.exceptions.Exit(stop.exit_code) from None
    if result.failed:
        for name, error in result.failed.items():
            click.echo(f"failed: {name}: {error}", err=True)
        raise click.ClickException(f"{len(result.failed)} shard(s) failed twice (listed above); the other shards "
                                   "are complete: fix the cause and run the same command again")
    if result.manifest is None:
        click.echo(f"rendered {len(result.rendered)} shard(s) into {out}; dataset.json follows when all shards exist")
    else:
        click.echo(f"dataset complete: {result.manifest}")


command = render
