"""Atomic file replacement: a shard or a manifest is either absent, the old one, or complete.

DESIGN.md promises that nothing half-written is ever mistaken for data, and a re-run
decides what to redo only by looking at final file names. So every writer works on a
hidden temporary file in the same directory (same filesystem, so `os.replace` is an
atomic rename) and renames it over the final name only after the data is on disk.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import re
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

# `.<final name>.tmp-<host>-<pid>`: the host may contain '-', the pid is the last field.
_TEMP_NAME = re.compile(r"^\.(?P<final>.+)\.tmp-(?P<host>.+)-(?P<pid>\d+)$")


def _this_host() -> str:
    return socket.gethostname().replace("/", "_") or "host"


def temp_path_for(final: Path) -> Path:
    """The hidden temporary name for `final`: `.shard-00000.h5.tmp-<host>-<pid>`.

    Hidden so that globbing `shard-*.h5` never picks it up; host and pid keep two
    processes that race on the same shard (on one machine, or on farm nodes sharing a
    filesystem) from writing into one file.
    """
    final = Path(final)
    return final.with_name(f".{final.name}.tmp-{_this_host()}-{os.getpid()}")


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


def pid_is_alive(pid: int) -> bool:
    """Whether a process with this id exists on this machine (signal 0 probes, sends nothing)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    except OSError as error:
        return error.errno != errno.ESRCH
    return not _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    """A killed process nobody has reaped yet (its parent died too, and PID 1 does not reap, as in
    some containers) still answers signal 0, but it can write nothing: Linux says 'Z' in /proc."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # not Linux, or gone meanwhile
        return False
    return stat.rpartition(")")[2].split()[:1] == ["Z"]


def stale_temporaries(root: Path) -> list[Path]:
    """Temporary files under `root` (and its sub-directories one level down) left by dead processes.

    Only files written by this host are considered: a pid says nothing about another
    machine's processes (farm nodes share the filesystem), so theirs are never touched.
    A file whose process is still alive is being written and is kept. (A recycled pid
    keeps a stale file; that errs on the safe side.)
    """
    root = Path(root)
    host = _this_host()
    if not root.is_dir():
        return []
    found = []
    for directory in [root, *sorted(p for p in root.iterdir() if p.is_dir())]:
        for path in sorted(directory.glob(".*.tmp-*")):
            match = _TEMP_NAME.match(path.name)
            if match and path.is_file() and match["host"] == host and not pid_is_alive(int(match["pid"])):
                found.append(path)
    return found


def sweep_stale_temporaries(root: Path) -> list[Path]:
    """Remove the temporary files of dead processes of this host under `root`; log and return them."""
    swept = []
    for path in stale_temporaries(root):
        try:
            size = path.stat().st_size
            path.unlink()
        except FileNotFoundError:  # another sweeper was faster
            continue
        log.info("removed stale temporary file %s (%d bytes; its process is gone)", path, size)
        swept.append(path)
    return swept
