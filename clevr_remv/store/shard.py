"""Writing and checking one HDF5 shard: the on-disk contract (docs/output-format.md).

A shard holds S scenes of one split, V views each. The per-view arrays are chunked one
view per chunk, so a reader (or a training loader that only wants the central view)
decompresses exactly the view it asks for. Every write goes through `atomic_path`, so a
shard file that exists under its final name is complete.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Sequence
from contextlib import ExitStack, nullcontext
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from clevr_remv.scene.description import Scene
from clevr_remv.scene.vocabulary import MAX_OBJECTS
from clevr_remv.store.atomic import atomic_path
from clevr_remv.store.columns import (
    AMODAL_MASKS,
    AMODAL_PIXELS,
    DATASETS_SINCE,
    DEPTH,
    IMAGES,
    INTRINSICS,
    MASKS,
    REF_DATASETS,
    REF_EXPRESSION,
    REF_FAMILY,
    REF_ID,
    REF_OBJECT,
    REF_PROGRAM,
    REF_SCENE,
    REF_TARGET_COUNT,
    REF_TARGETS,
    REF_VISIBLE,
    REF_VISIBLE_FRACTION,
    REFS,
    SCENE_DATASETS,
    SCENES,
    STRING,
    VISIBLE_PIXELS,
    WORLD_TO_CAMERA,
)
from clevr_remv.store.records import Ref, SceneRender
from clevr_remv.truth.occlusion import ref_fractions

# 2: the pixel datasets carry Fletcher-32 checksums (1 had none; readers handle both).
# 3: `amodal_pixels`, `refs/visible_fraction` and, optionally, `amodal_masks` (docs/occlusion.md);
#    readers and `verify` accept 2 and 3 (DATASETS_SINCE says what a version-2 file lacks).
# 4: `refs/targets` and `refs/target_count`, the objects each sentence names (several or none under
#    `--targets any`); `refs/object` is 0 where there is not exactly one. Older files read as one target.
SCHEMA_VERSION = 4
SUPPORTED_SCHEMAS: tuple[int, ...] = (2, 3, 4)

# Compression per dataset (keyword arguments of `h5py.Group.create_dataset`). Only
# filters built into every HDF5 are used, so any h5py (or C, or MATLAB) can read a shard
# without plugins. Chosen with bench/bench_storage.py and a real 81-view scene at the
# default quality (docs/performance.md):
# - images: gzip 6: 7.7 MB/scene against 8.2 (gzip 4) and 7.6 (gzip 9, 3x slower to
#   write); 1.1 s to write a scene that took 200 s to render. Shuffle is a no-op on
#   bytes; the plugins' zstd and Blosc2 were no smaller.
# - masks: gzip 6, ~25 % smaller than gzip 4 at similar speed; < 2 % of a shard anyway.
# - depth: byte shuffle + gzip 4, ~25 % smaller than gzip alone; with the pipeline's
#   mantissa rounding (clevr_remv/truth/depth_precision.py) 2.0 MB/scene instead of 11. Scale-offset
#   does nothing on chunks that hold +inf.
# Every pixel chunk also carries HDF5's Fletcher-32 checksum (4 bytes per chunk), so a
# flipped byte anywhere makes reading that chunk fail instead of returning wrong pixels;
# `clevr-remv verify` reads every chunk. Measured cost: docs/checking.md, "Checksums".
CHECKSUM: dict[str, Any] = dict(fletcher32=True)
IMAGE_COMPRESSION: dict[str, Any] = dict(compression="gzip", compression_opts=6, shuffle=False, **CHECKSUM)
MASK_COMPRESSION: dict[str, Any] = dict(compression="gzip", compression_opts=6, shuffle=False, **CHECKSUM)
DEPTH_COMPRESSION: dict[str, Any] = dict(compression="gzip", compression_opts=4, shuffle=True, **CHECKSUM)
# Cameras, pixel counts and refs are tiny next to the images (< 0.1 %): store them plain.
SMALL_COMPRESSION: dict[str, Any] = {}

# The dataset names (SCENE_DATASETS, REF_DATASETS, DATASETS_SINCE, AMODAL_MASKS ...) are in
# store/columns.py. The optional amodal masks are bit-packed along W (np.packbits, first pixel in the
# high bit), one view per chunk: 0.12 MB for a 480x320 9x9 scene against 0.24 MB as bool, and 5x
# faster to write (docs/occlusion.md). unpack_masks() undoes it.


def pack_masks(masks: np.ndarray) -> np.ndarray:
    """bool (..., H, W) -> uint8 (..., H, ceil(W / 8)) as `amodal_masks` stores them."""
    return np.packbits(np.asarray(masks, dtype=bool), axis=-1)


def unpack_masks(packed: np.ndarray, width: int) -> np.ndarray:
    """uint8 (..., H, ceil(W / 8)) from `amodal_masks` -> bool (..., H, W)."""
    return np.unpackbits(np.asarray(packed, dtype=np.uint8), axis=-1, count=width).view(bool)
ALL_DATASETS: tuple[str, ...] = SCENE_DATASETS + REF_DATASETS

_SHARD_NAME = re.compile(r"shard-(\d+)\.h5$")


# ---------------------------------------------------------------------------- validation


def file_schema(f: h5py.File) -> int:
    """The schema version of an open shard or split file."""
    return int(f.attrs.get("schema_version", SCHEMA_VERSION))


def in_schema(names: dict | tuple, schema: int) -> dict | tuple:
    """`names` (a layout or a tuple of dataset names) without the datasets `schema` predates."""
    if isinstance(names, dict):
        return {k: v for k, v in names.items() if DATASETS_SINCE.get(k, 0) <= schema}
    return tuple(k for k in names if DATASETS_SINCE.get(k, 0) <= schema)


def scene_layout(views: int, height: int, width: int, schema: int = SCHEMA_VERSION,
                 amodal_masks: bool = False) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """Shape of one scene's row and dtype of every per-scene dataset (the table of docs/output-format.md),
    as schema version `schema` has them; `amodal_masks` adds the optional amodal masks."""
    v, h, w = views, height, width
    layout = {
        IMAGES: ((v, h, w, 3), np.dtype(np.uint8)),
        MASKS: ((v, h, w), np.dtype(np.uint8)),
        DEPTH: ((v, h, w), np.dtype(np.float32)),
        INTRINSICS: ((v, 3, 3), np.dtype(np.float64)),
        WORLD_TO_CAMERA: ((v, 4, 4), np.dtype(np.float64)),
        VISIBLE_PIXELS: ((v, MAX_OBJECTS), np.dtype(np.int32)),
        AMODAL_PIXELS: ((v, MAX_OBJECTS), np.dtype(np.int32)),
        SCENES: ((), STRING),
    }
    if amodal_masks:
        layout[AMODAL_MASKS] = ((v, MAX_OBJECTS, h, (w + 7) // 8), np.dtype(np.uint8))
    return in_schema(layout, schema)


def ref_layout(views: int, schema: int = SCHEMA_VERSION) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """Shape of one pair's row and dtype of every `refs/*` dataset (of schema version `schema`)."""
    return in_schema({
        REF_SCENE: ((), np.dtype(np.int32)),
        REF_OBJECT: ((), np.dtype(np.int16)),
        REF_EXPRESSION: ((), STRING),
        REF_FAMILY: ((), STRING),
        REF_PROGRAM: ((), STRING),
        REF_VISIBLE: ((views,), np.dtype(bool)),
        REF_VISIBLE_FRACTION: ((views,), np.dtype(np.float32)),
        REF_ID: ((), np.dtype(np.int64)),
        REF_TARGETS: ((MAX_OBJECTS,), np.dtype(bool)),
        REF_TARGET_COUNT: ((), np.dtype(np.int8)),
    }, schema)


# The pixel datasets, chunked one view per chunk, with their filters.
PIXEL_DATASETS: dict[str, dict[str, Any]] = {
    IMAGES: IMAGE_COMPRESSION,
    MASKS: MASK_COMPRESSION,
    DEPTH: DEPTH_COMPRESSION,
    AMODAL_MASKS: MASK_COMPRESSION,
}
# What SceneRender calls each per-scene array; None: must have exactly the contract's dtype.
_RENDER_FIELDS = {IMAGES: "images", MASKS: "masks", DEPTH: "depth", INTRINSICS: "intrinsics",
                  WORLD_TO_CAMERA: "world_to_camera", VISIBLE_PIXELS: "visible_pixels",
                  AMODAL_PIXELS: "amodal_pixels"}
_EXACT_DTYPE = {IMAGES, MASKS}


def _check_render(r: SceneRender, views: int, height: int, width: int) -> None:
    """Fail before touching the disk if one scene does not fit the shard's shapes/dtypes."""
    layout = scene_layout(views, height, width)
    for dataset, name in _RENDER_FIELDS.items():
        shape, dtype = layout[dataset]
        if getattr(r, name) is None:
            raise ValueError(f"scene {r.scene.index}: no {name}")
        arr = np.asarray(getattr(r, name))
        if arr.shape != shape:
            raise ValueError(f"scene {r.scene.index}: {name} has shape {arr.shape}, expected {shape}")
        if dataset in _EXACT_DTYPE and arr.dtype != dtype:
            # No silent casts: a float image cast to uint8 would be garbage.
            raise ValueError(f"scene {r.scene.index}: {name} has dtype {arr.dtype}, expected {dtype}")


def _check_refs(refs: Sequence[Sequence[Ref]], n_objects: Sequence[int], views: int) -> None:
    """Refs must line up with the scenes, name an existing object and have one flag per view."""
    if len(refs) != len(n_objects):
        raise ValueError(f"{len(refs)} ref lists for {len(n_objects)} scenes")
    ids: set[int] = set()
    for row, (scene_refs, n) in enumerate(zip(refs, n_objects)):
        _check_scene_refs(scene_refs, n, views, row, ids)


def _check_scene_refs(scene_refs: Sequence[Ref], n: int, views: int, row: int, ids: set[int]) -> None:
    """One scene's refs (row `row`, `n` objects); `ids` collects the shard's ids so far."""
    for ref in scene_refs:
        named = ref.target_ids
        if ref.targets is None and not 1 <= ref.object <= n:
            raise ValueError(f"ref {ref.id}: object {ref.object} not in 1..{n} (row {row})")
        if any(not 1 <= t <= n for t in named) or list(named) != sorted(set(named)):
            raise ValueError(f"ref {ref.id}: targets {list(named)} must be distinct, ascending, in 1..{n} (row {row})")
        if ref.object != (named[0] if len(named) == 1 else 0):
            raise ValueError(f"ref {ref.id}: object {ref.object} must be its one target, or 0 with "
                             f"{len(named)} targets (row {row})")
        if np.shape(ref.visible) != (views,):
            raise ValueError(f"ref {ref.id}: visible has shape {np.shape(ref.visible)}, expected ({views},)")
        if ref.id in ids:
            raise ValueError(f"ref id {ref.id} appears twice in one shard")
        ids.add(ref.id)


# ---------------------------------------------------------------------------- attributes


def _attr_value(value: Any) -> Any:
    """Turn a Python value into something HDF5 stores faithfully.

    Dicts, None and sequences that are not purely numeric become JSON strings (HDF5 has
    no mapping type); numbers, strings and numeric sequences are stored natively.
    """
    if isinstance(value, (str, bool, int, float, np.generic)):
        return value
    if isinstance(value, (list, tuple, np.ndarray)) and len(value) > 0:
        try:
            arr = np.asarray(value)
        except ValueError:  # ragged
            arr = np.asarray([None])
        if arr.dtype.kind in "biuf":
            return arr
    if isinstance(value, np.ndarray):
        value = value.tolist()
    return json.dumps(value, separators=(",", ":"))


def _plain(value: Any) -> Any:
    """HDF5 attribute value -> plain Python (numpy scalars and arrays become int/float/list)."""
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()] if value.dtype.kind == "O" else value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _resolve_split(renders: Sequence[SceneRender], attrs: dict[str, Any], split: str | None) -> str:
    """A shard holds one split; take it from the caller or the scenes, and make them agree."""
    splits = {r.scene.split for r in renders}
    chosen = split if split is not None else attrs.get("split")
    if chosen is None:
        if len(splits) != 1:
            raise ValueError(f"scenes of several splits in one shard: {sorted(splits)}")
        chosen = splits.pop()
    if splits and splits != {chosen}:
        raise ValueError(f"shard split {chosen!r} but scenes are from {sorted(splits)}")
    return str(chosen)


def _resolve_shard_index(path: Path, attrs: dict[str, Any], shard_index: int | None) -> int:
    """The shard index comes from the caller, else from the contract's name `shard-NNNNN.h5`."""
    if shard_index is not None:
        return int(shard_index)
    if "shard_index" in attrs:
        return int(attrs["shard_index"])
    match = _SHARD_NAME.search(Path(path).name)
    if match is None:
        raise ValueError(f"no shard_index given and {path} is not named shard-NNNNN.h5")
    return int(match.group(1))


# ---------------------------------------------------------------------------- writing


def _create_scene_datasets(f: h5py.File, s: int, v: int, h: int, w: int, amodal_masks: bool = False) -> None:
    """Create the per-scene datasets with one-view chunks for the pixel arrays."""
    for name, (shape, dtype) in scene_layout(v, h, w, amodal_masks=amodal_masks).items():
        if name in PIXEL_DATASETS:
            f.create_dataset(name, (s, *shape), dtype, chunks=(1, 1, *shape[1:]), **PIXEL_DATASETS[name])
        else:
            f.create_dataset(name, (s, *shape), dtype, **SMALL_COMPRESSION)


def _write_scene(f: h5py.File, i: int, r: SceneRender) -> None:
    """Write one scene into row `i` of every per-scene dataset (casts to the stored dtypes)."""
    for dataset, name in _RENDER_FIELDS.items():
        f[dataset][i] = np.asarray(getattr(r, name), dtype=f[dataset].dtype)
    if AMODAL_MASKS in f:
        expected = (*f[AMODAL_MASKS].shape[1:-1], f[MASKS].shape[-1])
        if r.amodal_masks is None or np.shape(r.amodal_masks) != expected:
            raise ValueError(f"scene {r.scene.index}: amodal_masks must have shape {expected}")
        f[AMODAL_MASKS][i] = pack_masks(r.amodal_masks)
    f[SCENES][i] = r.scene.to_json()


def _strings(values: list[str]) -> np.ndarray:
    return np.array(values, dtype=object)


def _write_refs(f: h5py.File, refs: Sequence[Sequence[Ref]], views: int) -> None:
    """(Re)create the `refs` group: one row per pair, flattened over the shard's scenes.

    Every refs dataset is created even when there are no pairs, so readers never need
    a special case.
    """
    if REFS in f:
        del f[REFS]
    flat = [(row, ref) for row, scene_refs in enumerate(refs) for ref in scene_refs]
    f.create_group(REFS)
    f.create_dataset(REF_SCENE, data=np.array([row for row, _ in flat], dtype=np.int32).reshape(-1))
    f.create_dataset(REF_OBJECT, data=np.array([r.object for _, r in flat], dtype=np.int16).reshape(-1))
    for name, field in ((REF_EXPRESSION, "expression"), (REF_FAMILY, "family"), (REF_PROGRAM, "program")):
        f.create_dataset(name, data=_strings([getattr(r, field) for _, r in flat]), shape=(len(flat),), dtype=STRING)
    visible = np.array([np.asarray(r.visible, dtype=bool) for _, r in flat], dtype=bool).reshape(len(flat), views)
    f.create_dataset(REF_VISIBLE, data=visible)
    targets = np.zeros((len(flat), MAX_OBJECTS), dtype=bool)
    for i, (_, r) in enumerate(flat):
        targets[i, [t - 1 for t in r.target_ids]] = True
    if AMODAL_PIXELS in f:  # schema 3: derived from the pixel counts, so replace_refs keeps it right
        f.create_dataset(REF_VISIBLE_FRACTION, data=ref_fractions(
            f[VISIBLE_PIXELS][()], f[AMODAL_PIXELS][()], f[REF_SCENE][()], targets).reshape(len(flat), views))
    f.create_dataset(REF_ID, data=np.array([r.id for _, r in flat], dtype=np.int64).reshape(-1))
    if file_schema(f) >= 4:
        f.create_dataset(REF_TARGETS, data=targets)
        f.create_dataset(REF_TARGET_COUNT, data=targets.sum(axis=1).astype(np.int8))
    elif targets.sum(axis=1).tolist() != [1] * len(flat):
        raise ValueError(f"schema {file_schema(f)} stores one referent per sentence: these sentences name several "
                         "objects or none (--targets any); render the dataset again to store them (schema 4)")


def _write_attrs(f: h5py.File, attrs: dict[str, Any], split: str, shard_index: int) -> None:
    """Caller's attributes first, then the fixed ones, so the contract's keys always win."""
    for key, value in attrs.items():
        f.attrs[key] = _attr_value(value)
    f.attrs["schema_version"] = SCHEMA_VERSION
    f.attrs["split"] = split
    f.attrs["shard_index"] = shard_index


class ShardWriter:
    """Stream scenes into one shard file, so memory does not grow with the shard.

    The renderer hands over one scene at a time; `add` writes its pixels straight into a
    hidden temporary file (atomic_path semantics) and keeps only its few refs, which
    `commit` writes with the attributes before renaming the file to its final name. A
    worker therefore holds one scene, whether a shard has 1 or 1,000. Leaving the block
    by an exception, or without `commit`, removes the temporary file and leaves any
    older shard at `path` untouched::

        with ShardWriter(path, scenes=10, views=81, height=320, width=480,
                         split="train", shard_index=3) as writer:
            for render, refs in scenes:
                writer.add(render, refs)
            writer.commit(attrs)
    """

    def __init__(self, path: Path, scenes: int, views: int, height: int, width: int, *,
                 split: str, shard_index: int, amodal_masks: bool = False) -> None:
        if scenes < 1:
            raise ValueError("a shard needs at least one scene")
        self.path = Path(path)
        self.scenes, self.views, self.height, self.width = scenes, views, height, width
        self.split, self.shard_index = split, int(shard_index)
        self.amodal_masks = amodal_masks
        self._refs: list[list[Ref]] = []
        self._ids: set[int] = set()
        self._stack = ExitStack()
        self._file: h5py.File | None = None
        self._committed = False

    def __enter__(self) -> "ShardWriter":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with ExitStack() as stack:
            tmp = stack.enter_context(atomic_path(self.path))
            # No chunk cache: each view is one chunk, written whole, so the cache saved nothing, and on a full
            # disk its dirty chunks made HDF5 crash (SIGSEGV in H5D__flush_all_cb) while closing the file; without
            # it the failed write raises ENOSPC at once and `render` says "disk full" (tests/test_signals.py).
            self._file = stack.enter_context(h5py.File(tmp, "w", rdcc_nbytes=0))
            _create_scene_datasets(self._file, self.scenes, self.views, self.height, self.width, self.amodal_masks)
            self._stack = stack.pop_all()
        return self

    @property
    def added(self) -> int:
        """Scenes written so far."""
        return len(self._refs)

    def add(self, render: SceneRender, refs: Sequence[Ref]) -> None:
        """Validate one scene and its pairs, then write it into the next row."""
        if self._file is None or self._committed:
            raise ValueError(f"{self.path}: add() outside an open, uncommitted ShardWriter")
        row = self.added
        if row >= self.scenes:
            raise ValueError(f"{self.path}: more than the {self.scenes} planned scenes")
        _check_render(render, self.views, self.height, self.width)
        if render.scene.split != self.split:
            raise ValueError(f"shard split {self.split!r} but scene {render.scene.index} is from {render.scene.split!r}")
        _check_scene_refs(refs, len(render.scene.objects), self.views, row, self._ids)
        _write_scene(self._file, row, render)
        self._refs.append(list(refs))

    def commit(self, attrs: dict[str, Any]) -> None:
        """Write refs and attributes, close, fsync and rename onto the final name."""
        if self._file is None or self._committed:
            raise ValueError(f"{self.path}: commit() outside an open, uncommitted ShardWriter")
        if self.added != self.scenes:
            raise ValueError(f"{self.path}: {self.added} of {self.scenes} scenes written")
        _write_refs(self._file, self._refs, self.views)
        _write_attrs(self._file, attrs, self.split, self.shard_index)
        self._stack.close()  # closes the HDF5 file, then renames it (atomic_path)
        self._committed = True

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        if exc_type is None and not self._committed:
            error = ValueError(f"{self.path}: shard left after {self.added} of {self.scenes} scenes without commit()")
            if not self._stack.__exit__(ValueError, error, None):
                raise error
            return False
        return bool(self._stack.__exit__(exc_type, exc, tb))


def write_shard(
    path: Path,
    renders: list[SceneRender],
    refs: list[list[Ref]],
    attrs: dict[str, Any],
    *,
    split: str | None = None,
    shard_index: int | None = None,
) -> None:
    """Write one complete shard to `path` atomically (temp file, fsync, rename).

    `refs[i]` are the pairs of `renders[i]`. `attrs` become file attributes (dicts as
    JSON strings). `split` defaults to `attrs["split"]` or the scenes' split;
    `shard_index` to `attrs["shard_index"]` or the number in the name `shard-NNNNN.h5`.
    Everything is validated before the file is opened, so bad input costs no I/O. A thin
    wrapper over `ShardWriter` for callers that already hold every scene.
    """
    if not renders:
        raise ValueError("a shard needs at least one scene")
    path = Path(path)
    v, h, w = np.shape(renders[0].masks)
    for r in renders:
        _check_render(r, v, h, w)
    _check_refs(refs, [len(r.scene.objects) for r in renders], v)
    split_name = _resolve_split(renders, attrs, split)
    index = _resolve_shard_index(path, attrs, shard_index)
    with ShardWriter(path, len(renders), v, h, w, split=split_name, shard_index=index,
                     amodal_masks=renders[0].amodal_masks is not None) as writer:
        for render, scene_refs in zip(renders, refs):
            writer.add(render, scene_refs)
        writer.commit(attrs)


def replace_refs(path: Path, refs: list[list[Ref]], attrs: dict[str, Any] | None = None, *,
                 into: Path | None = None) -> None:
    """Regenerate only the `refs/*` group of a complete shard, atomically.

    Used when the expression engine changes but the renders do not. The shard is copied
    to a temporary file, its refs group rewritten there (and `attrs`, if given, merged
    into the file attributes), and the copy renamed over the original; on any error the
    original is untouched. HDF5 does not reclaim the old group's few kilobytes; that is
    the price of not rewriting the images.

    With `into`, the new shard is written there and `path` is left as it is: a transaction
    (store/transaction.py) renames it together with the other files of its change.
    """
    path = Path(path)
    if not shard_is_complete(path):
        raise ValueError(f"{path} is not a complete shard")
    with h5py.File(path, "r") as f:
        views = f[MASKS].shape[1]
        n_objects = [len(Scene.from_json(s).objects) for s in f[SCENES].asstr()[()]]
    _check_refs(refs, n_objects, views)
    with nullcontext(Path(into)) if into is not None else atomic_path(path) as tmp:
        shutil.copyfile(path, tmp)
        with h5py.File(tmp, "r+") as f:
            if file_schema(f) == 3:  # 4 adds only the refs' targets, written now
                f.attrs["schema_version"] = SCHEMA_VERSION
            _write_refs(f, refs, views)
            for key, value in (attrs or {}).items():
                if key not in ("schema_version", "split", "shard_index"):
                    f.attrs[key] = _attr_value(value)


# ---------------------------------------------------------------------------- checking


def shard_is_complete(path: Path) -> bool:
    """True if `path` is a readable shard with every dataset and consistent leading sizes.

    This is what a re-run uses to skip work, so it never raises: a missing, truncated or
    foreign file is simply "not complete" and gets redone.
    """
    path = Path(path)
    if not path.is_file():
        return False
    try:
        with h5py.File(path, "r") as f:
            if "schema_version" not in f.attrs:
                return False
            schema = file_schema(f)
            if not all(isinstance(f.get(name), h5py.Dataset) for name in in_schema(ALL_DATASETS, schema)):
                return False
            scenes = {f[name].shape[0] for name in in_schema(SCENE_DATASETS, schema)}
            refs = {f[name].shape[0] for name in in_schema(REF_DATASETS, schema)}
            return len(scenes) == 1 and len(refs) == 1
    except Exception:  # any HDF5 error means the file is not usable data
        return False


def bad_pixel_chunk(path: Path) -> str | None:
    """The first pixel chunk of a shard that fails its Fletcher-32 checksum or was never written,
    as "images[1, 4] fails its checksum"; None when every one passes.

    For a command that copies the chunks without decoding them (`replace_refs`): it reads each
    stored chunk's bytes and checks the checksum HDF5 wrote after compression, so nothing is
    decompressed.
    """
    with h5py.File(Path(path), "r") as f:
        for name in PIXEL_DATASETS:
            ds = f.get(name)
            if ds is None:
                continue
            plist = ds.id.get_create_plist()
            names = [plist.get_filter(i)[0] for i in range(plist.get_nfilters())]
            if h5py.h5z.FILTER_FLETCHER32 not in names:
                continue  # verify refuses a pixel dataset without checksums
            skipped = 1 << names.index(h5py.h5z.FILTER_FLETCHER32)
            for row in range(ds.shape[0]):
                for v in range(ds.shape[1]):
                    try:
                        mask, chunk = ds.id.read_direct_chunk((row, v) + (0,) * (ds.ndim - 2))
                    except (RuntimeError, OSError, KeyError, ValueError):  # no chunk stored there
                        return f"{name}[{row}, {v}] was never written"
                    if not mask & skipped and not _fletcher32_ok(chunk):
                        return f"{name}[{row}, {v}] fails its checksum"
    return None


def _fletcher32_ok(chunk: bytes) -> bool:
    """Whether a stored chunk's last 4 bytes are HDF5's Fletcher-32 of the rest (H5checksum.c:
    big-endian 16-bit words, the sums folded modulo 65535, stored little-endian)."""
    if len(chunk) < 4:
        return False
    data = np.frombuffer(chunk, np.uint8, len(chunk) - 4)
    if data.size % 2:
        data = np.append(data, np.uint8(0))
    words = data.view(">u2").astype(np.int64)
    sum1 = int(words.sum()) % 65535
    sum2 = int(words @ np.arange(words.size, 0, -1, dtype=np.int64)) % 65535
    stored = int.from_bytes(chunk[-4:], "little")
    return sum1 == (stored & 0xFFFF) % 65535 and sum2 == (stored >> 16) % 65535


def attrs_dict(f: h5py.File) -> dict[str, Any]:
    """The attributes of an open file as plain Python values (JSON-encoded ones stay strings)."""
    return {key: _plain(value) for key, value in f.attrs.items()}


def read_shard_attrs(path: Path) -> dict[str, Any]:
    """File attributes as plain Python values (JSON-encoded ones stay strings)."""
    with h5py.File(Path(path), "r") as f:
        return attrs_dict(f)


__all__ = [
    "SCHEMA_VERSION",
    "SUPPORTED_SCHEMAS",
    "DATASETS_SINCE",
    "AMODAL_MASKS",
    "pack_masks",
    "unpack_masks",
    "file_schema",
    "in_schema",
    "IMAGE_COMPRESSION",
    "MASK_COMPRESSION",
    "DEPTH_COMPRESSION",
    "ALL_DATASETS",
    "PIXEL_DATASETS",
    "scene_layout",
    "ref_layout",
    "ShardWriter",
    "write_shard",
    "replace_refs",
    "shard_is_complete",
    "bad_pixel_chunk",
    "read_shard_attrs",
]
