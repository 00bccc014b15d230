"""Everything but `render` runs without Blender: on a Python where `bpy` cannot be imported, `render` says in
one line what to install and on which Python, and writes nothing; the commands and the loader that use a
dataset run and never import `bpy` or the renderer.

Each command runs as a subprocess whose `bpy` and OpenEXR are made unimportable by a sitecustomize.py
(`sys.modules[name] = None`: `import bpy` fails and `importlib.util.find_spec("bpy")` is None, as where they
are not installed); it records every `import` of them and which renderer modules got loaded. So this runs
in the ordinary suite (bpy installed) as well as on a Python without it (CI's Python 3.12 run).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from clevr_remv.contract import BPY_ON_PIP, BPY_REQUIREMENT, bpy_pythons, blender_missing

ROOT = Path(__file__).resolve().parents[1]
CLEVR_REMV = Path(sys.executable).with_name("clevr-remv")
BLOCKED = ("bpy", "OpenEXR", "mathutils", "bmesh", "Imath")

SITECUSTOMIZE = f"""
import atexit, builtins, json, os, sys

BLOCKED = {BLOCKED!r}
for name in BLOCKED:
    sys.modules[name] = None  # not installed, as far as import and importlib.util.find_spec can tell
tried = []
_import = builtins.__import__


def _recording_import(name, *args, **kwargs):
    if name.partition(".")[0] in BLOCKED:
        tried.append(name)
    return _import(name, *args, **kwargs)


builtins.__import__ = _recording_import


@atexit.register
def _report():
    loaded = sorted(m for m in sys.modules
                    if (m.partition(".")[0] in BLOCKED and sys.modules[m] is not None)
                    or m == "clevr_remv.render" or m.startswith("clevr_remv.render."))
    with open(os.path.join(os.environ["NO_BLENDER_REPORTS"], f"{{os.getpid()}}.json"), "w") as f:
        json.dump({{"argv": sys.argv, "tried": tried, "loaded": loaded}}, f)
"""


@pytest.fixture
def no_blender(tmp_path: Path):
    """run(args, cwd) -> CompletedProcess of a Python that cannot import bpy; reports() -> what each process saw."""
    site = tmp_path / "no-blender-site"
    reports = tmp_path / "no-blender-reports"
    site.mkdir()
    reports.mkdir()
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
           "NO_BLENDER_REPORTS": str(reports)}

    def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
        return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)

    def read() -> list[dict]:
        return [json.loads(p.read_text()) for p in sorted(reports.glob("*.json"))]

    run.reports = read
    return run


def test_the_harness_blocks_and_sees_an_import_of_bpy(no_blender, tmp_path: Path) -> None:
    """The negative control: under the harness `import bpy` fails as if bpy were not installed, and is recorded."""
    done = no_blender([sys.executable, "-c", "import importlib.util as u; assert u.find_spec('bpy') is None; import bpy"],
                      tmp_path)
    assert done.returncode == 1 and "ModuleNotFoundError" in done.stderr, done.stderr
    assert [r["tried"] for r in no_blender.reports()] == [["bpy"]]


# `clevr-remv render ARGS`, and the Blender-install script run by a Python that is not Blender's.
RENDER_ENTRIES = {"console script": [str(CLEVR_REMV), "render"],
                  "blender script": [sys.executable, str(ROOT / "blender_scripts" / "render_shard.py"), "--"]}


@pytest.mark.parametrize("entry", sorted(RENDER_ENTRIES))
def test_render_says_what_to_install_in_one_line_and_writes_nothing(no_blender, tmp_path: Path, entry: str) -> None:
    work = tmp_path / "work"
    work.mkdir()
    args = ["--scenes", "3", "--rig", "3", "--width", "32", "--height", "24", "--out", "out"]
    done = no_blender([*RENDER_ENTRIES[entry], *args], work)
    assert done.returncode == 1, (done.returncode, done.stderr)
    assert done.stdout == "" and len(done.stderr.splitlines()) == 1, done.stderr
    assert done.stderr.startswith("Error: render needs Blender's bpy module"), done.stderr
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    assert f"Python {version}" in done.stderr
    if (sys.version_info.major, sys.version_info.minor) in BPY_ON_PIP:  # this Python could have it: how to install it
        assert f"-m pip install '{BPY_REQUIREMENT}' OpenEXR" in done.stderr
    else:  # which Pythons could
        assert bpy_pythons() in done.stderr
    assert list(work.iterdir()) == []  # no output folder, nothing beside it
    assert [(r["tried"], r["loaded"]) for r in no_blender.reports()] == [([], [])]


def test_every_other_command_and_the_loader_run_without_blender(no_blender, tiny_dataset: Path, tmp_path: Path) -> None:
    data = tmp_path / "out"
    shutil.copytree(tiny_dataset, data)  # finalize and expressions rewrite files: a copy
    commands = [
        ["verify", "out"],
        ["finalize", "out"],
        ["stats", "out", "--out", "figures", "--no-progress"],
        ["show", "out", "--split", "val", "--scene", "0", "--out", "scene.png", "--html", "scene.html"],
        ["expressions", "out"],
        ["export", "refcoco", "out", "--out", "refer", "--no-progress"],
        ["evaluate", "out", "--split", "val", "--baseline", "oracle", "--no-progress"],
    ]
    for args in commands:
        done = no_blender([str(CLEVR_REMV), *args], tmp_path)
        assert done.returncode == 0, (args, done.stderr[-2000:])
        assert "Traceback" not in done.stderr, (args, done.stderr[-2000:])
    assert (tmp_path / "scene.png").is_file() and (tmp_path / "refer" / "refcoco").is_dir()
    assert "mIoU" in done.stdout and "100.00" in done.stdout  # the oracle's report
    loader = ("import clevr_remv; d = clevr_remv.RefDataset('out', 'train', views='center'); s = d[0]; "
              "print(len(d), s['image'].shape, s['mask'].shape)")
    done = no_blender([sys.executable, "-c", loader], tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert re.match(r"\d+ \(48, 64, 3\) \(48, 64\)$", done.stdout.strip()), done.stdout
    reports = no_blender.reports()
    assert len(reports) >= len(commands) + 1  # every process reported (worker processes too, where any)
    assert [r for r in reports if r["tried"] or r["loaded"]] == []  # no import of bpy, no renderer module


@pytest.mark.parametrize("python", [(3, 10), (3, 12), (3, 14)])
def test_the_message_on_a_python_pip_has_no_bpy_for(python: tuple[int, int]) -> None:
    message = blender_missing(python, available=lambda name: False)
    assert message is not None and "\n" not in message
    assert f"this is Python {python[0]}.{python[1]}" in message
    assert "Python 3.11 (bpy 4.5 LTS and 5.0) and 3.13 (bpy 5.1 and newer)" in message
    assert "blender_scripts/render_shard.py" in message


def test_the_message_where_pip_has_bpy_but_it_is_not_installed() -> None:
    assert blender_missing((3, 13), available=lambda name: False, executable="/v/bin/python") == (
        "render needs Blender's bpy module and the OpenEXR module, which this Python 3.13 lacks: "
        "/v/bin/python -m pip install 'bpy>=4.5,<6' OpenEXR")
    assert blender_missing((3, 11), available=lambda name: name == "bpy", executable="/v/bin/python") == (
        "render needs the OpenEXR module, which this Python 3.11 lacks: /v/bin/python -m pip install OpenEXR")
    assert blender_missing((3, 12), available=lambda name: True) is None  # a bpy from elsewhere is a bpy


def test_the_package_installs_bpy_exactly_on_the_pythons_pip_has_it_for() -> None:
    """pyproject.toml's markers and the message agree: bpy and OpenEXR on 3.11 and 3.13, not on the others."""
    from packaging.requirements import Requirement
    from test_citation import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    requirements = {r.name: r for r in map(Requirement, project["dependencies"])}
    assert f"bpy{requirements['bpy'].specifier}" == str(Requirement(BPY_REQUIREMENT))
    for minor in range(10, 15):
        environment = {"python_version": f"3.{minor}", "python_full_version": f"3.{minor}.0"}
        for name in ("bpy", "OpenEXR"):
            assert requirements[name].marker.evaluate(environment) == ((3, minor) in BPY_ON_PIP), (name, minor)
        assert all(r.marker is None or r.marker.evaluate(environment) for n, r in requirements.items()
                   if n not in ("bpy", "OpenEXR")), minor
    assert project["requires-python"] == ">=3.10"
