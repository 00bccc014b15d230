"""Output paths checked before the work, and errors that name the user's paths.

Every command checks each path it will write before it reads or computes anything, so a
typo costs a second, not an evaluation or an export, and the error is one line naming the
path as the user gave it:

- a file (`evaluate --json/--plot`, `show --out/--html`): its suffix names the format, its
  folder exists (it is not created), and a file can be created there; the path is not a folder.
- a folder (`export --out`, `stats --out`): not an existing file; it and any missing parent
  folders are created by the command, so the nearest existing one must be a folder that
  takes new files. A command that writes a whole folder (the exports, `render`) refuses one
  that holds other things (`refuse_non_empty`).

Writing itself goes through `store.atomic` (a hidden temporary renamed into place), whose
name must never reach the user: `naming_final_paths` turns an OSError about a temporary
into one about the final path.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

PICTURE_SUFFIXES = (".png", ".svg", ".pdf")  # what matplotlib writes by suffix, for every figure
HTML_SUFFIXES = (".html", ".htm")
JSON_SUFFIXES = (".json",)

# `.<final name>.tmp-<host>-<pid>` (store.atomic.temp_path_for) inside a path or a message.
_TEMPORARY = re.compile(r"(?<![^/\\'\"\s=])\.(?P<final>[^/\\'\"\s]+?)\.tmp-[^/\\'\"\s]+?-\d+(?![^/\\'\"\s])")


class BadOutput(ValueError):
    """An output path that cannot be written as asked; the message names it as given."""

    def __init__(self, path: Path | str, reason: str) -> None:
        super().__init__(f"cannot write {path}: {reason}")
        self.path = Path(path)


def _listing(suffixes: Sequence[str]) -> str:
    return ", ".join(suffixes[:-1]) + f" or {suffixes[-1]}" if len(suffixes) > 1 else suffixes[0]


def _probe(directory: Path, path: Path) -> None:
    """Create and remove a file in `directory`: the only test that /proc, a read-only mount or
    a full quota really fail (os.access says yes to root everywhere)."""
    try:
        fd, probe = tempfile.mkstemp(prefix=".clevr-remv-probe-", dir=directory)
    except OSError as error:
        raise BadOutput(path, f"cannot create files in {directory} ({error.strerror or error})") from None
    os.close(fd)
    os.unlink(probe)


def check_suffix(path: Path | str, suffixes: Sequence[str], option: str) -> str:
    """The format `path`'s suffix names ("png"), or BadOutput when it is none of `suffixes`."""
    path = Path(path)
    if path.suffix.lower() not in suffixes:
        given = f"not {path.suffix}" if path.suffix else "it has none"
        raise BadOutput(path, f"{option} takes a {_listing(suffixes)} file name ({given})")
    return path.suffix.lower()[1:]


def check_output_file(path: Path | str, suffixes: Sequence[str], option: str) -> Path:
    """Raise BadOutput unless `path` can be written as a file in one of `suffixes`' formats.

    The suffix is compared case-insensitively; the file's folder must already exist.
    """
    path = Path(path)
    if path.is_dir():
        raise BadOutput(path, f"it is a directory ({option} takes a file name)")
    check_suffix(path, suffixes, option)
    folder = path.parent
    if not folder.exists():
        raise BadOutput(path, f"directory {folder} does not exist")
    if not folder.is_dir():
        raise BadOutput(path, f"{folder} is not a directory")
    _probe(folder, path)
    return path


def check_output_dir(path: Path | str, option: str, *, beside: bool = False) -> Path:
    """Raise BadOutput unless `path` can be (created and) written as a folder.

    Missing folders, `path` and its parents, are left for the command to create; the nearest
    existing one must take new files. `beside`: the command builds the folder as a hidden
    sibling and renames it into place (export), so it is the parent that must take them.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise BadOutput(path, f"{option} names a folder, and {path} is a file")
    nearest = path.parent if beside else path
    while not nearest.exists() and nearest != nearest.parent:
        nearest = nearest.parent
    if not nearest.is_dir():
        raise BadOutput(path, f"{nearest} is not a directory")
    _probe(nearest, path)
    return path


def refuse_non_empty(path: Path | str, option: str, remedy: str, entries: Sequence[Path] | None = None) -> None:
    """ValueError `OPTION PATH is not empty (REMEDY)` when `entries` (default: everything in the folder
    `path`) holds anything: every command that writes a whole folder refuses one that holds other
    things, in these words (the exports, `render --out`)."""
    path = Path(path)
    if entries is None:
        entries = [next(path.iterdir())] if path.is_dir() and any(path.iterdir()) else []
    if entries:
        raise ValueError(f"{option} {path} is not empty ({remedy})")


def final_name(text: str) -> str:
    """`text` with every atomic-write temporary name replaced by the final name it stands for."""
    return _TEMPORARY.sub(lambda m: m["final"], text)


@contextmanager
def naming_final_paths() -> Iterator[None]:
    """An OSError raised inside that names a temporary (`.iou.png.tmp-host-123`) is raised again
    as `cannot write <final path>: <reason>`; every other exception passes unchanged."""
    try:
        yield
    except OSError as error:
        named = [str(f) for f in (error.filename, error.filename2) if f is not None]
        if not any(_TEMPORARY.search(text) for text in [*named, str(error)]):
            raise
        if named and error.strerror:
            message = f"cannot write {final_name(named[0])}: {error.strerror}"
        else:
            message = final_name(str(error))
        raise OSError(message) from error
