"""Shared fixtures: one tiny real render, made once per test session and reused."""

from __future__ import annotations

import atexit
import functools
import importlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import NoReturn

import pytest
from click.testing import CliRunner

from render_fixtures import VARIABLE as FIXTURES_VARIABLE
from render_fixtures import fixture_datasets, stored_dataset

from clevr_remv.cli import main
from clevr_remv.contract import blender_missing

# Whether this Python can render: pip's bpy exists for Python 3.11 and 3.13 only (docs/blender.md). Where it
# cannot, the session's datasets are copies of ones rendered elsewhere (tests/render_fixtures.py) and the
# tests that need bpy themselves carry the `blender` mark (pytest -m "not blender"; see the end of this file).
HAVE_BLENDER = blender_missing() is None

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


# ------------------------------------------------------------------ what a test needs: skip here, fail in CI

# Modules that a CI run lacks on purpose, space-separated: .ci/run sets it for its Python 3.12 venv, which has no
# CPU build of torch on the index (a CUDA one is several GB). Everything else that .ci/run installs must be there.
CI_LACKS = "CLEVR_REMV_CI_LACKS"


def under_ci() -> bool:
    return os.environ.get("CI") == "true"


def missing(reason: str) -> NoReturn:
    """Something this test needs is missing: skip it here, fail it under CI=true, where .ci/run installs
    everything the suite needs (Chromium and chromedriver, Ray, the other Blender versions, torch, datasets),
    so a skip there would report a check that never ran. Works inside a test and at a module's top level.
    Only what cannot be had on CI's machine (a GPU, a scheduler, a Ray cluster, the network) skips there."""
    if under_ci():
        pytest.fail(f"{reason} (CI=true: .ci/run installs it, so the test must run)", pytrace=False)
    pytest.skip(reason, allow_module_level=True)


def need(module: str, install: str = "") -> ModuleType:
    """`import module`, or `missing(...)`: skipped here, failed under CI=true; e.g. `torch = need("torch")`.
    `install` says how to get it (shown in the reason). A module named in CLEVR_REMV_CI_LACKS skips in CI too."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        reason = f"needs {module} ({install or 'pip install ' + module}): {error}"
        if module in os.environ.get(CI_LACKS, "").split():
            pytest.skip(f"{reason}; {CI_LACKS} says this CI run lacks it on purpose", allow_module_level=True)
        missing(reason)


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


@contextmanager
def small_filesystem(folder: Path, size: int = 16 << 20) -> Iterator[Path]:
    """A real filesystem of its own at `folder`, `size` bytes (a tmpfs mounted there, as root), so that a
    write past its end fails with ENOSPC as on a full disk (`fill_up` leaves a chosen room). Where nothing can
    be mounted (not root, no mount): skipped here, failed under CI=true (CI runs as root)."""
    import subprocess

    folder.mkdir(parents=True, exist_ok=True)
    try:
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(folder)],
                       check=True, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as error:
        missing(f"cannot mount a small tmpfs at {folder} for a real full disk (needs root): "
                f"{getattr(error, 'stderr', None) or error}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False, capture_output=True, timeout=30)


def fill_up(folder: Path, free: int) -> None:
    """Leave about `free` bytes free on `folder`'s filesystem: a hidden file `folder/.filler` takes the rest."""
    import shutil as _shutil

    left = _shutil.disk_usage(folder).free - free
    assert left >= 0, f"only {_shutil.disk_usage(folder).free} bytes free on {folder}, wanted {free}"
    with open(folder / ".filler", "wb") as filler:
        filler.write(b"\0" * left)
    assert abs(_shutil.disk_usage(folder).free - free) <= 8192, _shutil.disk_usage(folder)


@functools.lru_cache(maxsize=None)
def gpus() -> dict[str, list[str]]:
    """The GPUs Cycles lists on this machine, per backend ({} without one, or without bpy), asked once in a
    process of its own (Cycles loads its GPU backends there, not in the test session)."""
    import json
    import subprocess
    import sys

    if not HAVE_BLENDER:
        return {}
    listed = subprocess.run([sys.executable, "-c", "import json; from clevr_remv.render.cycles import available_gpus; "
                             "print(json.dumps(available_gpus()))"], capture_output=True, text=True, timeout=300)
    assert listed.returncode == 0, listed.stderr[-2000:]
    return json.loads(listed.stdout.strip().splitlines()[-1])


def without_gpu() -> None:
    """For a test of what happens without a GPU: skipped on a machine that has one (a GPU skip, allowed in CI)."""
    if gpus():
        pytest.skip(f"this machine has a GPU ({gpus()}): the test checks the behaviour without one")


def render_tiny(tmp_path_factory: pytest.TempPathFactory, name: str, args: list[str] = TINY_ARGS) -> Path:
    """Render `args` (the tiny configuration by default) into a fresh `<name>/out`; where
    CLEVR_REMV_FIXTURES is set (a Python without bpy), copy the one tests/render_fixtures.py rendered."""
    out = tmp_path_factory.mktemp(name) / "out"
    if os.environ.get(FIXTURES_VARIABLE):
        shutil.copytree(stored_dataset(Path(os.environ[FIXTURES_VARIABLE]), name, args), out)
        return out
    # Every dataset rendered here is one render_fixtures.py renders too, so the run without bpy has it.
    assert fixture_datasets().get(name) == list(args), f"add {name!r} to tests/render_fixtures.py's fixture_datasets"
    if not HAVE_BLENDER:
        pytest.fail(f"no bpy on this Python to render the {name!r} dataset: set {FIXTURES_VARIABLE} to a folder that "
                    "`python tests/render_fixtures.py FOLDER` filled, run by a Python with bpy", pytrace=False)
    return render_fresh(out, args)


def render_fresh(out: Path, args: list[str]) -> Path:
    """Render `args` into `out` with this Python's bpy."""
    result = run_cli("render", *args, "--out", str(out))
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return render_tiny(tmp_path_factory, "tiny")


@pytest.fixture(scope="session")
def tiny_dataset_again(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same arguments rendered a second time, for determinism checks (never a stored copy)."""
    return render_fresh(tmp_path_factory.mktemp("tiny-again") / "out", TINY_ARGS)


# A wide-baseline light field (3x3, 120x80, baseline 0.4: up to about 3.5 px per view step), where a
# wrong sign or a wrong view order moves pixels far enough to show (tests/test_lightfield_*.py).
LIGHTFIELD_ARGS = ["--scenes", "5", "--rig", "3", "--width", "120", "--height", "80", "--baseline", "0.4",
                   "--samples", "2", "--scenes-per-shard", "2", "--seed", "7", "--no-progress"]


@pytest.fixture(scope="session")
def lightfield_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return render_tiny(tmp_path_factory, "lightfield", LIGHTFIELD_ARGS)


# The harder language (issue #24): the light-field dataset's sentences rewritten by `expressions --max-hops 3
# --targets any` (no rendering): chains, plurals, and/or and no-target sentences over real masks.
HARDER_ARGS = ["--max-hops", "3", "--targets", "any"]


@pytest.fixture(scope="session")
def harder_dataset(lightfield_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("harder") / "out"
    shutil.copytree(lightfield_dataset, out)
    result = run_cli("expressions", str(out), *HARDER_ARGS)
    assert result.exit_code == 0, result.output
    return out


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


# The tests that need bpy themselves (they render, or ask Blender): the `blender` mark, so that a Python
# without bpy runs the rest with the stored datasets above (`pytest -m "not blender"`, CI's Python 3.12 run).
# Whole modules first; where bpy is missing these are not collected at all (they import it, or skip without it).
BLENDER_MODULES = {"test_blender_versions.py", "test_gpu_render.py", "test_ray_runner.py", "test_renderer_setup.py",
                   "test_wheel_install.py"}
BLENDER_TESTS = {  # module -> test functions (every parameter of one)
    "test_amodal.py": {"test_unit_vertices_are_blenders_meshes", "test_unoccluded_polygon_equals_cycles_alone",
                       "test_rendered_scene_amodal_contains_and_matches_visible",
                       "test_two_spheres_visible_fraction_matches_geometry",
                       "test_render_amodal_masks_are_stored_bit_packed_and_verified"},
    "test_card.py": {"test_the_cards_render_command_makes_the_same_data"},
    "test_cli.py": {"test_unwritable_out_fails_with_one_line", "test_out_with_a_different_dataset_is_refused_and_left_untouched",
                    "test_a_settings_conflict_names_every_difference",
                    "test_rerun_skips_complete_shards_and_redoes_missing_ones",
                    "test_gpu_requested_without_a_gpu_fails_with_one_line", "test_gpus_without_a_gpu_fails_with_one_line",
                    "test_blender_script_entry_point_passes_arguments_to_render",
                    "test_farm_jobs_render_one_shard_each_and_the_last_writes_the_manifest",
                    "test_a_settings_conflict_gives_the_options_that_resume_the_dataset"},
    "test_finalize.py": {"test_finalize_names_missing_shards_then_completes_the_dataset"},
    "test_gpu_kernels.py": {"test_the_installed_blender_ships_cuda_kernels_where_this_module_looks"},
    "test_job_arrays.py": {"test_every_job_of_an_array_renders_its_share_and_the_last_completes_the_dataset"},
    "test_kernel_build.py": {"test_the_installed_bpy_kernel_folder_is_found_without_loading_blender"},
    "test_object_count.py": {"test_counts_uniform_with_the_real_probe"},
    "test_provenance.py": {"test_a_resume_over_other_render_code_says_so_and_records_both",
                           "test_a_resume_over_the_same_code_is_quiet"},
    "test_quality.py": {"test_caustics_reach_cycles"},
    "test_quickstart.py": {"test_every_command_after_the_quickstart_runs_as_written"},
    "test_render.py": {"test_same_arguments_give_identical_data", "test_each_view_renders_with_its_own_cycles_seed"},
    "test_runners.py": {"test_two_workers_give_the_dataset_of_one_process",
                        "test_a_killed_run_resumes_to_the_uninterrupted_dataset",
                        "test_a_failing_shard_is_retried_once_then_reported_while_the_others_complete",
                        "test_a_dead_worker_s_shard_is_retried_in_a_fresh_process"},
    "test_scripts.py": {"test_bad_input_gives_one_line_and_the_contract_status[examples/ray/render_on_ray.py-wrong path]"},
    "test_signals.py": {"test_sigterm_stops_cleanly_with_143_and_the_printed_command_resumes",
                        "test_a_full_disk_is_one_line_and_keeps_what_was_written"},
    "test_streaming.py": {"test_worker_memory_does_not_grow_with_scenes_per_shard",
                          "test_a_scene_too_big_for_memory_is_refused_before_rendering"},
    "test_verify.py": {"test_quarantine_moves_exactly_the_bad_shard_and_render_restores_it"},
}
# A docs page's blocks run in order in one folder (tests/test_docs_examples.py): from its first block that
# needs bpy (a render, gpu-kernels without --lib) and is not skipped, the page needs bpy.
RENDERS = re.compile(r"\bclevr-remv (render|gpu-kernels)\b|render_shard\.py")


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    return True if not HAVE_BLENDER and collection_path.name in BLENDER_MODULES else None


def pytest_report_header(config: pytest.Config) -> str | None:
    if HAVE_BLENDER:
        return None
    return (f"no bpy here: {blender_missing()}\n{len(BLENDER_MODULES)} modules that need it are not collected "
            f"({', '.join(sorted(BLENDER_MODULES))}); datasets from {os.environ.get(FIXTURES_VARIABLE) or '(none: set ' + FIXTURES_VARIABLE + ')'}")


def _docs_first_render(item: pytest.Item, cache: dict[Path, int | None]) -> int | None:
    """The index of the first block of the item's page that renders (None: none does)."""
    page = item.callspec.params["page"]
    if page not in cache:
        lines = page.read_text(encoding="utf-8").splitlines()
        cache[page] = next((i for i, example in enumerate(item.module.parse(page).examples())
                            if item.module.is_block(example) and RENDERS.search(example.parsed)
                            and lines[example.line - 2].strip() != "<!-- skip: next -->"), None)
    return cache[page]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    first_render: dict[Path, int | None] = {}
    for item in items:
        module = item.path.name
        if module == "test_docs_examples.py" and hasattr(item, "callspec"):
            first = _docs_first_render(item, first_render)  # a whole page's item (no index) needs its renders
            needs = first is not None and item.callspec.params.get("index", first) >= first
        else:
            names = BLENDER_TESTS.get(module, set())
            needs = module in BLENDER_MODULES or item.originalname in names or item.name in names
        if needs:
            item.add_marker(pytest.mark.blender)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """Under CI=true, a test skipped for want of bpy fails: it should carry the blender mark instead."""
    outcome = yield
    report = outcome.get_result()
    if (under_ci() and report.skipped and "blender" not in item.keywords
            and re.search(r"\b(bpy|OpenEXR)\b", str(report.longrepr))):
        report.outcome = "failed"
        report.longrepr = f"skipped for want of bpy without the blender mark (tests/conftest.py): {report.longrepr}"
