"""Check a dataset directory against its plan, its manifest and the contract (docs/output-format.md).

A shard under its final name is whole when it was written (atomic rename), but disks,
copies and transfers can still damage it later. `verify_dataset` opens every planned
shard and checks what a reader relies on: attributes, datasets, shapes and dtypes,
scene counts against the plan, scene JSON, ids in range, masks against
`visible_pixels`, and every pixel chunk read through HDF5's filters, whose Fletcher-32
checksum turns a flipped byte into a read error. The manifest and the per-split files
are checked against the shards. `quarantine` moves bad shards aside so that a re-run
of `render` re-creates exactly them.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from clevr_remv.config import RenderConfig, from_dict
from clevr_remv.contract import counted
from clevr_remv.scene.description import SPLITS, Scene
from clevr_remv.scene.vocabulary import MAX_OBJECTS
from clevr_remv.store.columns import (
    AMODAL_PIXELS,
    DEPTH,
    IMAGES,
    MASKS,
    REF_ID,
    REF_OBJECT,
    REF_SCENE,
    REF_TARGET_COUNT,
    REF_TARGETS,
    REF_VISIBLE_FRACTION,
    SCENES,
    VISIBLE_PIXELS,
)
from clevr_remv.store.completion import stored_config
from clevr_remv.store.manifest import (
    MANIFEST_NAME,
    manifest_path,
    read_manifest,
    require_directory,
)
from clevr_remv.store.plan import ShardSpec, plan_shards
from clevr_remv.store.shard import (
    AMODAL_MASKS,
    PIXEL_DATASETS,
    STRING,
    SUPPORTED_SCHEMAS,
    attrs_dict,
    file_schema,
    ref_layout,
    scene_layout,
    unpack_masks,
)
from clevr_remv.store.split_files import concatenate_refs, read_refs, split_file_path
from clevr_remv.store.transaction import Transaction
from clevr_remv.truth.occlusion import ref_fractions

log = logging.getLogger(__name__)

QUARANTINE = ".quarantine"
_MAX_PROBLEMS_PER_FILE = 5  # one line per bad file: the first few problems, then a count


class ShardDamaged(Exception):
    """A shard's structure is broken: later checks would only repeat the problem."""


@dataclass
class ShardContent:
    """What the dataset-level checks need from a good shard: its refs (small) and its size."""

    scenes: int = 0
    refs: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class VerifyReport:
    """Problems per file (name relative to the root), and what was checked."""

    root: Path
    problems: dict[str, list[str]] = field(default_factory=dict)
    checked: list[str] = field(default_factory=list)
    scenes: int = 0
    pairs: int = 0
    bytes: int = 0
    seconds: float = 0.0

    def add(self, name: str, message: str) -> None:
        self.problems.setdefault(name, []).append(message)

    @property
    def ok(self) -> bool:
        return not self.problems

    def lines(self) -> list[str]:
        """One line per bad file: the file, then its first problems."""
        out = []
        for name, messages in self.problems.items():
            shown = "; ".join(messages[:_MAX_PROBLEMS_PER_FILE])
            more = len(messages) - _MAX_PROBLEMS_PER_FILE
            out.append(f"{name}: {shown}" + (f" (+{more} more)" if more > 0 else ""))
        return out

    def summary(self) -> str:
        return (f"checked {counted(len(self.checked), 'file')}: {len(self.problems)} bad; "
                f"{counted(self.scenes, 'scene')}, {counted(self.pairs, 'pair')}, {self.bytes / 1e6:.1f} MB in {self.seconds:.1f} s")


# ---------------------------------------------------------------------------- one shard


def _check_attrs(f: h5py.File, spec: ShardSpec, config: RenderConfig) -> list[str]:
    attrs = attrs_dict(f)
    expected = {"split": spec.split, "shard_index": spec.index,
                "first_scene": spec.first_scene, "scene_count": spec.scene_count}
    problems = [f"attribute {key} is {attrs.get(key)!r}, expected {value!r}"
                for key, value in expected.items() if attrs.get(key) != value]
    if attrs.get("schema_version") not in SUPPORTED_SCHEMAS:
        problems.append(f"attribute schema_version is {attrs.get('schema_version')!r}, expected one of "
                        f"{', '.join(map(str, SUPPORTED_SCHEMAS))}")
    try:
        stored = json.loads(attrs.get("config", "null"))
    except (TypeError, json.JSONDecodeError):
        stored = None
    if stored != config.identity():
        problems.append("attribute config differs from the dataset's configuration")
    return problems


def _check_structure(f: h5py.File, spec: ShardSpec, config: RenderConfig) -> None:
    """Every dataset present with the contract's shape and dtype; raises ShardDamaged otherwise."""
    problems = []
    rows: dict[str, int] = {}
    miscounted: dict[int, list[str]] = {}
    schema = file_schema(f) if f.attrs.get("schema_version") in SUPPORTED_SCHEMAS else max(SUPPORTED_SCHEMAS)
    layouts = [(scene_layout(config.views, config.height, config.width, schema, config.amodal_masks), spec.scene_count),
               (ref_layout(config.views, schema), None)]
    for layout, count in layouts:
        for name, (shape, dtype) in layout.items():
            ds = f.get(name)
            if not isinstance(ds, h5py.Dataset):
                problems.append(f"dataset {name} is missing")
                continue
            rows[name] = ds.shape[0] if ds.shape else -1
            if len(ds.shape) != 1 + len(shape) or tuple(ds.shape[1:]) != shape:
                problems.append(f"{name} has shape {ds.shape}, expected rows of shape {shape}")
            elif count is not None and ds.shape[0] != count:
                miscounted.setdefault(ds.shape[0], []).append(name)
            is_string = h5py.check_string_dtype(ds.dtype) is not None
            if (dtype == STRING) != is_string or (not is_string and ds.dtype != dtype):
                problems.append(f"{name} has dtype {ds.dtype}, expected {dtype}")
            if name in PIXEL_DATASETS and not ds.fletcher32:
                problems.append(f"{name} carries no Fletcher-32 checksum")
    for n, names in miscounted.items():  # one message per count, not one per dataset
        which = "every per-scene dataset" if len(names) == len(layouts[0][0]) else ", ".join(names)
        problems.append(f"holds {n} scenes, the plan has {spec.scene_count} ({which})")
    ref_rows = {rows[name] for name in ref_layout(config.views, schema) if name in rows}
    if len(ref_rows) > 1:
        problems.append(f"refs/* datasets have different lengths {sorted(ref_rows)}")
    if problems:
        raise ShardDamaged("; ".join(problems))


def _read_scenes(f: h5py.File, spec: ShardSpec, problems: list[str]) -> list[int]:
    """Object count of each row; the JSON must parse and name this shard's split and index."""
    counts = []
    for row, text in enumerate(f[SCENES].asstr()[()]):
        try:
            scene = Scene.from_json(text)
        except Exception as error:  # any parsing failure is the same finding
            problems.append(f"scenes[{row}] does not parse ({type(error).__name__}: {error})")
            counts.append(MAX_OBJECTS)
            continue
        if scene.split != spec.split or scene.index != spec.first_scene + row:
            problems.append(f"scenes[{row}] is {scene.split} scene {scene.index}, expected "
                            f"{spec.split} scene {spec.first_scene + row}")
        counts.append(len(scene.objects))
    return counts


def _check_pixels(f: h5py.File, n_objects: list[int], problems: list[str],
                  on_view: Callable[[], None] | None) -> None:
    """Read every chunk of the pixel datasets (one view each); masks against the object counts."""
    images, masks, depth, visible = f[IMAGES], f[MASKS], f[DEPTH], f[VISIBLE_PIXELS][()]
    amodal = f[AMODAL_PIXELS][()] if AMODAL_PIXELS in f else None
    amodal_masks = f[AMODAL_MASKS] if AMODAL_MASKS in f else None
    if amodal is not None and (amodal < visible).any():
        row, v, k = (int(i[0]) for i in np.nonzero(amodal < visible))
        problems.append(f"amodal_pixels[{row}, {v}] of object {k + 1} is below its visible pixels")
    for row, n in enumerate(n_objects):
        for v in range(masks.shape[1]):
            for ds in (images, depth):
                try:
                    ds[row, v]
                except OSError as error:
                    problems.append(f"{ds.name.lstrip('/')}[{row}, {v}] unreadable ({_short(error)})")
            try:
                mask = masks[row, v]
            except OSError as error:
                problems.append(f"masks[{row}, {v}] unreadable ({_short(error)})")
            else:
                counts = np.bincount(mask.ravel(), minlength=MAX_OBJECTS + 1)
                if mask.max(initial=0) > n:
                    problems.append(f"masks[{row}, {v}] holds object {int(mask.max())}, the scene has {n}")
                elif not np.array_equal(counts[1:MAX_OBJECTS + 1], visible[row, v]):
                    problems.append(f"masks[{row}, {v}] pixel counts differ from visible_pixels")
                if amodal_masks is not None:
                    _check_amodal_view(amodal_masks, row, v, mask, amodal, problems)
            if on_view is not None:
                on_view()


def _check_amodal_view(amodal_masks: h5py.Dataset, row: int, v: int, mask: np.ndarray, amodal: np.ndarray | None,
                       problems: list[str]) -> None:
    """One view's amodal masks: readable, counted by amodal_pixels, each containing its rendered mask."""
    try:
        view = unpack_masks(amodal_masks[row, v], mask.shape[-1])
    except OSError as error:
        problems.append(f"{AMODAL_MASKS}[{row}, {v}] unreadable ({_short(error)})")
        return
    if amodal is not None and not np.array_equal(view.sum(axis=(1, 2)), amodal[row, v]):
        problems.append(f"{AMODAL_MASKS}[{row}, {v}] pixel counts differ from amodal_pixels")
    outside = [k + 1 for k in range(view.shape[0]) if (~view[k] & (mask == k + 1)).any()]
    if outside:
        problems.append(f"{AMODAL_MASKS}[{row}, {v}] of object {outside[0]} misses some of its visible pixels")


def _short(error: Exception) -> str:
    """HDF5's error text, first line only (its stack trace is for HDF5's developers)."""
    return str(error).splitlines()[0][:160]


def _check_refs(f: h5py.File, n_objects: list[int], views: int, problems: list[str]) -> dict[str, np.ndarray]:
    refs = read_refs(f, views)
    scene, obj, ids = refs[REF_SCENE], refs[REF_OBJECT], refs[REF_ID]
    bad_scene = (scene < 0) | (scene >= len(n_objects))
    if bad_scene.any():
        problems.append(f"refs/scene {int(scene[bad_scene][0])} is not a row of this shard ({len(n_objects)} scenes)")
    limits = np.array(n_objects)[np.where(bad_scene, 0, scene)] if len(n_objects) else np.zeros_like(obj)
    targets = refs.get(REF_TARGETS)
    if targets is None:  # before schema 4: `refs/object` is every pair's one target
        bad_object = ~bad_scene & ((obj < 1) | (obj > limits))
    else:
        bad_object = ~bad_scene & _bad_targets(refs, obj, limits, ids, scene, problems)
    if bad_object.any() and targets is None:
        i = int(np.flatnonzero(bad_object)[0])
        problems.append(f"refs/object {int(obj[i])} of pair {int(ids[i])} does not exist "
                        f"(scene row {int(scene[i])} has {int(limits[i])} objects)")
    if len(np.unique(ids)) != len(ids):
        problems.append("refs/id holds duplicates")
    if REF_VISIBLE_FRACTION in refs and AMODAL_PIXELS in f and not bad_scene.any() and not bad_object.any():
        expected = ref_fractions(f[VISIBLE_PIXELS][()], f[AMODAL_PIXELS][()], scene,
                                 obj if targets is None else targets)
        if not np.array_equal(refs[REF_VISIBLE_FRACTION], expected, equal_nan=True):
            problems.append("refs/visible_fraction differs from visible_pixels / amodal_pixels")
    if int(f.attrs.get("pair_count", len(ids))) != len(ids):
        problems.append(f"attribute pair_count is {int(f.attrs['pair_count'])}, refs hold {len(ids)} pairs")
    return refs


def _bad_targets(refs: dict[str, np.ndarray], obj: np.ndarray, limits: np.ndarray, ids: np.ndarray,
                 scene: np.ndarray, problems: list[str]) -> np.ndarray:
    """(R,) bool: pairs whose schema-4 target set disagrees with the scene or with itself, one problem line
    per kind for its first pair: an object that does not exist, a count that is not the set's size, or a
    `refs/object` that is not the one target (0 where there are several or none)."""
    targets, count = refs[REF_TARGETS], refs[REF_TARGET_COUNT].astype(np.int64)
    size = targets.sum(axis=1)
    single = np.where(size == 1, targets.argmax(axis=1) + 1, 0)
    missing = (obj < 0) | (obj > limits) | (targets & (np.arange(1, targets.shape[1] + 1) > limits[:, None])).any(axis=1)
    kinds = (
        (missing, lambda i: f"refs/object {int(obj[i])} of pair {int(ids[i])} does not exist, or refs/targets "
                            f"names one that does not (scene row {int(scene[i])} has {int(limits[i])} objects)"),
        (count != size, lambda i: f"refs/target_count {int(count[i])} of pair {int(ids[i])}, but refs/targets "
                                  f"names {int(size[i])} objects"),
        (obj != single, lambda i: f"refs/object {int(obj[i])} of pair {int(ids[i])} is not its one target "
                                  f"(refs/targets names {[int(k) + 1 for k in np.flatnonzero(targets[i])]})"),
    )
    for bad, say in kinds:
        if bad.any():
            problems.append(say(int(np.flatnonzero(bad)[0])))
    return kinds[0][0] | kinds[1][0] | kinds[2][0]


def verify_shard(path: Path, spec: ShardSpec, config: RenderConfig,
                 on_view: Callable[[], None] | None = None) -> tuple[list[str], ShardContent | None]:
    """Problems of one shard file (empty when it is good) and, unless it is unreadable, its content."""
    if not path.is_file():
        return ["missing"], None
    try:
        f = h5py.File(path, "r")
    except OSError as error:
        return [f"cannot be opened as HDF5, truncated or damaged ({_short(error)})"], None
    problems: list[str] = []
    with f:
        try:
            problems += _check_attrs(f, spec, config)
            _check_structure(f, spec, config)
        except ShardDamaged as error:
            return problems + [str(error)], None
        except (OSError, KeyError) as error:
            return problems + [f"unreadable metadata ({_short(error)})"], None
        n_objects = _read_scenes(f, spec, problems)
        _check_pixels(f, n_objects, problems, on_view)
        refs = _check_refs(f, n_objects, config.views, problems)
    return problems, ShardContent(scenes=len(n_objects), refs=refs)


# ---------------------------------------------------------------------------- the dataset


def _plan_and_manifest(root: Path, report: VerifyReport) -> tuple[RenderConfig, dict | None]:
    require_directory(root)
    try:
        manifest = read_manifest(root)
    except ValueError as error:
        report.add(MANIFEST_NAME, str(error).replace(f"{manifest_path(root)}: ", ""))
        manifest = None
    if manifest is not None:
        try:
            return from_dict(manifest["config"]), manifest
        except (KeyError, TypeError, ValueError) as error:
            report.add(MANIFEST_NAME, f"no usable config ({error})")
            manifest = None
    return stored_config(root), manifest


def _check_manifest(manifest: dict, shards: list[ShardSpec], contents: dict[str, ShardContent],
                    report: VerifyReport) -> None:
    """The manifest's shard lists, scene and pair counts against the plan and the shards."""
    for split in SPLITS:
        mine = [s for s in shards if s.split == split]
        entry = manifest.get("splits", {}).get(split)
        if entry is None:
            report.add(MANIFEST_NAME, f"split {split} is missing")
            continue
        if entry.get("shards") != [s.name for s in mine]:
            report.add(MANIFEST_NAME, f"{split} lists shards {entry.get('shards')}, the plan has {[s.name for s in mine]}")
        if entry.get("scenes") != sum(s.scene_count for s in mine):
            report.add(MANIFEST_NAME, f"{split} has {entry.get('scenes')} scenes, the plan has {sum(s.scene_count for s in mine)}")
        if all(s.name in contents for s in mine):
            pairs = sum(len(contents[s.name].refs[REF_ID]) for s in mine)
            if entry.get("pairs") != pairs:
                report.add(MANIFEST_NAME, f"{split} has {entry.get('pairs')} pairs, the shards hold {pairs}")


def _check_split_ids(shards: list[ShardSpec], contents: dict[str, ShardContent], report: VerifyReport) -> None:
    """refs/id unique within each split, across its shards: the later shard is named."""
    for split in SPLITS:
        seen: set[int] = set()
        for s in (s for s in shards if s.split == split and s.name in contents):
            ids = set(contents[s.name].refs[REF_ID].tolist())
            if ids & seen:
                report.add(s.name, f"refs/id {min(ids & seen)} also appears in an earlier shard of {split}")
            seen |= ids


def verify_split_file(root: Path, split: str, shards: list[ShardSpec], contents: dict[str, ShardContent],
                      config: RenderConfig) -> list[str]:
    """A per-split file must map the split's shards in order and copy their refs with offsets."""
    path = split_file_path(root, split)
    names = [s.name for s in shards]
    try:
        f = h5py.File(path, "r")
    except OSError as error:
        return [f"cannot be opened as HDF5 ({_short(error)})"]
    problems: list[str] = []
    counts = [s.scene_count for s in shards]
    offsets = np.cumsum([0, *counts])[:-1]
    with f:
        if [str(n) for n in np.atleast_1d(f.attrs.get("shards", []))] != names:
            problems.append(f"attribute shards does not list {names}")
        schema = file_schema(f)
        if schema not in SUPPORTED_SCHEMAS:
            problems.append(f"attribute schema_version is {schema}, expected one of {', '.join(map(str, SUPPORTED_SCHEMAS))}")
            schema = max(SUPPORTED_SCHEMAS)
        # An empty split has no shard to take its optional datasets from.
        layout = scene_layout(config.views, config.height, config.width, schema,
                              config.amodal_masks and schema >= 3 and sum(counts) > 0)
        for name, (shape, _dtype) in layout.items():
            ds = f.get(name)
            if not isinstance(ds, h5py.Dataset) or ds.shape != (sum(counts), *shape):
                problems.append(f"{name} is missing or has the wrong shape")
                continue
            if sum(counts) == 0:
                continue
            sources = [(src.file_name, src.dset_name, src.vspace.get_select_bounds()[0][0])
                       for src in ds.virtual_sources()] if ds.is_virtual else []
            expected = [(n, "/" + name, int(o)) for n, o in zip(names, offsets)]
            if sorted((fn, "/" + dn.lstrip("/"), int(start)) for fn, dn, start in sources) != sorted(expected):
                problems.append(f"{name} does not map the shards {names} in order")
            missing = [fn for fn, _, _ in sources if not (root / fn).is_file()]
            if missing:
                problems.append(f"{name} maps the missing file {missing[0]}")
        if all(n in contents for n in names):
            expected = concatenate_refs([contents[n].refs for n in names], offsets, config.views, schema)
            try:
                stored = read_refs(f, config.views)
            except (KeyError, OSError) as error:
                return problems + [f"refs unreadable ({_short(error)})"]
            for name, want in expected.items():
                if name not in stored or stored[name].shape != want.shape or not np.array_equal(
                        stored[name], want, equal_nan=want.dtype.kind == "f"):
                    problems.append(f"{name} differs from the shards' refs")
    return problems


def verify_dataset(root: Path, on_view: Callable[[], None] | None = None,
                   on_start: Callable[[int], None] | None = None) -> VerifyReport:
    """Check every shard of the dataset in `root` (planned by its config), the manifest and split files.

    `on_start(total_views)` is called once the plan is known and `on_view()` after each
    view of each shard is read (progress). Raises FileNotFoundError when `root` holds
    neither a manifest nor a complete shard.
    """
    root = Path(root)
    start = time.perf_counter()
    report = VerifyReport(root)
    config, manifest = _plan_and_manifest(root, report)
    shards = plan_shards(config)
    if on_start is not None:
        on_start(sum(s.scene_count for s in shards) * config.views)
    contents: dict[str, ShardContent] = {}
    for spec in shards:
        path = spec.path(root)
        report.checked.append(spec.name)
        report.bytes += path.stat().st_size if path.is_file() else 0
        problems, content = verify_shard(path, spec, config, on_view)
        for message in problems:
            report.add(spec.name, message)
        if content is not None:
            contents[spec.name] = content
            report.scenes += content.scenes
            report.pairs += len(content.refs[REF_ID])
    planned = {s.name for s in shards}
    for stray in sorted(root.glob("*/shard-*.h5")):
        name = stray.relative_to(root).as_posix()
        if name not in planned:
            report.checked.append(name)
            report.add(name, "not part of this dataset's plan")
    _check_split_ids(shards, contents, report)
    if manifest is not None:
        report.checked.append(MANIFEST_NAME)
        _check_manifest(manifest, shards, contents, report)
    for split in SPLITS:
        path = split_file_path(root, split)
        if path.is_file():
            report.checked.append(path.name)
            report.bytes += path.stat().st_size
            mine = [s for s in shards if s.split == split]
            for message in verify_split_file(root, split, mine, contents, config):
                report.add(path.name, message)
    report.seconds = time.perf_counter() - start
    return report


# ---------------------------------------------------------------------------- quarantine


def quarantine(report: VerifyReport) -> list[str]:
    """Move the bad shards to `ROOT/.quarantine/<split>/` and drop what referred to them.

    dataset.json and the split files are derived from the shards; they are removed when
    they list a bad shard or are bad themselves, so that a re-run of `render` re-renders
    exactly the moved shards and writes them again. Nothing else is touched, and all of it
    happens or none (store/transaction.py; the manifest goes first, so it never lists a
    shard that is gone). A moved shard never overwrites an earlier one (`.1`, `.2` ...).
    Returns one line per action.
    """
    root = report.root
    bad_shards = [name for name in report.problems if name.endswith(".h5") and "/" in name]
    bad_splits = {name.split("/")[0] for name in bad_shards}
    derived = [root / MANIFEST_NAME] if bad_shards or MANIFEST_NAME in report.problems else []
    derived += [split_file_path(root, s) for s in SPLITS
                if s in bad_splits or split_file_path(root, s).name in report.problems]
    with Transaction(root, "verify --quarantine") as change:
        for path in derived:
            if path.is_file():
                change.remove(path)
        for name in bad_shards:
            if (root / name).is_file():
                change.move(root / name, root / QUARANTINE / name)
        actions = change.commit()
    for line in actions:
        log.debug("quarantine: %s", line)
    return actions
