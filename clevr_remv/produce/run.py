"""A whole render run: check the output folder against the configuration, skip complete shards,
hand the rest to an executor (runners/), then finish the dataset when every shard exists.
"""

from __future__ import annotations

import json
import logging
import shlex
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from clevr_remv.config import (
    RenderConfig,
    check_fits_in_memory,
    describe_difference,
    from_dict,
    render_arguments,
)
from clevr_remv.outputs import refuse_non_empty
from clevr_remv.produce import provenance
from clevr_remv.produce.finish import finish_dataset
from clevr_remv.scene.description import SPLITS
from clevr_remv.store import (
    MANIFEST_NAME,
    read_manifest,
    read_shard_attrs,
    shard_is_complete,
    sweep_stale_temporaries,
)
from clevr_remv.store.plan import ShardSpec, plan_shards

log = logging.getLogger(__name__)


class OutputConflict(ValueError):
    """The output directory holds a dataset made with other settings."""


def foreign_entries(out: Path) -> list[Path]:
    """What in the folder `out` no render put there, when it holds no dataset: everything but hidden
    entries (temporaries, journals, probes) and split folders with nothing else in them (a run stopped
    before its first shard). A folder with `dataset.json` or a shard is a dataset (finished or not),
    compared setting by setting in `check_output`; other files beside it are its owner's business."""
    if not out.is_dir() or (out / MANIFEST_NAME).exists() or any(out.glob("*/shard-*.h5")):
        return []

    def visible(folder: Path) -> list[Path]:
        return sorted(p for p in folder.iterdir() if not p.name.startswith("."))

    return [p for p in visible(out) if not (p.name in SPLITS and p.is_dir() and not visible(p))]


def refuse_foreign_output(out: Path) -> None:
    """One line and nothing written when `out` holds other things than a dataset (`render` asks
    before it logs its plan, `check_output` again for callers of `run`)."""
    foreign = foreign_entries(out)
    refuse_non_empty(out, "--out", f"it holds {foreign[0]} and no clevr-remv dataset: render into a new or "
                                   "empty folder" if foreign else "", foreign)


def check_output(out: Path, config: RenderConfig) -> None:
    """Refuse an output directory we cannot write, that holds other things than a dataset (a
    `figures/` folder, say: the render would mix its shards in), or that holds a different dataset."""
    refuse_foreign_output(out)
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
    """OutputConflict naming every setting that differs by its option (`--samples 2 (now 3)`, ...) and the
    options that resume the dataset there (an older version's preset, e.g. `--quality default-0.2`)."""
    stored = theirs
    ours, theirs = _flat(ours), _flat({k: v for k, v in theirs.items() if k != "device"})
    differing = sorted(k for k in ours.keys() | theirs.keys() if ours.get(k) != theirs.get(k))
    if differing:
        details = ", ".join(describe_difference(k, theirs.get(k), ours.get(k)) for k in differing)
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
    return RunResult(todo, done, manifest, failed)


def blender_from_shards(config: RenderConfig, out: Path) -> str:
    """The Blender version of the first complete shard: what a run that rendered nothing (a resume,
    `finalize`) records in the manifest."""
    for shard in plan_shards(config):
        if shard_is_complete(shard.path(out)):
            return str(read_shard_attrs(shard.path(out)).get("blender_version", "unknown"))
    return "unknown"
