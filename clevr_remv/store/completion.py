"""What a dataset directory is meant to hold, and what it still lacks.

Farm jobs render shards independently; whoever comes last (`clevr-remv finalize`, or a
plain re-run of `render`) needs the plan, which only depends on the configuration. The
configuration is stored in `dataset.json` and in every shard's `config` attribute, so any
one complete shard is enough to know the whole plan.
"""

from __future__ import annotations

import json
import logging
import shlex
from pathlib import Path

from clevr_remv.config import RenderConfig, from_dict, render_arguments
from clevr_remv.contract import NotADataset
from clevr_remv.store.manifest import NOTHING_RENDERED, read_manifest, require_directory
from clevr_remv.store.plan import ShardSpec, plan_shards
from clevr_remv.store.shard import read_shard_attrs, shard_is_complete

log = logging.getLogger(__name__)


def stored_config(root: Path) -> RenderConfig:
    """The configuration of the dataset in `root`: from dataset.json, else from any complete shard.

    Raises NotADataset when `root` holds neither.
    """
    root = Path(root)
    require_directory(root)
    try:
        manifest = read_manifest(root)
    except ValueError as damaged:  # finalize rewrites it: the shards still know the configuration
        log.warning("%s; reading the configuration from the shards instead", damaged)
        manifest = None
    if manifest is not None and "config" in manifest:
        return from_dict(manifest["config"])
    for path in sorted(root.glob("*/shard-*.h5")):
        if shard_is_complete(path):
            return from_dict(json.loads(read_shard_attrs(path)["config"]))
    raise NotADataset(root, NOTHING_RENDERED)


def missing_shards(config: RenderConfig, root: Path) -> list[ShardSpec]:
    """The planned shards of `config` that are absent or incomplete in `root`, in plan order."""
    return [s for s in plan_shards(config) if not shard_is_complete(s.path(Path(root)))]


def render_command(config: RenderConfig, root: Path, shard: ShardSpec) -> str:
    """The shell command that renders exactly `shard` of this dataset into `root`."""
    args = ["clevr-remv", "render", "--out", str(root), *render_arguments(config),
            "--shard", f"{shard.split}:{shard.index}"]
    return shlex.join(args)
