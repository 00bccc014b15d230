"""Stopping: SIGTERM stops within a view and cleans up; a full disk is one line; the resume command."""

from __future__ import annotations

import errno
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import TINY_ARGS, fill_up, run_cli, small_filesystem
from test_cli import fingerprint
from test_runners import (
    assert_same_dataset,
    finish,
    start_render,
    temporaries,
    wait_until_mid_shard,
)

from clevr_remv.runners.stopping import (
    DiskFull,
    RenderInterrupted,
    StopFlag,
    is_disk_full,
    resume_command,
)


def test_sigterm_stops_cleanly_with_143_and_the_printed_command_resumes(tiny_dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    process = start_render(out, "--workers", "2")
    wait_until_mid_shard(process, out)
    process.send_signal(signal.SIGTERM)  # to the parent only, as a scheduler's warning would; it tells the workers
    output = finish(process, timeout=240)
    assert process.returncode == 143, output
    assert "stopped by SIGTERM" in output and "Traceback" not in output
    resume = output.split("Resume with:\n", 1)[1].splitlines()[0]
    assert resume.strip().endswith(f"--out {out} --workers 2") and "render --scenes 3" in resume
    assert temporaries(out) == [] and not (out / "dataset.json").exists()
    result = run_cli("render", *TINY_ARGS, "--out", str(out))  # the same arguments, in this process
    assert result.exit_code == 0, result.output
    assert_same_dataset(out, tiny_dataset)


def test_a_full_disk_is_one_line_and_keeps_what_was_written(tiny_dataset: Path, tmp_path: Path) -> None:
    """A real full disk: a small filesystem of its own (tests/conftest.py) holds the dataset without its val shard
    and 24 KB of room, a quarter of that shard; HDF5 meets ENOSPC while writing it. In a process of its own:
    HDF5 once crashed there (SIGSEGV closing the file), which would take the test session down with it."""
    with small_filesystem(tmp_path / "disk") as disk:
        copy = disk / "copy"
        shutil.copytree(tiny_dataset, copy)
        shard = copy / "val/shard-00000.h5"
        assert shard.stat().st_size > 80_000
        shard.unlink()
        (copy / "dataset.json").unlink()
        before = fingerprint(copy)
        fill_up(disk, 24_000)
        command = [str(Path(sys.executable).parent / "clevr-remv"), "render", *TINY_ARGS, "--out", str(copy)]
        full = subprocess.run(command, capture_output=True, text=True, timeout=300)
        lines = (full.stdout + full.stderr).splitlines()
        assert full.returncode == 1 and "Traceback" not in full.stderr and "Exception" not in full.stderr, lines
        assert lines[-1].startswith(f"Error: disk full while writing {shard} (") and " MB free on " in lines[-1], lines
        assert not any("retrying" in line for line in lines)  # no retry on a full disk
        assert fingerprint(copy) == before and temporaries(copy) == []
        (disk / ".filler").unlink()  # room again: the same command completes the dataset
        result = run_cli("render", *TINY_ARGS, "--out", str(copy))
        assert result.exit_code == 0, result.output
        assert_same_dataset(copy, tiny_dataset)


def test_disk_full_is_recognised_through_h5py_and_chained_errors() -> None:
    assert is_disk_full(OSError(errno.ENOSPC, "No space left on device"))
    assert is_disk_full(OSError("Can't write data (file write failed: errno = 28, error message = "
                                "'No space left on device')"))  # h5py's form: no errno attribute
    try:
        try:
            raise OSError(errno.ENOSPC, "full")
        except OSError as inner:
            raise RuntimeError("while writing a shard") from inner
    except RuntimeError as outer:
        assert is_disk_full(outer)
    assert not is_disk_full(OSError(errno.EACCES, "Permission denied"))
    assert not is_disk_full(ValueError("No space"))
    message = str(DiskFull("/data/out/train/shard-00001.h5", Path("/")))
    assert message.startswith("disk full while writing /data/out/train/shard-00001.h5 (") and "\n" not in message


def test_stop_flag_raises_at_the_next_view_with_the_signal_s_exit_code() -> None:
    flag, views = StopFlag(), []
    tick = flag.checking(lambda: views.append(1))
    tick()
    flag.set(signal.SIGINT)
    flag.set(signal.SIGTERM)  # the first signal decides
    with pytest.raises(RenderInterrupted) as stop:
        tick()
    assert len(views) == 2 and stop.value.exit_code == 130 and str(stop.value) == "stopped by SIGINT"
    assert not isinstance(stop.value, Exception)  # never retried as a failure


def test_resume_command_is_the_same_command_line() -> None:
    assert resume_command(["/venv/bin/clevr-remv", "render", "--out", "my out"]) == \
        "/venv/bin/clevr-remv render --out 'my out'"
    assert resume_command(["blender_scripts/render_shard.py", "--", "--out", "o"]) == \
        f"{sys.executable} blender_scripts/render_shard.py -- --out o"
    assert resume_command(["blender", "-b", "-P", "render_shard.py", "--", "--out", "o"]) == \
        "blender -b -P render_shard.py -- --out o"
