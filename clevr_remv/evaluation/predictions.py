"""Predictions files: writing them (`PredictionsWriter`, `write_predictions`) and reading them (HDF5 or
a folder of PNG masks), the one format `clevr-remv evaluate` scores.

A file records what it predicts, as attributes: `split`, `dataset_id` (`store.manifest.dataset_id`,
a digest of the dataset's settings) and `dataset` (its path as given, for messages), when the writer
is told the dataset and split, and always `views` (the view indices it holds). `ref_id`s restart in
every split and repeat across datasets made with other settings, so a file made for another split
or dataset would fit and be scored, wrongly; `check_made_for` refuses it. A file without the record
(written with plain h5py, or a PNG folder) is scored with a warning that this could not be checked.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from clevr_remv.store import atomic_path, dataset_id, require_manifest

PNG_NAME = re.compile(r"^(\d+)_(\d+)\.png$", re.IGNORECASE)


class PredictionsWriter:
    """Write a predictions file batch by batch, atomically (the file appears complete or not at all).

        with PredictionsWriter("pred.h5", height=320, width=480, dataset="out", split="test") as out:
            for batch in loader:
                out.add(batch_ref_ids, batch_views, batch_masks)   # masks (B, H, W) bool/uint8

    `dataset` (the dataset's folder) and `split` are recorded with the views written, so that
    `evaluate` refuses the file on another split or dataset (both optional: without them the file
    is scored with a warning that this could not be checked).

    Masks are stored as uint8 0/1, one mask per chunk, gzip level 1: about 1.3 kB per 480x320 mask,
    and 2-3x faster to write and read back than level 4, which only halves an already small file.
    Ids (int64, as `refs/id`) and views (int32) are compressed in chunks of `ID_CHUNK`, so the file is
    the masks' compressed size plus ~5 kB (uncompressed 65,536-element chunks made 40 masks 1 MB).
    Small batches (one sample at a time is fine) are buffered and written `BUFFER_PIXELS` at a time:
    growing the HDF5 datasets for every mask cost ~15 ms each, ten times the mask's own write.
    """

    BUFFER_PIXELS = 1 << 25  # 32 MB of buffered masks (about 218 masks of 480x320)
    ID_CHUNK = 4096  # ids and views per chunk: compressed, a part-filled chunk costs a few bytes

    def __init__(self, path: Path | str, height: int, width: int, *, dataset: Path | str | None = None,
                 split: str | None = None) -> None:
        self.path = Path(path)
        self.height, self.width = int(height), int(width)
        self.made_for: dict[str, str] = {}
        if split is not None:
            self.made_for["split"] = str(split)
        if dataset is not None:  # read now: a wrong path or split fails before any prediction is made
            manifest = require_manifest(dataset)
            if split is not None and split not in manifest["splits"]:
                raise ValueError(f"split {split!r}: {dataset} has splits {', '.join(manifest['splits'])}")
            self.made_for.update(dataset_id=dataset_id(manifest), dataset=str(dataset))
        self._views: set[int] = set()
        self._stack: ExitStack | None = None
        self._file: h5py.File | None = None
        self._buffer: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self._buffered = 0

    def __enter__(self) -> "PredictionsWriter":
        stack = ExitStack()
        tmp = stack.enter_context(atomic_path(self.path))
        f = stack.enter_context(h5py.File(tmp, "w", libver=("v110", "latest")))  # small metadata
        for name, dtype in (("ref_id", np.int64), ("view", np.int32)):  # the dataset's refs/id, a view index
            f.create_dataset(name, shape=(0,), maxshape=(None,), dtype=dtype, chunks=(self.ID_CHUNK,),
                             compression="gzip", compression_opts=1, shuffle=True)
        f.create_dataset("mask", shape=(0, self.height, self.width), maxshape=(None, self.height, self.width),
                         dtype=np.uint8, chunks=(1, self.height, self.width), compression="gzip",
                         compression_opts=1)
        f.attrs.update(self.made_for)
        self._stack, self._file = stack, f
        return self

    def __exit__(self, *exc: Any) -> bool | None:
        assert self._stack is not None
        if exc[0] is None:
            try:
                self._flush()
            except BaseException as error:  # the temporary file is removed, `path` left as it was
                if not self._stack.__exit__(type(error), error, error.__traceback__):
                    raise
                return None
        return self._stack.__exit__(*exc)

    def add(self, ref_ids: Sequence[int] | np.ndarray, views: Sequence[int] | np.ndarray,
            masks: np.ndarray) -> None:
        """Append B predictions: ref ids (B,), views (B,), masks (B, H, W) (nonzero = foreground)."""
        if self._file is None:
            raise RuntimeError("PredictionsWriter.add outside its `with` block")
        ref_ids = np.asarray(ref_ids)
        views = np.asarray(views)
        masks = np.asarray(masks)
        if masks.ndim != 3 or masks.shape[1:] != (self.height, self.width):
            raise ValueError(f"masks must be (B, {self.height}, {self.width}), got {masks.shape}")
        if not (ref_ids.shape == views.shape == masks.shape[:1]):
            raise ValueError(f"ref_ids {ref_ids.shape}, views {views.shape} and masks {masks.shape} must "
                             f"have one entry per prediction")
        for name, values in (("ref_ids", ref_ids), ("views", views)):
            if values.size and not np.issubdtype(values.dtype, np.integer):
                raise ValueError(f"{name} must be integers, got {values.dtype}")
        small = views.astype(np.int32)  # a view index; nothing is lost unless it is none
        if not np.array_equal(small, views):
            raise ValueError(f"views must be view indices, got {views[small != views][0]}")
        # Copies (astype, !=), so a caller may reuse its arrays for the next batch.
        self._buffer.append((ref_ids.astype(np.int64), small, (masks != 0).view(np.uint8)))
        self._buffered += masks.size
        if self._buffered >= self.BUFFER_PIXELS:
            self._flush()

    def _flush(self) -> None:
        assert self._file is not None
        if not self._buffer:
            return
        columns = [parts[0] if len(parts) == 1 else np.concatenate(parts) for parts in zip(*self._buffer)]
        self._buffer, self._buffered = [], 0
        n, b = self._file["ref_id"].shape[0], len(columns[0])
        for name, values in zip(("ref_id", "view", "mask"), columns):
            self._file[name].resize(n + b, axis=0)
            self._file[name][n:] = values
        self._views.update(np.unique(columns[1]).tolist())
        self._file.attrs["views"] = np.array(sorted(self._views), dtype=np.int32)


def write_predictions(path: Path | str, ref_ids: Sequence[int] | np.ndarray, views: Sequence[int] | np.ndarray,
                      masks: np.ndarray, *, dataset: Path | str | None = None, split: str | None = None) -> Path:
    """Write predictions for `clevr-remv evaluate`: mask i is the prediction for pair `ref_ids[i]`
    (the dataset's `refs/id`) in view `views[i]`; masks (P, H, W) bool or uint8 at the dataset's size.
    `dataset` and `split` are recorded, as `PredictionsWriter` does."""
    masks = np.asarray(masks)
    if masks.ndim != 3:
        raise ValueError(f"masks must be (P, H, W), got shape {masks.shape}")
    with PredictionsWriter(path, masks.shape[1], masks.shape[2], dataset=dataset, split=split) as out:
        out.add(ref_ids, views, masks)
    return Path(path)


class Predictions:
    """Predictions read from an HDF5 file or a PNG folder: ids and views up front, masks on demand."""

    def __init__(self, source: Path, ref_ids: np.ndarray, views: np.ndarray,
                 made_for: dict[str, str] | None = None) -> None:
        self.source = source
        self.ref_ids = ref_ids.astype(np.int64)
        self.views = views.astype(np.int64)
        self.made_for = made_for or {}  # what PredictionsWriter recorded: split, dataset_id, dataset

    def __len__(self) -> int:
        return len(self.ref_ids)

    def sizes(self) -> np.ndarray:
        """(P, 2) height and width of every mask."""
        raise NotImplementedError

    def mask(self, row: int) -> np.ndarray:
        """Prediction `row` as a boolean (H, W) mask."""
        raise NotImplementedError

    def close(self) -> None:
        pass

    def row_of(self) -> dict[tuple[int, int], int]:
        """(ref_id, view) -> row."""
        return {(int(r), int(v)): i for i, (r, v) in enumerate(zip(self.ref_ids, self.views))}


class H5Predictions(Predictions):
    def __init__(self, path: Path) -> None:
        try:
            self._file = h5py.File(path, "r")
        except OSError as e:
            raise OSError(f"{path}: not a readable HDF5 file ({e})") from None
        try:
            missing = [k for k in ("ref_id", "view", "mask") if not isinstance(self._file.get(k), h5py.Dataset)]
            if missing:
                raise ValueError(f"{path}: no dataset {', '.join(missing)} (expected ref_id, view, mask)")
            ref_ids, views, self._mask = self._file["ref_id"], self._file["view"], self._file["mask"]
            for name, ds in (("ref_id", ref_ids), ("view", views), ("mask", self._mask)):
                if not (np.issubdtype(ds.dtype, np.integer) or ds.dtype == np.bool_):
                    raise ValueError(f"{path}: {name} must be integer or bool, got {ds.dtype}")
            if ref_ids.ndim != 1 or views.shape != ref_ids.shape or self._mask.ndim != 3 \
                    or self._mask.shape[0] != ref_ids.shape[0]:
                raise ValueError(f"{path}: expected ref_id (P,), view (P,), mask (P, H, W); got {ref_ids.shape}, "
                                 f"{views.shape}, {self._mask.shape}")
            made_for = {key: str(self._file.attrs[key]) for key in ("split", "dataset_id", "dataset")
                        if key in self._file.attrs}
            super().__init__(path, ref_ids[()], views[()], made_for)
        except BaseException:
            self._file.close()
            raise

    def sizes(self) -> np.ndarray:
        return np.tile(np.array(self._mask.shape[1:], dtype=np.int64), (len(self), 1))

    def mask(self, row: int) -> np.ndarray:
        return self._mask[row] != 0

    def close(self) -> None:
        self._file.close()


class PngPredictions(Predictions):
    def __init__(self, folder: Path) -> None:
        pngs = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".png")
        badly_named = [p.name for p in pngs if not PNG_NAME.match(p.name)]
        if badly_named:
            raise ValueError(f"{folder}: {len(badly_named)} PNG file(s) not named <ref_id>_<view>.png "
                             f"(first: {badly_named[0]})")
        keys = np.array([[int(x) for x in PNG_NAME.match(p.name).groups()] for p in pngs],  # type: ignore[union-attr]
                        dtype=np.int64).reshape(-1, 2)
        self._paths = pngs
        super().__init__(folder, keys[:, 0], keys[:, 1])

    def sizes(self) -> np.ndarray:
        from PIL import Image

        out = np.zeros((len(self), 2), dtype=np.int64)
        for i, path in enumerate(self._paths):
            with Image.open(path) as im:  # reads the header only
                out[i] = im.height, im.width
        return out

    def mask(self, row: int) -> np.ndarray:
        from PIL import Image

        with Image.open(self._paths[row]) as im:
            if im.mode == "P":
                im = im.convert("RGBA")
            pixels = np.asarray(im)
            has_alpha = im.mode in ("LA", "La", "RGBA", "RGBa", "PA")
        if pixels.ndim == 3:
            return (pixels[..., :-1] if has_alpha else pixels).any(axis=2)
        return pixels != 0


def open_predictions(path: Path | str) -> Predictions:
    """An HDF5 predictions file or a folder of `<ref_id>_<view>.png` masks."""
    path = Path(path)
    if path.is_dir():
        return PngPredictions(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such predictions file or folder")
    return H5Predictions(path)


def check_made_for(preds: Predictions, root: Path | str, split: str) -> str | None:
    """Refuse, in one line naming both, predictions recorded for another dataset or another split
    than `split` of the dataset in `root`. Returns the warning to give once the predictions are
    otherwise found fit (so that an error stays one line), when something could not be checked."""
    made = preds.made_for
    if "dataset_id" in made:
        ours = dataset_id(require_manifest(root))
        if made["dataset_id"] != ours:
            raise ValueError(f"{preds.source} holds predictions for the dataset {made.get('dataset', '?')} "
                             f"(id {made['dataset_id']}), not for {root} (id {ours}): its ref_ids name "
                             f"other pairs; predict this dataset")
    if "split" in made and made["split"] != split:
        raise ValueError(f"{preds.source} holds predictions for the {made['split']!r} split, not for "
                         f"{split!r} (ref_ids restart in every split): evaluate it with --split "
                         f"{made['split']}, or predict the {split!r} split")
    unchecked = [what for what, key in (("dataset", "dataset_id"), ("split", "split")) if key not in made]
    if not unchecked:
        return None
    return (f"{preds.source} records no {' and no '.join(unchecked)} (written without "
            f"PredictionsWriter(..., dataset=, split=)): could not check that it was made for the {split!r} "
            f"split of {root}")
