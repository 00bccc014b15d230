"""The path one scene walks, seed to shard, and the loop over shards.

seed -> layout (re-drawn while the cheap centre-view probe shows a hidden object)
     -> render all views -> visibility -> expressions -> amodal masks -> shard (atomic) -> manifest (last).
The renderer is passed in, so this module never imports Blender.
"""

from __future__ import annotations

import itertools
import json
import logging
import shlex
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from clevr_remv import __version__, provenance, rig
from clevr_remv.amodal import amodal
from clevr_remv.card import stage_card
from clevr_remv.config import RenderConfig, check_fits_in_memory, from_dict, render_arguments
from clevr_remv.contract import DamagedShard, describe_read_error
from clevr_remv.expressions import ExpressionResult, generate_pairs, resolve_templates
from clevr_remv.layout import LayoutError, layout_candidates, scene_rng
from clevr_remv.precision import round_mantissa
from clevr_remv.records import SceneRender
from clevr_remv.scene import SPLITS, Scene
from clevr_remv.shards import ShardSpec, plan_shards
from clevr_remv.store import (
    ShardReader,
    ShardWriter,
    read_manifest,
    require_manifest,
    read_shard_attrs,
    replace_refs,
    shard_is_complete,
    sweep_stale_temporaries,
    write_manifest,
)
from clevr_remv.store.manifest import manifest_path
from clevr_remv.store.split_files import split_file_path, write_split_file
from clevr_remv.store.transaction import Transaction
from clevr_remv.timing import Stopwatch
from clevr_remv.visibility import hidden_objects, visible_pixels

log = logging.getLogger(__name__)


class Renderer(Protocol):
    """What the pipeline needs from a backend (see render.renderer.BlenderRenderer)."""

    def probe_centre_mask(self, scene: Scene) -> np.ndarray: ...

    def render_scene(self, scene: Scene, on_view: Callable[[], None] | None = None): ...


class OutputConflict(ValueError):
    """The output directory holds a dataset made with other settings."""


def draw_scene(config: RenderConfig, split: str, index: int, probe: Callable[[Scene], np.ndarray]) -> Scene:
    """The first candidate layout whose every object is seen in the centre view.

    A re-draw re-places the objects but keeps the object count, camera and lights
    (layout.SceneFrame), as CLEVR does.
    """
    rng = scene_rng(config.seed, split, index)
    candidates = layout_candidates(rng, config, split, index)
    for scene in itertools.islice(candidates, config.visibility_attempts):
        if not hidden_objects(probe(scene), len(scene.objects), config.min_visible_pixels):
            return scene
    raise LayoutError(
        f"{split} scene {index}: an object stayed below {config.min_visible_pixels} visible pixels "
        f"in {config.visibility_attempts} layouts"
    )


def render_scene(config: RenderConfig, split: str, index: int, renderer: Renderer,
                 on_view: Callable[[], None] | None = None,
                 stopwatch: Stopwatch | None = None) -> tuple[SceneRender, ExpressionResult]:
    """One scene, seed to annotations."""
    stopwatch = stopwatch or Stopwatch()
    scene = draw_scene(config, split, index, renderer.probe_centre_mask)
    views = renderer.render_scene(scene, on_view)
    intrinsics, world_to_camera = rig.intrinsics(scene.rig), rig.world_to_camera(scene.rig)
    with stopwatch.section("annotate"):
        counts = visible_pixels(views.masks)
        expressions = generate_pairs(scene, counts, config.min_visible_pixels, resolve_templates(None))
    with stopwatch.section("amodal"):
        amodal_counts, amodal_kept = amodal(scene, views.masks, views.depth, intrinsics, world_to_camera,
                                            keep_masks=config.amodal_masks)
    render = SceneRender(
        scene=scene,
        images=views.images,
        masks=views.masks,
        depth=round_mantissa(views.depth, config.depth_mantissa_bits),
        intrinsics=intrinsics,
        world_to_camera=world_to_camera,
        visible_pixels=counts,
        amodal_pixels=amodal_counts,
        amodal_masks=amodal_kept,
    )
    return render, expressions


def shard_attrs(config: RenderConfig, shard: ShardSpec, blender: str) -> dict:
    return {
        "config": json.dumps(config.identity(), sort_keys=True),
        "generator_version": __version__,
        "blender_version": blender,
        provenance.ATTRIBUTE: provenance.render_code_fingerprint(),
        "first_scene": shard.first_scene,
        "scene_count": shard.scene_count,
        "rig_grid": config.grid,
        "rig_baseline": config.baseline,
        "rig_lens_mm": config.lens_mm,
        "rig_sensor_mm": config.sensor_mm,
        "depth_mantissa_bits": config.depth_mantissa_bits,
        "width": config.width,
        "height": config.height,
    }


def render_shard(config: RenderConfig, shard: ShardSpec, out: Path, renderer: Renderer, blender: str,
                 on_view: Callable[[], None] | None = None, stopwatch: Stopwatch | None = None) -> int:
    """Render and write one shard atomically; returns its number of referring pairs.

    This is the function every runner calls (local loop, farm job, Blender script).
    """
    stopwatch = stopwatch or Stopwatch()
    expressions = []  # a few refs per scene; the pixels go to disk scene by scene
    with ShardWriter(shard.path(out), shard.scene_count, config.views, config.height, config.width,
                     split=shard.split, shard_index=shard.index, amodal_masks=config.amodal_masks) as writer:
        for index in shard.scene_indices:
            render, scene_expressions = render_scene(config, shard.split, index, renderer, on_view, stopwatch)
            with stopwatch.section("write"):
                writer.add(render, scene_expressions.refs)
            del render  # so a worker holds one scene, whatever the shard's size
            expressions.append(scene_expressions)
        attrs = {**shard_attrs(config, shard, blender), **expression_attrs(expressions)}
        with stopwatch.section("write"):
            writer.commit(attrs)
    return attrs["pair_count"]


def expression_attrs(expressions: list[ExpressionResult]) -> dict[str, int]:
    """Pair counts a shard carries, summed into the manifest."""
    return {
        "pair_count": sum(len(e.refs) for e in expressions),
        "dropped_referent_hidden": sum(e.dropped_referent for e in expressions),
        "dropped_related_hidden": sum(e.dropped_related for e in expressions),
    }


def check_output(out: Path, config: RenderConfig) -> None:
    """Refuse an output directory we cannot write or that holds a different dataset."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out, prefix=".write-test-"):
            pass
    except OSError as error:
        raise OutputConflict(f"cannot write to {out}: {error.strerror or error}") from None
    ours = config.identity()
    try:
        manifest = read_manifest(out)
    except ValueError as damaged:  # rewritten when the dataset completes; the shards are compared below
        log.warning("%s; it will be rewritten", damaged)
        manifest = None
    if manifest is not None and not isinstance(manifest.get("config"), dict):
        log.warning("%s has no valid 'config'; it will be rewritten", out / "dataset.json")
    elif manifest is not None:
        _compare(ours, manifest["config"], out / "dataset.json")
    shards = plan_shards(config)
    complete = []
    for shard in shards:
        path = shard.path(out)
        if shard_is_complete(path):
            complete.append((path, read_shard_attrs(path)))
            _compare(ours, json.loads(complete[-1][1]["config"]), path)
    provenance.warn_of_other_code(complete)
    planned = {s.name for s in shards}
    stray = [p for p in out.glob("*/shard-*.h5") if p.relative_to(out).as_posix() not in planned]
    if stray:
        raise OutputConflict(f"{out} holds shards of another dataset (e.g. {stray[0]}); use a new --out")


def _compare(ours: dict, theirs: dict, where: Path) -> None:
    """OutputConflict naming every setting that differs (`quality.samples=2 (now 3)`, ...) and the
    options that resume the dataset there (an older version's preset, e.g. `--quality default-0.2`)."""
    stored = theirs
    ours, theirs = _flat(ours), _flat({k: v for k, v in theirs.items() if k != "device"})
    differing = sorted(k for k in ours.keys() | theirs.keys() if ours.get(k) != theirs.get(k))
    if differing:
        details = ", ".join(f"{k}={theirs.get(k)!r} (now {ours.get(k)!r})" for k in differing)
        try:
            resume = f", or resume it with these options: {shlex.join(render_arguments(from_dict(stored)))}"
        except (KeyError, TypeError, ValueError):  # settings no option expresses
            resume = ""
        raise OutputConflict(f"{where} was made with other settings: {details}; use a new --out{resume}")


def _flat(settings: dict, prefix: str = "") -> dict:
    """{"quality": {"samples": 2}} -> {"quality.samples": 2}: nested settings compared one by one."""
    flat = {}
    for key, value in settings.items():
        flat.update(_flat(value, f"{prefix}{key}.") if isinstance(value, dict) else {f"{prefix}{key}": value})
    return flat


@dataclass
class RunResult:
    rendered: list[ShardSpec]  # attempted; those in `failed` are not on disk
    skipped: list[ShardSpec]
    manifest: Path | None  # written when every shard of the dataset is complete
    failed: dict[str, str] = field(default_factory=dict)  # shard name -> error, after the retry


class Executor(Protocol):
    """Where shards render: this process, local worker processes, Ray tasks (clevr_remv.runners).

    `execute` renders `todo` with `render_shard`, calls `tick(n)` as views finish, retries a
    failed shard once and returns an `Outcome` (Blender version, shards that failed twice).
    It raises RenderInterrupted on SIGINT/SIGTERM and DiskFull on ENOSPC.
    """

    def execute(self, config: RenderConfig, out: Path, todo: list[ShardSpec],
                tick: Callable[[int], None] | None): ...


def pending_shards(config: RenderConfig, out: Path, only: ShardSpec | Sequence[ShardSpec] | None = None,
                   ) -> tuple[list[ShardSpec], list[ShardSpec]]:
    """(to render, already complete): a re-run skips finished shards and redoes the rest."""
    shards = plan_shards(config) if only is None else [only] if isinstance(only, ShardSpec) else list(only)
    done = [s for s in shards if shard_is_complete(s.path(out))]
    return [s for s in shards if s not in done], done


def finish_dataset(config: RenderConfig, out: Path, blender: str) -> Path | None:
    """Write the per-split files and then dataset.json, last, once every shard is complete.

    All of them or none, whatever stops it (store/transaction.py): a reader never finds new
    split files beside an old manifest.
    """
    shards = plan_shards(config)
    if not all(shard_is_complete(s.path(out)) for s in shards):
        return None
    manifest = dataset_manifest(config, blender, {s.name: read_shard_attrs(s.path(out)) for s in shards})
    with Transaction(out, "finalize") as change:
        stage_dataset_files(change, config, out, manifest)
        change.commit()
    return manifest_path(out)


def dataset_manifest(config: RenderConfig, blender: str, attrs: dict[str, dict]) -> dict:
    """dataset.json of a complete dataset, from every planned shard's attributes (by shard name)."""
    shards = plan_shards(config)
    splits, versions = {}, set()
    for split in SPLITS:
        mine = [s for s in shards if s.split == split]
        mine_attrs = [attrs[s.name] for s in mine]
        versions.update(str(a.get("blender_version", "unknown")) for a in mine_attrs)
        counted = lambda key: sum(int(a.get(key, 0)) for a in mine_attrs)  # noqa: E731
        splits[split] = {
            "scenes": sum(s.scene_count for s in mine),
            "shards": [s.name for s in mine],
            "pairs": counted("pair_count"),
            "dropped_referent_hidden": counted("dropped_referent_hidden"),
            "dropped_related_hidden": counted("dropped_related_hidden"),
        }
    return {
        "generator": "clevr-remv",
        "generator_version": __version__,
        "blender_version": blender,
        # Every Blender that rendered a shard: farms may mix 4.5 and 5.x (images differ by noise).
        "blender_versions": sorted(versions),
        # Likewise every version of the pixel-deciding code (a resume after an upgrade).
        "render_codes": provenance.codes_of(attrs[s.name] for s in shards),
        "master_seed": config.seed,
        "config": config.identity(),
        "views": config.views,
        "min_visible_pixels": config.min_visible_pixels,
        "splits": splits,
    }


def stage_dataset_files(change: Transaction, config: RenderConfig, out: Path, manifest: dict,
                        shards_at: dict[str, Path] | None = None) -> None:
    """Stage one file per split (virtual datasets over the shards) for readers, the dataset card
    README.md (card.py; a hand-written one is kept), then the manifest, which stays last: its
    presence means everything else is in place. `shards_at` names the new shards of the same
    change, still under their temporaries (the split files copy their refs, the card counts them)."""
    for split, entry in manifest["splits"].items():
        write_split_file(out, split, entry["shards"], config.views, config.height, config.width,
                         into=change.stage(split_file_path(out, split)), read_from=shards_at)
    stage_card(change, out, manifest, shards_at)
    write_manifest(out, manifest, into=change.stage(manifest_path(out)))


def run(config: RenderConfig, out: Path, executor: Executor,
        only: ShardSpec | Sequence[ShardSpec] | None = None,
        progress: Callable[[int], Callable[[int], None]] | None = None) -> RunResult:
    """Render every pending shard (or those of `only`), then finish the dataset if it is complete.

    `executor` says where (this process, worker processes, Ray: `runners.choose.make_executor`);
    `progress(total_views)` returns the `tick(n)` that counts finished views.
    """
    check_fits_in_memory(config)
    check_output(out, config)
    sweep_stale_temporaries(out)
    todo, done = pending_shards(config, out, only)
    log.info("output %s: %d shard(s) to render, %d already complete", out, len(todo), len(done))
    blender, failed = None, {}
    if todo:
        tick = progress(sum(s.scene_count for s in todo) * config.views) if progress else None
        outcome = executor.execute(config, out, todo, tick)
        blender, failed = outcome.blender, outcome.failed
        # A writer killed by an earlier run that was still dying when this one began kept its
        # temporary through the first sweep; it is gone by now.
        sweep_stale_temporaries(out)
    manifest = finish_dataset(config, out, blender or blender_from_shards(config, out))
    if manifest:
        log.info("dataset complete: %s", manifest)
    return RunResult(todo, done, manifest, failed)


def blender_from_shards(config: RenderConfig, out: Path) -> str:
    """The Blender version of the first complete shard: what a run that rendered nothing (a resume,
    `finalize`) records in the manifest."""
    for shard in plan_shards(config):
        if shard_is_complete(shard.path(out)):
            return str(read_shard_attrs(shard.path(out)).get("blender_version", "unknown"))
    return "unknown"


def regenerate_expressions(out: Path, templates: Path | None = None,
                           on_shard: Callable[[Path], None] | None = None) -> Path:
    """Rewrite every shard's refs from its stored scenes and pixel counts: no re-rendering.

    All or nothing: every shard is read and its new refs made before anything is written (a
    damaged shard fails there, named, and nothing changes); then the new shards, the split files
    and dataset.json (last) are written to temporaries and renamed together
    (store/transaction.py). That needs free space for a copy of every shard meanwhile (they
    hold the images); it is checked first. `on_shard(path)` follows for each rewritten shard.
    """
    manifest = require_manifest(out)
    sweep_stale_temporaries(out)
    config = from_dict(manifest["config"])
    template_set = resolve_templates(templates)
    shards = plan_shards(config)
    refs, counts, attrs = {}, {}, {}
    for shard in shards:
        scenes, attrs[shard.name] = stored_scenes(shard.path(out), out)
        results = [generate_pairs(scene, pixels, config.min_visible_pixels, template_set) for scene, pixels in scenes]
        refs[shard.name], counts[shard.name] = [r.refs for r in results], expression_attrs(results)
        attrs[shard.name].update(counts[shard.name])
    require_free_space(out, sum(s.path(out).stat().st_size for s in shards), "rewriting every shard's refs")
    new_manifest = dataset_manifest(config, manifest.get("blender_version", "unknown"), attrs)
    with Transaction(out, "expressions") as change:
        staged = {}
        for shard in shards:
            staged[shard.name] = change.stage(shard.path(out))
            replace_refs(shard.path(out), refs[shard.name], counts[shard.name], into=staged[shard.name])
        stage_dataset_files(change, config, out, new_manifest, shards_at=staged)
        change.commit()
    if on_shard is not None:
        for shard in shards:
            on_shard(shard.path(out))
    return manifest_path(out)


def stored_scenes(path: Path, root: Path) -> tuple[list[tuple[Scene, np.ndarray]], dict]:
    """Every scene of a shard with its visible pixel counts, and the shard's attributes;
    `DamagedShard` naming the file when it cannot be read."""
    if not path.is_file():
        raise DamagedShard(path, "no such file", root)
    try:
        with ShardReader(path) as shard:
            scenes = [(shard.scene(i), shard.visible_pixels(i)) for i in range(len(shard))]
            attrs = shard.attrs
    except DamagedShard:
        raise
    except (OSError, KeyError, ValueError, TypeError) as error:
        raise DamagedShard(path, describe_read_error(error), root) from error
    if not shard_is_complete(path):  # replace_refs copies the rest: it must be all there
        raise DamagedShard(path, "a dataset is missing or has the wrong length", root)
    return scenes, attrs


def require_free_space(out: Path, needed: int, what: str) -> None:
    """OSError before anything is written when `out`'s filesystem has less than `needed` bytes free."""
    free = shutil.disk_usage(out).free
    if free < needed:
        raise OSError(f"{what} needs about {needed / 1e9:.2f} GB free in {out} for the new files, "
                      f"there are {free / 1e9:.2f} GB; nothing was changed")
