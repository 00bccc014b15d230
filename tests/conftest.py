"""Shared fixtures: one tiny real render, made once per test session and reused."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from clevr_remv.cli import main

# Tiny but real: 3x3 rig, 64x48 pixels, few samples; masks and depth are exact at any size.
TINY_ARGS = ["--scenes", "3", "--rig", "3", "--width", "64", "--height", "48", "--samples", "2",
             "--scenes-per-shard", "2", "--seed", "11", "--no-progress"]


def run_cli(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def render_tiny(tmp_path_factory: pytest.TempPathFactory, name: str) -> Path:
    out = tmp_path_factory.mktemp(name) / "out"
    result = run_cli("render", *TINY_ARGS, "--out", str(out))
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return render_tiny(tmp_path_factory, "tiny")


@pytest.fixture(scope="session")
def tiny_dataset_again(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same arguments rendered a second time, for determinism checks."""
    return render_tiny(tmp_path_factory, "tiny-again")
