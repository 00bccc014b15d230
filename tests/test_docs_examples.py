"""Every ```bash and ```python block of the documentation site (docs/**/*.md) runs, so the pages cannot
drift from the code. One pytest item per block, named after its page and line, e.g.
`test_docs_examples.py::test_block[rendering.md:42]`.

The convention the pages are written to:

- Each page runs in a fresh temporary folder (the working directory of its blocks) holding `out/`, a
  complete tiny dataset (5 scenes, 32x24 pixels, 3x3 rig, draft), and `templates/`, a copy of the
  checkout's expression templates; this venv's `clevr-remv` is first on PATH.
- The blocks of a page run in order and share that folder; its python blocks share one namespace.
- A bash block runs with `bash -euo pipefail`; it fails on a non-zero exit or a "Traceback" on stderr.
- Every `clevr-remv render`, from bash or from Python's subprocess, is made tiny: --width 32 --height 24
  --rig 3 --samples 1 (replaced or added, as tests/test_quickstart.py does to the README's quickstart)
  and --no-progress. `--scenes` stays as written, so pages keep it small.
- `<!-- skip: next -->` before a block skips it (Sybil's skip directive: `skip: start` / `skip: end`
  too). A condition reads the page's namespace, which holds `HAVE_TORCH` (whether the train extra's
  PyTorch is installed): `<!-- skip: start if(not HAVE_TORCH, reason="...") -->` keeps the reference
  model's blocks from failing where torch is absent (conftest.need makes that a failure under CI=true). ```text, ```console, ```mermaid, ```yaml, ```toml and other fences never run.

Sybil parses the pages (its Markdown lexers, skip directive and Python evaluator); the parametrised test
below runs the examples instead of Sybil's own pytest collector, because docs/ is outside testpaths and
a conftest.py inside docs/ would be published by mkdocs. README.md is not collected: tests/
test_quickstart.py runs its commands.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shlex
import shutil
import stat
import subprocess
import sys
import unittest
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import render_tiny
from sybil import Document, Example
from sybil.evaluators.skip import Skipper
from sybil.parsers.markdown import CodeBlockParser, PythonCodeBlockParser, SkipParser

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
TESTS = Path(__file__).resolve().parent

# The dataset every page finds in out/: the smallest complete one (three splits, every output).
DOCS_DATASET_ARGS = ["--scenes", "5", "--width", "32", "--height", "24", "--rig", "3", "--samples", "1",
                     "--quality", "draft", "--no-progress"]
BASH_TIMEOUT_S = 600


def run_bash(example: Example) -> str | None:
    """Sybil evaluator of a ```bash block: run it where the page runs; a failure is the block's output."""
    place = PLACES[example.path]
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", example.parsed], cwd=place.folder, env=place.env,
                          capture_output=True, text=True, timeout=BASH_TIMEOUT_S)
    if done.returncode != 0 or "Traceback" in done.stderr:
        return (f"bash exited {done.returncode}\n--- stdout (end) ---\n{done.stdout[-3000:]}"
                f"\n--- stderr (end) ---\n{done.stderr[-3000:]}")
    return None


PARSERS = [PythonCodeBlockParser(), CodeBlockParser("bash", run_bash), SkipParser()]


class Noted:
    """A block's evaluator that notes whether it ran: a block that `skip: next` passes over is then
    reported as skipped, where Sybil alone would count it as passed."""

    def __init__(self, evaluate: Callable[[Example], str | None]) -> None:
        self.evaluate, self.ran = evaluate, False

    def __call__(self, example: Example) -> str | None:
        self.ran = True
        return self.evaluate(example)


def have_torch() -> bool:
    """Whether the train extra's PyTorch is here; pages read it as HAVE_TORCH. Where CI installs it and it is
    missing, test_model's need("torch") fails, so a skip here never hides a missing install."""
    return importlib.util.find_spec("torch") is not None


def parse(page: Path) -> Document:
    document = Document.parse(str(page), *PARSERS)
    document.namespace["HAVE_TORCH"] = have_torch()
    for _, region in document.regions:
        if not isinstance(region.evaluator, Skipper):
            region.evaluator = Noted(region.evaluator)
    return document


def is_block(example: Example) -> bool:
    """A code block (python or bash) rather than a skip directive, which runs only as part of the order."""
    return isinstance(example.region.evaluator, Noted)


def pages() -> list[Path]:
    return sorted(DOCS.rglob("*.md"))


def collect() -> list[pytest.param]:
    params = []
    for page in pages():
        examples = list(parse(page).examples())
        for index, example in enumerate(examples):
            if is_block(example):
                name = f"{page.relative_to(DOCS).as_posix()}:{example.line}"
                params.append(pytest.param(page, index, id=name))
    return params


def tiny_render_wrapper(folder: Path) -> None:
    """A `clevr-remv` in `folder` that makes a render tiny (test_quickstart.tiny) and runs this venv's."""
    real = Path(sys.executable).with_name("clevr-remv")
    assert real.exists(), f"no clevr-remv next to {sys.executable}"
    script = folder / "clevr-remv"
    script.write_text(f"""#!{sys.executable}
import os, sys
sys.path.insert(0, {str(TESTS)!r})
args = sys.argv[1:]
if args[:1] == ["render"]:
    from test_quickstart import tiny
    args = tiny(args)
os.execv({str(real)!r}, [{str(real)!r}, *args])
""")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)


@dataclass
class PagePlace:
    """Where one page's blocks run, and how far through the page they have got."""
    document: Document
    folder: Path
    env: dict[str, str]
    done: int = 0  # examples of the document evaluated so far (skip directives included)
    failed: list[int] = field(default_factory=list)  # lines of the blocks that failed


PLACES: dict[str, PagePlace] = {}  # page path -> its place; run_bash finds it from the example's path
SKIPPED = (unittest.SkipTest, pytest.skip.Exception)  # Sybil's skip directive raises the first


@pytest.fixture(scope="module")
def docs_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return render_tiny(tmp_path_factory, "docs-dataset", DOCS_DATASET_ARGS)


@pytest.fixture(scope="module")
def places() -> Iterator[dict[str, PagePlace]]:
    yield PLACES
    PLACES.clear()


def place_for(page: Path, places: dict[str, PagePlace], dataset: Path,
              tmp_path_factory: pytest.TempPathFactory) -> PagePlace:
    """The page's place, made on its first block: a copy of the dataset, templates/, the tiny clevr-remv."""
    if str(page) not in places:
        folder = tmp_path_factory.mktemp(page.stem)
        shutil.copytree(dataset, folder / "out")
        # A copy: a page may show how to edit the templates, which must not touch the checkout's.
        shutil.copytree(ROOT / "templates", folder / "templates")
        bin_dir = tmp_path_factory.mktemp(f"{page.stem}-bin")
        tiny_render_wrapper(bin_dir)
        path = os.pathsep.join([str(bin_dir), str(Path(sys.executable).parent), os.environ.get("PATH", "")])
        env = {**os.environ, "PATH": path, "PYTHONUNBUFFERED": "1"}
        places[str(page)] = PagePlace(parse(page), folder, env)
    return places[str(page)]


def evaluate(place: PagePlace, example: Example) -> None:
    """Run one example of the page, noting a failure (skips are not failures) for the blocks after it."""
    __tracebackhide__ = True
    try:
        example.evaluate()
    except SKIPPED:
        raise
    except BaseException:
        place.failed.append(example.line)
        raise


@pytest.mark.parametrize(("page", "index"), collect())
def test_block(page: Path, index: int, places: dict[str, PagePlace], docs_dataset: Path,
               tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    __tracebackhide__ = True
    place = place_for(page, places, docs_dataset, tmp_path_factory)
    monkeypatch.chdir(place.folder)  # python blocks run in-process, in the page's folder
    monkeypatch.setenv("PATH", place.env["PATH"])
    examples = list(place.document.examples())
    # The earlier examples of the page first: its skip directives, and its blocks too when this one was
    # picked alone (-k); after a failed block, the rest of the page is skipped rather than failed again.
    for earlier in examples[place.done:index]:
        if not place.failed:
            with contextlib.suppress(Exception, *SKIPPED):
                evaluate(place, earlier)
    place.done = index + 1
    if place.failed:
        pytest.skip(f"{page.name}: the block at line {place.failed[0]} failed before this one")
    block = examples[index]
    evaluate(place, block)
    if not block.region.evaluator.ran:
        pytest.skip(f"{page.name}: skipped by the skip directive before line {block.line}")


# -- what a reader sees: the dataset each page states, and each page pasted into one fresh interpreter

# The sentence that tells a page's reader which dataset its examples read and how to make it; the
# fixture above is that dataset (test_every_page_states_the_dataset_its_examples_read checks both).
STATEMENT = "The examples on this page read `out/`, the docs' example dataset"
DOCS_DATASET_COMMAND = "clevr-remv render --scenes 5 --width 32 --height 24 --rig 3 --samples 1 --quality draft --out out/"
# Getting started reads the dataset it renders itself, the README's quickstart (in the tests made tiny).
OWN_DATASET = {"getting-started.md"}
NOT_STATED: set[str] = set()  # pages whose blocks read out/ but need not say so (none)


def runnable_blocks(page: Path) -> list[tuple[str, str]]:
    """(language, source) of the page's python and bash blocks that its skip directives leave, in order."""
    blocks: list[tuple[str, str]] = []

    def note(language: str) -> Callable[[Example], None]:
        return lambda example: blocks.append((language, example.parsed))

    document = Document.parse(str(page), CodeBlockParser("python", note("python")), CodeBlockParser("bash", note("bash")),
                              SkipParser())
    document.namespace["HAVE_TORCH"] = have_torch()
    for example in document.examples():
        with contextlib.suppress(*SKIPPED):
            example.evaluate()
    return blocks


def one_interpreter_script(blocks: list[tuple[str, str]]) -> str:
    """The page as a reader pastes it into one Python: its python blocks as written, each bash block (a
    terminal beside it) run where it stands in the page's order."""
    parts = ["import subprocess as _docs_subprocess\n"]
    for language, source in blocks:
        if language == "python":
            parts.append(source)
        else:
            parts.append(f"_docs_subprocess.run(['bash', '-euo', 'pipefail', '-c', {source!r}], check=True)\n")
    return "\n".join(parts)


def flat(text: str) -> str:
    return " ".join(text.split())


def test_every_page_states_the_dataset_its_examples_read() -> None:
    args = DOCS_DATASET_COMMAND.split()
    assert args[:2] == ["clevr-remv", "render"] and args[-2:] == ["--out", "out/"]
    assert [*args[2:-2], "--no-progress"] == DOCS_DATASET_ARGS  # the stated dataset is the fixture's
    from test_quickstart import quickstart_render
    started = flat((DOCS / "getting-started.md").read_text(encoding="utf-8"))
    assert f"`{shlex.join(['clevr-remv', *quickstart_render()])}`" in started.replace("```bash ", "`").replace(" ```", "`")
    unstated = []
    for page in pages():
        name = page.relative_to(DOCS).as_posix()
        reads = any("out/" in source or '"out"' in source for _, source in runnable_blocks(page))
        if not reads or name in NOT_STATED | OWN_DATASET:
            continue
        text = flat(page.read_text(encoding="utf-8"))
        if not (STATEMENT in text and f"`{DOCS_DATASET_COMMAND}`" in text):
            unstated.append(name)
    assert not unstated, f"pages whose examples read out/ without {STATEMENT!r} and its command: {unstated}"


def python_pages() -> list[pytest.param]:
    return [pytest.param(page, id=page.relative_to(DOCS).as_posix()) for page in pages()
            if any(language == "python" for language, _ in runnable_blocks(page))]


@pytest.mark.slow
@pytest.mark.parametrize("page", python_pages())
def test_page_runs_in_one_fresh_interpreter(page: Path, docs_dataset: Path,
                                            tmp_path_factory: pytest.TempPathFactory) -> None:
    """A page's blocks, pasted in order into one fresh Python (bash blocks where they stand), run: a
    block that leans on an import of another page, or of a later block, fails here."""
    place = place_for(page, {}, docs_dataset, tmp_path_factory)
    script = place.folder.parent / f"{page.stem}-pasted.py"
    script.write_text(one_interpreter_script(runnable_blocks(page)), encoding="utf-8")
    done = subprocess.run([sys.executable, str(script)], cwd=place.folder, env=place.env, capture_output=True,
                          text=True, timeout=BASH_TIMEOUT_S)
    assert done.returncode == 0 and "Traceback" not in done.stderr, (
        f"{page.name} pasted into one interpreter: exit {done.returncode}\n{done.stderr[-3000:]}")
