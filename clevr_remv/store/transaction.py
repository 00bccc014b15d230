"""All or nothing: a command that changes several files of a dataset commits them together.

`clevr-remv expressions` rewrites every shard, the split files and dataset.json; `finalize`
writes the split files and dataset.json; `verify --quarantine` removes dataset.json and split
files and moves shards aside. Each must leave the dataset as it was or fully changed, whatever
stops it (an error, a full disk, SIGINT, SIGTERM, SIGKILL, a node that dies). One atomic rename
per file is not enough: a process killed between two renames leaves some files new and some old.

So a command (1) reads and checks everything first, (2) writes every new file to its hidden
temporary (`atomic.temp_path_for`) through `Transaction.stage`, and (3) `commit`s:

- every temporary is fsynced, then the journal `DIR/.transaction.json`, listing every step
  (temporary -> final renames, removals, moves) in order, appears in one atomic step (a complete
  file hard-linked to its name, which also fails if another command's journal is there);
- the steps run in order (dataset.json is the caller's last step, or its removal the first);
- the journal is removed.

A failure before the journal exists removes the temporaries: the dataset is unchanged. Once the
journal exists the change is decided: a failure or an interrupt during the steps completes them
on the way out, and after a SIGKILL the next command that opens the dataset (`roll_forward`,
called by `manifest.require_directory` and `cleanup.sweep_stale_temporaries`, so by render,
finalize, verify, expressions, export and every reader) completes them.

Why rolling forward is correct: the journal is written only after every temporary it names is
complete and on disk, and from then on nothing but its rename removes such a temporary (the
stale-temporary sweep skips the ones a journal lists). So for each rename step either the
temporary still exists (the rename has not happened: do it) or it does not (it happened); a
removal or a move whose source is gone has happened too. Each step is therefore idempotent,
replaying the journal any number of times, also while its own command is still running, ends
in the same state, and that state is exactly the one the command set out to write.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import uuid
from pathlib import Path, PurePosixPath
from types import TracebackType
from typing import Any

from clevr_remv.store.atomic import fsync_dir, fsync_file, temp_path_for, this_host

log = logging.getLogger(__name__)

JOURNAL_NAME = ".transaction.json"
JOURNAL_VERSION = 1
# What os.link raises on a filesystem without hard links (FAT, some FUSE and network mounts).
_NO_HARD_LINKS = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS}


class Transaction:
    """Stage new files, removals and moves under `root`; `commit` applies them all or none.

        with Transaction(root, "expressions") as change:
            write_shard_copy(into=change.stage(root / "train/shard-00000.h5"))
            write_manifest(into=change.stage(root / "dataset.json"))   # last
            change.commit()

    Leaving the block without `commit` (an exception, or none) removes every staged temporary
    and changes nothing. Steps run in the order they were added.
    """

    def __init__(self, root: Path | str, command: str) -> None:
        self.root = Path(root)
        self.command = command
        self.id = uuid.uuid4().hex
        self._steps: list[dict[str, str]] = []
        self._staged: list[Path] = []
        self._journaled = False
        self._done = False

    def _relative(self, path: Path | str) -> str:
        path = Path(path)
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            raise ValueError(f"{path} is outside the dataset {self.root}") from None

    def stage(self, final: Path | str) -> Path:
        """The temporary to write the new `final` into; it is renamed onto `final` at commit."""
        tmp = temp_path_for(Path(final))
        if tmp in self._staged:
            raise ValueError(f"{final} is staged twice")
        self._steps.append({"op": "replace", "source": self._relative(tmp), "target": self._relative(final)})
        self._staged.append(tmp)
        return tmp

    def remove(self, path: Path | str) -> None:
        """Remove `path` at commit (nothing if it is gone by then)."""
        self._steps.append({"op": "remove", "path": self._relative(path)})

    def move(self, source: Path | str, target: Path | str) -> None:
        """Move `source` to `target` at commit (same filesystem), never over an existing file:
        if `target` is taken by then, the next free `stem.N.suffix`."""
        self._steps.append({"op": "move", "source": self._relative(source), "target": self._relative(target)})

    def commit(self) -> list[str]:
        """Apply every step (one line per step done, e.g. "moved A to B"): all of them, or none
        if this raises before the journal is written."""
        if self._done or self._journaled:
            raise ValueError("a transaction commits once")
        if not self._steps:
            self._done = True
            return []
        for tmp in self._staged:
            if not tmp.is_file():
                raise ValueError(f"{tmp} was staged but never written")
            fsync_file(tmp)
        for directory in sorted({tmp.parent for tmp in self._staged}):
            fsync_dir(directory)
        self._write_journal()
        actions = _apply(self.root, self._steps)
        _close_journal(self.root)
        self._done = True
        return actions

    def _write_journal(self) -> None:
        journal = self.root / JOURNAL_NAME
        record = {"version": JOURNAL_VERSION, "id": self.id, "command": self.command,
                  "host": this_host(), "pid": os.getpid(), "steps": self._steps}
        tmp = temp_path_for(journal)
        try:
            tmp.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
            fsync_file(tmp)
            try:
                os.link(tmp, journal)  # complete when it appears, and never over another's
            except FileExistsError:
                raise FileExistsError(
                    f"{self.root} is being changed by another command (its journal {journal} exists); "
                    f"nothing was changed: run this again when that command has ended") from None
            except OSError as error:
                if error.errno not in _NO_HARD_LINKS or journal.exists():
                    raise
                os.replace(tmp, journal)  # atomic too, only not exclusive
            self._journaled = True
        finally:
            try:
                tmp.unlink(missing_ok=True)
            except OSError:  # the journal is written; a stray temporary is swept later
                pass
        fsync_dir(self.root)

    def _journal_is_mine(self) -> bool:
        """Whether our journal reached the disk (also when an interrupt came just after the link)."""
        if self._journaled:
            return True
        try:
            return _read_journal(self.root / JOURNAL_NAME).get("id") == self.id
        except (OSError, ValueError):
            return False

    def _discard(self) -> None:
        for tmp in self._staged:
            try:
                tmp.unlink(missing_ok=True)
            except OSError as error:  # a stale temporary: the next sweep removes it
                log.warning("could not remove %s: %s", tmp, error)

    def __enter__(self) -> "Transaction":
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> bool:
        if self._done:
            return False
        if self._journal_is_mine():
            # Stopped between the journal and its end: the change is decided, complete it now
            # (a KeyboardInterrupt during the renames, a rename that failed once). If that fails
            # too, the journal stays and the next command completes it.
            try:
                roll_forward(self.root)
            except Exception as error:  # noqa: BLE001 - the original exception is the one to report
                log.warning("%s: the change is recorded in %s and will be completed by the next "
                            "command that opens the dataset (%s)", self.root, JOURNAL_NAME, error)
        else:
            self._discard()
        return False


def _read_journal(journal: Path) -> dict[str, Any]:
    """The journal's record; ValueError naming the file if it is not one of ours."""
    text = journal.read_text(encoding="utf-8")
    try:
        record = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"{journal}: not a valid journal ({error})") from None
    steps = record.get("steps") if isinstance(record, dict) else None
    if not isinstance(steps, list) or record.get("version") != JOURNAL_VERSION:
        raise ValueError(f"{journal}: not a clevr-remv journal of version {JOURNAL_VERSION}")
    for step in steps:
        names = [step.get(key) for key in ("source", "target", "path") if key in step] if isinstance(step, dict) else []
        if (not names or step.get("op") not in ("replace", "remove", "move")
                or not all(isinstance(n, str) and _inside(n) for n in names)):
            raise ValueError(f"{journal}: step {step!r} is not one this program writes")
    return record


def _inside(name: str) -> bool:
    """A relative path that stays inside the dataset (a journal never names anything else)."""
    path = PurePosixPath(name)
    return bool(name) and not path.is_absolute() and ".." not in path.parts


def _free_name(target: Path) -> Path:
    """`target`, or `stem.1.h5`, `stem.2.h5`, ... if that name is taken (nothing is overwritten)."""
    candidate, n = target, 0
    while candidate.exists():
        n += 1
        candidate = target.with_name(f"{target.stem}.{n}{target.suffix}")
    return candidate


def _apply(root: Path, steps: list[dict[str, str]]) -> list[str]:
    """Run the steps that have not happened yet (each is idempotent: see the module docstring)."""
    actions, touched = [], set()
    for step in steps:
        if step["op"] == "replace":
            source, target = root / step["source"], root / step["target"]
            try:
                os.replace(source, target)
            except FileNotFoundError:
                if source.exists():  # the target's folder is gone: a real error
                    raise
                continue  # renamed before (by this command, or by an earlier roll-forward)
            actions.append(f"wrote {step['target']}")
            touched.add(target.parent)
        elif step["op"] == "remove":
            path = root / step["path"]
            try:
                path.unlink()
            except FileNotFoundError:
                continue
            actions.append(f"removed {step['path']}")
            touched.add(path.parent)
        else:  # move
            source = root / step["source"]
            if not source.exists():
                continue
            target = root / step["target"]
            target.parent.mkdir(parents=True, exist_ok=True)
            target = _free_name(target)
            os.replace(source, target)
            actions.append(f"moved {step['source']} to {target.relative_to(root).as_posix()}")
            touched.update((source.parent, target.parent))
    for directory in sorted(touched):
        fsync_dir(directory)
    return actions


def _close_journal(root: Path) -> None:
    (root / JOURNAL_NAME).unlink(missing_ok=True)
    fsync_dir(root)


def roll_forward(root: Path | str) -> list[str]:
    """Complete the change a stopped command left in `root`'s journal; [] when there is none.

    Cheap when there is nothing to do (one failed open), so every command that opens a dataset
    calls it first. Raises OSError naming the journal if the steps cannot be done here (a
    read-only copy): the files would otherwise be read half old, half new.
    """
    root = Path(root)
    journal = root / JOURNAL_NAME
    try:
        record = _read_journal(journal)
    except (FileNotFoundError, NotADirectoryError):
        return []
    try:
        actions = _apply(root, record["steps"])
        _close_journal(root)
    except OSError as error:
        raise OSError(f"{root} holds a change that stopped half-way ({journal}, `clevr-remv "
                      f"{record.get('command')}`) and it cannot be completed here: {error}") from error
    log.warning("%s: completed the change of an interrupted `clevr-remv %s` (pid %s on %s): %d of its %d "
                "step(s) were left", root, record.get("command"), record.get("pid"), record.get("host"),
                len(actions), len(record["steps"]))
    for line in actions:
        log.debug("completed: %s", line)
    return actions


def journal_temporaries(root: Path | str) -> set[Path] | None:
    """The temporaries `root`'s journal still needs (the sweep must keep them); None when a journal
    is there but unreadable (then no temporary can be known to be stale)."""
    root = Path(root)
    try:
        record = _read_journal(root / JOURNAL_NAME)
    except (FileNotFoundError, NotADirectoryError):
        return set()
    except (OSError, ValueError):
        return None
    return {root / step["source"] for step in record["steps"] if step["op"] == "replace"}
