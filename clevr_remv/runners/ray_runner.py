"""`--executor ray`: one Ray task per shard, on a Ray cluster or a local Ray instance.

Each task renders one whole shard with `produce.pixel_path.render_shard` in a Ray worker process
and writes it straight into `--out`, which must therefore be a filesystem every node
mounts at the same path (NFS, Lustre, GPFS, CephFS...). A Ray worker process keeps one
Blender renderer for the tasks it runs, so Blender starts once per worker, not per shard.
A task asks for one GPU, or 1/K of one with `--workers-per-gpu K`, where the cluster has
GPUs (Ray then sets CUDA_VISIBLE_DEVICES, so Cycles sees only that GPU), else one CPU.
Ray retries a failed task once (`max_retries=1`, `retry_exceptions=True`: a lost node or
an exception alike); a second failure is reported by name, as with local workers.
"""

from __future__ import annotations

import atexit
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from clevr_remv.config import RenderConfig
from clevr_remv.contract import counted
from clevr_remv.produce.pixel_path import render_shard
from clevr_remv.runners.outcome import ATTEMPTS, Outcome, describe_error
from clevr_remv.runners.stopping import (
    DiskFull,
    RenderInterrupted,
    StopFlag,
    is_disk_full,
    stop_on_signals,
)
from clevr_remv.store.plan import ShardSpec

log = logging.getLogger(__name__)

CANCEL_GRACE_S = 60.0  # after a stop, how long cancelled tasks get to remove their temporary files

_renderer: dict[str, Any] = {}  # in a Ray worker process: the renderer its tasks share


def import_ray():
    try:
        import ray
    except ImportError:
        raise ValueError("--executor ray needs Ray: pip install 'clevr-remv[ray]' (or pip install 'ray>=2.9')") from None
    return ray


def render_shard_task(config: RenderConfig, shard: ShardSpec, out: str,
                      threads: int | None = None) -> tuple[int, str]:
    """Body of the Ray task: (pairs, Blender version). Runs in a Ray worker process."""
    key = repr((config, threads))
    if _renderer.get("key") != key:
        if "renderer" in _renderer:
            _renderer.pop("renderer").close()
        from clevr_remv.render.renderer import BlenderRenderer, blender_version

        _renderer.update(renderer=BlenderRenderer(config, threads=threads), blender=blender_version(), key=key)
        atexit.register(_renderer["renderer"].close)  # its scratch directory, when Ray ends the worker
    pairs = render_shard(config, shard, Path(out), _renderer["renderer"], _renderer["blender"])
    return pairs, _renderer["blender"]


class RayExecutor:
    def __init__(self, address: str | None, workers_per_gpu: int = 1, threads: int | None = None) -> None:
        if workers_per_gpu < 1:
            raise ValueError(f"--workers-per-gpu must be positive, got {workers_per_gpu}")
        self.ray = import_ray()
        self.address, self.workers_per_gpu, self.threads = address, workers_per_gpu, threads

    def _connect(self) -> bool:
        """Join the cluster (or start a local instance); True if we must shut it down after."""
        if self.ray.is_initialized():
            return False
        from clevr_remv.render.process import sys_path_for_children

        with sys_path_for_children():  # Ray's workers start from the driver's sys.path
            self.ray.init(address=self.address, include_dashboard=False, log_to_driver=True)
        return True

    def _resources(self, config: RenderConfig) -> dict[str, float]:
        """A GPU (or 1/K) per task; on CPUs as many CPUs as the task's Cycles threads.

        Cycles would start a thread per core: a task that asked Ray for one CPU would share
        its node with as many tasks as the node has cores, each running that many threads.
        """
        gpus = self.ray.cluster_resources().get("GPU", 0)
        if gpus and config.device != "cpu":
            return {"num_gpus": 1 / self.workers_per_gpu}
        return {"num_cpus": self._cpu_threads()}

    def _cpu_threads(self) -> int:
        """--threads, else the smallest live node's CPUs: one task fills a node, as one worker
        fills a CPU machine best (docs/performance.md, "Throughput with workers")."""
        if self.threads is None:
            nodes = [n.get("Resources", {}).get("CPU", 0) for n in self.ray.nodes() if n.get("Alive")]
            self.threads = max(1, int(min((c for c in nodes if c), default=1)))
        return self.threads

    def execute(self, config: RenderConfig, out: Path, todo: list[ShardSpec],
                tick: Callable[[int], None] | None) -> Outcome:
        ray, tick = self.ray, tick or (lambda n: None)
        owned = self._connect()
        try:
            resources = self._resources(config)
            log.info("Ray cluster %s: %s; each shard a task with %s", self.address or "(local)",
                     ", ".join(f"{v:g} {k}" for k, v in sorted(ray.cluster_resources().items())
                               if k in ("CPU", "GPU")), resources)
            task = ray.remote(render_shard_task).options(max_retries=ATTEMPTS - 1, retry_exceptions=True,
                                                          **resources)
            threads = int(resources["num_cpus"]) if "num_cpus" in resources else None
            refs = {task.remote(config, shard, str(out.resolve()), threads): shard for shard in todo}
            with stop_on_signals(StopFlag()) as flag:
                return self._collect(config, out, refs, tick, flag)
        finally:
            if owned:
                ray.shutdown()

    def _collect(self, config: RenderConfig, out: Path, refs: dict, tick: Callable[[int], None],
                 flag: StopFlag) -> Outcome:
        ray, outcome, pending = self.ray, Outcome(), list(refs)
        while pending:
            ready, pending = ray.wait(pending, num_returns=1, timeout=1.0)
            for ref in ready:
                shard = refs[ref]
                try:
                    pairs, outcome.blender = ray.get(ref)
                except Exception as error:
                    cause = getattr(error, "cause", None) or error
                    if is_disk_full(cause) or is_disk_full(error):
                        self._cancel(pending)
                        raise DiskFull(shard.path(out), out) from None
                    outcome.failed[shard.name] = describe_error(cause)
                    log.error("%s failed after Ray's retry: %s", shard.name, outcome.failed[shard.name])
                    continue
                tick(shard.scene_count * config.views)
                log.info("wrote %s (%s, %s)", shard.path(out), counted(shard.scene_count, "scene"), counted(pairs, "pair"))
            if flag.signum is not None:
                self._cancel(pending)
                raise RenderInterrupted(flag.signum)
        return outcome

    def _cancel(self, pending: list) -> None:
        """Stop running tasks (KeyboardInterrupt in the task removes its temporary file)."""
        for ref in pending:
            self.ray.cancel(ref)
        if pending:
            self.ray.wait(pending, num_returns=len(pending), timeout=CANCEL_GRACE_S)
