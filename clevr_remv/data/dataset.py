"""A training loader: one sample per (referring pair, view), read lazily from the shards.

    from clevr_remv import RefDataset

    train = RefDataset("out", "train")                    # centre view only, as the thesis trains
    test = RefDataset("out", "test", views="corners")     # the four corner views
    sample = test[0]   # image (H,W,3) uint8, mask (H,W) bool, sentence, ref_id (the pair's refs/id in
                       # its split, as in predictions; docs/output-format.md, "Ids"), scene, object, view,
                       # visible_fraction (the referent's visible / amodal pixels in that view; NaN
                       # in datasets rendered before it existed), targets, target_count

Under `render --targets any` a sentence may name several objects or none: the mask is then the union
of its targets (all False for none), `targets` lists their ids, `target_count` says how many, and
`object` is 0 (it is the referent only where there is exactly one).

`sample="lightfield"` gives one sample per pair instead, with the chosen views stacked:

    lf = RefDataset("out", "test", views="all", sample="lightfield", disparity=True)
    s = lf[0]   # image (V,H,W,3), mask (V,H,W) bool, disparity (V,H,W), visible (V,), views, sentence ...

`depth=True` / `disparity=True` add each view's depth (scene units, +inf background) and disparity
(pixels per view step, `clevr_remv.lightfield`) in either mode.

It has the shape of a PyTorch map-style `Dataset` (`__len__`, `__getitem__`) without
importing torch, so `torch.utils.data.DataLoader(RefDataset(...), num_workers=4)` works
as is. Construction reads only the small per-pair datasets; `__getitem__` decompresses one
image chunk and one mask chunk (the shards store one view per chunk). HDF5 handles are
never pickled: each process opens its own on first use, and a forked child notices the
pid change and reopens, so it is safe under both the fork and the spawn start methods.

A shard that is missing or fails its checksums raises `clevr_remv.contract.DamagedShard` (an
OSError naming the file and `clevr-remv verify`), at construction or in `__getitem__`, in a
DataLoader worker too (it pickles whole).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from clevr_remv.data.selection import ViewSpec, describe_views, rig_grid, select_views
from clevr_remv.scene.vocabulary import MAX_OBJECTS
from clevr_remv.truth.targets import target_mask

SAMPLE_KINDS = ("view", "lightfield")  # RefDataset(sample=...): one sample per (pair, view), or per pair
# The arrays of a view a sample holds (`store.ShardReader.view` fields), without and with depth.
_PIXELS = ("image", "mask")
_WITH_DEPTH = (*_PIXELS, "depth")


class RefDataset:
    """Referring expression segmentation samples of one split: (pair, view) -> image, mask, sentence.

    `views`: "center" (default), "corners", "all", or a list of view indices of the rig.
    `visible_only` (default True) leaves out (pair, view) samples whose referent is below the
    visibility threshold in that view (`refs/visible`), as the thesis does. `transform`, if
    given, is called on each sample dict and its result returned instead.

    `sample="lightfield"`: one sample per pair with the chosen views stacked in the given order
    (image (V, H, W, 3), mask (V, H, W), `visible` (V,) bool, `views`); `visible_only` then keeps
    the pairs whose referent is visible in at least one chosen view. `depth` and `disparity` add
    those maps (float32, per view) to the samples of either mode.
    """

    def __init__(self, root: Path | str, split: str, views: ViewSpec = "center", *,
                 sample: str = "view", depth: bool = False, disparity: bool = False,
                 visible_only: bool = True, transform: Callable[[dict[str, Any]], Any] | None = None) -> None:
        from clevr_remv.store import DatasetReader

        if sample not in SAMPLE_KINDS:
            raise ValueError(f"sample {sample!r}: choose {' or '.join(map(repr, SAMPLE_KINDS))}")
        self.root = Path(root)
        self.split = split
        self.transform = transform
        self.visible_only = visible_only
        self.sample, self.depth, self.disparity = sample, bool(depth), bool(disparity)
        reader = DatasetReader(self.root)
        reader.require_split(split)
        self.grid = rig_grid(reader.manifest)
        self.views = select_views(views, self.grid)
        self.shards: list[str] = [str(p) for p in reader.shard_paths(split)]

        view_array = np.asarray(self.views, dtype=np.int16)
        per_pair = sample == "lightfield"
        parts = [_index_shard(path, view_array, visible_only, self.root, per_pair) for path in self.shards]
        # Per pair (R, all shards): id, referent, split-wide scene index, sentence.
        self.ref_ids = _concat([p["id"] for p in parts], np.int64)
        self.ref_objects = _concat([p["object"] for p in parts], np.int16)
        # Per pair: which objects the sentence names (column k-1: object k), the published data one each.
        self.ref_targets = (np.concatenate([p["targets"] for p in parts]) if parts
                            else np.zeros((0, MAX_OBJECTS), bool))
        self.ref_scenes = _concat([p["scene"] for p in parts], np.int64)
        self.sentences: list[str] = [s for p in parts for s in p["sentences"]]
        # Per pair and view of the rig: the referent's visible fraction (NaN in datasets without it).
        self.ref_fractions = (np.concatenate([p["fraction"] for p in parts]) if parts
                              else np.zeros((0, self.grid * self.grid), np.float32))
        # Per sample: shard, row, pair (index into the per-pair arrays) and view.
        offsets = np.cumsum([0] + [len(p["id"]) for p in parts])
        self._shard = _concat([np.full(len(p["pair"]), n, np.int32) for n, p in enumerate(parts)], np.int32)
        self._row = _concat([p["row"] for p in parts], np.int32)
        self._pair = _concat([p["pair"] + offsets[n] for n, p in enumerate(parts)], np.int64)
        self._view = _concat([p["view"] for p in parts], np.int16)
        # Light-field samples: the referent's visibility in each chosen view.
        self._visible = (np.concatenate([p["visible"] for p in parts]) if parts and per_pair
                         else np.zeros((len(self._pair), len(self.views)), bool))
        self._files: dict[int, Any] = {}
        self._specs: dict[tuple[int, int], Any] = {}
        self._pid = os.getpid()

    # -- the map-style Dataset protocol

    def __len__(self) -> int:
        return int(len(self._pair))

    def __getitem__(self, i: int) -> Any:
        if not -len(self) <= i < len(self):
            raise IndexError(f"sample {i} out of range for {len(self)} samples")
        i = int(i) % len(self)
        shard, row, view = int(self._shard[i]), int(self._row[i]), int(self._view[i])
        pair = int(self._pair[i])
        obj = int(self.ref_objects[pair])
        views = self.views if self.sample == "lightfield" else [view]
        pixels = self._read(shard, row, views)
        named = [int(k) + 1 for k in np.flatnonzero(self.ref_targets[pair])]
        sample = {
            "image": pixels["image"],
            "mask": target_mask(pixels["mask"], named),
            "sentence": self.sentences[pair],
            "ref_id": int(self.ref_ids[pair]),
            "scene": int(self.ref_scenes[pair]),
            "object": obj,
            "targets": named,
            "target_count": len(named),
            "shard": self.shards[shard],
            "row": row,
        }
        sample.update({k: pixels[k] for k in ("depth", "disparity") if k in pixels})
        if self.sample == "lightfield":
            sample.update(views=list(self.views), visible=self._visible[i].copy(),
                          visible_fraction=self.ref_fractions[pair, self.views].copy())
        else:
            sample = {k: (v[0] if k in ("image", "mask", "depth", "disparity") else v) for k, v in sample.items()}
            sample["view"] = view
            sample["visible_fraction"] = float(self.ref_fractions[pair, view])
        return self.transform(sample) if self.transform is not None else sample

    def _read(self, shard: int, row: int, views: Sequence[int]) -> dict[str, np.ndarray]:
        """image, mask (and depth, disparity if asked for) of `views` of one scene, stacked (V, ...)."""
        reader = self._file(shard)
        fields = _WITH_DEPTH if self.depth or self.disparity else _PIXELS
        out: dict[str, list[np.ndarray]] = {key: [] for key in fields}
        for view in views:  # one chunk per view and field
            for key, value in reader.view(row, view, fields).items():
                out[key].append(value)
        pixels = {key: np.stack(values) for key, values in out.items()}
        if self.disparity:
            from clevr_remv.lightfield.disparity import disparity_from_depth

            pixels["disparity"] = disparity_from_depth(self._spec(shard, row), pixels["depth"])
            if not self.depth:
                del pixels["depth"]
        return pixels

    def _spec(self, shard: int, row: int) -> Any:
        """The rig of one scene (its camera position is jittered per scene), read once per process."""
        spec = self._specs.get((shard, row))
        if spec is None:
            spec = self._specs[(shard, row)] = self._file(shard).scene(row).rig
        return spec

    def __repr__(self) -> str:
        extra = "".join(f", {k}=True" for k in ("depth", "disparity") if getattr(self, k))
        kind = ", sample='lightfield'" if self.sample == "lightfield" else ""
        return (f"RefDataset({str(self.root)!r}, {self.split!r}, views={describe_views(self.views, self.grid)!r}"
                f"{kind}{extra}, visible_only={self.visible_only}): {len(self)} samples")

    # -- file handles: one set per process, never pickled

    def _file(self, shard: int) -> Any:
        """This process's open `store.ShardReader` of shard number `shard`."""
        if os.getpid() != self._pid:  # forked: the parent's handles are not ours to use
            self._files = {}
            self._pid = os.getpid()
        f = self._files.get(shard)
        if f is None:
            from clevr_remv.store.reader import ShardReader

            f = self._files[shard] = ShardReader(self.shards[shard], self.root)
        return f

    def close(self) -> None:
        """Close this process's open shard files (they reopen on the next access)."""
        for f in self._files.values():
            f.close()
        self._files = {}

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_files"] = {}
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._pid = os.getpid()


def _index_shard(path: str, views: np.ndarray, visible_only: bool, root: Path, per_pair: bool = False) -> dict[str, Any]:
    """The pairs of one shard and its (pair, view) samples, from the small `refs/*` datasets only;
    `per_pair`: one sample per pair (view -1) with its visibility in each chosen view."""
    from clevr_remv.store.reader import ShardReader

    with ShardReader(path, root) as shard, shard.reading("refs"):
        refs, indices = shard.ref_table(), shard.scene_indices()
    rows = refs.scene.astype(np.int32)
    visible = refs.visible[:, views]
    keep = visible if visible_only else np.ones_like(visible, dtype=bool)
    if per_pair:
        pair = np.flatnonzero(keep.any(axis=1))
        view, visible = np.full(len(pair), -1), visible[pair]
    else:
        pair, which = np.nonzero(keep)  # row-major: a pair's views stay together
        view = views[which]
    return {
        "id": refs.id, "object": refs.object, "targets": refs.targets, "scene": indices[rows],
        "sentences": refs.expression.tolist(),
        "row": rows[pair], "pair": pair.astype(np.int64), "view": view, "visible": visible,
        "fraction": refs.visible_fraction,  # NaN where not measured (store/refs.py)
    }


def _concat(parts: list[np.ndarray], dtype: type) -> np.ndarray:
    return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype=dtype)
