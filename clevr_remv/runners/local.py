"""`--workers N`: N shards at a time, each worker a process of its own with its own Blender.

Blender's state is global to a process, and `bpy` must not be forked, so workers are
*spawned* (a fresh interpreter each). The parent hands out one shard at a time to whichever
worker is free (fast and slow shards even out), counts the views the workers report on one
pipe each for one progress bar, and re-emits their log records, prefixed `worker N:`, as one log.
(A pipe per worker, not one shared multiprocessing.Queue: a worker killed while holding a
shared queue's write lock would block every other worker's next message for good.)

Failures stay local: a shard whose worker raised is retried once (on a free worker), one
whose worker died (killed, out of memory, a crash in Blender) is retried once in a fresh
process; a second failure is reported by name while the other shards go on. SIGINT/SIGTERM
are forwarded to the workers, which stop at their next finished view and remove their
temporary files; a full disk stops every worker the same way.
"""

from __future__ import annotations

import logging
import logging.handlers
import multiprocessing
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

from clevr_remv.config import RenderConfig
from clevr_remv.contract import counted
from clevr_remv.gpu.devices import DeviceChoice, WorkerDevice
from clevr_remv.produce.pixel_path import render_shard
from clevr_remv.runners.outcome import Outcome, RetryBook, describe_error
from clevr_remv.runners.stopping import (
    DiskFull,
    RenderInterrupted,
    StopFlag,
    is_disk_full,
    stop_on_signals,
)
from clevr_remv.store import shard_is_complete
from clevr_remv.store.cleanup import sweep_stale_temporaries
from clevr_remv.store.plan import ShardSpec

log = logging.getLogger(__name__)

POLL_S = 0.5  # how often the parent looks for dead workers while no event arrives
STOP_GRACE_S = 120.0  # after a stop, how long a worker may take to finish its view


# ---------------------------------------------------------------- in the worker process


def process_memory_mb(field: str = "VmHWM") -> float | None:
    """A memory figure of this process from Linux's /proc/self/status (VmHWM: peak resident,
    VmRSS: resident now), in MB; None where there is no /proc."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


class _Prefix(logging.Filter):
    def __init__(self, worker: int) -> None:
        super().__init__()
        self.prefix = f"worker {worker}: "

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self.prefix + record.getMessage()
        record.args = None
        return True


class _Events:
    """The worker's end of its pipe to the parent, with the `put` that QueueHandler expects."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    def put(self, event: Any) -> None:
        self.connection.send(event)

    put_nowait = put


def _worker_logging(worker: int, events: _Events, level: int) -> None:
    """Send every log record to the parent, which prints them in its one log."""
    handler = logging.handlers.QueueHandler(events)
    handler.addFilter(_Prefix(worker))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def _stop_handlers(flag: StopFlag) -> None:
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, frame: flag.set(signum))


def worker_main(worker: int, gpu_index: int | None, threads: int | None, config: RenderConfig, out: str,
                tasks: Any, connection: Connection, level: int) -> None:
    """A worker process: take shards from `tasks` until None, report on `events`.

    The renderer is set up with the first shard, so a setup failure is that shard's failure
    (and the process ends: its retry gets a fresh one).
    """
    flag = StopFlag()
    _stop_handlers(flag)
    events = _Events(connection)
    _worker_logging(worker, events, level)
    started = time.monotonic()
    renderer, blender = None, ""
    while (shard := tasks.get()) is not None:
        try:
            flag.check()
            if renderer is None:
                from clevr_remv.render.renderer import BlenderRenderer, blender_version

                renderer, blender = BlenderRenderer(config, gpu_index, threads), blender_version()
                _stop_handlers(flag)  # in case importing Blender replaced them
                events.put(("ready", worker, blender, time.monotonic() - started))
            on_view = flag.checking(lambda: events.put(("view", worker)))
            pairs = render_shard(config, shard, Path(out), renderer, blender, on_view)
        except RenderInterrupted:
            events.put(("interrupted", worker, shard.name))
            break
        except Exception as error:
            fatal = renderer is None  # no renderer: this process is of no use, its retry gets a fresh one
            events.put(("failed", worker, shard.name, describe_error(error), is_disk_full(error), fatal))
            if fatal:
                break
            continue
        events.put(("done", worker, shard.name, pairs))
    if renderer is not None:
        renderer.close()  # its scratch directory in /dev/shm
    events.put(("exit", worker, process_memory_mb("VmHWM")))


# ---------------------------------------------------------------- in the parent process


@dataclass
class _Worker:
    device: WorkerDevice
    process: Any  # multiprocessing.context.SpawnProcess
    tasks: Any  # its own queue: the parent knows which shard each worker holds
    events: Connection  # the parent's (reading) end of the worker's pipe
    started: float
    shard: ShardSpec | None = None
    views: int = 0  # of the current shard, taken back from the bar if it fails
    told_to_stop: bool = False
    reaped: bool = False


@dataclass
class LocalStats:
    """Figures the benchmark reads: start-up time and peak memory per worker process."""

    startup_s: list[float] = field(default_factory=list)  # spawn + import bpy + renderer setup
    peak_rss_mb: list[float] = field(default_factory=list)


class LocalExecutor:
    """Render shards on `devices` (one worker process each; see devices.plan_workers)."""

    def __init__(self, devices: list[WorkerDevice], choice: DeviceChoice) -> None:
        if not devices:
            raise ValueError("no workers to run")
        self.devices, self.choice = devices, choice
        self.stats = LocalStats()

    def execute(self, config: RenderConfig, out: Path, todo: list[ShardSpec],
                tick: Callable[[int], None] | None) -> Outcome:
        return _LocalRun(self, config, out, todo, tick or (lambda n: None)).run()


class _LocalRun:
    def __init__(self, executor: LocalExecutor, config: RenderConfig, out: Path, todo: list[ShardSpec],
                 tick: Callable[[int], None]) -> None:
        self.executor, self.config, self.out, self.tick = executor, config, out, tick
        self.ctx = multiprocessing.get_context("spawn")
        self.book = RetryBook(todo)
        self.workers: dict[int, _Worker] = {}
        self.flag = StopFlag()
        self.disk_full: ShardSpec | None = None
        self.blender: str | None = None
        self.level = logging.getLogger("clevr_remv").getEffectiveLevel()

    # -- the loop

    def run(self) -> Outcome:
        devices = self.executor.devices[: len(self.book.pending)]
        log.info("%d worker process(es): %s", len(devices),
                 "; ".join(d.describe(self.executor.choice) for d in devices))
        with stop_on_signals(self.flag, self._forward):
            try:
                for device in devices:
                    self._start(device)
                while any(not w.reaped for w in self.workers.values()):
                    self._pump(POLL_S)
                    self._reap()
                    self._top_up()
            finally:
                self._shutdown()
        if self.disk_full is not None:
            raise DiskFull(self.disk_full.path(self.out), self.out)
        if self.flag.signum is not None:
            raise RenderInterrupted(self.flag.signum)
        return Outcome(self.blender, self.book.failed)

    @property
    def stopping(self) -> bool:
        return self.flag.signum is not None or self.disk_full is not None

    def _start(self, device: WorkerDevice) -> None:
        tasks = self.ctx.SimpleQueue()
        events, their_end = self.ctx.Pipe(duplex=False)
        process = self.ctx.Process(
            target=worker_main, name=f"clevr-remv-worker-{device.worker}", daemon=True,
            args=(device.worker, device.gpu_index, device.threads, self.config, str(self.out), tasks, their_end,
                  self.level))
        from clevr_remv.render.process import sys_path_for_children

        with sys_path_for_children():
            process.start()
        their_end.close()  # so that the worker's exit reads as EOF here
        worker = _Worker(device, process, tasks, events, time.monotonic())
        self.workers[device.worker] = worker
        log.debug("started worker %d (pid %d)", device.worker, process.pid)
        self._hand_out(worker)

    def _hand_out(self, worker: _Worker) -> None:
        shard = None if self.stopping else self.book.next()
        worker.shard, worker.views = shard, 0
        if shard is None:
            worker.told_to_stop = True
        worker.tasks.put(shard)

    def _top_up(self) -> None:
        """Start fresh processes for shards waiting while a worker slot has no live process."""
        for device in self.executor.devices:
            if self.stopping or not self.book.pending:
                return
            worker = self.workers.get(device.worker)
            if worker is None or worker.reaped:
                self._start(device)

    def _forward(self, signum: int) -> None:
        """Signal handler: pass the stop on; the loop sends idle workers their None."""
        for worker in self.workers.values():
            if worker.process.pid and not worker.reaped:
                try:
                    os.kill(worker.process.pid, signum)
                except ProcessLookupError:
                    pass

    # -- events

    def _pump(self, timeout: float) -> None:
        """Handle every event the workers sent, waiting up to `timeout` for the first."""
        open_pipes = {w.events: w for w in self.workers.values() if not w.events.closed}
        if not open_pipes:
            time.sleep(timeout)  # every worker has ended; the loop only waits to reap them
        for pipe in wait(list(open_pipes), timeout) if open_pipes else []:
            self._drain(open_pipes[pipe])
        if self.stopping:
            for worker in self.workers.values():
                if worker.shard is None and not worker.told_to_stop:
                    self._hand_out(worker)

    def _drain(self, worker: _Worker) -> None:
        """Every event waiting in `worker`'s pipe; its end (the process is gone) closes the pipe."""
        while not worker.events.closed:
            try:
                if not worker.events.poll():
                    return
                event = worker.events.recv()
            except Exception:  # EOF, or half a message from a killed worker: nothing more to read
                worker.events.close()
                return
            self._handle(event)

    def _handle(self, event: Any) -> None:
        if isinstance(event, logging.LogRecord):
            logging.getLogger(event.name).handle(event)
            return
        kind, wid, *rest = event
        worker = self.workers[wid]
        if kind == "view":
            worker.views += 1
            self.tick(1)
        elif kind == "ready":
            self.blender = rest[0]
            startup = time.monotonic() - worker.started
            self.executor.stats.startup_s.append(startup)
            log.info("worker %d ready after %.1f s (process start, Blender %s, renderer set-up)", wid, startup, rest[0])
        elif kind == "done":
            log.info("wrote %s (%s, %s) [worker %d]", worker.shard.path(self.out),
                     counted(worker.shard.scene_count, "scene"), counted(rest[1], "pair"), wid)
            self._hand_out(worker)
        elif kind == "failed":
            name, error, disk_full, fatal = rest
            worker.told_to_stop = worker.told_to_stop or fatal
            self._failed(worker, error, disk_full)
        elif kind == "interrupted":
            worker.shard = None
            worker.told_to_stop = True
        elif kind == "exit":
            if rest[0] is not None:
                self.executor.stats.peak_rss_mb.append(rest[0])
            worker.told_to_stop = True

    def _failed(self, worker: _Worker, error: str, disk_full: bool = False) -> None:
        shard, worker.shard = worker.shard, None
        self.tick(-worker.views)
        if disk_full:
            if self.disk_full is None:
                self.disk_full = shard
                log.error("%s: disk full; stopping every worker", shard.name)
                self._forward(signal.SIGTERM)
        else:
            self.book.failure(shard, f"{error} [worker {worker.device.worker}]")
        if not worker.told_to_stop and worker.process.is_alive():
            self._hand_out(worker)

    def _reap(self) -> None:
        """Notice workers whose process ended; a shard it still held failed with it."""
        for worker in self.workers.values():
            if worker.reaped or worker.process.is_alive():
                continue
            worker.process.join()
            if not worker.events.closed:
                self._drain(worker)  # its last words
            worker.reaped = True
            shard = worker.shard
            if shard is None:
                continue
            sweep_stale_temporaries(self.out)  # the dead worker's half-written shard (joined: its pid is free)
            if self.stopping or shard_is_complete(shard.path(self.out)):  # no retry / the 'done' was lost
                worker.shard = None
                continue
            code = worker.process.exitcode
            how = f"signal {signal.Signals(-code).name}" if code and code < 0 else f"exit code {code}"
            self._failed(worker, f"worker process died ({how})")

    def _shutdown(self) -> None:
        """Normally every worker has exited here; after an error in the parent, end them."""
        live = [w for w in self.workers.values() if w.process.is_alive()]
        for worker in live:
            if not worker.told_to_stop:
                worker.tasks.put(None)
            worker.process.terminate()  # SIGTERM: the worker stops at its next view
        deadline = time.monotonic() + STOP_GRACE_S
        while any(w.process.is_alive() for w in live) and time.monotonic() < deadline:
            self._pump(0.2)
        for worker in live:
            if worker.process.is_alive():
                worker.process.kill()
            worker.process.join()
        for worker in self.workers.values():
            worker.events.close()
