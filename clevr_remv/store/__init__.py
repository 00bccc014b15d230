"""HDF5 storage: atomic shard writes, the manifest, and the reading API (docs/output-format.md)."""

from clevr_remv.store.atomic import atomic_path, write_json_atomic
from clevr_remv.store.cleanup import sweep_stale_temporaries
from clevr_remv.store.manifest import (
    MANIFEST_NAME,
    dataset_id,
    read_manifest,
    require_manifest,
    write_manifest,
)
from clevr_remv.store.reader import DatasetReader, ShardReader
from clevr_remv.store.refs import RefTable
from clevr_remv.store.shard import (
    SCHEMA_VERSION,
    ShardWriter,
    bad_pixel_chunk,
    read_shard_attrs,
    replace_refs,
    shard_is_complete,
    write_shard,
)
from clevr_remv.store.split_files import split_file_path, write_split_files

__all__ = [
    "MANIFEST_NAME",
    "SCHEMA_VERSION",
    "DatasetReader",
    "RefTable",
    "ShardReader",
    "ShardWriter",
    "atomic_path",
    "bad_pixel_chunk",
    "dataset_id",
    "read_manifest",
    "read_shard_attrs",
    "require_manifest",
    "replace_refs",
    "shard_is_complete",
    "split_file_path",
    "sweep_stale_temporaries",
    "write_json_atomic",
    "write_manifest",
    "write_shard",
    "write_split_files",
]
