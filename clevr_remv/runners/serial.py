"""Shards one after another in this process, with one renderer: `--workers 1` and Blender's -P."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from clevr_remv.config import RenderConfig
from clevr_remv.contract import counted
from clevr_remv.produce.pixel_path import Renderer, render_shard
from clevr_remv.runners.outcome import Outcome, RetryBook, describe_error
from clevr_remv.runners.stopping import (
    DiskFull,
    StopFlag,
    is_disk_full,
    stop_on_signals,
)
from clevr_remv.store.plan import ShardSpec

log = logging.getLogger(__name__)


class SerialExecutor:
    def __init__(self, renderer_factory: Callable[[], tuple[Renderer, str]]) -> None:
        self.renderer_factory = renderer_factory

    def execute(self, config: RenderConfig, out: Path, todo: list[ShardSpec],
                tick: Callable[[int], None] | None) -> Outcome:
        with stop_on_signals(StopFlag()) as flag:
            renderer, blender = self.renderer_factory()
            try:
                failed = render_each(config, out, todo, tick or (lambda n: None), flag, renderer, blender)
            finally:
                getattr(renderer, "close", lambda: None)()  # its scratch directory in /dev/shm
        return Outcome(blender, failed)


def render_each(config: RenderConfig, out: Path, todo: list[ShardSpec], tick: Callable[[int], None],
                flag: StopFlag, renderer: Renderer, blender: str) -> dict[str, str]:
    """Every shard in turn, a failed one retried once; returns the shards that failed twice."""
    book = RetryBook(todo)
    while (shard := book.next()) is not None:
        flag.check()
        views = 0

        def on_view() -> None:
            nonlocal views
            views += 1
            tick(1)

        try:
            pairs = render_shard(config, shard, out, renderer, blender, flag.checking(on_view))
        except Exception as error:
            if is_disk_full(error):
                raise DiskFull(shard.path(out), out) from error
            tick(-views)  # its views will be counted again by the retry
            book.failure(shard, describe_error(error))
            continue
        log.info("wrote %s (%s, %s)", shard.path(out), counted(shard.scene_count, "scene"), counted(pairs, "pair"))
    return book.failed
