"""The dataset manifest `OUT/dataset.json`: what the output directory contains.

It is written last and atomically, so its presence means the run finished; readers
find shards through it rather than by globbing, so stray or temporary files never
leak into a dataset.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from clevr_remv.contract import NotADataset
from clevr_remv.store.atomic import json_text, write_json_atomic
from clevr_remv.store.transaction import roll_forward

MANIFEST_NAME = "dataset.json"
NOTHING_RENDERED = f"no {MANIFEST_NAME} and no complete shard (render into it first)"


def manifest_path(root: Path) -> Path:
    """Where the manifest of the dataset in `root` lives."""
    return Path(root) / MANIFEST_NAME


def write_manifest(root: Path, manifest: dict[str, Any], into: Path | None = None) -> None:
    """Write `root/dataset.json` atomically; validated first so a bad manifest is never written.

    With `into` (a transaction's temporary, store/transaction.py) the manifest is written there,
    to be renamed onto dataset.json with the other files of the change.
    """
    _validate(manifest, manifest_path(root))
    if into is not None:
        Path(into).write_text(json_text(manifest), encoding="utf-8")
        return
    write_json_atomic(manifest_path(root), manifest)


def read_manifest(root: Path) -> dict[str, Any] | None:
    """The manifest of `root`, or None if there is none yet (e.g. a run in progress).

    Raises ValueError naming the file if it exists but is not a valid manifest.
    """
    path = manifest_path(root)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        manifest = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from e
    _validate(manifest, path)
    return manifest


def require_directory(root: Path) -> None:
    """`NotADataset` unless `root` is an existing directory.

    Every command opens its dataset here, so this is also where a change that a killed command
    left half-done (its journal, store/transaction.py) is completed before anything is read.
    """
    if not root.is_dir():
        raise NotADataset(root, "not a directory" if root.exists() else "no such directory")
    roll_forward(root)


# What readers take from a finished dataset's manifest besides the split lists (which
# `_validate` checks): the configuration and the views per scene.
READER_KEYS: dict[str, type] = {"config": dict, "splits": dict, "views": int}


def require_manifest(root: Path | str) -> dict[str, Any]:
    """The manifest of the finished dataset in `root`, or `NotADataset` saying what is missing.

    Every command that reads a dataset starts here, so a wrong path reads the same everywhere.
    """
    root = Path(root)
    require_directory(root)
    rebuild = f"`clevr-remv finalize {root}` rebuilds it from the shards"
    try:
        manifest = read_manifest(root)
    except ValueError as damaged:
        raise ValueError(f"{damaged}; {rebuild}") from None
    if manifest is None:
        if any(root.glob("*/shard-*.h5")):
            raise NotADataset(root, f"no {MANIFEST_NAME} yet (the render is unfinished: `clevr-remv finalize "
                                    f"{root}` writes it once every shard is there)")
        raise NotADataset(root, NOTHING_RENDERED)
    for key, kind in READER_KEYS.items():
        if not isinstance(manifest.get(key), kind):
            raise ValueError(f"{manifest_path(root)}: no valid {key!r} ({kind.__name__}); {rebuild}")
    return manifest


def dataset_id(manifest: dict[str, Any]) -> str:
    """The dataset's identity: the first 16 hex digits of the SHA-256 of its `config` (the settings of
    `RenderConfig.identity()`: master seed, scene count, split fractions, size, rig, quality, every
    setting that defines the data) as canonical JSON.

    Two datasets share it only when the same settings made them, so their `refs/id`s name the same
    pairs; one rendered before this existed has one too, computed from the `dataset.json` it already
    has. Predictions files record it (evaluation/predictions.py), so that `evaluate` refuses a file made
    for another dataset. Regenerating the sentences (`clevr-remv expressions`) keeps it.
    """
    text = json.dumps(manifest["config"], sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _validate(manifest: Any, path: Path) -> None:
    """Check the only structure readers rely on: `splits -> <split> -> shards` (list of str)."""
    if not isinstance(manifest, dict):
        raise ValueError(f"{path}: the manifest must be a JSON object, got {type(manifest).__name__}")
    splits = manifest.get("splits", {})
    if not isinstance(splits, dict):
        raise ValueError(f"{path}: 'splits' must be an object mapping split names to entries")
    for name, entry in splits.items():
        if not isinstance(entry, dict):
            raise ValueError(f"{path}: splits.{name} must be an object")
        shards = entry.get("shards", [])
        if not isinstance(shards, list) or not all(isinstance(s, str) for s in shards):
            raise ValueError(f"{path}: splits.{name}.shards must be a list of file names")
