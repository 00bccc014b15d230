"""The plain-script entry points (`python -m clevr_remv...` modules and `examples/` scripts) keep the
command-line contract of clevr_remv/contract.py: on a missing or bad argument one stderr line and
exit 2, on a wrong path one stderr line and exit 1, never a traceback.

Each runs as a subprocess, as a user starts it. The list below must cover every module and script
the README, CONTRIBUTING.md, the docs pages and the examples document (checked), so a new entry point cannot skip the contract.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# entry point -> {case: (arguments, exit status, text the one line holds)}; {missing} is a path
# that does not exist, {file} a plain file (nothing can be created under it).
CASES: dict[str, dict[str, tuple[list[str], int, str]]] = {
    "-m clevr_remv.stats.language": {
        "bad value": (["--layouts", "x"], 2, "--layouts"),
        "no layouts": (["--layouts", "0"], 2, "give at least 1"),
        "unknown option": (["--bogus"], 2, "unrecognized arguments"),
        "wrong path": (["--layouts", "2", "--templates", "{missing}"], 1, "template folder not found"),
    },
    "examples/read_dataset.py": {
        "no argument": ([], 2, "required: root"),
        "wrong path": (["{missing}"], 1, "is not a clevr-remv dataset"),
        "not a dataset": (["{folder}"], 1, "is not a clevr-remv dataset"),
    },
    "examples/train_loader.py": {
        "no argument": ([], 2, "required: root"),
        "bad value": (["{folder}", "--batch-size", "0"], 2, "--batch-size"),
        "wrong path": (["{missing}"], 1, "is not a clevr-remv dataset"),
    },
    "examples/ray/render_on_ray.py": {
        "no argument": ([], 2, "required: --out"),
        "bad value": (["--out", "{missing}", "--scenes", "0"], 1, "--scenes must be positive"),
        "wrong path": (["--out", "{file}/out"], 1, "cannot write to"),
    },
}


def _command(entry: str) -> list[str]:
    return [sys.executable, *entry.split()] if entry.startswith("-m ") else [sys.executable, str(ROOT / entry)]


def test_every_documented_entry_point_is_checked() -> None:
    documented = set()
    for text in [(ROOT / "README.md").read_text(encoding="utf-8"), (ROOT / "CONTRIBUTING.md").read_text(encoding="utf-8"),
                 *(p.read_text(encoding="utf-8") for p in ROOT.glob("docs/**/*.md")),
                 *(p.read_text(encoding="utf-8") for p in ROOT.glob("examples/**/*.md")),
                 *(p.read_text(encoding="utf-8") for p in ROOT.glob("examples/**/*.py"))]:
        documented |= {f"-m {m}" for m in re.findall(r"python -m (clevr_remv(?:\.\w+)*)(?![.\w])", text)}
        documented |= set(re.findall(r"python (examples/[\w/]+\.py)", text))
    documented |= {p.relative_to(ROOT).as_posix() for p in ROOT.glob("examples/**/*.py")}
    assert "-m clevr_remv.stats.language" in documented and "examples/read_dataset.py" in documented
    assert documented <= CASES.keys(), f"not checked here: {sorted(documented - CASES.keys())}"


@pytest.mark.parametrize("entry, case", [(e, c) for e, cases in CASES.items() for c in cases])
def test_bad_input_gives_one_line_and_the_contract_status(entry: str, case: str, tmp_path: Path) -> None:
    args, status, text = CASES[entry][case]
    (tmp_path / "a-file").write_text("not a folder")
    (tmp_path / "empty").mkdir()
    paths = {"missing": str(tmp_path / "absent"), "file": str(tmp_path / "a-file"), "folder": str(tmp_path / "empty")}
    done = subprocess.run([*_command(entry), *(a.format(**paths) for a in args)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == status, (done.returncode, done.stderr)
    assert "Traceback" not in done.stderr
    assert len(done.stderr.splitlines()) == 1 and text in done.stderr, done.stderr
    assert not (tmp_path / "absent").exists()
