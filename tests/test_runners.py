"""Local worker processes: the same dataset as one process, killed runs resume, failing shards are reported."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import TINY_ARGS, run_cli
from test_render import assert_same_shard

CLI = str(Path(sys.executable).with_name("clevr-remv"))


def temporaries(out: Path) -> list[Path]:
    return sorted(out.rglob(".*.tmp-*"))


def assert_same_dataset(out: Path, reference: Path) -> None:
    """Same shard files holding the same data (images within OIDN's rounding), same manifest."""
    names = sorted(p.relative_to(out).as_posix() for p in out.glob("*/shard-*.h5"))
    assert names == sorted(p.relative_to(reference).as_posix() for p in reference.glob("*/shard-*.h5"))
    for name in names:
        assert_same_shard(out / name, reference / name)
    assert json.loads((out / "dataset.json").read_text()) == json.loads((reference / "dataset.json").read_text())
    assert temporaries(out) == []


def start_render(out: Path, *extra: str) -> subprocess.Popen:
    """`clevr-remv render` in its own process group (so the test can kill it and its workers)."""
    return subprocess.Popen([CLI, "render", *TINY_ARGS, "--out", str(out), *extra], start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish(process: subprocess.Popen, timeout: float) -> str:
    """Its output once it exits; a run that hangs fails the test and is killed with its workers,
    so that no orphan keeps rendering after the suite."""
    try:
        return process.communicate(timeout=timeout)[0]
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output = process.communicate()[0]
        raise AssertionError(f"render still running after {timeout} s:\n{output}") from None


def wait_until_mid_shard(process: subprocess.Popen, out: Path, timeout: float = 240) -> None:
    """Until a shard's temporary file exists, i.e. a worker is writing scenes into it."""
    deadline = time.monotonic() + timeout
    while not temporaries(out):
        assert process.poll() is None, process.stdout.read()
        assert time.monotonic() < deadline, "no shard started"
        time.sleep(0.05)


def writers(out: Path) -> list[int]:
    """The pids in the temporary files' names (`.shard-N.h5.tmp-<host>-<pid>`)."""
    return [int(p.name.rsplit("-", 1)[1]) for p in temporaries(out)]


def wait_until_gone(pids: list[int], timeout: float = 60) -> None:
    """A killed process takes a moment to release its memory and its pid."""
    deadline = time.monotonic() + timeout
    while any(Path(f"/proc/{pid}").exists() for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)


def test_two_workers_give_the_dataset_of_one_process(tiny_dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run_cli("render", *TINY_ARGS, "--out", str(out), "--workers", "2")
    assert result.exit_code == 0, result.output
    assert_same_dataset(out, tiny_dataset)


def test_a_killed_run_resumes_to_the_uninterrupted_dataset(tiny_dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    process = start_render(out, "--workers", "2")
    wait_until_mid_shard(process, out)
    os.killpg(process.pid, signal.SIGKILL)  # the parent and both workers, as a dead node would
    process.wait()
    wait_until_gone(writers(out))
    assert not (out / "dataset.json").exists()
    assert temporaries(out)  # the killed writers' files are still there...
    result = run_cli("render", *TINY_ARGS, "--out", str(out), "--workers", "2")
    assert result.exit_code == 0, result.output
    assert_same_dataset(out, tiny_dataset)  # ...and gone after the re-run


def test_a_failing_shard_is_retried_once_then_reported_while_the_others_complete(
        tiny_dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    squatter = out / "val/shard-00000.h5"
    squatter.mkdir(parents=True)  # a directory where the shard must go: its final rename fails
    result = run_cli("render", *TINY_ARGS, "--out", str(out), "--workers", "2")
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert any("val/shard-00000.h5 failed (IsADirectoryError" in line and "retrying it once" in line for line in lines)
    failed = [line for line in lines if line.startswith("failed: ")]
    assert len(failed) == 1 and failed[0].startswith("failed: val/shard-00000.h5: IsADirectoryError"), result.output
    assert "Error: 1 shard(s) failed twice" in result.output
    assert_same_shard(out / "train/shard-00000.h5", tiny_dataset / "train/shard-00000.h5")
    assert squatter.is_dir() and not (out / "dataset.json").exists() and temporaries(out) == []


def test_a_dead_worker_s_shard_is_retried_in_a_fresh_process(tiny_dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    process = start_render(out, "--workers", "2")
    wait_until_mid_shard(process, out)
    writer = writers(out)[0]
    assert writer in child_pids(process.pid)  # a worker, not the parent
    os.kill(writer, signal.SIGKILL)
    output = finish(process, timeout=300)
    assert process.returncode == 0, output
    assert "worker process died (signal SIGKILL)" in output and "retrying it once" in output
    assert_same_dataset(out, tiny_dataset)


def child_pids(pid: int) -> list[int]:
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def test_a_shard_gets_one_retry_at_the_front_of_the_queue() -> None:
    from clevr_remv.config import RenderConfig
    from clevr_remv.runners.outcome import RetryBook
    from clevr_remv.store.plan import plan_shards

    a, b, c = plan_shards(RenderConfig(scenes=30))[:3]
    book = RetryBook([a, b, c])
    assert book.next() == a and book.failure(a, "OSError: flaky") is True
    assert book.next() == a  # retried before the others
    assert book.failure(a, "OSError: again") is False and book.failed == {a.name: "OSError: again"}
    assert [book.next(), book.next(), book.next()] == [b, c, None]


def test_the_executor_follows_the_options_without_touching_blender() -> None:
    from clevr_remv.config import RenderConfig
    from clevr_remv.runners.choose import make_executor
    from clevr_remv.runners.local import LocalExecutor
    from clevr_remv.runners.serial import SerialExecutor

    cpu = RenderConfig(scenes=10, device="cpu")
    assert isinstance(make_executor(cpu, "local", None, None, 1, None), SerialExecutor)  # in this process
    assert isinstance(make_executor(cpu, "local", 1, None, 1, None), SerialExecutor)
    several = make_executor(cpu, "local", 3, None, 1, None)
    assert isinstance(several, LocalExecutor) and [d.gpu_index for d in several.devices] == [None] * 3
    with pytest.raises(ValueError, match="inside Blender"):
        make_executor(cpu, "local", 2, None, 1, None, single_process=True)
    with pytest.raises(ValueError, match="--executor must be local or ray"):
        make_executor(cpu, "dask", None, None, 1, None)
