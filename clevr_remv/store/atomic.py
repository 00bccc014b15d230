"""Atomic file replacement: a shard or a manifest is either absent, the old one, or complete.

DESIGN.md promises that nothing half-written is ever mistaken for data, and a re-run
decides what to redo only by looking at final file names. So every writer works on a
hidden temporary file in the same directory (same filesystem, so `os.replace` is an
atomic rename) and renames it over the final name only after the data is on disk.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def temp_path_for(final: Path) -> Path:
    """The hidden temporary name for `final`: `.shard-00000.h5.tmp-<host>-<pid>`.

    Hidden so that globbing `shard-*.h5` never picks it up; host and pid keep two
    processes that race on the same shard (on one machine, or on farm nodes sharing a
    filesystem) from writing into one file.
    """
    final = Path(final)
    host = socket.gethostname().replace("/", "_") or "host"
    return final.with_name(f".{final.name}.tmp-{host}-{os.getpid()}")


def fsync_file(path: Path) -> None:
    """Flush a closed file's data to disk, so the rename never exposes unwritten blocks."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(directory: Path) -> None:
    """Persist a rename in `directory` (best effort: not every OS can open directories)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextmanager
def atomic_path(final: Path) -> Iterator[Path]:
    """Yield a temporary path to write; move it onto `final` only if the block succeeds.

    The caller must have closed the file by the end of the block. On any exception
    (KeyboardInterrupt included) the temporary file is removed and `final` is left as it
    was, whether absent or an older complete version.
    """
    final = Path(final)
    tmp = temp_path_for(final)
    try:
        yield tmp
        fsync_file(tmp)
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(final.parent)


def write_json_atomic(path: Path, obj: Any) -> None:
    """Write `obj` as indented JSON to `path` atomically (readers see old or new, never half)."""
    text = json.dumps(obj, indent=2, ensure_ascii=False) + "\n"
    with atomic_path(Path(path)) as tmp:
        tmp.write_text(text, encoding="utf-8")
