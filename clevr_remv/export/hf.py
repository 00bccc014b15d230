"""`export hf`: Parquet files that Hugging Face `datasets` loads and the Hub serves as they are.

    OUT/data/<split>-NNNNN-of-MMMMM.parquet   one row per (pair, view), image and mask as PNG
    OUT/README.md                             the dataset card (clevr_remv.produce.card)
    OUT/export.json                           what was exported, with counts

`datasets.load_dataset(OUT)` finds the splits by the file names (its default `data/<split>-*`
pattern) and restores the features (Image for `image` and `mask`, a fixed-length list for `bbox`)
from the `huggingface` key of each file's schema metadata, the key `datasets` itself writes, so
no card or loading script is needed; `hf upload` (huggingface_hub) or `push_to_hub` publishes it.
The card names a SHA-256 digest of the files (`files_digest`, in `dataset_info.description`, and
`parquet.sha256` in export.json): `datasets` keys its cache of a local folder on the card, so a new
export into the same folder with other rows of the same sizes would otherwise load the old rows.

The rows are `RefDataset(DIR, split, views)`'s samples, in its order: the (pair, view) whose
referent is visible in that view (`refs/visible`); `include_hidden` adds the other (pair, view)
with `visible` false. Where a sentence names several objects or none (`--targets any`), `targets`
lists them, `mask` is their union (empty for none), `object` is 0 as in RefDataset, and the
referent's attributes are null. A row carries its view's whole image, as RefCOCO-style Hub
datasets do, so a scene's image repeats once per pair that refers into it.

Sizing: a row group holds at most ROW_GROUP_ROWS rows (9.5 MB at 480x320; the Hub viewer pages
by row group; a streamed first sample reads at least one, in practice pyarrow's first pre-buffered
range of up to 32 MiB: 28.7 MB of a 69 MB file, measured, so a file of push_to_hub's size is never
read whole for it), and a file is closed before the row group
that would take its rows' Arrow bytes past `max_file_bytes` (500 MB, `datasets`' `max_shard_size`), so files
stay under it unless a single row group is larger. Both depend only on the rows, never on the
number of worker processes: workers write each HDF5 shard's rows to a part file, and one pass
re-groups the parts, in shard order, into the final files.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import shutil
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from clevr_remv.data.selection import ViewSpec, describe_views
from clevr_remv.export.common import (
    ExportPlan,
    ExportView,
    image_id,
    run_shards,
    sample_id,
    staged_directory,
    summary,
    write_json,
)
from clevr_remv.export.png import png_bytes
from clevr_remv.scene.rig import view_position
from clevr_remv.truth.targets import target_mask

log = logging.getLogger("clevr_remv")

FORMAT = "hf"
ROW_GROUP_ROWS = 100  # 9.5 MB at 480x320 (95.6 kB per row, measured): well under pyarrow's 32 MiB read ranges
MAX_FILE_BYTES = 500 * 1000**2  # datasets' push_to_hub max_shard_size ("500MB")
DATA_DIR = "data"
PARTS_DIR = ".parts"  # per-shard rows, inside the staging folder, removed before it is installed
EXTRA = "pip install 'clevr-remv[hf]'"

_IMAGE = {"_type": "Image"}


def _value(dtype: str) -> dict[str, str]:
    return {"dtype": dtype, "_type": "Value"}


_ONE = " (null unless the sentence names exactly one object)"

# name -> (datasets feature as serialised in the schema metadata, one-line description for the card).
# `Sequence` with a length rather than `List`: datasets < 4 knows only Sequence, datasets >= 4 reads
# it as List(length=4); both give the same Arrow type, a fixed-size list.
FEATURES: dict[str, tuple[dict[str, Any], str]] = {
    "image": (_IMAGE, "the view's RGB image (PNG)"),
    "mask": (_IMAGE, "the referent's visible pixels in this view, the union of the targets' where the sentence "
             "names several, empty where it names none (1-bit PNG; numpy gives a bool array)"),
    "sentence": (_value("string"), "the referring expression"),
    "ref_id": (_value("int64"), "the pair's refs/id in its split (one sentence, its targets); RefDataset's "
               "ref_id, the ref_id of predictions"),
    "sample_id": (_value("int64"), "id of this (pair, view), unique across splits; the ref_id of export refcoco"),
    "pair_id": (_value("int64"), "deprecated: the same as ref_id, its name in exports of 0.3.0 and before"),
    "image_id": (_value("int64"), "id of this view of this scene; the image_id of export refcoco/coco"),
    "split": (_value("string"), "train, val or test"),
    "scene": (_value("int32"), "scene index within the split"),
    "view": (_value("int32"), "view index k = view_row * N + view_col of the N x N camera rig"),
    "view_row": (_value("int32"), "rig row of the view, 0 at the top"),
    "view_col": (_value("int32"), "rig column of the view, 0 at the left"),
    "object": (_value("int32"), "the referent's object id in the scene (mask value in the source shards); "
               "0 where the sentence names several objects or none"),
    "targets": ({"feature": _value("int32"), "_type": "Sequence"},
                "the object ids the sentence names, ascending: [object] for one referent, several, or [] for none"),
    "shape": (_value("string"), f"the referent's shape{_ONE}"),
    "color": (_value("string"), f"the referent's colour{_ONE}"),
    "size": (_value("string"), f"the referent's size{_ONE}"),
    "material": (_value("string"), f"the referent's material{_ONE}"),
    "bbox": ({"feature": _value("int32"), "length": 4, "_type": "Sequence"},
             "[x, y, width, height] in pixels of the mask; [0, 0, 0, 0] where it is empty (as pycocotools' "
             "toBbox gives)"),
    "visible": (_value("bool"), "the referent passes the dataset's visibility threshold in this view"),
    "visible_fraction": (_value("float32"),
                         "the referent's visible / amodal pixels in this view (NaN for datasets before schema 3)"),
}


def feature_types() -> list[dict[str, Any]]:
    """The features in the card's YAML form (`dataset_info.features`), as
    `datasets.Features._to_yaml_list()` gives them except `sequence` for `list`, which every
    `datasets` reads (versions before 4 know no `list`)."""
    types = []
    for name, (feature, _) in FEATURES.items():
        if feature["_type"] == "Sequence":
            length = {"length": feature["length"]} if "length" in feature else {}
            types.append({"name": name, "sequence": feature["feature"]["dtype"], **length})
        else:
            types.append({"name": name, "dtype": feature.get("dtype", feature["_type"].lower())})
    return types


def require_pyarrow() -> Any:
    """pyarrow, or a one-line error naming the extra that installs it."""
    try:
        import pyarrow
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        raise ValueError(f"export hf needs pyarrow: {EXTRA}") from None
    return pyarrow


def arrow_schema() -> Any:
    """The Arrow schema of every file, with the `huggingface` metadata that restores the features."""
    pa = require_pyarrow()
    image = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    types = {"Image": image, "string": pa.string(), "int64": pa.int64(),
             "int32": pa.int32(), "bool": pa.bool_(), "float32": pa.float32()}

    def arrow_type(feature: dict[str, Any]) -> Any:
        """A list of int32 is fixed-size where the feature has a length (bbox), variable otherwise (targets)."""
        if feature["_type"] == "Sequence":
            return pa.list_(types[feature["feature"]["dtype"]], feature.get("length", -1))
        return types[feature.get("dtype", feature["_type"])]

    fields = [pa.field(name, arrow_type(feature)) for name, (feature, _) in FEATURES.items()]
    info = {"info": {"features": {name: feature for name, (feature, _) in FEATURES.items()}}}
    return pa.schema(fields, metadata={"huggingface": json.dumps(info)})


def _writer_options(pa: Any, schema: Any) -> dict[str, Any]:
    """What datasets' own Parquet writer does: PNG bytes stored plain (compressing them gains
    nothing), the rest snappy with dictionaries; page indexes and, where pyarrow has it (>= 21),
    content-defined chunking, so a re-export that changes few rows uploads few new chunks to the
    Hub's deduplicating storage."""
    payload, leaves = ["image.bytes", "mask.bytes"], _leaves(schema)
    options: dict[str, Any] = {
        "compression": {leaf: ("none" if leaf in payload else "snappy") for leaf in leaves},
        "use_dictionary": [leaf for leaf in leaves if leaf not in payload],
        "column_encoding": {leaf: "PLAIN" for leaf in payload},
        "write_page_index": True,
    }
    if int(pa.__version__.split(".")[0]) >= 21:
        options["use_content_defined_chunking"] = {"min_chunk_size": 256 * 1024, "max_chunk_size": 1024 * 1024,
                                                   "norm_level": 0}
    return options


def _leaves(schema: Any) -> list[str]:
    """Parquet leaf column paths ("image.bytes", "bbox.list.element")."""
    import pyarrow as pa

    def walk(path: str, t: Any) -> list[str]:
        if pa.types.is_struct(t):
            return [leaf for f in t for leaf in walk(f"{path}.{f.name}", f.type)]
        if pa.types.is_fixed_size_list(t) or pa.types.is_list(t):
            return walk(f"{path}.list.element", t.value_type)
        return [path]

    return [leaf for f in schema for leaf in walk(f.name, f.type)]


# The box of an empty mask (a sentence that names nothing, a referent with no pixel in the view): what
# pycocotools' toBbox gives, rather than null, which pyarrow cannot read back from a fixed-size list
# column in Parquet (apache/arrow#35692: "Expected all lists to be of size=4 but index 1 had size=0").
EMPTY_BBOX = [0, 0, 0, 0]


def bbox(mask: np.ndarray) -> list[int]:
    """[x, y, width, height] of the True pixels (COCO's convention, whole pixels); EMPTY_BBOX if none."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if not len(rows):
        return list(EMPTY_BBOX)
    return [int(cols[0]), int(rows[0]), int(cols[-1] - cols[0] + 1), int(rows[-1] - rows[0] + 1)]


def _scenes(items: Iterator[ExportView]) -> Iterator[list[ExportView]]:
    """Group views_of's views (scene by scene, each scene's chosen views in order) per scene."""
    group: list[ExportView] = []
    for item in items:
        if group and item.scene != group[0].scene:
            yield group
            group = []
        group.append(item)
    if group:
        yield group


def _rows_of_scene(plan: ExportPlan, views: list[ExportView], include_hidden: bool) -> Iterator[dict[str, Any]]:
    """The rows of one scene in RefDataset's order: pair by pair, each pair's views in order."""
    images: dict[int, bytes] = {}
    for k, pair in enumerate(views[0].pairs):
        for item in views:
            visible = item.pairs[k].visible
            if not (visible or include_hidden):
                continue
            if item.view not in images:  # one encoding per view, shared by the pairs that use it
                images[item.view] = png_bytes(item.image)
            referent = target_mask(item.mask, pair.targets)  # RefDataset's mask: the union of the targets
            row, col = view_position(item.view, plan.grid)
            attributes = item.objects.get(pair.object, {})  # none unless there is exactly one target
            yield {
                "image": {"bytes": images[item.view], "path": item.file_name},
                "mask": {"bytes": png_bytes(referent), "path": None},
                "sentence": pair.sentence,
                "ref_id": pair.id,
                "sample_id": sample_id(item.split_no, pair.id, item.view),
                "pair_id": pair.id,  # the old name of ref_id, kept for readers of earlier exports
                "image_id": image_id(item.split_no, item.scene, item.view),
                "split": item.split, "scene": item.scene,
                "view": item.view, "view_row": row, "view_col": col,
                "object": pair.object,
                "targets": list(pair.targets),
                **{key: (str(attributes[key]) if key in attributes else None)
                   for key in ("shape", "color", "size", "material")},
                "bbox": bbox(referent),
                "visible": visible,
                "visible_fraction": item.pairs[k].visible_fraction,
            }


def _export_shard(plan: ExportPlan, split: str, path: Path, staging: Path,
                  tick: Callable[[], Any] | None) -> tuple[int, dict[str, Any]]:
    """Write one shard's rows to a part file (row groups as they come); its path and counts."""
    pa = require_pyarrow()
    import pyarrow.parquet as pq

    schema = arrow_schema()
    part = staging / PARTS_DIR / split / f"{path.stem}.parquet"
    part.parent.mkdir(parents=True, exist_ok=True)
    counts = Counter(views=0, rows=0, hidden=0)
    batch: list[dict[str, Any]] = []
    with pq.ParquetWriter(part, schema, compression="none") as writer:
        for views in _scenes(plan.views_of(split, path)):
            for row in _rows_of_scene(plan, views, getattr(plan, "include_hidden", False)):
                batch.append(row)
                counts.update(rows=1, hidden=int(not row["visible"]))
                if len(batch) == ROW_GROUP_ROWS:
                    writer.write_table(pa.Table.from_pylist(batch, schema=schema))
                    batch = []
            counts.update(views=len(views))
            if tick is not None:
                for _ in views:
                    tick()
        if batch:
            writer.write_table(pa.Table.from_pylist(batch, schema=schema))
    return counts["views"], {"split": split, "part": part, "counts": counts}


def _regroup(parts: list[Path], split: str, data: Path, max_file_bytes: int) -> tuple[list[Path], int]:
    """Copy the rows of `parts` (in order) into files of ROW_GROUP_ROWS-row groups, a new file
    before a group that would take the current one past `max_file_bytes`; named
    <split>-NNNNN-of-MMMMM.parquet once their number is known. A split without rows gets no
    file: `datasets` fails on a split whose files hold no row ("corresponds to no data").
    Also returns the rows' Arrow bytes, the split's `num_bytes` as `datasets` counts it."""
    pa = require_pyarrow()
    import pyarrow.parquet as pq

    schema = arrow_schema()
    options = _writer_options(pa, schema)
    files: list[Path] = []
    writer, size, total = None, 0, 0

    def write(group: Any) -> None:
        nonlocal writer, size, total
        nbytes = int(group.nbytes)
        total += nbytes
        if writer is None or (size and size + nbytes > max_file_bytes):
            if writer is not None:
                writer.close()
            files.append(data / f".{split}-{len(files):05d}.parquet")
            writer, size = pq.ParquetWriter(files[-1], schema, **options), 0
        writer.write_table(group)
        size += nbytes

    pending: list[Any] = []  # record batches not yet making a whole group
    rows = 0
    for part in parts:
        with pq.ParquetFile(part) as source:
            for batch in source.iter_batches(batch_size=ROW_GROUP_ROWS):
                pending.append(batch)
                rows += batch.num_rows
                while rows >= ROW_GROUP_ROWS:
                    table = pa.Table.from_batches(pending, schema=schema)
                    write(table.slice(0, ROW_GROUP_ROWS).combine_chunks())
                    rest = table.slice(ROW_GROUP_ROWS)
                    pending, rows = rest.to_batches(), rest.num_rows
        part.unlink()  # its rows are in `pending` or written: the export needs its size once, not twice
    if rows:
        write(pa.Table.from_batches(pending, schema=schema).combine_chunks())
    if writer is not None:
        writer.close()
    final = [data / f"{split}-{k:05d}-of-{len(files):05d}.parquet" for k in range(len(files))]
    for tmp, path in zip(files, final):
        tmp.rename(path)
    return final, total


def files_digest(root: Path, files: dict[str, list[Path]]) -> str:
    """SHA-256 over the Parquet files in split and file order, each as its path under `root` and its
    bytes: it changes whenever a row does, and only then (a new export of the same data writes the same
    bytes), so the card that carries it makes `datasets` cache each export's rows apart."""
    digest = hashlib.sha256()
    for split in sorted(files):
        for path in files[split]:
            digest.update(f"{path.relative_to(root).as_posix()}\0".encode())
            with open(path, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    digest.update(block)
    return digest.hexdigest()


def _card(plan: ExportPlan, counts: dict[str, Counter], files: dict[str, list[Path]],
          num_bytes: dict[str, int], sha256: str) -> str:
    """The dataset card (README.md): the dataset's description with the export's splits, files and columns."""
    from clevr_remv.produce.card import dataset_card, dataset_report

    manifest = plan.reader.manifest
    report = dataset_report(manifest, {s: plan.reader.shard_paths(s) for s in plan.splits})
    parquet = {"views": list(plan.views), "rows": {s: counts[s]["rows"] for s in plan.splits},
               "files": {s: len(files[s]) for s in plan.splits},
               "features": {name: text for name, (_, text) in FEATURES.items()},
               "feature_types": feature_types(), "num_bytes": num_bytes, "sha256": sha256}
    return dataset_card(manifest, report, parquet=parquet)


def export_hf(root: Path, out: Path, views: ViewSpec = "center", splits: list[str] | None = None, *,
              include_hidden: bool = False, max_file_bytes: int = MAX_FILE_BYTES, overwrite: bool = False,
              workers: int = 1, progress: bool = False) -> dict[str, Any]:
    """Export the chosen views and splits of the dataset in `root` as Parquet into `out`; the summary."""
    require_pyarrow()
    if max_file_bytes <= 0:
        raise ValueError(f"--max-file-size: give a positive size, not {max_file_bytes} bytes")
    plan = ExportPlan(root, views, splits)
    plan.include_hidden = include_hidden  # read by _export_shard, in worker processes too
    log.info("exporting %s, views %s, as Parquet into %s", ", ".join(plan.splits),
             describe_views(plan.views, plan.grid), out)
    counts = {s: Counter(views=0, rows=0, hidden=0) for s in plan.splits}
    with staged_directory(out, root, overwrite) as staging:
        parts: dict[str, list[Path]] = {s: [] for s in plan.splits}
        for shard in run_shards(plan, _export_shard, staging, workers, progress):
            parts[shard["split"]].append(shard["part"])
            counts[shard["split"]].update(shard["counts"])
        if not any(c["rows"] for c in counts.values()):  # OUT would hold no file load_dataset can read
            raise ValueError(f"nothing to export: {', '.join(plan.splits)} in views {describe_views(plan.views, plan.grid)} "
                             + ("hold no referring pair" if include_hidden else
                                "hold no (pair, view) whose referent is visible (--include-hidden exports hidden ones)"))
        (staging / DATA_DIR).mkdir()
        regrouped = {s: _regroup(parts[s], s, staging / DATA_DIR, max_file_bytes) for s in plan.splits}
        files = {s: paths for s, (paths, _) in regrouped.items()}
        for split in (s for s in plan.splits if not files[s]):
            log.warning("split %r has no rows to export: no Parquet file, so load_dataset(%s) has no %r split",
                        split, out, split)
        shutil.rmtree(staging / PARTS_DIR, ignore_errors=True)
        result = summary(FORMAT, plan, out, {s: dict(c) for s, c in counts.items()})
        # OUT is made to be published as it is: no path of this machine in it, the folder names only.
        result.update(source=plan.root.resolve().name, out=".")
        result["parquet"] = {"row_group_rows": ROW_GROUP_ROWS, "max_file_bytes": max_file_bytes,
                             "include_hidden": include_hidden,
                             "files": {s: [str(p.relative_to(staging)) for p in files[s]] for s in plan.splits},
                             "bytes": {s: sum(p.stat().st_size for p in files[s]) for s in plan.splits},
                             "sha256": files_digest(staging, files)}
        (staging / "README.md").write_text(_card(plan, counts, files, {s: n for s, (_, n) in regrouped.items()},
                                                 result["parquet"]["sha256"]), encoding="utf-8")
        write_json(result, staging / "export.json")
    return result


def bytes_per_row(result: dict[str, Any]) -> float:
    """Mean Parquet bytes per row of an export's summary (NaN without rows), for logs and benchmarks."""
    rows = sum(c["rows"] for c in result["splits"].values())
    return sum(result["parquet"]["bytes"].values()) / rows if rows else math.nan
