"""The command line: one-line errors for bad input, nothing existing overwritten, resumable runs."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import TINY_ARGS, without_gpu
from test_render import assert_same_shard

from clevr_remv.cli import main


def invoke(*args: str):
    return CliRunner().invoke(main, list(args))


def fingerprint(out: Path) -> dict[str, str]:
    return {p.relative_to(out).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(out.rglob("*")) if p.is_file()}


def assert_one_line_error(result, text: str) -> None:
    assert result.exit_code != 0
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    lines = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(lines) == 1 and text in lines[0], result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    "args, text",
    [
        (["--scenes", "0"], "--scenes must be positive"),
        (["--scenes", "-5"], "--scenes must be positive"),
        (["--rig", "4"], "--rig must be a positive odd number"),
        (["--samples", "0"], "--samples must be positive"),
        (["--scenes-per-shard", "0"], "--scenes-per-shard"),
        (["--shard", "train:999"], "no shard 'train:999'"),
    ],
)
def test_bad_arguments_fail_with_one_line(tmp_path: Path, args, text) -> None:
    result = invoke("render", "--scenes", "3", "--out", str(tmp_path / "out"), *args)
    assert_one_line_error(result, text)
    assert not (tmp_path / "out" / "dataset.json").exists()


def test_unwritable_out_fails_with_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    result = invoke("render", "--scenes", "3", "--out", str(blocker / "out"))
    assert_one_line_error(result, "cannot write to")
    assert blocker.read_text() == "not a directory"


def stats_figures(folder: Path) -> Path:
    """A folder such as `stats --out figures/` leaves: things that are no dataset."""
    (folder / "figures").mkdir(parents=True)
    (folder / "figures" / "objects.png").write_bytes(b"\x89PNG not really")
    (folder / "figures" / "stats.json").write_text("{}")
    return folder / "figures"


@pytest.mark.blender  # render asks for bpy before it looks at --out
def test_render_into_a_folder_of_other_things_is_refused_and_writes_nothing(tmp_path: Path) -> None:
    figures = stats_figures(tmp_path)
    before = fingerprint(figures)
    result = invoke("render", *TINY_ARGS, "--out", str(figures))
    assert_one_line_error(result, f"--out {figures} is not empty (it holds {figures / 'objects.png'} and no "
                                  "clevr-remv dataset")
    assert result.exit_code == 1
    assert sorted(p.name for p in figures.iterdir()) == ["objects.png", "stats.json"]
    assert fingerprint(figures) == before


def test_only_a_folder_of_other_things_is_refused(tmp_path: Path, tiny_dataset: Path) -> None:
    """Without bpy: what `render --out` accepts (new, empty, a stopped run's leftovers, a dataset with
    files beside it) and what it refuses (figures; a split folder holding other files)."""
    from clevr_remv.config import from_dict
    from clevr_remv.produce.run import check_output
    from clevr_remv.store import read_manifest

    config = from_dict(read_manifest(tiny_dataset)["config"])
    figures = stats_figures(tmp_path / "a")
    with pytest.raises(ValueError, match="is not empty .*no clevr-remv dataset"):
        check_output(figures, config)
    stopped = tmp_path / "stopped"
    (stopped / "train").mkdir(parents=True)
    (stopped / "train" / ".shard-00000.h5.tmp-host-1").write_bytes(b"")
    (stopped / ".transaction.json.tmp-host-1").write_text("")
    dataset_with_figures = tmp_path / "dataset"
    shutil.copytree(tiny_dataset, dataset_with_figures)
    stats_figures(dataset_with_figures)
    (tmp_path / "empty").mkdir()
    for accepted in (tmp_path / "new", tmp_path / "empty", stopped, dataset_with_figures):
        check_output(accepted, config)
    (stopped / "train" / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match=r"it holds .*stopped/train and no"):
        check_output(stopped, config)


def test_out_with_a_different_dataset_is_refused_and_left_untouched(tiny_dataset: Path) -> None:
    before = fingerprint(tiny_dataset)
    for changed in (["--seed", "12"], ["--samples", "3"], ["--width", "80"]):
        args = list(TINY_ARGS)
        i = args.index(changed[0])
        args[i + 1] = changed[1]
        result = invoke("render", *args, "--out", str(tiny_dataset))
        assert_one_line_error(result, "made with other settings")
    assert fingerprint(tiny_dataset) == before


def test_a_settings_conflict_names_every_difference(tiny_dataset: Path) -> None:
    """Not only the first three: the fourth and fifth (here width and height) were hidden."""
    args = list(TINY_ARGS)
    for option, value in {"--seed": "12", "--samples": "3", "--rig": "5", "--width": "80", "--height": "40"}.items():
        args[args.index(option) + 1] = value
    result = invoke("render", *args, "--out", str(tiny_dataset))
    assert_one_line_error(result, "made with other settings")
    for difference in ("--seed 11 (now 12)", "--samples 2 (now 3)", "--rig 3 (now 5)", "--width 64 (now 80)",
                       "--height 48 (now 40)"):  # named by their options (issue item 7), not `grid=3`
        assert difference in result.output, result.output
    assert "quality={" not in result.output  # nested settings one by one, not whole dicts
    assert "grid" not in result.output and "quality.samples" not in result.output


def test_a_difference_without_its_own_option_says_so() -> None:
    from clevr_remv.config import describe_difference

    assert describe_difference("amodal_masks", False, True) == "--amodal-masks off (now on)"
    assert describe_difference("quality.denoise", True, False) == "--quality's denoise True (now False)"
    assert describe_difference("lens_mm", 50.0, 35.0) == "lens_mm=50.0 (now 35.0)"


def test_version_is_the_generator_version_datasets_record(tiny_dataset: Path) -> None:
    result = invoke("--version")
    assert result.exit_code == 0, result.output
    recorded = json.loads((tiny_dataset / "dataset.json").read_text())["generator_version"]
    assert result.output.strip() == f"clevr-remv, version {recorded}"


def test_rerun_skips_complete_shards_and_redoes_missing_ones(tiny_dataset: Path, tmp_path: Path) -> None:
    before = fingerprint(tiny_dataset)
    result = invoke("render", *TINY_ARGS, "--out", str(tiny_dataset))
    assert result.exit_code == 0, result.output
    assert fingerprint(tiny_dataset) == before  # nothing re-rendered or rewritten

    # A copy that lost one shard and its manifest (a crashed farm job) is completed by a re-run.
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(tiny_dataset, copy)
    (copy / "val/shard-00000.h5").unlink()
    (copy / "dataset.json").unlink()
    (copy / "val/.shard-00000.h5.tmp-999").write_bytes(b"half-written")  # left by a killed writer
    result = invoke("render", *TINY_ARGS, "--out", str(copy))
    assert result.exit_code == 0, result.output
    again = fingerprint(copy)
    assert again["train/shard-00000.h5"] == before["train/shard-00000.h5"]  # kept, not rewritten
    assert_same_shard(copy / "val/shard-00000.h5", tiny_dataset / "val/shard-00000.h5")
    assert json.loads((copy / "dataset.json").read_text()) == json.loads((tiny_dataset / "dataset.json").read_text())


def test_help_lists_the_options() -> None:
    result = invoke("render", "--help")
    for option in ("--scenes", "--out", "--seed", "--width", "--height", "--rig", "--samples", "--device",
                   "--scenes-per-shard", "--shard"):
        assert option in result.output


@pytest.mark.gpu
def test_gpu_requested_without_a_gpu_fails_with_one_line(tmp_path: Path) -> None:
    without_gpu()
    result = invoke("render", *TINY_ARGS, "--device", "gpu", "--out", str(tmp_path / "out"))
    assert_one_line_error(result, "found no GPU")
    assert not list((tmp_path / "out").rglob("*.h5"))


@pytest.mark.gpu
def test_gpus_without_a_gpu_fails_with_one_line(tmp_path: Path) -> None:
    without_gpu()
    for gpus in ("0", "all"):
        result = invoke("render", *TINY_ARGS, "--gpus", gpus, "--out", str(tmp_path / "out"))
        assert_one_line_error(result, f"--gpus {gpus}: Cycles found no GPU")
    assert not list((tmp_path / "out").rglob("*.h5"))


def test_expressions_are_regenerated_without_rendering(tiny_dataset: Path, tmp_path: Path) -> None:
    import shutil

    import h5py

    copy = tmp_path / "copy"
    shutil.copytree(tiny_dataset, copy)
    templates = tmp_path / "templates"
    shutil.copytree(Path(__file__).resolve().parents[1] / "templates", templates)
    # A user's edit: only zero-hop sentences from now on.
    for name in ("one_hop_spatial.json", "one_hop_same.json"):
        (templates / name).unlink()
    result = invoke("expressions", str(copy), "--templates", str(templates))
    assert result.exit_code == 0, result.output
    with h5py.File(copy / "train/shard-00000.h5", "r") as new, h5py.File(tiny_dataset / "train/shard-00000.h5", "r") as old:
        assert set(new["refs/family"].asstr()[:]) == {"zero_hop"}
        assert "one_hop_spatial" in set(old["refs/family"].asstr()[:])
        np.testing.assert_array_equal(new["images"][:], old["images"][:])  # pixels untouched
    manifest = json.loads((copy / "dataset.json").read_text())
    with h5py.File(copy / "train/shard-00000.h5", "r") as f:
        assert manifest["splits"]["train"]["pairs"] == len(f["refs/id"])


def test_expressions_with_a_broken_template_fails_with_one_line(tiny_dataset: Path, tmp_path: Path) -> None:
    import shutil

    templates = tmp_path / "templates"
    shutil.copytree(Path(__file__).resolve().parents[1] / "templates", templates)
    (templates / "zero_hop.json").write_text("{not json")
    before = fingerprint(tiny_dataset)
    result = invoke("expressions", str(tiny_dataset), "--templates", str(templates))
    assert_one_line_error(result, "zero_hop.json")
    assert fingerprint(tiny_dataset) == before


def test_blender_script_entry_point_passes_arguments_to_render(tmp_path: Path) -> None:
    """`blender -b -P blender_scripts/render_shard.py -- ARGS` runs `clevr-remv render ARGS`.

    No Blender binary here: the script is run by the Python that has `bpy`, which is what
    Blender's own interpreter does with it.
    """
    import subprocess
    import sys

    script = Path(__file__).resolve().parents[1] / "blender_scripts/render_shard.py"
    shown = subprocess.run([sys.executable, str(script), "--", "--help"], capture_output=True, text=True, cwd=tmp_path)
    assert shown.returncode == 0 and "--shard SPLIT:N" in shown.stdout
    refused = subprocess.run([sys.executable, str(script), "--", "--scenes", "0", "--out", str(tmp_path / "o")],
                             capture_output=True, text=True, cwd=tmp_path)
    assert refused.returncode == 1 and "Error: --scenes must be positive" in refused.stderr
    # One Blender process renders on one device: several workers are refused there, in one line.
    workers = subprocess.run([sys.executable, str(script), "--", *TINY_ARGS, "--workers", "2", "--out", str(tmp_path / "o")],
                             capture_output=True, text=True, cwd=tmp_path)
    assert workers.returncode == 1 and "Error: inside Blender (blender -b -P) one process" in workers.stderr
    assert not (tmp_path / "o").exists() or not list((tmp_path / "o").rglob("*.h5"))


def test_farm_jobs_render_one_shard_each_and_the_last_writes_the_manifest(tiny_dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "farm"
    first = invoke("render", *TINY_ARGS, "--out", str(out), "--shard", "val:0")
    assert first.exit_code == 0, first.output
    assert (out / "val/shard-00000.h5").exists() and not (out / "train").exists()
    assert not (out / "dataset.json").exists()  # not every shard exists yet
    last = invoke("render", *TINY_ARGS, "--out", str(out), "--shard", "train:0")
    assert last.exit_code == 0, last.output
    assert json.loads((out / "dataset.json").read_text()) == json.loads((tiny_dataset / "dataset.json").read_text())
    for name in ("train/shard-00000.h5", "val/shard-00000.h5"):
        assert_same_shard(out / name, tiny_dataset / name)


def test_a_settings_conflict_gives_the_options_that_resume_the_dataset(tiny_dataset: Path, tmp_path: Path) -> None:
    """A dataset of an older version's preset (0.2's default had no caustics) is resumed by naming it."""
    args = list(TINY_ARGS)
    args[args.index("--samples") + 1] = "3"
    result = invoke("render", *args, "--out", str(tiny_dataset))
    assert_one_line_error(result, "resume it with these options: --scenes 3 --seed 11 --width 64 --height 48")
    assert "--quality default --samples 2 " in result.output


def test_a_dataset_of_the_0_2_default_names_its_preset() -> None:
    """0.2's default rendered no caustics and stored no caustics field: resuming it needs its preset."""
    from clevr_remv.config import QUALITY_PRESETS, RenderConfig
    from clevr_remv.produce.run import OutputConflict, _compare

    stored = RenderConfig(scenes=3, quality=QUALITY_PRESETS["default-0.2"]).identity()
    stored["quality"] = {k: v for k, v in stored["quality"].items()
                         if k not in ("caustics", "blur_glossy", "sample_clamp_indirect")}  # 0.2 stored none
    with pytest.raises(OutputConflict, match="--quality.s caustics None .now True.*--quality default-0.2 "):
        _compare(RenderConfig(scenes=3).identity(), stored, Path("out/train/shard-00000.h5"))


@pytest.mark.parametrize("args", [[], ["export"]])
def test_help_lists_each_command_s_whole_summary(args: list[str]) -> None:
    """Issue item 7: click cut the summaries with "..." mid-phrase ("Score referring-segmentation masks on DATASET view...")."""
    result = invoke(*args, "--help")
    assert result.exit_code == 0, result.output
    commands = result.output.split("Commands:", 1)[1]
    assert "..." not in commands.replace("input_Cam000.png ...", "").replace("CRIS ...", ""), commands
    joined = " ".join(commands.split())
    for summary in (["Score referring-segmentation masks on DATASET view by view.",
                     "Render a dataset into OUT (resumable: complete shards are skipped)."] if not args else
                    ["COCO instance segmentation: OUT/annotations/instances_SPLIT.json and OUT/SPLIT/*.png."]):
        assert summary in joined
