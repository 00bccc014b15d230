"""A non-editable install (a wheel, as farm nodes and Blender's own Python get it) renders from anywhere.

The wheel is built from a copy of the sources and installed into a fresh venv; bpy, NumPy and
h5py come from this interpreter's site-packages through a .pth line, so nothing is downloaded.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import h5py
import numpy as np
import pytest
from conftest import TINY_ARGS

pytestmark = pytest.mark.slow  # a wheel build, a venv and a render: ~45 s

REPO = Path(__file__).resolve().parents[1]
SOURCES = ("clevr_remv", "templates", "pyproject.toml", "setup.py", "MANIFEST.in", "README.md")


def run(*args: str | Path, cwd: Path | None = None) -> str:
    result = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True)
    assert result.returncode == 0, f"{args}\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv holding only the wheel; returns its bin/ folder."""
    root = tmp_path_factory.mktemp("wheel-install")
    source = root / "src"
    source.mkdir()
    for name in SOURCES:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(REPO / name, source / name)
    run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
        "--wheel-dir", root / "dist", source)
    wheel = next((root / "dist").glob("clevr_remv-*.whl"))
    venv = root / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", venv)
    python = venv / "bin" / "python"
    run(sys.executable, "-m", "pip", "--python", python, "install", "--quiet", "--no-deps", "--no-index", wheel)
    purelib = Path(run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").strip())
    (purelib / "outer-site-packages.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return venv / "bin"


def test_the_wheel_carries_the_templates_and_uses_them(installed: Path) -> None:
    found = run(installed / "python", "-c",
                "import clevr_remv.expressions.templates as t; print(t.__file__); print(t.default_template_dir())",
                cwd=installed).split()
    module, templates = Path(found[0]), Path(found[1])
    venv = installed.parent
    assert module.is_relative_to(venv), module  # the wheel's copy, not this checkout
    assert templates.is_relative_to(venv) and templates.name == "templates", templates
    assert sorted(p.name for p in templates.glob("*.json")) == sorted(p.name for p in (REPO / "templates").glob("*.json"))


def test_a_wheel_install_renders_from_an_unrelated_directory(installed: Path, tiny_dataset: Path,
                                                             tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    run(installed / "clevr-remv", "render", *TINY_ARGS, "--out", "out", cwd=elsewhere)
    out = elsewhere / "out"
    assert (out / "dataset.json").is_file()
    shards = sorted(p.relative_to(out) for p in out.glob("*/shard-*.h5"))
    assert shards == sorted(p.relative_to(tiny_dataset) for p in tiny_dataset.glob("*/shard-*.h5"))
    for name in shards:  # the same dataset as the editable install's (same bpy)
        with h5py.File(out / name, "r") as a, h5py.File(tiny_dataset / name, "r") as b:
            assert list(a["scenes"].asstr()[:]) == list(b["scenes"].asstr()[:])
            assert list(a["refs/expression"].asstr()[:]) == list(b["refs/expression"].asstr()[:])
            assert len(a["refs/expression"]) > 0
            np.testing.assert_array_equal(a["masks"][:], b["masks"][:])
