"""Which code rendered a shard: recorded in every shard and in dataset.json, and a resume that
meets shards of other rendering code says so (images of two versions differ in noise alone)."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import h5py
import pytest
from conftest import TINY_ARGS, run_cli
from test_architecture import _imported, _modules

from clevr_remv.produce import provenance
from clevr_remv.produce.provenance import PACKAGE, render_code_fingerprint
from clevr_remv.store import DatasetReader, read_manifest


def test_the_fingerprint_follows_the_pixel_code_only(tmp_path: Path) -> None:
    copy = tmp_path / "clevr_remv"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    before = render_code_fingerprint(copy)
    assert before == render_code_fingerprint(PACKAGE)  # the same sources, wherever they live
    (copy / "commands" / "show.py").write_text("# not pixel code\n", encoding="utf-8")
    render_code_fingerprint.cache_clear()
    assert render_code_fingerprint(copy) == before
    renderer = copy / "render" / "cycles.py"
    renderer.write_text(renderer.read_text(encoding="utf-8") + "\n# changed\n", encoding="utf-8")
    render_code_fingerprint.cache_clear()
    assert render_code_fingerprint(copy) != before


# Code that runs around the pixel path but decides no pixel: editing it must leave render_code alone,
# so that a resume after such an edit does not warn that the shards "were rendered by other code".
NOT_PIXEL_CODE = ["produce/finish.py", "produce/run.py", "produce/regenerate.py", "produce/card.py",
                  "produce/provenance.py", "commands/finalize.py", "commands/render.py", "expressions/pairs.py",
                  "store/shard.py", "store/manifest.py", "truth/amodal.py", "truth/occlusion.py", "cli.py"]
PIXEL_CODE = ["produce/pixel_path.py", "scene/layout.py", "scene/rig.py", "scene/seeds.py", "scene/description.py",
              "scene/vocabulary.py", "render/cycles.py", "render/renderer.py", "render/passes.py", "config.py",
              "truth/visibility.py", "truth/depth_precision.py"]


def _edited_fingerprint(tmp_path: Path, module: str) -> tuple[str, str]:
    """(fingerprint of a copy of the package, fingerprint after appending a comment to `module`)."""
    copy = tmp_path / "clevr_remv"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    render_code_fingerprint.cache_clear()
    before = render_code_fingerprint(copy)
    path = copy / module
    path.write_text(path.read_text(encoding="utf-8") + "\n# edited\n", encoding="utf-8")
    render_code_fingerprint.cache_clear()
    return before, render_code_fingerprint(copy)


@pytest.mark.parametrize("module", NOT_PIXEL_CODE)
def test_editing_finishing_resuming_or_card_code_keeps_the_render_code(tmp_path: Path, module: str) -> None:
    before, after = _edited_fingerprint(tmp_path, module)
    assert after == before


@pytest.mark.parametrize("module", PIXEL_CODE)
def test_editing_the_pixel_path_changes_the_render_code(tmp_path: Path, module: str) -> None:
    before, after = _edited_fingerprint(tmp_path, module)
    assert after != before


# Modules the pixel path reaches that decide no pixel, and why (everything else it reaches must be
# fingerprinted): a new import from the pixel path lands in one list or the other, on purpose.
REACHED_BUT_NOT_PIXELS = {
    "clevr_remv": "the version string, recorded as generator_version beside render_code",
    "clevr_remv.contract": "error types and exit statuses",
    "clevr_remv.timing": "time sections for logs and benchmarks",
    "clevr_remv.expressions": "sentences: regenerable from the stored scenes (clevr-remv expressions)",
    "clevr_remv.truth": "a package docstring",
    "clevr_remv.truth.amodal": "amodal pixel counts, not the rendered views",
    "clevr_remv.truth.occlusion": "visible fractions of the refs, regenerable",
    "clevr_remv.store": "how the shard is written, not what it holds",
    "clevr_remv.gpu": "a package docstring",
    "clevr_remv.gpu.devices": "which device renders; the device is recorded in the configuration",
    "clevr_remv.gpu.kernels": "whether a GPU kernel must be compiled",
    "clevr_remv.produce": "a package docstring",
}


def test_every_module_the_pixel_path_reaches_is_fingerprinted_or_explained() -> None:
    files = _modules()
    seen, todo = set(), ["clevr_remv.produce.pixel_path"]
    while todo:
        module = todo.pop()
        if module in seen or module not in files:
            continue
        seen.add(module)
        if module != "clevr_remv":  # its lazy `clevr_remv.RefDataset` is not on the pixel path
            todo += [m for m in _imported(files[module]) if m in files]
    fingerprinted = {PACKAGE / name for name in provenance.PIXEL_CODE}

    def covered(module: str) -> bool:
        path = files[module]
        return any(path == f or f in path.parents for f in fingerprinted)
    def explained(module: str) -> bool:
        return any(module == m or module.startswith(m + ".") and m != "clevr_remv" for m in REACHED_BUT_NOT_PIXELS)
    assert sorted(m for m in seen if not covered(m) and not explained(m)) == []
    assert "clevr_remv.produce.finish" not in seen and "clevr_remv.produce.card" not in seen


def test_shards_and_manifest_record_the_render_code(tiny_dataset: Path) -> None:
    ours = render_code_fingerprint()
    for split in ("train", "val"):
        for path in DatasetReader(tiny_dataset).shard_paths(split):
            with h5py.File(path, "r") as f:
                assert f.attrs["render_code"] == ours
    assert read_manifest(tiny_dataset)["render_codes"] == [ours]


def test_a_resume_over_other_render_code_says_so_and_records_both(tiny_dataset: Path, tmp_path: Path,
                                                                   caplog) -> None:
    """The failure the kill test once hit silently: half a dataset from other code, resumed."""
    out = tmp_path / "out"
    shutil.copytree(tiny_dataset, out)
    (out / "dataset.json").unlink()
    (out / "val" / "shard-00000.h5").unlink()
    older = out / "train" / "shard-00000.h5"
    with h5py.File(older, "r+") as f:
        f.attrs["render_code"] = "0123456789abcdef"
    with caplog.at_level(logging.WARNING, logger="clevr_remv"):
        result = run_cli("render", *TINY_ARGS, "--out", str(out))
    assert result.exit_code == 0, result.output
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and str(older) in warnings[0] and "0123456789abcdef" in warnings[0]
    assert read_manifest(out)["render_codes"] == sorted(["0123456789abcdef", render_code_fingerprint()])
    assert run_cli("verify", str(out), "--no-progress").exit_code == 0


def test_a_resume_over_the_same_code_is_quiet(tiny_dataset: Path, tmp_path: Path, caplog) -> None:
    out = tmp_path / "out"
    shutil.copytree(tiny_dataset, out)
    (out / "val" / "shard-00000.h5").unlink()
    with caplog.at_level(logging.WARNING, logger="clevr_remv"):
        assert run_cli("render", *TINY_ARGS, "--out", str(out)).exit_code == 0
    assert not [r for r in caplog.records if r.levelno == logging.WARNING]
