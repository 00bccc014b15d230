"""`--executor ray` on a local Ray instance gives the dataset of one process (and of --workers 2)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from conftest import TINY_ARGS, need, run_cli
from test_cli import assert_one_line_error
from test_runners import assert_same_dataset

ray = need("ray", "the ray extra: pip install -e '.[test,ray]'")


@pytest.fixture(scope="module")
def local_ray():
    from clevr_remv.render.process import sys_path_for_children

    with sys_path_for_children():  # this test process has loaded Blender; Ray's workers must not inherit its paths
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_ray_tasks_give_the_dataset_of_one_process(local_ray, tiny_dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run_cli("render", *TINY_ARGS, "--out", str(out), "--executor", "ray")
    assert result.exit_code == 0, result.output
    assert_same_dataset(out, tiny_dataset)


def test_a_missing_ray_is_one_line_saying_how_to_install(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    result = run_cli("render", *TINY_ARGS, "--out", str(tmp_path / "out"), "--executor", "ray")
    assert_one_line_error(result, "--executor ray needs Ray: pip install 'clevr-remv[ray]'")


def test_local_worker_options_are_refused_with_ray(tmp_path: Path) -> None:
    result = run_cli("render", *TINY_ARGS, "--out", str(tmp_path / "out"), "--executor", "ray", "--workers", "2")
    assert_one_line_error(result, "--workers and --gpus are for --executor local")


def test_a_cpu_task_asks_ray_for_the_cpus_its_cycles_threads_use(local_ray) -> None:
    from clevr_remv.config import RenderConfig
    from clevr_remv.runners.ray_runner import RayExecutor

    cpu = RenderConfig(scenes=1, device="cpu")
    assert RayExecutor(None)._resources(cpu) == {"num_cpus": 2}  # the local instance's one node has 2
    assert RayExecutor(None, threads=1)._resources(cpu) == {"num_cpus": 1}
