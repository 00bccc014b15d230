"""What every runner shares: one retry per shard, and the result it hands back.

A shard that fails once (an exception, a dead worker process, a lost Ray worker) may have
met a passing problem, so it gets one more try; a second failure is reported by name
while the other shards go on, and the run exits non-zero at the end.
"""

from __future__ import annotations

import logging
from collections import Counter, deque
from dataclasses import dataclass, field

from clevr_remv.store.plan import ShardSpec

log = logging.getLogger(__name__)

ATTEMPTS = 2  # the first try and one retry


@dataclass
class Outcome:
    blender: str | None = None  # Blender version of the renders, for the manifest
    failed: dict[str, str] = field(default_factory=dict)  # shard name -> last error


def describe_error(error: BaseException) -> str:
    """One line for the log and the final report."""
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__


class RetryBook:
    """The shards still to hand out, and how often each has failed."""

    def __init__(self, shards: list[ShardSpec]) -> None:
        self.pending: deque[ShardSpec] = deque(shards)
        self.failures: Counter[ShardSpec] = Counter()
        self.failed: dict[str, str] = {}

    def next(self) -> ShardSpec | None:
        return self.pending.popleft() if self.pending else None

    def failure(self, shard: ShardSpec, error: str) -> bool:
        """Record a failed attempt; True if the shard goes back for its retry."""
        self.failures[shard] += 1
        if self.failures[shard] < ATTEMPTS:
            log.warning("%s failed (%s); retrying it once", shard.name, error)
            self.pending.appendleft(shard)
            return True
        log.error("%s failed again, giving up on it: %s", shard.name, error)
        self.failed[shard.name] = error
        return False
