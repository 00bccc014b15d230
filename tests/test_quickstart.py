"""The README's quickstart feeds the table after it: every command of the table runs as written, in the
table's order, in one fresh `bash` after the quickstart's own commands (its `source .venv/bin/activate`
included: nothing else puts `clevr-remv` on that shell's PATH), and so does the predictions snippet of
docs/evaluation.md ("Writing predictions") that writes the table's `pred.h5`.

Everything is read from README.md and docs/evaluation.md, so this test breaks when either drifts. The
quickstart's venv and install are the suite's own (`.venv` links to it); only the render's image size,
rig and samples are made tiny for speed; `--scenes` stays, so the splits have the same sizes.
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
from conftest import missing

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
EVALUATION = ROOT / "docs" / "evaluation.md"  # the page the table's evaluate row links to for pred.h5

# What makes the quickstart's render tiny: these options and values replace the README's.
TINY = {"--width": "32", "--height": "24", "--rig": "3", "--samples": "1"}


def section(title: str, text: str = README) -> str:
    """The text of the section `title` (a `## ` heading) of `text` (the README's by default), up to the
    next `## ` heading."""
    return text.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


# The quickstart's steps that this test does not redo: the suite's venv is installed already.
INSTALL = ("python3.11 -m venv .venv", "pip install -e .")


def quickstart_steps() -> list[str]:
    """The commands of the quickstart's first block: one line, joined by `&&`."""
    block = section("Quickstart").split("```bash\n", 1)[1].split("```", 1)[0]
    lines = [line for line in block.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    return lines[0].split(" && ")


def quickstart_render() -> list[str]:
    """The arguments of the quickstart's `clevr-remv render`."""
    command = next(step for step in quickstart_steps() if step.startswith("clevr-remv render "))
    return shlex.split(command)[1:]


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


def fresh_shell_env() -> dict[str, str]:
    """A fresh shell's environment: no venv active, and no folder holding a `clevr-remv` on PATH, so the
    README's own `source .venv/bin/activate` is what makes its commands run."""
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONHOME", "PYTHONPATH")}
    folders = [f for f in env.get("PATH", "").split(os.pathsep) if f and not (Path(f) / "clevr-remv").exists()]
    return {**env, "PATH": os.pathsep.join(folders), "PYTHONUNBUFFERED": "1"}


def readme_script(snippet: Path) -> tuple[str, list[str]]:
    """The bash script of the README's commands as printed: the quickstart's (without the install, its
    render made tiny), then the table's; and the table's commands it runs."""
    lines = ["set -x"]
    for step in quickstart_steps():
        if step in INSTALL:
            continue
        lines.append(shlex.join(["clevr-remv", *tiny(shlex.split(step)[1:])])
                     if step.startswith("clevr-remv render ") else step)
    ran = []
    for command in table_commands():
        if command.startswith("--"):  # an option to add to the render command above: checked against --help
            continue
        if command.startswith("clevr_remv."):  # Python, as written
            lines.append(f"python -c {shlex.quote(f'import clevr_remv; print({command})')}")
        elif command.startswith("clevr-remv "):
            if "pred.h5" in command:  # written by the snippet that the table points to
                lines.append(f"python {shlex.quote(str(snippet))}")
            lines.append(command)
        else:
            pytest.fail(f"the table's command column holds {command!r}: neither a command nor an option")
        ran.append(command)
    return "\n".join(lines) + "\n", ran


def test_the_readme_is_read_as_expected() -> None:
    steps = quickstart_steps()
    assert [s for s in steps if s in INSTALL] == list(INSTALL), steps  # the only steps not run as printed
    assert "source .venv/bin/activate" in steps and steps.index("source .venv/bin/activate") < steps.index(
        INSTALL[1]), steps  # activated before `pip`, so the install goes into .venv
    render = quickstart_render()
    assert render[:1] == ["render"] and "--scenes" in render and "--out" in render and "out/" in render
    commands = table_commands()
    assert any(c.startswith("clevr-remv evaluate") and "pred.h5" in c for c in commands), commands
    assert "out" in predictions_snippet() and "pred.h5" in predictions_snippet()
    links = table_links()  # the table sends each step to its page of the documentation
    assert "docs/evaluation.md" in links and all(link.startswith("docs/") for link in links), links
    assert all((ROOT / link).is_file() for link in links), [link for link in links if not (ROOT / link).is_file()]
    assert tiny(["render", "--scenes", "5", "--width", "240"])[:5] == ["render", "--scenes", "5", "--width", "32"]
    assert shutil.which("clevr-remv", path=fresh_shell_env()["PATH"]) is None  # only the activation finds it


@pytest.mark.slow
def test_every_command_after_the_quickstart_runs_as_written(tmp_path: Path) -> None:
    if sys.prefix == sys.base_prefix or not (Path(sys.prefix) / "bin" / "activate").is_file():
        missing("the suite runs outside a venv: no .venv/bin/activate to source")
    work = tmp_path / "checkout"
    work.mkdir()
    (work / ".venv").symlink_to(sys.prefix)  # the quickstart's venv, installed: the suite's own
    (work / "templates").symlink_to(ROOT / "templates")  # the table runs in the checkout
    snippet = tmp_path / "write_predictions.py"
    snippet.write_text(predictions_snippet(), encoding="utf-8")
    script, ran = readme_script(snippet)
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=work, env=fresh_shell_env(),
                          capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0 and "Traceback" not in done.stderr, (done.returncode, done.stderr[-3000:])

    render = quickstart_render()
    manifest = json.loads((work / "out" / "dataset.json").read_text())
    sizes = {split: entry["scenes"] for split, entry in manifest["splits"].items()}
    assert sum(sizes.values()) == int(render[render.index("--scenes") + 1])
    assert set(sizes) == {"train", "val", "test"} and min(sizes.values()) >= 1, sizes
    render_help = subprocess.run([str(Path(sys.executable).with_name("clevr-remv")), "render", "--help"],
                                 capture_output=True, text=True, check=True).stdout
    for option in (c for c in table_commands() if c.startswith("--")):
        assert re.search(rf"^\s+{re.escape(option.split()[0])}\b", render_help, flags=re.M), option
    assert len(ran) >= 8, ran
    for made in ("figures/stats.json", "scene.png", "scene.html", "refer/refcoco/instances.json", "pred.h5"):
        assert (work / made).is_file(), made
