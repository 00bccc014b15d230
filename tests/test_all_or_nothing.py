"""All or nothing (issue #15): `expressions`, `finalize`, `verify --quarantine` and the exports
leave the dataset (or OUT) as it was or fully updated, wherever they fail or are killed;
`verify` then passes and running the command again completes the job.

Failures are injected at every step: the k-th file-system call (a file's fsync, a rename, a
link, a removal) raises OSError once (a full disk: the command's own handlers run) or raises
`Killed` there, and from then on every call that would change the disk raises it too (a SIGKILL:
nothing more reaches the disk, which each such test checks by listing the tree at the death and
after; the journal stays). Real SIGKILLs of a `clevr-remv` subprocess, at chosen steps and at a
random moment, check the same without any handler running.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import random
import shutil
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from unittest import mock

import h5py
import pytest
from conftest import fill_up, run_cli, small_filesystem, templates_with_zero_hop
from test_verify import VAL, flip_byte_in_chunk

JOURNAL = ".transaction.json"


class Killed(BaseException):
    """The process died at this call: nothing after it reaches the disk."""


# Every os function that changes the disk. After a simulated death each raises Killed (os.open only
# where it opens for writing), and so do open() and h5py.File for writing: nothing reaches the disk.
MUTATING = ("replace", "rename", "renames", "link", "symlink", "unlink", "remove", "rmdir", "removedirs", "mkdir",
            "makedirs", "truncate", "ftruncate", "write", "fsync", "fdatasync", "chmod", "chown", "utime",
            "sendfile", "copy_file_range", "open")
# The steps a death may come at: each call that changes what a file name holds, and each sync.
DEATH_STEPS = ("fsync", "replace", "rename", "link", "unlink", "remove", "rmdir", "mkdir")
WRITING = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


def tree_listing(root: Path) -> dict[str, tuple[int, int, int]]:
    """Every file and folder under `root`, hidden ones too: (size, mtime in ns, inode). Reads only."""
    listing = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(folder, name)
            info = os.stat(path)
            listing[os.path.relpath(path, root)] = (info.st_size if name in files else 0, info.st_mtime_ns, info.st_ino)
    return listing


class Steps:
    """What `failing_at` saw: the steps counted, and the tree under `root` at the death (None: no death)."""

    def __init__(self, root: Path | None) -> None:
        self.root, self.count, self.dead, self.at_death = root, 0, False, None

    def __call__(self) -> int:
        return self.count

    def die(self) -> None:
        if not self.dead:
            self.dead = True
            self.at_death = tree_listing(self.root) if self.root else None
        raise Killed(f"killed at file-system call {self.count}")


def _writes(name: str, args: tuple, kwargs: dict) -> bool:
    """Whether this call would change the disk (`open` and `os.open` only when they open for writing)."""
    if name == "os.open":
        return bool((args[1] if len(args) > 1 else kwargs.get("flags", 0)) & WRITING)
    if name == "h5py.File.__init__":
        args = args[1:]  # (self, name, mode)
    if name in ("open", "io.open", "h5py.File.__init__"):
        mode = args[1] if len(args) > 1 else kwargs.get("mode", "r")
        return not (isinstance(mode, str) and mode.strip("bt") == "r") and not isinstance(args[0], int)
    return True


@contextmanager
def failing_at(k: int, mode: str, names: tuple[str, ...], root: Path | None = None) -> Iterator[Steps]:
    """The k-th call of `os.<names>` (fsync counted on regular files only) fails: mode "error"
    raises OSError(ENOSPC) once; mode "dead" counts DEATH_STEPS instead and raises Killed there,
    and from then on at every call of MUTATING, open() and h5py.File that would write. Yields the
    Steps, whose `at_death` lists the tree under `root` at that moment."""
    import builtins
    import io

    steps = Steps(root)
    counted = DEATH_STEPS if mode == "dead" else names

    def wrap(name: str, real: Callable) -> Callable:
        def call(*args, **kwargs):
            if steps.dead and _writes(name, args, kwargs):
                steps.die()
            if name.removeprefix("os.") not in counted or (name == "os.fsync" and not stat.S_ISREG(
                    os.fstat(args[0]).st_mode)):  # a folder's fsync: best effort, not a step
                return real(*args, **kwargs)
            steps.count += 1
            if mode == "dead" and steps.count >= k:
                steps.die()
            if mode == "error" and steps.count == k:
                raise OSError(errno.ENOSPC, "No space left on device (injected)")
            return real(*args, **kwargs)
        return call

    with ExitStack() as stack:
        patched = [(os, name, f"os.{name}") for name in (MUTATING if mode == "dead" else names)]
        if mode == "dead":
            patched += [(builtins, "open", "open"), (io, "open", "io.open"), (h5py.File, "__init__", "h5py.File.__init__")]
        for owner, name, label in patched:
            stack.enter_context(mock.patch.object(owner, name, wrap(label, getattr(owner, name))))
        yield steps


@pytest.fixture(autouse=True)
def no_fsync(monkeypatch: pytest.MonkeyPatch) -> None:
    """In this process fsync only counts (for `failing_at`): it guards against power loss, which
    no test here simulates, and it made this file three times slower."""
    monkeypatch.setattr(os, "fsync", lambda fd: None)


def state(root: Path) -> dict[str, object]:
    """What a reader of `root` sees, hidden files aside: dataset.json, and the refs and pair
    count of every shard and split file (the digest of one that cannot be read)."""
    seen: dict[str, object] = {}
    for path in sorted(root.rglob("*")):
        if not path.is_file() or path.name.startswith("."):
            continue
        name = path.relative_to(root).as_posix()
        if path.suffix == ".h5":
            try:
                with h5py.File(path, "r") as f:
                    seen[name] = (f["refs/expression"].asstr()[()].tolist(), f["refs/id"][()].tolist(),
                                  int(f.attrs["pair_count"]))
            except (OSError, KeyError):
                seen[name] = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            seen[name] = path.read_text()
    return seen


def hidden(root: Path) -> list[str]:
    """Hidden files in `root` and its folders (temporaries, the journal); the quarantine aside."""
    found = [p for d in [root, *root.iterdir()] if d.is_dir() for p in d.iterdir() if p.name.startswith(".")]
    return sorted(p.relative_to(root).as_posix() for p in found if p.name != ".quarantine")


def left_for_the_sweep(root: Path) -> bool:
    """Whether every hidden file left in `root` is a temporary that the next command sweeps once its
    process is gone. In this process a "dead" command's pid lives on, so its temporaries outlive it
    here (the real SIGKILLs below check that they are swept)."""
    from clevr_remv.store import atomic
    from clevr_remv.store.cleanup import stale_temporaries

    alive = atomic.pid_is_alive
    with mock.patch.object(atomic, "pid_is_alive", lambda pid: pid != os.getpid() and alive(pid)):
        sweepable = sorted(p.relative_to(root).as_posix() for p in stale_temporaries(root))
    assert hidden(root) == sweepable, (hidden(root), sweepable)
    return True


def verify_ok(root: Path) -> None:
    result = run_cli("verify", str(root), "--no-progress")
    assert result.exit_code == 0, result.output


@pytest.fixture(scope="module")
def templates(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The templates with other zero-hop sentences, so that `expressions` changes the refs."""
    return templates_with_zero_hop(tmp_path_factory, "Please find the <Z> <C> <M> <S>.")


@pytest.fixture(scope="module")
def regenerated(tiny_dataset: Path, templates: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The tiny dataset's state before and after a clean `expressions --templates`."""
    out = Path(shutil.copytree(tiny_dataset, tmp_path_factory.mktemp("regenerated") / "out"))
    result = run_cli("expressions", str(out), "--templates", str(templates))
    assert result.exit_code == 0, result.output
    old, new = state(tiny_dataset), state(out)
    assert old != new and old.keys() == new.keys()
    assert any("Please find the" in sentence for sentence in new["train.h5"][0])
    return {"old": old, "new": new}


def copy(tiny_dataset: Path, where: Path) -> Path:
    shutil.rmtree(where, ignore_errors=True)
    return Path(shutil.copytree(tiny_dataset, where))


# ---------------------------------------------------------------------------- expressions


def test_expressions_with_a_damaged_shard_changes_nothing_and_names_it(tiny_dataset: Path, templates: Path,
                                                                       regenerated: dict, tmp_path: Path) -> None:
    """The bug of issue #15: the train shard was rewritten before the damaged val shard failed."""
    out = copy(tiny_dataset, tmp_path / "out")
    (out / VAL).write_bytes((out / VAL).read_bytes()[:5000])
    before = state(out)
    result = run_cli("expressions", str(out), "--templates", str(templates))
    assert result.exit_code == 1
    last = result.output.strip().splitlines()[-1]
    assert last.startswith(f"Error: {out / VAL} is damaged or missing (") and "clevr-remv verify" in last
    assert state(out) == before and hidden(out) == []
    assert state(out)["train/shard-00000.h5"] == regenerated["old"]["train/shard-00000.h5"]


def test_expressions_without_room_for_the_new_shards_changes_nothing(tiny_dataset: Path, templates: Path,
                                                                     regenerated: dict, tmp_path: Path) -> None:
    """On a real filesystem of its own with 50 KB left (tests/conftest.py), less than the new shards need."""
    with small_filesystem(tmp_path / "disk") as disk:
        out = copy(tiny_dataset, disk / "out")
        fill_up(disk, 50_000)
        result = run_cli("expressions", str(out), "--templates", str(templates))
        assert result.exit_code == 1
        assert "GB free in" in result.output and "nothing was changed" in result.output
        assert state(out) == regenerated["old"] and hidden(out) == []


@pytest.mark.parametrize("mode", ["error", "dead"])
def test_expressions_failing_at_any_step_leaves_it_old_or_new(tiny_dataset: Path, templates: Path, regenerated: dict,
                                                              tmp_path: Path, mode: str) -> None:
    old, new = regenerated["old"], regenerated["new"]
    k = 0
    while True:
        k += 1
        out = copy(tiny_dataset, tmp_path / "out")
        with failing_at(k, mode, ("fsync", "replace", "link"), out) as calls:
            try:
                result = run_cli("expressions", str(out), "--templates", str(templates))
            except Killed:
                pass
            else:
                assert result.exit_code == (0 if calls() < k else 1), (k, calls(), result.output)
        assert calls.at_death in (None, tree_listing(out)), f"the disk changed after the death at step {k}"
        if mode == "error":  # the command's own handlers ran: nothing to finish, nothing left over
            assert state(out) in (old, new), f"mixed after a failure at step {k}"
            assert hidden(out) == [], k
        verify_ok(out)  # completes what a killed command left in its journal
        assert state(out) in (old, new), f"mixed after a kill at step {k}"
        assert JOURNAL not in hidden(out)
        assert run_cli("expressions", str(out), "--templates", str(templates)).exit_code == 0
        assert state(out) == new and left_for_the_sweep(out), k
        if calls() < k:  # the command ran to its end without reaching step k
            break
    assert k > 8  # every file's fsync and rename, and the journal, were steps


# ---------------------------------------------------------------------------- finalize


@pytest.mark.parametrize("mode", ["error", "dead"])
def test_finalize_failing_at_any_step_leaves_it_old_or_new(tiny_dataset: Path, tmp_path: Path, mode: str) -> None:
    """A farm's shards without split files, card and dataset.json; finalize writes the five together."""
    new = state(tiny_dataset)
    k = 0
    while True:
        k += 1
        out = copy(tiny_dataset, tmp_path / "out")
        for name in ("dataset.json", "train.h5", "val.h5", "test.h5", "README.md"):
            (out / name).unlink()
        old = state(out)
        with failing_at(k, mode, ("fsync", "replace", "link"), out) as calls:
            try:
                result = run_cli("finalize", str(out))
            except Killed:
                pass
            else:
                assert result.exit_code == (0 if calls() < k else 1), result.output
        assert calls.at_death in (None, tree_listing(out)), f"the disk changed after the death at step {k}"
        if mode == "error":
            assert state(out) in (old, new), f"mixed after a failure at step {k}"
            assert hidden(out) == [], k
        verify_ok(out)
        assert state(out) in (old, new), f"mixed after a kill at step {k}"
        assert run_cli("finalize", str(out)).exit_code == 0
        assert state(out) == new and left_for_the_sweep(out), k
        if calls() < k:
            break
    assert k > 6


# ---------------------------------------------------------------------------- verify --quarantine


@pytest.mark.parametrize("mode", ["error", "dead"])
def test_quarantine_failing_at_any_step_moves_all_or_nothing(tiny_dataset: Path, tmp_path: Path, mode: str) -> None:
    def damaged() -> Path:
        out = copy(tiny_dataset, tmp_path / "out")
        flip_byte_in_chunk(out / VAL, "masks", 0)
        return out

    out = damaged()
    old = state(out)
    assert run_cli("verify", str(out), "--no-progress", "--quarantine").exit_code == 1
    new = state(out)
    assert f".quarantine/{VAL}" in new and VAL not in new and "dataset.json" not in new and "val.h5" not in new
    k = 0
    while True:
        k += 1
        out = damaged()
        with failing_at(k, mode, ("fsync", "replace", "link", "unlink"), out) as calls:
            try:
                assert run_cli("verify", str(out), "--no-progress", "--quarantine").exit_code == 1
            except Killed:
                pass
        assert calls.at_death in (None, tree_listing(out)), f"the disk changed after the death at step {k}"
        if mode == "error":
            assert state(out) in (old, new), f"mixed after a failure at step {k}"
        assert run_cli("verify", str(out), "--no-progress").exit_code == 1  # (it is bad either way)
        assert state(out) in (old, new), f"mixed after a kill at step {k}"
        assert JOURNAL not in hidden(out)
        assert run_cli("verify", str(out), "--no-progress", "--quarantine").exit_code == 1
        assert state(out) == new and left_for_the_sweep(out), k
        if calls() < k:
            break
    assert k > 3


# ---------------------------------------------------------------------------- real SIGKILLs

# Runs `clevr-remv ARGS` and sends itself SIGNAL (SIGKILL, SIGTERM, SIGINT) at the K-th call of
# WHAT, before or after it: "fs" counts renames (os.replace, os.link and the export's folder swap),
# "fsync" a file's fsync, "png" the export's PNG writes; "fs-fallback" is "fs" where folders
# cannot be swapped at once.
STOPPER = '''
import os, signal, stat, sys
what, k, when, stop, args = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5:]
calls = 0
def stopping(real, counted=lambda *a: True):
    def call(*a, **kw):
        global calls
        if not counted(*a):
            return real(*a, **kw)
        calls += 1
        if calls == k and when == "before":
            os.kill(os.getpid(), getattr(signal, stop))
        result = real(*a, **kw)
        if calls == k and when == "after":
            os.kill(os.getpid(), getattr(signal, stop))
        return result
    return call
import clevr_remv.export.common as common
if what in ("fs", "fs-fallback"):
    os.replace, os.link = stopping(os.replace), stopping(os.link)
    if what == "fs-fallback":
        common.exchange_paths = lambda a, b: False
    elif hasattr(common, "exchange_paths"):
        common.exchange_paths = stopping(common.exchange_paths)
elif what == "fsync":
    os.fsync = stopping(os.fsync, lambda fd: stat.S_ISREG(os.fstat(fd).st_mode))
elif what == "png":
    common.write_png = stopping(common.write_png)
from clevr_remv.cli import main
main(args, prog_name="clevr-remv")
'''


def stopped(tmp_path: Path, what: str, k: int, when: str, *args: str, stop: str = "SIGKILL") -> int:
    script = tmp_path / "stopper.py"
    script.write_text(STOPPER)
    return subprocess.run([sys.executable, str(script), what, str(k), when, stop, *args], capture_output=True,
                          timeout=120).returncode


def check_after_kill(out: Path, templates: Path, regenerated: dict, where: str) -> None:
    """The sweep keeps what a journal lists; verify completes it; a re-run finishes the job."""
    from clevr_remv.store.cleanup import stale_temporaries

    if (out / JOURNAL).exists():
        listed = {out / step["source"] for step in json.loads((out / JOURNAL).read_text())["steps"]
                  if step["op"] == "replace"}
        assert listed and not listed & set(stale_temporaries(out)), where
    verify_ok(out)
    assert state(out) in (regenerated["old"], regenerated["new"]), f"mixed after a kill {where}"
    result = run_cli("expressions", str(out), "--templates", str(templates))
    assert result.exit_code == 0, result.output
    assert state(out) == regenerated["new"] and hidden(out) == [], where  # the dead process's files swept
    verify_ok(out)


def test_expressions_killed_at_each_step_is_completed_by_the_next_command(
        tiny_dataset: Path, templates: Path, regenerated: dict, tmp_path: Path) -> None:
    # A tiny dataset's change: 7 files (2 shards, 3 split files, README.md, dataset.json), fsynced
    # one by one, then the journal (rename 1), then 7 renames (2-8). Killed while staging, just
    # after the journal, and half-way through.
    for what, k, when in [("fsync", 3, "before"), ("fs", 2, "before"), ("fs", 4, "after")]:
        out = copy(tiny_dataset, tmp_path / "out")
        code = stopped(tmp_path, what, k, when, "expressions", str(out), "--templates", str(templates))
        assert code == -signal.SIGKILL, f"{what} {k} {when}: never reached"
        check_after_kill(out, templates, regenerated, f"{when} {what} call {k}")


@pytest.mark.parametrize("stop, what, k, expected", [("SIGINT", "fsync", 3, "old"), ("SIGTERM", "fs", 2, "new")])
def test_expressions_stopped_by_sigint_or_sigterm_is_old_or_new_at_once(
        tiny_dataset: Path, templates: Path, regenerated: dict, tmp_path: Path,
        stop: str, what: str, k: int, expected: str) -> None:
    """Ctrl-C while the new files are written: they are removed, the dataset is as it was (130).
    SIGTERM once the journal is written: the change is completed on the way out (143)."""
    out = copy(tiny_dataset, tmp_path / "out")
    code = stopped(tmp_path, what, k, "before", "expressions", str(out), "--templates", str(templates), stop=stop)
    assert code == 128 + getattr(signal, stop)
    assert state(out) == regenerated[expected] and hidden(out) == []
    verify_ok(out)


def kill_after_first_temporary(out: Path, templates: Path, delay: float) -> tuple[int, list[str]]:
    """Start `clevr-remv expressions` on `out`, SIGKILL it `delay` s after its first temporary file
    appears; its exit status and the hidden files (temporaries, journal) it left."""
    process = subprocess.Popen([str(Path(sys.executable).parent / "clevr-remv"), "expressions", str(out),
                                "--templates", str(templates)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while process.poll() is None and time.monotonic() < deadline and not any(
            any(d.glob(".*.tmp-*")) for d in [out, *out.iterdir()] if d.is_dir()):
        time.sleep(0.001)
    time.sleep(delay)
    process.send_signal(signal.SIGKILL)
    process.wait()
    return process.returncode, hidden(out)


KILL_TRIES = 8


def test_expressions_killed_at_a_random_moment(tiny_dataset: Path, templates: Path, regenerated: dict,
                                               tmp_path: Path) -> None:
    """A real `clevr-remv expressions`, SIGKILLed at a random moment of its writing (timed from its
    first temporary file; the seed is in the message). The kill must land mid-change: the process
    died of SIGKILL and left a staged temporary or its journal. One that came too late (the command
    had ended, or finished its change) is tried again on a fresh copy with half the delay."""
    seed = random.randrange(1 << 30)
    delay = random.Random(seed).uniform(0.0, 0.15)  # a tiny dataset writes for about 0.15 s
    for attempt in range(KILL_TRIES):
        out = copy(tiny_dataset, tmp_path / "out")
        code, left = kill_after_first_temporary(out, templates, delay)
        if code == -signal.SIGKILL and left:
            assert all(name.endswith(JOURNAL) or ".tmp-" in name for name in left), left
            break
        delay /= 2
    else:
        pytest.fail(f"no kill landed mid-change in {KILL_TRIES} tries (seed {seed}; last: exit {code}, left {left})")
    check_after_kill(out, templates, regenerated, f"{delay:.3f} s after its first temporary, try {attempt + 1} "
                                                  f"(seed {seed}; it left {left})")


# ---------------------------------------------------------------------------- exports


def tree(out: Path) -> dict[str, str] | None:
    """Every file of an export and its digest (export.json's content names OUT: only its presence)."""
    if not out.exists():
        return None
    return {p.relative_to(out).as_posix(): "" if p.name == "export.json" else hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(out.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def exports(tiny_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """An export of the centre views (the one in place) and one of the corners (the new one)."""
    trees = {}
    for views in ("center", "corners"):
        out = tmp_path_factory.mktemp(views) / "out"
        result = run_cli("export", "refcoco", str(tiny_dataset), "--out", str(out), "--views", views, "--no-progress")
        assert result.exit_code == 0, result.output
        trees[views] = tree(out)
    assert trees["center"] != trees["corners"]
    return trees


def export_into(dataset: Path, out: Path, views: str, *options: str):
    return run_cli("export", "refcoco", str(dataset), "--out", str(out), "--views", views, "--no-progress", *options)


@pytest.mark.parametrize("what, k, when", [("png", 3, "before"), ("fs", 1, "after"), ("fs-fallback", 1, "after")])
def test_a_killed_export_leaves_out_as_it_was(tiny_dataset: Path, exports: dict, tmp_path: Path,
                                              what: str, k: int, when: str) -> None:
    """Killed while writing PNGs, or at the swap of the new folder for the old: OUT is the old
    export or the new one (on a filesystem that cannot swap folders at once the next export puts
    the old one back), and the next export removes the hidden folders the kill left."""
    out = tmp_path / "exports" / "out"
    assert export_into(tiny_dataset, out, "center").exit_code == 0
    args = ["export", "refcoco", str(tiny_dataset), "--out", str(out), "--views", "corners", "--overwrite",
            "--no-progress"]
    assert stopped(tmp_path, what, k, when, *args) == -signal.SIGKILL
    if what != "fs-fallback":
        assert tree(out) in (exports["center"], exports["corners"])
    result = export_into(tiny_dataset, out, "center")  # without --overwrite: OUT is an export
    assert result.exit_code == 1 and "is not empty" in result.output, result.output
    assert tree(out) in (exports["center"], exports["corners"])
    assert sorted(p.name for p in out.parent.iterdir()) == ["out"]  # no staging folder of the dead process
    assert export_into(tiny_dataset, out, "corners", "--overwrite").exit_code == 0
    assert tree(out) == exports["corners"] and sorted(p.name for p in out.parent.iterdir()) == ["out"]


# ---------------------------------------------------------------------------- the journal itself


def test_a_journal_is_replayed_once_and_blocks_another_commit(tmp_path: Path) -> None:
    from clevr_remv.store.transaction import Transaction, roll_forward

    root = tmp_path / "root"
    (root / "a").mkdir(parents=True)
    (root / "a" / "x").write_text("old x")
    (root / "gone").write_text("bye")
    with mock.patch.object(os, "replace", side_effect=Killed("killed after the journal")):
        with pytest.raises(Killed), Transaction(root, "test") as change:
            change.stage(root / "a" / "x").write_text("new x")
            change.stage(root / "y").write_text("new y")
            change.remove(root / "gone")
            change.commit()
    journal = json.loads((root / JOURNAL).read_text())
    assert [step["op"] for step in journal["steps"]] == ["replace", "replace", "remove"]
    assert (root / "a" / "x").read_text() == "old x" and not (root / "y").exists()
    # Another command cannot commit over it, and changes nothing trying.
    with pytest.raises(FileExistsError, match="being changed by another command"), Transaction(root, "other") as other:
        other.stage(root / "z").write_text("z")
        other.commit()
    assert not (root / "z").exists() and not any(p.name.startswith(".z.") for p in root.iterdir())
    assert roll_forward(root) == ["wrote a/x", "wrote y", "removed gone"]
    assert (root / "a" / "x").read_text() == "new x" and (root / "y").read_text() == "new y"
    assert sorted(p.name for p in root.iterdir()) == ["a", "y"]
    assert roll_forward(root) == []  # done, and the journal is gone


# ---------------------------------------------------------------------------- the order things reach the disk

REAL_FSYNC = os.fsync  # before no_fsync stubs it out for each test


def test_every_file_is_synced_before_the_journal_and_renames_before_it_goes(tiny_dataset: Path, templates: Path,
                                                                            tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """A real `expressions`, its fsyncs done for real (not the no_fsync stub) and recorded with every rename,
    link and removal, in order: what a power cut at any moment relies on."""
    out = copy(tiny_dataset, tmp_path / "out")
    events: list[tuple[str, ...]] = []

    def recording(name: str, real: Callable) -> Callable:
        def call(*args):
            if name == "fsync":
                events.append(("fsync", os.readlink(f"/proc/self/fd/{args[0]}")))
            else:
                events.append((name, *(os.path.abspath(a) for a in args)))
            return real(*args)
        return call

    monkeypatch.setattr(os, "fsync", recording("fsync", REAL_FSYNC))
    for name in ("replace", "link", "unlink"):
        monkeypatch.setattr(os, name, recording(name, getattr(os, name)))
    result = run_cli("expressions", str(out), "--templates", str(templates))
    assert result.exit_code == 0, result.output
    monkeypatch.undo()
    journal, root = str(out / JOURNAL), str(out)

    def first(*event: str, after: int = -1) -> int:
        return next(i for i, e in enumerate(events) if i > after and e[:len(event)] == event)

    linked = next(i for i, e in enumerate(events) if e[0] == "link" and e[2] == journal)
    renames = [(i, e[1], e[2]) for i, e in enumerate(events) if e[0] == "replace"]
    assert len(renames) == 7 and all(".tmp-" in Path(source).name for _, source, _ in renames), renames
    assert first("fsync", events[linked][1]) < linked  # the journal complete on disk before it appears
    for i, source, _ in renames:  # every new file on disk before the journal that names it, renamed after it
        assert first("fsync", source) < linked < i, source
    assert linked < first("fsync", root, after=linked) < renames[0][0]  # the journal's name on disk, then renames
    assert renames[-1][2] == str(out / "dataset.json")  # the manifest last
    removed = first("unlink", journal)
    for folder in {str(Path(target).parent) for _, _, target in renames}:  # the renames on disk, then the journal goes
        assert renames[-1][0] < first("fsync", folder, after=renames[-1][0]) < removed, folder
    assert first("fsync", root, after=removed) > removed  # and its removal is on disk too
