"""The README's quickstart feeds the table after it: every command of the table runs as written on the
quickstart's dataset, in the table's order, and so does the predictions snippet of docs/evaluation.md
("Writing predictions") that writes the table's `pred.h5`.

Everything is read from README.md and docs/evaluation.md, so this test breaks when either drifts. Only
the render's image size, rig and samples are made tiny for speed; `--scenes` stays, so the splits have
the same sizes.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
EVALUATION = ROOT / "docs" / "evaluation.md"  # the page the table's evaluate row links to for pred.h5

# What makes the quickstart's render tiny: these options and values replace the README's.
TINY = {"--width": "32", "--height": "24", "--rig": "3", "--samples": "1"}


def section(title: str, text: str = README) -> str:
    """The text of the section `title` (a `## ` heading) of `text` (the README's by default), up to the
    next `## ` heading."""
    return text.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def quickstart_render() -> list[str]:
    """The arguments of the quickstart's `clevr-remv render` (after the install in the same line)."""
    block = section("Quickstart").split("```bash\n", 1)[1].split("```", 1)[0]
    command = block.split("clevr-remv render ", 1)[1].splitlines()[0]
    return ["render", *shlex.split(command)]


def table_commands() -> list[str]:
    """The code spans of the command column of the table after "Then, on the dataset in `out/`"."""
    after = section("Quickstart").split("Then, on the dataset in `out/`", 1)[1]
    rows = [line for line in after.split("\n\n", 2)[1].splitlines() if line.startswith("|")]
    assert rows[0].replace(" ", "") == "|step|command|" and set(rows[1]) <= set("|- "), rows[:2]
    return [span for row in rows[2:] for span in re.findall(r"`([^`]+)`", row.rstrip(" |").rsplit(" | ", 1)[1])]


def table_links() -> list[str]:
    """The relative links of the table after the quickstart (without their #anchors)."""
    after = section("Quickstart").split("Then, on the dataset in `out/`", 1)[1].split("\n\n", 2)[1]
    return [link.split("#", 1)[0] for link in re.findall(r"\]\(([^)]+)\)", after)]


def predictions_snippet() -> str:
    """The python block of docs/evaluation.md's "Writing predictions" that calls `PredictionsWriter(`."""
    page = section("Writing predictions", EVALUATION.read_text(encoding="utf-8"))
    blocks = re.findall(r"```python\n(.*?)```", page, flags=re.S)
    return next(b for b in blocks if "PredictionsWriter(" in b)


def tiny(args: list[str]) -> list[str]:
    """The same render with TINY's values, and no progress bar."""
    args, rest = list(args), dict(TINY)
    for i, arg in enumerate(args[:-1]):
        if arg in rest:
            args[i + 1] = rest.pop(arg)
    return [*args, *(a for option, value in rest.items() for a in (option, value)), "--no-progress"]


def clevr_remv() -> str:
    found = Path(sys.executable).with_name("clevr-remv")
    return str(found) if found.exists() else shutil.which("clevr-remv") or pytest.fail("no clevr-remv script")


def run(command: list[str], cwd: Path) -> subprocess.CompletedProcess:
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"})
    shown = " ".join(command[1:]) if command[0] == sys.executable else shlex.join(command)
    assert done.returncode == 0 and "Traceback" not in done.stderr, (shown, done.returncode, done.stderr[-2000:])
    return done


def test_the_readme_is_read_as_expected() -> None:
    render = quickstart_render()
    assert render[:1] == ["render"] and "--scenes" in render and "--out" in render and "out/" in render
    commands = table_commands()
    assert any(c.startswith("clevr-remv evaluate") and "pred.h5" in c for c in commands), commands
    assert "out" in predictions_snippet() and "pred.h5" in predictions_snippet()
    links = table_links()  # the table sends each step to its page of the documentation
    assert "docs/evaluation.md" in links and all(link.startswith("docs/") for link in links), links
    assert all((ROOT / link).is_file() for link in links), [link for link in links if not (ROOT / link).is_file()]
    assert tiny(["render", "--scenes", "5", "--width", "240"])[:5] == ["render", "--scenes", "5", "--width", "32"]


@pytest.mark.slow
def test_every_command_after_the_quickstart_runs_as_written(tmp_path: Path) -> None:
    (tmp_path / "templates").symlink_to(ROOT / "templates")  # the table runs in the checkout
    render = quickstart_render()
    run([clevr_remv(), *tiny(render)], tmp_path)
    manifest = json.loads((tmp_path / "out" / "dataset.json").read_text())
    sizes = {split: entry["scenes"] for split, entry in manifest["splits"].items()}
    assert sum(sizes.values()) == int(render[render.index("--scenes") + 1])
    assert set(sizes) == {"train", "val", "test"} and min(sizes.values()) >= 1, sizes

    render_help = run([clevr_remv(), "render", "--help"], tmp_path).stdout
    ran = []
    for command in table_commands():
        if command.startswith("--"):  # an option to add to the render command above
            assert re.search(rf"^\s+{re.escape(command.split()[0])}\b", render_help, flags=re.M), command
        elif command.startswith("clevr_remv."):  # Python, as written
            run([sys.executable, "-c", f"import clevr_remv\nprint({command})"], tmp_path)
        elif command.startswith("clevr-remv "):
            if "pred.h5" in command:  # written by the snippet that the table points to
                run([sys.executable, "-c", predictions_snippet()], tmp_path)
            args = shlex.split(command)[1:]
            run([clevr_remv(), *(tiny(args) if args[0] == "render" else args)], tmp_path)
        else:
            pytest.fail(f"the table's command column holds {command!r}: neither a command nor an option")
        ran.append(command)
    assert len([c for c in ran if not c.startswith("--")]) >= 8, ran
    for made in ("figures/stats.json", "scene.png", "scene.html", "refer/refcoco/instances.json", "pred.h5"):
        assert (tmp_path / made).is_file(), made
