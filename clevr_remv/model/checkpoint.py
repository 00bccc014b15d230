"""The run folder `train --out RUN` fills, and how it survives being stopped at any moment.

    RUN/config.json   what was trained on and how (dataset, options, vocabulary, network), written first
    RUN/log.jsonl     one JSON object per line: `train` lines (loss, samples/s, the loader's share of a
                      step), `val` lines (val oIoU / mIoU), an `end` line (totals, peak memory)
    RUN/last.pt       weights, optimiser state and the step reached: where a stopped run resumes
    RUN/best.pt       the weights with the best val oIoU so far (what `predict` uses by default)

Checkpoints are written to a temporary file and renamed (`store.atomic_path`), so a kill -9 leaves
the previous complete one. The log is appended line by line; a kill can leave lines from after the
last checkpoint (or a torn last line), so resuming trims it back to the checkpoint's step: the log
of a resumed run reads as that of an uninterrupted one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from clevr_remv.store import atomic_path, write_json_atomic

CONFIG, LOG, LAST, BEST = "config.json", "log.jsonl", "last.pt", "best.pt"
FORMAT = 1  # of config.json and the checkpoints; a newer one is refused, not misread

# The settings a run keeps for life: a resumed run with another value would be another run.
# (The device, loader processes, threads and how often to save may change between resumes.)
IDENTITY = ("dataset_id", "views", "epochs", "steps", "batch_size", "size", "seed", "text", "lr",
            "val_every", "widths", "vocabulary", "max_words")


def read_config(run: Path) -> dict[str, Any]:
    """RUN/config.json, or a one-line error saying RUN is not a training run."""
    path = Path(run) / CONFIG
    if not Path(run).is_dir():
        raise FileNotFoundError(f"{run}: no such training run (train one with `clevr-remv train DIR --out {run}`)")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"{run} is not a training run: it has no {CONFIG}") from None
    except (OSError, ValueError) as error:
        raise ValueError(f"{path} is unreadable ({error}): not a training run's config") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise ValueError(f"{path}: not a config of this version's reference model (format {FORMAT})")
    return config


def open_run(run: Path, config: dict[str, Any]) -> dict[str, Any]:
    """Start RUN with `config`, or check that an existing RUN was started with the same identity.

    A new RUN must be absent or empty: a folder holding something else is never written into."""
    run = Path(run)
    if (run / CONFIG).exists():
        stored = read_config(run)
        for key in IDENTITY:
            if stored.get(key) != config.get(key):
                raise ValueError(f"{run} is a run {_differs(key, stored.get(key), config.get(key))}: "
                                 "resume it with its own options, or train into another --out")
        return stored
    if run.exists() and (not run.is_dir() or any(run.iterdir())):
        raise FileExistsError(f"--out {run} exists and is not a training run (no {CONFIG}): choose an empty or "
                              "new folder")
    run.mkdir(parents=True, exist_ok=True)
    write_json_atomic(run / CONFIG, config)
    return config


def _differs(key: str, stored: Any, asked: Any) -> str:
    if key == "dataset_id":
        return "of another dataset (its dataset.json differs from the one it was trained on)"
    if key in ("vocabulary", "max_words"):
        return "whose train split had other sentences"
    return f"with {key} {stored!r}; this command asks for {asked!r}"


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """torch.save `state` to `path` atomically (the old file stays until the new one is complete)."""
    import torch

    with atomic_path(Path(path)) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: Path, device: str = "cpu") -> dict[str, Any]:
    """A checkpoint written by `save_checkpoint`, or a one-line error naming the file."""
    import torch

    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as error:  # noqa: BLE001 - torch raises anything from pickle's to zip's errors
        raise ValueError(f"{path} is damaged ({type(error).__name__}): delete it to go back to the "
                         "run's other checkpoint, or train again") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT or "model" not in state:
        raise ValueError(f"{path}: not a checkpoint of this version's reference model")
    return state


def append_log(run: Path, record: dict[str, Any]) -> None:
    with open(Path(run) / LOG, "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")


def read_log(run: Path) -> list[dict[str, Any]]:
    """The log's records, skipping a torn last line (a kill while appending)."""
    path = Path(run) / LOG
    if not path.exists():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            continue
    return records


def trim_log(run: Path, step: int) -> None:
    """Keep only the log's records up to `step` (the checkpoint a run resumes from)."""
    records = read_log(run)
    kept = [r for r in records if r.get("step", 0) <= step and r.get("event") != "end"]
    if len(kept) != len(records) or (Path(run) / LOG).exists():
        with atomic_path(Path(run) / LOG) as tmp:
            tmp.write_text("".join(json.dumps(r) + "\n" for r in kept), encoding="utf-8")
