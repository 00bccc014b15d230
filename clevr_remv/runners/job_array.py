"""Which job of a scheduler's job array this process is, read from the scheduler's variables.

`--shard auto` lets one array script serve every scheduler: each job finds its own 0-based
number I and the array's size N here, then renders the shards `shards.job_shards` gives job
I of N. Pure functions of an environment mapping, so they are tested with fake ones.

Variables read (first match wins):
- generic: CLEVR_REMV_TASK_ID (0-based) and CLEVR_REMV_TASK_COUNT, set by hand on any farm;
- Slurm: SLURM_ARRAY_TASK_ID, SLURM_ARRAY_TASK_MIN, SLURM_ARRAY_TASK_COUNT (or, on old
  Slurm, SLURM_ARRAY_TASK_MAX and SLURM_ARRAY_TASK_STEP);
- SGE / Univa / Son of Grid Engine: SGE_TASK_ID, SGE_TASK_FIRST, SGE_TASK_LAST,
  SGE_TASK_STEPSIZE (all "undefined" outside an array);
- LSF: LSB_JOBINDEX, LSB_JOBINDEX_END, LSB_JOBINDEX_STEP (LSF arrays start at 1, and a job
  outside an array has LSB_JOBINDEX=0);
- PBS Pro (PBS_ARRAY_INDEX) and Torque (PBS_ARRAYID): these give the job's index but not the
  array's range, so CLEVR_REMV_TASK_COUNT must say N (and CLEVR_REMV_TASK_FIRST the first
  index when the range does not start at 0), or the script passes --shard I/N itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from clevr_remv.store.plan import ShardSpec, job_shards, parse_job, parse_shard

ARRAY_VARIABLES = ("CLEVR_REMV_TASK_ID", "SLURM_ARRAY_TASK_ID", "SGE_TASK_ID", "LSB_JOBINDEX",
                   "PBS_ARRAY_INDEX", "PBS_ARRAYID")


@dataclass(frozen=True)
class ArrayTask:
    """Job `index` (0-based) of an array of `count` jobs, as `scheduler` numbered it."""

    index: int
    count: int
    scheduler: str


def _int(env: Mapping[str, str], name: str, default: int | None = None) -> int | None:
    value = env.get(name, "").strip()
    if value in ("", "undefined"):
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"--shard auto: {name}={value!r} is not a whole number") from None


def _from_range(scheduler: str, task: int, first: int, last: int, step: int) -> ArrayTask:
    """0-based position of `task` in first..last by step (the ranges arrays are declared with)."""
    if step < 1 or (task - first) % step or not first <= task <= last:
        raise ValueError(f"--shard auto: {scheduler} task {task} is not in the array {first}-{last}:{step}; "
                         "declare the array as a range (e.g. 0-99) or use --shard I/N")
    return ArrayTask((task - first) // step, (last - first) // step + 1, scheduler)


def _slurm(env: Mapping[str, str]) -> ArrayTask:
    task, first = _int(env, "SLURM_ARRAY_TASK_ID"), _int(env, "SLURM_ARRAY_TASK_MIN", 0)
    step, count = _int(env, "SLURM_ARRAY_TASK_STEP", 1), _int(env, "SLURM_ARRAY_TASK_COUNT")
    last = _int(env, "SLURM_ARRAY_TASK_MAX")
    if last is None:
        if count is None:
            raise ValueError("--shard auto: Slurm sets SLURM_ARRAY_TASK_ID but neither SLURM_ARRAY_TASK_COUNT "
                             "nor SLURM_ARRAY_TASK_MAX; use --shard I/N")
        last = first + (count - 1) * step
    found = _from_range("Slurm", task, first, last, step)
    if count is not None and count != found.count:  # a list such as --array=1,5,7: ids are not a range
        raise ValueError(f"--shard auto: the Slurm array's {count} ids are not the range {first}-{last}:{step}; "
                         "submit it as a range (e.g. --array=0-99) or use --shard I/N")
    return found


def _sge(env: Mapping[str, str]) -> ArrayTask:
    task = _int(env, "SGE_TASK_ID")
    first, last = _int(env, "SGE_TASK_FIRST", task), _int(env, "SGE_TASK_LAST", task)
    return _from_range("SGE", task, first, last, _int(env, "SGE_TASK_STEPSIZE", 1))


def _lsf(env: Mapping[str, str]) -> ArrayTask:
    task = _int(env, "LSB_JOBINDEX")
    last = _int(env, "LSB_JOBINDEX_END")
    if last is None:
        raise ValueError("--shard auto: LSF sets LSB_JOBINDEX but not LSB_JOBINDEX_END; use --shard I/N")
    return _from_range("LSF", task, 1, last, _int(env, "LSB_JOBINDEX_STEP", 1))


def _pbs(env: Mapping[str, str], name: str, scheduler: str) -> ArrayTask:
    task, count = _int(env, name), _int(env, "CLEVR_REMV_TASK_COUNT")
    if count is None:
        raise ValueError(f"--shard auto: {scheduler} sets {name} but not the array's size; export "
                         "CLEVR_REMV_TASK_COUNT=N (and CLEVR_REMV_TASK_FIRST if it does not start at 0) "
                         "or use --shard I/N")
    first = _int(env, "CLEVR_REMV_TASK_FIRST", 0)
    return _from_range(scheduler, task, first, first + count - 1, 1)


def _generic(env: Mapping[str, str]) -> ArrayTask:
    task, count = _int(env, "CLEVR_REMV_TASK_ID"), _int(env, "CLEVR_REMV_TASK_COUNT")
    if count is None:
        raise ValueError("--shard auto: CLEVR_REMV_TASK_ID is set but CLEVR_REMV_TASK_COUNT is not")
    return _from_range("CLEVR_REMV_TASK_ID", task, 0, count - 1, 1)


def array_task(env: Mapping[str, str]) -> ArrayTask:
    """This job's place in its array, from the first scheduler whose variables are set."""
    if _int(env, "CLEVR_REMV_TASK_ID") is not None:
        return _generic(env)
    if _int(env, "SLURM_ARRAY_TASK_ID") is not None:
        return _slurm(env)
    if _int(env, "SGE_TASK_ID") is not None:
        return _sge(env)
    if _int(env, "LSB_JOBINDEX", 0):
        return _lsf(env)
    if _int(env, "PBS_ARRAY_INDEX") is not None:
        return _pbs(env, "PBS_ARRAY_INDEX", "PBS Pro")
    if _int(env, "PBS_ARRAYID") is not None:
        return _pbs(env, "PBS_ARRAYID", "Torque")
    raise ValueError("--shard auto: not running in a job array (none of " + ", ".join(ARRAY_VARIABLES)
                     + " is set); use --shard I/N or --shard SPLIT:N")


def select_shards(text: str, shards: list[ShardSpec], env: Mapping[str, str]) -> tuple[list[ShardSpec], str]:
    """The shards one `--shard` value names, and a phrase for the log.

    SPLIT:N is one shard; I/N is job I's share of N jobs; auto is I/N read from the scheduler.
    """
    if text == "auto":
        task = array_task(env)
        return job_shards(shards, task.index, task.count), f"{task.scheduler} array job {task.index} of {task.count}"
    job = parse_job(text)
    if job is not None:
        return job_shards(shards, *job), f"job {job[0]} of {job[1]}"
    shard = parse_shard(text, shards)
    return [shard], f"shard {shard.name}"
