"""New referring expressions for a rendered dataset (`clevr-remv expressions`): every shard's refs
rewritten from its stored scenes and pixel counts, all or nothing, without re-rendering.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np

from clevr_remv.config import from_dict
from clevr_remv.contract import DamagedShard, describe_read_error
from clevr_remv.expressions import expression_attrs, generate_pairs, language_templates
from clevr_remv.produce.finish import dataset_manifest, stage_dataset_files
from clevr_remv.scene.description import Scene
from clevr_remv.store import (
    ShardReader,
    bad_pixel_chunk,
    replace_refs,
    require_manifest,
    shard_is_complete,
    sweep_stale_temporaries,
)
from clevr_remv.store.manifest import manifest_path
from clevr_remv.store.plan import plan_shards
from clevr_remv.store.transaction import Transaction


def regenerate_expressions(out: Path, templates: Path | None = None,
                           on_shard: Callable[[Path], None] | None = None,
                           max_hops: int | None = None, targets: str | None = None,
                           ordinals: bool | None = None) -> Path:
    """Rewrite every shard's refs from its stored scenes and pixel counts: no re-rendering.

    All or nothing: every shard is read and its new refs made before anything is written (a
    damaged shard fails there, named, and nothing changes); then the new shards, the split files
    and dataset.json (last) are written to temporaries and renamed together
    (store/transaction.py). That needs free space for a copy of every shard meanwhile (they
    hold the images); it is checked first. `on_shard(path)` follows for each rewritten shard.
    `max_hops`, `targets` and `ordinals` change the dataset's language (None: keep the stored one); the new
    settings are stored with it, in dataset.json and every shard, so a later resume keeps them.
    """
    manifest = require_manifest(out)
    sweep_stale_temporaries(out)
    config = from_dict(manifest["config"])
    config = config.with_(max_hops=config.max_hops if max_hops is None else max_hops,
                          targets=config.targets if targets is None else targets,
                          ordinals=config.ordinals if ordinals is None else ordinals)
    template_set = language_templates(templates, config.max_hops, config.targets, config.ordinals)
    shards = plan_shards(config)
    refs, counts, attrs = {}, {}, {}
    for shard in shards:
        scenes, attrs[shard.name] = stored_scenes(shard.path(out), out)
        results = [generate_pairs(scene, pixels, config.min_visible_pixels, template_set) for scene, pixels in scenes]
        # The shard carries the dataset's settings too: the language may have changed.
        counts[shard.name] = {**expression_attrs(results), "config": json.dumps(config.identity(), sort_keys=True)}
        refs[shard.name] = [r.refs for r in results]
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
    try:  # ...and replace_refs copies the pixel chunks without decoding them: check them here
        bad = bad_pixel_chunk(path)
    except (OSError, KeyError, ValueError) as error:
        raise DamagedShard(path, describe_read_error(error), root) from error
    if bad is not None:
        raise DamagedShard(path, bad, root)
    return scenes, attrs


def require_free_space(out: Path, needed: int, what: str) -> None:
    """OSError before anything is written when `out`'s filesystem has less than `needed` bytes free."""
    free = shutil.disk_usage(out).free
    if free < needed:
        raise OSError(f"{what} needs about {needed / 1e9:.2f} GB free in {out} for the new files, "
                      f"there are {free / 1e9:.2f} GB; nothing was changed")
