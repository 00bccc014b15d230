"""Render the datasets the test session's fixtures render, for a test run on a Python without `bpy`.

    .venv/bin/python tests/render_fixtures.py FOLDER        # a Python with bpy (CI: the 3.11 venv)
    CLEVR_REMV_FIXTURES=FOLDER .venv-py312/bin/python -m pytest -m "not blender"

Each dataset lands in FOLDER/NAME/out, its arguments in FOLDER/NAME/args.json. Where CLEVR_REMV_FIXTURES
names FOLDER, `conftest.render_tiny` copies FOLDER/NAME/out instead of rendering, and fails (never skips)
when it is missing or was rendered with other arguments. A dataset rendered anew by every session (one
that a test compares with another render) is not here: such a test needs `bpy` and carries the
`blender` mark.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # conftest and the test modules, as pytest finds them

VARIABLE = "CLEVR_REMV_FIXTURES"


def fixture_datasets() -> dict[str, list[str]]:
    """Name -> `render` arguments (without --out) of every dataset `conftest.render_tiny` renders."""
    from conftest import LIGHTFIELD_ARGS, TINY_ARGS
    from test_amodal_outputs import AMODAL_ARGS
    from test_docs_examples import DOCS_DATASET_ARGS
    from test_finalize import ARGS as SINGLE_ARGS
    from test_model import MODEL_ARGS

    return {"tiny": TINY_ARGS, "lightfield": LIGHTFIELD_ARGS, "docs-dataset": DOCS_DATASET_ARGS,
            "single": SINGLE_ARGS, "amodal": AMODAL_ARGS, "model": MODEL_ARGS}


def stored_dataset(folder: Path, name: str, args: list[str]) -> Path:
    """FOLDER/NAME/out, rendered with `args`; AssertionError saying how to make it otherwise."""
    out, recorded = folder / name / "out", folder / name / "args.json"
    again = f"run `python tests/render_fixtures.py {folder}` again with a Python that has bpy"
    assert (out / "dataset.json").is_file() and recorded.is_file(), \
        f"{VARIABLE}={folder} has no complete {name!r} dataset: {again} (a new fixture dataset goes into " \
        "tests/render_fixtures.py's fixture_datasets)"
    assert json.loads(recorded.read_text()) == list(args), \
        f"{VARIABLE}={folder}: {name!r} was rendered with other arguments than {args}: {again}"
    return out


def render_all(folder: Path) -> list[str]:
    """Render every fixture dataset into `folder` (anew); the names."""
    from conftest import run_cli

    folder.mkdir(parents=True, exist_ok=True)
    datasets = fixture_datasets()
    for name, args in datasets.items():
        shutil.rmtree(folder / name, ignore_errors=True)
        result = run_cli("render", *args, "--out", str(folder / name / "out"))
        assert result.exit_code == 0, f"{name}: {result.output}"
        (folder / name / "args.json").write_text(json.dumps(list(args)))
    return list(datasets)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(f"usage: {sys.argv[0]} FOLDER")
    print(f"rendered {', '.join(render_all(Path(sys.argv[1])))} into {sys.argv[1]}")
