"""Shared fixtures: one tiny real render, made once per test session and reused."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from clevr_remv.cli import main

# Hugging Face `datasets` (export hf's tests, the docs' loading examples, in this process and in the
# subprocesses that inherit the environment) caches what it loads under HF_HOME, read once when it is
# first imported: a session folder here, so a test run never writes to ~/.cache or reaches the network.
_HF_HOME = tempfile.mkdtemp(prefix="clevr-remv-tests-hf-")
atexit.register(shutil.rmtree, _HF_HOME, True)
os.environ.update(HF_HOME=_HF_HOME, HF_DATASETS_OFFLINE="1", HF_HUB_OFFLINE="1")

# Tiny but real: 3x3 rig, 64x48 pixels, few samples; masks and depth are exact at any size.
TINY_ARGS = ["--scenes", "3", "--rig", "3", "--width", "64", "--height", "48", "--samples", "2",
             "--scenes-per-shard", "2", "--seed", "11", "--no-progress"]


def run_cli(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def copy_hiding_referents(source: Path, dest: Path, hidden: dict[int, list[int]]) -> dict[int, int]:
    """Copy a rendered dataset, marking pair k of its first train shard not visible
    (`refs/visible` false) in the views hidden[k]; returns k -> that pair's `refs/id`."""
    import shutil

    import h5py

    from clevr_remv.store import DatasetReader

    shutil.copytree(source, dest)
    with h5py.File(DatasetReader(dest).shard_paths("train")[0], "r+") as f:
        visible = f["refs/visible"][()]
        for k, views in hidden.items():
            visible[k, views] = False
        f["refs/visible"][...] = visible
        return {k: int(f["refs/id"][k]) for k in hidden}


def render_tiny(tmp_path_factory: pytest.TempPathFactory, name: str, args: list[str] = TINY_ARGS) -> Path:
    """Render `args` (the tiny configuration by default) into a fresh `<name>/out`."""
    out = tmp_path_factory.mktemp(name) / "out"
    result = run_cli("render", *args, "--out", str(out))
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return render_tiny(tmp_path_factory, "tiny")


@pytest.fixture(scope="session")
def tiny_dataset_again(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same arguments rendered a second time, for determinism checks."""
    return render_tiny(tmp_path_factory, "tiny-again")


# A wide-baseline light field (3x3, 120x80, baseline 0.4: up to about 3.5 px per view step), where a
# wrong sign or a wrong view order moves pixels far enough to show (tests/test_lightfield_*.py).
LIGHTFIELD_ARGS = ["--scenes", "5", "--rig", "3", "--width", "120", "--height", "80", "--baseline", "0.4",
                   "--samples", "2", "--scenes-per-shard", "2", "--seed", "7", "--no-progress"]


@pytest.fixture(scope="session")
def lightfield_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return render_tiny(tmp_path_factory, "lightfield", LIGHTFIELD_ARGS)


def templates_with_zero_hop(tmp_path_factory: pytest.TempPathFactory, text: str) -> Path:
    """A copy of the repository's templates whose zero-hop family has the one sentence `text`, so
    that `expressions --templates` changes the refs of a rendered dataset."""
    import json
    import shutil

    from clevr_remv.expressions import load_templates

    folder = tmp_path_factory.mktemp("templates") / "templates"
    shutil.copytree(load_templates().root, folder)
    family = json.loads((folder / "zero_hop.json").read_text())
    family["texts"] = [text]
    (folder / "zero_hop.json").write_text(json.dumps(family))
    return folder
