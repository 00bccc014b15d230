"""Stopping: SIGTERM stops within a view and cleans up; a full disk is one line; the resume command."""

from __future__ import annotations

import errno
import shutil
import signal
import sys
from pathlib import Path

import pytest
from conftest import TINY_ARGS, run_cli
from test_cli import assert_one_line_error, fingerprint
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


def test_a_full_disk_is_one_line_and_keeps_what_was_written(tiny_dataset: Path, tmp_path: Path, monkeypatch) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(tiny_dataset, copy)
    (copy / "val/shard-00000.h5").unlink()
    (copy / "dataset.json").unlink()
    before = fingerprint(copy)

    import clevr_remv.store.atomic as atomic

    def full_disk(path: Path) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(atomic, "fsync_file", full_disk)  # the shard's last write before its rename
    result = run_cli("render", *TINY_ARGS, "--out", str(copy))
    assert_one_line_error(result, f"disk full while writing {copy / 'val/shard-00000.h5'}")
    assert " MB free on " in result.output and "retrying" not in result.output  # no retry on a full disk
    assert fingerprint(copy) == before and temporaries(copy) == []


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
