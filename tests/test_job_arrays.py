"""Job arrays: job I of N renders its round-robin share; `--shard auto` reads the scheduler."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from clevr_remv.cli import main
from clevr_remv.config import RenderConfig
from clevr_remv.runners.job_array import ArrayTask, array_task, select_shards
from clevr_remv.store.plan import job_shards, plan_shards


@given(scenes=st.integers(1, 400), per=st.integers(1, 12), jobs=st.integers(1, 40))
def test_jobs_share_every_shard_once_and_differ_by_at_most_one(scenes: int, per: int, jobs: int) -> None:
    shards = plan_shards(RenderConfig(scenes=scenes, scenes_per_shard=per))
    shares = [job_shards(shards, job, jobs) for job in range(jobs)]
    flat = [s for share in shares for s in share]
    assert sorted(flat, key=shards.index) == shards and len(set(flat)) == len(shards)
    sizes = [len(share) for share in shares]
    assert max(sizes) - min(sizes) <= 1
    assert shares == [job_shards(shards, job, jobs) for job in range(jobs)]  # deterministic


def test_round_robin_runs_over_the_splits_in_order() -> None:
    shards = plan_shards(RenderConfig(scenes=20, scenes_per_shard=3))  # train 14 -> 5, val 3 -> 1, test 3 -> 1
    names = [[s.name for s in job_shards(shards, job, 3)] for job in range(3)]
    assert names == [["train/shard-00000.h5", "train/shard-00003.h5", "test/shard-00000.h5"],
                     ["train/shard-00001.h5", "train/shard-00004.h5"],
                     ["train/shard-00002.h5", "val/shard-00000.h5"]]


@pytest.mark.parametrize("text", ["3/3", "-1/3", "0/0", "a/b", "1/"])
def test_bad_job_numbers_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="--shard"):
        select_shards(text, plan_shards(RenderConfig(scenes=10)), {})


@pytest.mark.parametrize(
    "env, expected",
    [
        # Slurm: --array=0-99 (task 7), --array=1-10 (task 1 is the first), a step, old Slurm without COUNT
        ({"SLURM_ARRAY_TASK_ID": "7", "SLURM_ARRAY_TASK_MIN": "0", "SLURM_ARRAY_TASK_MAX": "99",
          "SLURM_ARRAY_TASK_COUNT": "100"}, ArrayTask(7, 100, "Slurm")),
        ({"SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_TASK_MIN": "1", "SLURM_ARRAY_TASK_MAX": "10",
          "SLURM_ARRAY_TASK_COUNT": "10"}, ArrayTask(0, 10, "Slurm")),
        ({"SLURM_ARRAY_TASK_ID": "6", "SLURM_ARRAY_TASK_MIN": "0", "SLURM_ARRAY_TASK_MAX": "8",
          "SLURM_ARRAY_TASK_STEP": "2", "SLURM_ARRAY_TASK_COUNT": "5"}, ArrayTask(3, 5, "Slurm")),
        ({"SLURM_ARRAY_TASK_ID": "4", "SLURM_ARRAY_TASK_MIN": "2", "SLURM_ARRAY_TASK_MAX": "5"},
         ArrayTask(2, 4, "Slurm")),
        ({"SLURM_ARRAY_TASK_ID": "4", "SLURM_ARRAY_TASK_MIN": "2", "SLURM_ARRAY_TASK_COUNT": "4"},
         ArrayTask(2, 4, "Slurm")),
        # SGE: qsub -t 1-20:1
        ({"SGE_TASK_ID": "20", "SGE_TASK_FIRST": "1", "SGE_TASK_LAST": "20", "SGE_TASK_STEPSIZE": "1"},
         ArrayTask(19, 20, "SGE")),
        ({"SGE_TASK_ID": "5", "SGE_TASK_FIRST": "1", "SGE_TASK_LAST": "9", "SGE_TASK_STEPSIZE": "2"},
         ArrayTask(2, 5, "SGE")),
        # LSF: bsub -J "r[1-8]"
        ({"LSB_JOBINDEX": "3", "LSB_JOBINDEX_END": "8"}, ArrayTask(2, 8, "LSF")),
        # PBS Pro (qsub -J 0-9) and Torque (qsub -t 1-4) with the array size exported by the script
        ({"PBS_ARRAY_INDEX": "9", "CLEVR_REMV_TASK_COUNT": "10"}, ArrayTask(9, 10, "PBS Pro")),
        ({"PBS_ARRAYID": "2", "CLEVR_REMV_TASK_COUNT": "4", "CLEVR_REMV_TASK_FIRST": "1"},
         ArrayTask(1, 4, "Torque")),
        # anything else: the generic pair, which also overrides a scheduler's
        ({"CLEVR_REMV_TASK_ID": "0", "CLEVR_REMV_TASK_COUNT": "3", "SLURM_ARRAY_TASK_ID": "5"},
         ArrayTask(0, 3, "CLEVR_REMV_TASK_ID")),
    ],
)
def test_scheduler_variables_give_the_job_number(env: dict, expected: ArrayTask) -> None:
    assert array_task(env) == expected


@pytest.mark.parametrize(
    "env, text",
    [
        ({}, "not running in a job array"),
        ({"SGE_TASK_ID": "undefined", "SGE_TASK_FIRST": "undefined", "SGE_TASK_LAST": "undefined"},
         "not running in a job array"),
        ({"LSB_JOBINDEX": "0"}, "not running in a job array"),  # an LSF job outside an array
        ({"PBS_ARRAY_INDEX": "3"}, "CLEVR_REMV_TASK_COUNT"),
        ({"SLURM_ARRAY_TASK_ID": "5", "SLURM_ARRAY_TASK_MIN": "1", "SLURM_ARRAY_TASK_MAX": "7",
          "SLURM_ARRAY_TASK_COUNT": "3"}, "not the range"),  # --array=1,5,7
        ({"SLURM_ARRAY_TASK_ID": "x"}, "not a whole number"),
        ({"CLEVR_REMV_TASK_ID": "4", "CLEVR_REMV_TASK_COUNT": "4"}, "not in the array"),
        ({"CLEVR_REMV_TASK_ID": "1"}, "CLEVR_REMV_TASK_COUNT is not"),
    ],
)
def test_outside_an_array_or_an_unreadable_one_is_a_one_line_error(env: dict, text: str) -> None:
    with pytest.raises(ValueError, match=text) as error:
        select_shards("auto", plan_shards(RenderConfig(scenes=10)), env)
    assert "\n" not in str(error.value)


def test_auto_selects_the_same_shards_as_the_explicit_job_number() -> None:
    shards = plan_shards(RenderConfig(scenes=100))
    env = {"SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_TASK_MIN": "0", "SLURM_ARRAY_TASK_COUNT": "4"}
    auto, said = select_shards("auto", shards, env)
    assert auto == select_shards("3/4", shards, {})[0] and "Slurm array job 3 of 4" == said
    assert select_shards("val:1", shards, {})[0] == [s for s in shards if s.name == "val/shard-00001.h5"]


def test_every_job_of_an_array_renders_its_share_and_the_last_completes_the_dataset(
        tiny_dataset: Path, tmp_path: Path) -> None:
    """3 jobs over the tiny dataset's 2 shards (3 does not divide 2): job 2 has nothing to do."""
    from conftest import TINY_ARGS
    from test_runners import assert_same_dataset

    out = tmp_path / "out"
    for job, expect in ((2, []), (1, ["val/shard-00000.h5"]), (0, ["train/shard-00000.h5", "val/shard-00000.h5"])):
        env = {"SLURM_ARRAY_TASK_ID": str(job), "SLURM_ARRAY_TASK_MIN": "0", "SLURM_ARRAY_TASK_COUNT": "3"}
        shard = "auto" if job == 1 else f"{job}/3"
        result = CliRunner(env=env).invoke(main, ["render", *TINY_ARGS, "--out", str(out), "--shard", shard])
        assert result.exit_code == 0, result.output
        assert sorted(p.relative_to(out).as_posix() for p in out.glob("*/shard-*.h5")) == expect
        assert (out / "dataset.json").exists() == (job == 0)  # written by the job that completes the dataset
    assert_same_dataset(out, tiny_dataset)
    assert json.loads((out / "dataset.json").read_text())["splits"]["val"]["shards"] == ["val/shard-00000.h5"]


def test_auto_outside_an_array_is_a_one_line_error(tmp_path: Path) -> None:
    from test_cli import assert_one_line_error

    clean = {name: None for name in ("CLEVR_REMV_TASK_ID", "SLURM_ARRAY_TASK_ID", "SGE_TASK_ID", "LSB_JOBINDEX",
                                     "PBS_ARRAY_INDEX", "PBS_ARRAYID")}
    result = CliRunner(env=clean).invoke(main, ["render", "--scenes", "3", "--out", str(tmp_path / "o"),
                                                "--shard", "auto"])
    assert_one_line_error(result, "--shard auto: not running in a job array")
    assert not (tmp_path / "o").exists()
