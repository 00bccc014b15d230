"""Cleaning a dataset folder after processes that died: finish the change a killed command left in
its journal, then remove the temporary files nobody will rename.

Kept apart from `atomic` (single-file writes) and `transaction` (multi-file commits), which both
build on `atomic`: the sweep needs the two of them.
"""

from __future__ import annotations

import logging
from pathlib import Path

from clevr_remv.store.atomic import is_stale_temporary, this_host
from clevr_remv.store.transaction import journal_temporaries, roll_forward

log = logging.getLogger(__name__)


def stale_temporaries(root: Path) -> list[Path]:
    """Temporary files under `root` (and its sub-directories one level down) left by dead processes.

    Only files written by this host are considered: a pid says nothing about another
    machine's processes (farm nodes share the filesystem), so theirs are never touched.
    A file whose process is still alive is being written and is kept. (A recycled pid
    keeps a stale file; that errs on the safe side.) So is every temporary that a journal
    still lists (store/transaction.py): it is a complete file waiting for its rename, and
    none is when the journal cannot be read.
    """
    root = Path(root)
    host = this_host()
    if not root.is_dir():
        return []
    kept = journal_temporaries(root)
    if kept is None:
        return []
    found = []
    for directory in [root, *sorted(p for p in root.iterdir() if p.is_dir())]:
        for path in sorted(directory.glob(".*.tmp-*")):
            if path.is_file() and path not in kept and is_stale_temporary(path, host):
                found.append(path)
    return found


def sweep_stale_temporaries(root: Path) -> list[Path]:
    """Clean up after dead processes in the dataset `root`: complete the change a killed command
    left in its journal (store/transaction.py), then remove the temporary files of dead processes
    of this host; log and return them."""
    roll_forward(root)
    swept = []
    for path in stale_temporaries(root):
        try:
            size = path.stat().st_size
            path.unlink()
        except FileNotFoundError:  # another sweeper was faster
            continue
        log.info("removed stale temporary file %s (%d bytes; its process is gone)", path, size)
        swept.append(path)
    return swept
