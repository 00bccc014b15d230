"""Which code rendered a shard: recorded in every shard and in dataset.json, and a resume that
meets shards of other rendering code says so (images of two versions differ in noise alone)."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import h5py
from conftest import TINY_ARGS, run_cli

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
