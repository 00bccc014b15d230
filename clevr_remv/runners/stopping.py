"""Stopping a render cleanly: signals, the disk filling up, and how to resume.

A scheduler sends SIGTERM some seconds before it kills a job, a user presses Ctrl-C. Both
only set a flag here; the pipeline's per-view callback raises `RenderInterrupted` at the
next finished view, which unwinds through the shard writer (its temporary file is removed)
to the runner, which exits 128 + the signal's number (130, 143) with the command that
resumes. Nothing already complete is touched: a re-run skips it.
"""

from __future__ import annotations

import errno
import shlex
import shutil
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class RenderInterrupted(BaseException):
    """A stop signal arrived; raised between views.

    A BaseException, like KeyboardInterrupt, so that code retrying failed shards on
    `Exception` never mistakes a stop for a failure.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(f"stopped by {signal.Signals(signum).name}")
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


class DiskFull(OSError):
    """The output's filesystem is full (ENOSPC): no retry helps until space is freed."""

    def __init__(self, path: Path | str, out: Path) -> None:
        try:
            free = f"{shutil.disk_usage(out).free / 1e6:.1f} MB free"
        except OSError:
            free = "free space unknown"
        super().__init__(errno.ENOSPC, f"disk full while writing {path} ({free} on {out}); shards already "
                         "written are intact: free space and run the same command again to resume")

    def __str__(self) -> str:
        return self.strerror


def is_disk_full(error: BaseException) -> bool:
    """ENOSPC anywhere in the chain (h5py reports it inside the HDF5 error text, not errno)."""
    while error is not None:
        if isinstance(error, OSError) and (error.errno in (errno.ENOSPC, errno.EDQUOT)
                                           or "No space left on device" in str(error)):
            return True
        error = error.__cause__ or error.__context__
    return False


class StopFlag:
    """Set by a signal handler, checked between views."""

    def __init__(self) -> None:
        self.signum: int | None = None

    def set(self, signum: int) -> None:
        if self.signum is None:
            self.signum = signum

    def check(self) -> None:
        if self.signum is not None:
            raise RenderInterrupted(self.signum)

    def checking(self, on_view: Callable[[], None] | None) -> Callable[[], None]:
        """`on_view` that first stops the render if a signal arrived."""
        def tick() -> None:
            if on_view is not None:
                on_view()
            self.check()
        return tick


@contextmanager
def stop_on_signals(flag: StopFlag, also: Callable[[int], None] | None = None) -> Iterator[StopFlag]:
    """Route SIGINT and SIGTERM to `flag` (and `also`, e.g. forwarding to workers) for a while.

    Only the main thread may install handlers; elsewhere (a Ray task's thread) the flag is
    simply never set by a signal.
    """
    def handler(signum: int, frame: object) -> None:
        flag.set(signum)
        if also is not None:
            also(signum)

    try:
        previous = {sig: signal.signal(sig, handler) for sig in STOP_SIGNALS}
    except ValueError:  # not the main thread
        previous = {}
    try:
        yield flag
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def resume_command(argv: list[str] | None = None) -> str:
    """The command line that resumes this run: the same one (complete shards are skipped)."""
    argv = list(sys.argv if argv is None else argv)
    if argv and argv[0].endswith(".py"):  # a script run by Python (blender_scripts/ with pip's bpy)
        argv = [sys.executable, *argv]
    return shlex.join(argv)
