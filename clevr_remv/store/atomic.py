"""Atomic file replacement: a shard or a manifest is either absent, the old one, or complete.

The output contract promises that nothing half-written is ever mistaken for data, and a re-run
decides what to redo only by looking at final file names. So every writer works on a
hidden temporary file in the same directory (same filesystem, so `os.replace` is an
atomic rename) and renames it over the final name only after the data is on disk.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import re
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

# `.<final name>.tmp-<host>-<pid>`: the host may contain '-', the pid is the last field.
_TEMP_NAME = re.compile(r"^\.(?P<final>.+)\.tmp-(?P<host>.+)-(?P<pid>\d+)$")


def this_host() -> str:
    return socket.gethostname().replace("/", "_") or "host"


def temp_path_for(final: Path) -> Path:
    """The hidden temporary name for `final`: `.shard-00000.h5.tmp-<host>-<pid>`.

    Hidden so that globbing `shard-*.h5` never picks it up; host and pid keep two
    processes that race on the same shard (on one machine, or on farm nodes sharing a
    filesystem) from writing into one file.
    """
    final = Path(final)
    return final.with_name(f".{final.name}.tmp-{this_host()}-{os.getpid()}")


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


def json_text(obj: Any) -> str:
    """`obj` as the indented JSON this package writes (manifests, reports)."""
    return json.dumps(obj, indent=2, ensure_ascii=False) + "\n"


def write_json_atomic(path: Path, obj: Any) -> None:
    """Write `obj` as indented JSON to `path` atomically (readers see old or new, never half)."""
    text = json_text(obj)
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


def is_stale_temporary(path: Path, host: str, final: str | None = None) -> bool:
    """Whether `path` is a temporary (of `final`, when given) left by a dead process of `host`."""
    match = _TEMP_NAME.match(path.name)
    return bool(match and match["host"] == host and (final is None or match["final"] == final)
                and not pid_is_alive(int(match["pid"])))


def stale_temporaries_of(final: Path) -> list[Path]:
    """The temporaries of `final` (files or folders beside it) left by dead processes of this host."""
    final = Path(final)
    if not final.parent.is_dir():
        return []
    host = this_host()
    return sorted(p for p in final.parent.iterdir() if is_stale_temporary(p, host, final.name))


def exchange_paths(a: Path, b: Path) -> bool:
    """Swap `a` and `b` (files or folders, both existing, same filesystem) in one atomic step.

    Linux's renameat2(RENAME_EXCHANGE): a reader, or a kill, sees either both old or both
    swapped. Returns False, having changed nothing, where the system or the filesystem cannot
    (other systems, old kernels, some network filesystems); the caller then renames twice.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):  # a libc without it (glibc before 2.28)
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    renameat2.restype = ctypes.c_int
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(a), None, str(b))
