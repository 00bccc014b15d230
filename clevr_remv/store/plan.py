"""The unit of distributed work: a fixed, deterministic set of scene indices of one split.

Every runner (the local loop, a farm job, a Ray task) agrees on this plan because it only
depends on the configuration.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from clevr_remv.config import RenderConfig


@dataclass(frozen=True)
class ShardSpec:
    split: str
    index: int
    first_scene: int
    scene_count: int

    @property
    def scene_indices(self) -> range:
        return range(self.first_scene, self.first_scene + self.scene_count)

    @property
    def name(self) -> str:
        return f"{self.split}/shard-{self.index:05d}.h5"

    def path(self, out: Path) -> Path:
        return out / self.name


def plan_shards(config: RenderConfig) -> list[ShardSpec]:
    """All shards of a dataset, split by split, each `scenes_per_shard` scenes (the last may be short)."""
    shards = []
    for split, count in config.split_sizes().items():
        per = config.scenes_per_shard
        for index, first in enumerate(range(0, count, per)):
            shards.append(ShardSpec(split, index, first, min(per, count - first)))
    return shards


def job_shards(shards: list[ShardSpec], job: int, jobs: int) -> list[ShardSpec]:
    """The shards job `job` of `jobs` renders (0-based): round-robin over the whole plan.

    Round-robin over the plan's order (split by split, then by index) keeps every job's
    load within one shard of every other's, for any number of jobs, and needs nothing but
    the two numbers: each job of an array computes its own share without coordination.
    """
    if jobs < 1 or not 0 <= job < jobs:
        raise ValueError(f"--shard I/N needs 0 <= I < N, got {job}/{jobs}")
    return shards[job::jobs]


def parse_job(text: str) -> tuple[int, int] | None:
    """'3/10' -> (3, 10); None for text of another form."""
    job, slash, jobs = text.partition("/")
    if not slash:
        return None
    if not (job.strip().isdigit() and jobs.strip().isdigit()):
        raise ValueError(f"--shard {text!r}: expected I/N with whole numbers, e.g. 3/10")
    return int(job), int(jobs)


def parse_shard(text: str, shards: list[ShardSpec]) -> ShardSpec:
    """'train:3' -> that shard of the plan, with a message naming what exists otherwise."""
    split, _, number = text.partition(":")
    for shard in shards:
        if shard.split == split and number.isdigit() and shard.index == int(number):
            return shard
    counts = {}
    for shard in shards:
        counts[shard.split] = counts.get(shard.split, 0) + 1
    have = ", ".join(f"{s}:0..{n - 1}" for s, n in counts.items())
    raise ValueError(f"no shard {text!r} in this dataset (shards are {have})")
