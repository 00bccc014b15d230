"""Finishing a dataset once every planned shard is complete: the split files, the dataset card and
dataset.json (last), staged together in one transaction (store/transaction.py).
"""

from __future__ import annotations

from pathlib import Path

from clevr_remv import __version__
from clevr_remv.config import RenderConfig
from clevr_remv.produce import provenance
from clevr_remv.produce.card import stage_card
from clevr_remv.scene.description import SPLITS
from clevr_remv.store import read_shard_attrs, shard_is_complete, write_manifest
from clevr_remv.store.manifest import manifest_path
from clevr_remv.store.plan import plan_shards
from clevr_remv.store.split_files import split_file_path, write_split_file
from clevr_remv.store.transaction import Transaction


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
    README.md (produce/card.py; a hand-written one is kept), then the manifest, which stays last: its
    presence means everything else is in place. `shards_at` names the new shards of the same
    change, still under their temporaries (the split files copy their refs, the card counts them)."""
    for split, entry in manifest["splits"].items():
        write_split_file(out, split, entry["shards"], config.views, config.height, config.width,
                         into=change.stage(split_file_path(out, split)), read_from=shards_at)
    stage_card(change, out, manifest, shards_at)
    write_manifest(out, manifest, into=change.stage(manifest_path(out)))
