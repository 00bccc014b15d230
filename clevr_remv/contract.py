"""The contract every entry point keeps with the person (or the scheduler) that runs it.

Exit status, the same from every `clevr-remv` command, `python -m clevr_remv...` module and
`examples/` script:

    0    done
    1    error: bad input (a value the command itself refuses, such as --scenes 0), bad or damaged
         data, a shard that failed (one line, never a traceback)
    2    usage error: what the parser refuses (an unknown command or option, a value of the wrong
         type or outside its choices, a missing argument), in one line
    130  stopped by SIGINT (Ctrl-C)
    143  stopped by SIGTERM (a scheduler's pre-kill warning)

A farm script branches on these codes (retry on 143, give up on 1), so they must not depend on
which command ran. Everything here is plain Python and click; commands import it, it imports
no command, no store and no renderer, so the arrows run one way.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import shlex
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import click

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_SIGINT = 128 + signal.SIGINT   # 130
EXIT_SIGTERM = 128 + signal.SIGTERM  # 143

# Temporaries are removed on the way out; a multi-file change stopped after its journal was
# written is completed instead (store/transaction.py), so either way nothing is left half done.
STOPPED_CLEANLY = "nothing was left half-written (run the same command again to finish)"
VERIFY_HINT = "run `clevr-remv verify {root}` to find every bad file (`--quarantine` sets them aside for re-rendering)"


class Terminated(BaseException):
    """SIGTERM arrived. A BaseException like KeyboardInterrupt, so that it unwinds through every
    `atomic_path` (removing temporaries) and no `except Exception` mistakes it for a failure."""


class NotADataset(FileNotFoundError):
    """A path given as a dataset is none; the message names what is missing. Every command that
    takes a dataset raises this one, so one mistake reads the same from all of them."""

    def __init__(self, path: Path | str, missing: str) -> None:
        super().__init__(f"{path} is not a clevr-remv dataset: {missing}")
        self.path = Path(path)

    def __str__(self) -> str:
        return str(self.args[0])


class DamagedShard(OSError):
    """A shard (or split file) that is missing, truncated or fails its checksums while being read.

    HDF5 says only "filter returned failure during read"; this names the file and the command
    that finds every other bad one.
    """

    def __init__(self, path: Path | str, detail: str, root: Path | str | None = None) -> None:
        path = Path(path)
        root = Path(root) if root is not None else _dataset_root_of(path)
        super().__init__(f"{path} is damaged or missing ({detail}): {VERIFY_HINT.format(root=root)}")
        self.path, self.detail, self.root = path, detail, root

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuilt from its own arguments, so one raised in a worker process (export --workers,
        # a DataLoader worker) reaches the parent as itself and not as a TypeError.
        return (type(self), (self.path, self.detail, self.root))

    def __str__(self) -> str:
        return str(self.args[0])


def _dataset_root_of(path: Path) -> Path:
    """`out` for `out/train/shard-00000.h5` and for `out/train.h5`."""
    return path.parent.parent if path.parent.name in ("train", "val", "test") else path.parent


def counted(n: int, noun: str) -> str:
    """"1 scene", "2 scenes", "1,500 scenes": every message that counts something, so that a tiny
    dataset's single scene never reads "1 scenes"."""
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {noun}s"


def describe_read_error(error: BaseException) -> str:
    """HDF5's message without its multi-line stack: what failed, in a few words."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return text.rstrip(".")


class UserError(Exception):
    """Base of this package's own errors that a user can act on (no GPU, a layout that cannot be
    drawn) and that are neither a ValueError nor an OSError."""


# The exceptions that mean "the input or the environment is wrong", not "the program is wrong".
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, OSError, UserError)


# `render` alone needs Blender: pip's `bpy` module, which exists for these Pythons only (pyproject.toml's
# markers install it there, with OpenEXR, the renderer's EXR reader); every other command runs without.
BPY_ON_PIP = {(3, 11): "bpy 4.5 LTS and 5.0", (3, 13): "bpy 5.1 and newer"}
BPY_REQUIREMENT = "bpy>=4.5,<6"
RENDER_MODULES = ("bpy", "OpenEXR")


class BlenderMissing(UserError):
    """`render` on a Python without `bpy` or OpenEXR; the message says what to install, and where."""


def module_available(name: str) -> bool:
    """Whether `import name` would find the module, without importing it (Blender takes seconds to load)."""
    if name in sys.modules:
        return sys.modules[name] is not None
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def bpy_pythons() -> str:
    """'Python 3.11 (bpy 4.5 LTS and 5.0) and 3.13 (bpy 5.1 and newer)'."""
    return "Python " + " and ".join(f"{major}.{minor} ({series})" for (major, minor), series in BPY_ON_PIP.items())


def blender_missing(python: Sequence[int] = tuple(sys.version_info[:2]),
                    available: Callable[[str], bool] = module_available, executable: str = sys.executable) -> str | None:
    """Why `render` cannot run on this Python, in one line that names what to install and on which Python;
    None when it can. `python` and `available` stand for this interpreter (tests pass others)."""
    missing = [name for name in RENDER_MODULES if not available(name)]
    if not missing:
        return None
    version = ".".join(str(part) for part in python[:2])
    if "bpy" in missing and tuple(python[:2]) not in BPY_ON_PIP:
        others = " or ".join(f"{major}.{minor}" for major, minor in BPY_ON_PIP)
        return (f"render needs Blender's bpy module, which pip has for {bpy_pythons()} only, and this is Python "
                f"{version}: install clevr-remv into a Python {others} venv (pip installs bpy with it there), or "
                f"render inside a Blender install (blender -b -P blender_scripts/render_shard.py -- ARGS); every "
                f"other command runs here")
    what = " and ".join("Blender's bpy module" if name == "bpy" else f"the {name} module" for name in missing)
    packages = " ".join(shlex.quote(BPY_REQUIREMENT) if name == "bpy" else name for name in missing)
    return (f"render needs {what}, which this Python {version} lacks: {shlex.quote(executable)} -m pip install "
            f"{packages}")


def require_blender() -> None:
    """Raise BlenderMissing (exit 1, one line) where `render` cannot run, before it does any work."""
    message = blender_missing()
    if message is not None:
        raise BlenderMissing(message)


@contextmanager
def sigterm_raises() -> Iterator[None]:
    """While inside, SIGTERM raises `Terminated` in the main thread instead of killing the process
    outright, so temporaries are removed on the way out (a render's own handler takes over while
    it runs)."""
    def handler(signum: int, frame: object) -> None:
        raise Terminated()

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: nothing to install
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _say(message: str) -> None:
    click.echo(message, err=True)


def exit_code_of(error: BaseException, prog: str = "clevr-remv") -> int:
    """Report `error` in one line on stderr and return its exit status; re-raise what is a bug."""
    if isinstance(error, click.UsageError):
        hint = ""
        if error.ctx is not None:
            hint = f" (see '{error.ctx.command_path} --help')"
        _say(f"Error: {error.format_message()}{hint}")
        return EXIT_USAGE
    if isinstance(error, click.exceptions.Exit):
        return error.exit_code
    if isinstance(error, click.ClickException):
        error.show()
        return error.exit_code
    if isinstance(error, KeyboardInterrupt) or (isinstance(error, click.Abort)
                                                 and isinstance(error.__cause__, KeyboardInterrupt)):
        _say(f"{prog}: stopped by SIGINT; {STOPPED_CLEANLY}")
        return EXIT_SIGINT
    if isinstance(error, Terminated):
        _say(f"{prog}: stopped by SIGTERM; {STOPPED_CLEANLY}")
        return EXIT_SIGTERM
    if isinstance(error, click.Abort):  # EOF at a prompt
        _say(f"{prog}: aborted")
        return EXIT_ERROR
    if isinstance(error, USER_ERRORS):
        logging.getLogger("clevr_remv").debug("error details", exc_info=error)
        _say(f"Error: {error}")
        return EXIT_ERROR
    raise error


def guarded(call: Callable[[], Any], prog: str = "clevr-remv") -> int:
    """Run `call` under the contract and return the exit status (0 when it returns)."""
    try:
        with sigterm_raises():
            result = call()
    except BaseException as error:  # noqa: BLE001 - exit_code_of re-raises what is not ours
        if isinstance(error, SystemExit):
            raise
        return exit_code_of(error, prog)
    return result if isinstance(result, int) else EXIT_OK


class WholeSummaries(click.Group):
    """A click group whose help lists each command's whole first sentence, wrapped: click cuts it
    with "..." to the line's width (about 45 characters after the names), mid-phrase."""

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, command.get_short_help_str(limit=10_000)) for name in self.list_commands(ctx)
                if (command := self.get_command(ctx, name)) is not None and not command.hidden]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


class ContractGroup(WholeSummaries):
    """A click group whose commands all keep the contract above: usage errors in one line with
    exit 2, user errors in one line with exit 1, 130/143 on SIGINT/SIGTERM, no 'Aborted!'."""

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True, **extra: Any) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        # With standalone_mode=False click returns what the command returned (None for ours)
        # or an Exit's code, and raises everything else for `guarded` to report.
        code = guarded(lambda: super(ContractGroup, self).main(args, prog_name, complete_var,
                                                               standalone_mode=False, **extra),
                       prog=prog_name or "clevr-remv")
        if args is None:  # this process is the command (a console script, `python -m`, blender -P)
            exit_now(code)
        sys.exit(code)  # called with arguments from a program (tests): its signal handling is its own


class ScriptParser(argparse.ArgumentParser):
    """argparse for `python -m ...` modules and examples: a usage error is one line and exit 2."""

    def error(self, message: str) -> NoReturn:
        _say(f"{self.prog}: error: {message} (see {self.prog} --help)")
        sys.exit(EXIT_USAGE)


def run_script(main: Callable[[], Any], prog: str | None = None) -> NoReturn:
    """`if __name__ == "__main__": run_script(main)`: the command contract for a plain script."""
    exit_now(guarded(main, prog=prog or Path(sys.argv[0]).name))


def exit_now(code: int) -> NoReturn:
    """Exit with `code`, deaf to SIGINT and SIGTERM from here on: the work is done (or has been
    reported), and a signal during interpreter shutdown would otherwise print a traceback from
    an atexit hook or turn a finished command's 0 into a silent -2 / -15."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            signal.signal(sig, signal.SIG_IGN)
        except ValueError:  # not the main thread
            break
    sys.exit(code)


def setup_logging(verbose: bool) -> None:
    """`clevr-remv: ...` lines on stderr; -v adds the decisions' details (and errors' tracebacks)."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format="clevr-remv: %(message)s")


def language_options(keep_stored: bool = False) -> Callable[[Callable], Callable]:
    """`--max-hops`, `--targets` and `--ordinals`, the language of the sentences (docs/expressions.md), for `render` and
    `expressions`. `keep_stored`: no default, so that leaving an option out keeps the dataset's own."""
    hops_default, targets_default = (None, None) if keep_stored else (1, "one")
    kept = " (default: the dataset's own)" if keep_stored else ""

    def add(function: Callable) -> Callable:
        function = click.option(
            "--ordinals/--no-ordinals", default=None if keep_stored else False, show_default=not keep_stored,
            help="Also sentences that count objects from one side (\"the second cube from the left\"); "
                 f"off in the published CLEVR-Remv{kept}.")(function)
        function = click.option(
            "--targets", type=click.Choice(["one", "any"]), default=targets_default, show_default=not keep_stored,
            help="one: every sentence names exactly one object (the published CLEVR-Remv); any: also sentences "
                 f"naming several objects or none (plurals, and/or, no target){kept}.")(function)
        return click.option(
            "--max-hops", type=click.IntRange(1, 3), default=hops_default, show_default=not keep_stored,
            help=f"Relations chained in one sentence: 1 is the published CLEVR-Remv, 2 and 3 add chains{kept}.",
        )(function)

    return add
