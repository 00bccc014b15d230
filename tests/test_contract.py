"""The one command-line contract (clevr_remv/contract.py), checked for every command alike:
exit 0 / 1 error / 2 usage / 130 SIGINT / 143 SIGTERM, one line, no traceback, no 'Aborted!',
one 'not a dataset' message. (The imports that run one way: tests/test_architecture.py.)"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from conftest import need

from clevr_remv.cli import main
from clevr_remv.contract import STOPPED_CLEANLY

# Every command that takes a dataset, with the arguments that make it start on DIR.
DATASET_COMMANDS = {
    "show": ["show", "{dir}", "--out", "{tmp}/scene.png"],
    "evaluate": ["evaluate", "{dir}", "--baseline", "oracle"],
    "evaluate-disparity": ["evaluate-disparity", "{dir}", "--baseline", "zero"],
    "stats": ["stats", "{dir}", "--out", "{tmp}/figures"],
    "export refcoco": ["export", "refcoco", "{dir}", "--out", "{tmp}/refcoco"],
    "export grefcoco": ["export", "grefcoco", "{dir}", "--out", "{tmp}/grefcoco"],
    "export coco": ["export", "coco", "{dir}", "--out", "{tmp}/coco"],
    "export hci": ["export", "hci", "{dir}", "--out", "{tmp}/hci"],
    "export lf-mat": ["export", "lf-mat", "{dir}", "--out", "{tmp}/lf-mat"],
    "export focal-stack": ["export", "focal-stack", "{dir}", "--out", "{tmp}/focal-stack"],
    "export hf": ["export", "hf", "{dir}", "--out", "{tmp}/hf"],
    "expressions": ["expressions", "{dir}"],
    "verify": ["verify", "{dir}"],
    "finalize": ["finalize", "{dir}"],
    "train": ["train", "{dir}", "--out", "{tmp}/run", "--steps", "1"],
    "predict": ["predict", "{dir}", "{tmp}/run", "--out", "{tmp}/pred.h5"],
}
NEEDS_TORCH = {"train", "predict"}  # the reference model's commands: without torch they say only that


def command_args(name: str, directory: Path, tmp: Path) -> list[str]:
    """DATASET_COMMANDS[name] filled in; the reference model's commands need torch (conftest.need)."""
    if name in NEEDS_TORCH:
        need("torch", "pip install 'clevr-remv[train]'")
    return filled(DATASET_COMMANDS[name], directory, tmp)


def leaf_commands(group: click.Group = main, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = []
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            found += leaf_commands(command, (*prefix, name))
        else:
            found.append((*prefix, name))
    return found


def invoke(*args: str):
    return CliRunner().invoke(main, list(args), prog_name="clevr-remv")


def filled(args: list[str], directory: Path, tmp: Path) -> list[str]:
    return [a.format(dir=directory, tmp=tmp) for a in args]


def test_every_dataset_command_is_listed_here() -> None:
    """A new command must join the contract tests (gpu-kernels and render take no dataset)."""
    assert {" ".join(c) for c in leaf_commands()} - {"render", "gpu-kernels"} == set(DATASET_COMMANDS)


@pytest.mark.parametrize("command", leaf_commands(), ids=" ".join)
def test_an_unknown_option_is_one_line_and_exit_2(command: tuple[str, ...]) -> None:
    result = invoke(*command, "--no-such-option")
    assert result.exit_code == 2, result.output
    [line] = result.output.splitlines()
    assert line.startswith("Error: No such option") and "--no-such-option" in line
    assert line.endswith(f"(see 'clevr-remv {' '.join(command)} --help')")


def test_a_bad_choice_is_exit_2_as_documented() -> None:
    result = invoke("render", "--quality", "fast", "--out", "x")
    assert result.exit_code == 2
    assert len(result.output.splitlines()) == 1 and "'fast' is not one of" in result.output


def test_an_unknown_command_is_exit_2() -> None:
    result = invoke("nosuch")
    assert result.exit_code == 2 and result.output.splitlines() == [
        "Error: No such command 'nosuch'. (see 'clevr-remv --help')"]


@pytest.mark.parametrize("where, missing", [
    ("absent", "no such directory"),
    ("file", "not a directory"),
    ("empty", "no dataset.json and no complete shard (render into it first)"),
])
@pytest.mark.parametrize("name", sorted(DATASET_COMMANDS))
def test_not_a_dataset_reads_the_same_from_every_command(tmp_path: Path, name: str, where: str,
                                                         missing: str) -> None:
    directory = tmp_path / "nope"
    if where == "file":
        directory.write_text("not a dataset")
    elif where == "empty":
        directory.mkdir()
    result = invoke(*command_args(name, directory, tmp_path))
    assert result.exit_code == 1, result.output
    assert result.output.splitlines() == [f"Error: {directory} is not a clevr-remv dataset: {missing}"]


def test_unfinished_render_says_to_finalize(tmp_path: Path) -> None:
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "shard-00000.h5").write_bytes(b"")
    result = invoke("show", str(tmp_path), "--out", str(tmp_path / "x.png"))
    assert result.exit_code == 1
    assert "no dataset.json yet" in result.output and f"clevr-remv finalize {tmp_path}" in result.output


def _wait_until_reading(fifo: Path, process: subprocess.Popen, timeout: float = 60.0) -> int:
    """Open the FIFO's writing end once the command blocks opening it for reading (then it blocks
    in read(): at work, with its imports and signal handlers in place)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        try:
            return os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:  # ENXIO: nobody is reading yet
            time.sleep(0.05)
    process.kill()
    raise AssertionError("the command never opened dataset.json")


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("name", sorted(DATASET_COMMANDS))
def test_a_stop_signal_exits_128_plus_its_number_in_one_line(tmp_path: Path, name: str, sig: int,
                                                             code: int) -> None:
    """A command stopped while it reads (its dataset.json is a FIFO nobody writes) exits 130 or 143
    with one line: no 'Aborted!', no traceback, as `render` does."""
    directory = tmp_path / "ds"
    directory.mkdir()
    fifo = directory / "dataset.json"
    os.mkfifo(fifo)
    args = command_args(name, directory, tmp_path)
    process = subprocess.Popen([sys.executable, "-c", "from clevr_remv.cli import main; main()", *args],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    writer = _wait_until_reading(fifo, process)
    try:
        time.sleep(0.2)
        process.send_signal(sig)
        out, err = process.communicate(timeout=60)
    finally:
        os.close(writer)
    assert process.returncode == code, err
    assert "Traceback" not in err and "Aborted!" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines == [f"clevr-remv: stopped by {signal.Signals(sig).name}; {STOPPED_CLEANLY}"]


@pytest.mark.parametrize("args", [
    ["evaluate", "{dir}"],  # neither --predictions nor --baseline
    ["evaluate", "{dir}", "--baseline", "oracle", "--predictions", "p.h5"],
    ["show", "{dir}"],  # nothing to write
])
def test_options_that_exclude_or_need_each_other_are_usage_errors(tmp_path: Path, args: list[str]) -> None:
    """Found before the dataset is even looked at: the command line itself is wrong."""
    result = invoke(*filled(args, tmp_path / "absent", tmp_path))
    assert result.exit_code == 2, result.output
    assert len(result.output.splitlines()) == 1 and "(see 'clevr-remv" in result.output


@pytest.mark.parametrize("code", [0, 1])
def test_a_signal_during_shutdown_changes_neither_the_status_nor_stderr(code: int) -> None:
    """The work is done and reported: a Ctrl-C or SIGTERM arriving while the interpreter shuts down
    (atexit hooks such as tqdm's monitor) must not print a traceback or turn 0 into -2 / -15."""
    script = ("import atexit, os, signal, time\n"
              "from clevr_remv.contract import exit_now\n"
              "def late():\n"
              "    os.kill(os.getpid(), signal.SIGINT); os.kill(os.getpid(), signal.SIGTERM); time.sleep(0.2)\n"
              "atexit.register(late)\n"
              f"exit_now({code})\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stderr) == (code, "")


@pytest.mark.parametrize("name", sorted(set(DATASET_COMMANDS) - {"verify", "finalize"}))
def test_a_manifest_without_its_config_is_one_line_naming_finalize(tiny_dataset: Path, tmp_path: Path,
                                                                     name: str) -> None:
    """Valid JSON that lost a key (one flipped byte: "config" -> "confih") is damage, not a KeyError."""
    import json
    import shutil

    directory = tmp_path / "ds"
    shutil.copytree(tiny_dataset, directory)
    manifest = json.loads((directory / "dataset.json").read_text())
    manifest["confih"] = manifest.pop("config")
    (directory / "dataset.json").write_text(json.dumps(manifest))
    result = invoke(*command_args(name, directory, tmp_path))
    assert result.exit_code == 1, result.output
    assert result.output.splitlines()[-1:] == [
        f"Error: {directory / 'dataset.json'}: no valid 'config' (dict); "
        f"`clevr-remv finalize {directory}` rebuilds it from the shards"]
