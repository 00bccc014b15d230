"""`clevr-remv finalize`: farm jobs render shards apart; finalize names what is missing, then completes the dataset."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import socket
import subprocess
from pathlib import Path

import pytest
from conftest import TINY_ARGS, render_tiny, run_cli
from test_split_files import assert_split_file_matches_shards

from clevr_remv import config as config_module
from clevr_remv.config import (
    QUALITY_PRESETS,
    LayoutConfig,
    Quality,
    RenderConfig,
    render_arguments,
)
from clevr_remv.store import read_manifest, split_file_path

# One scene per shard: train/shard-00000, train/shard-00001 and val/shard-00000.
ARGS = [*TINY_ARGS[: TINY_ARGS.index("--scenes-per-shard")], "--scenes-per-shard", "1", "--no-progress"]


@pytest.fixture(scope="module")
def single_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return render_tiny(tmp_path_factory, "single", ARGS)


def _dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def test_finalize_names_missing_shards_then_completes_the_dataset(single_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "farm"
    for job in ("val:0", "train:0"):  # train:1 never ran
        assert run_cli("render", *ARGS, "--out", str(out), "--shard", job).exit_code == 0
    assert not (out / "dataset.json").exists()

    result = run_cli("finalize", str(out))
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert lines[0] == "1 of 3 shards are missing or incomplete:"
    assert lines[1] == "  train/shard-00001.h5 (missing, scenes 1..1)"
    assert lines[-1].startswith("Error: ") and lines[-1].endswith("(1 shard missing or incomplete); dataset.json not written")
    commands = [line.strip() for line in lines if line.strip().startswith("clevr-remv render ")]
    assert len(commands) == 1 and commands[0].endswith("--shard train:1")
    assert not (out / "dataset.json").exists()

    argv = shlex.split(commands[0])
    rendered = run_cli(*argv[1:], "--no-progress")  # the printed command, as a user would paste it
    assert rendered.exit_code == 0, rendered.output
    assert read_manifest(out) == read_manifest(single_run)  # the last job completed the dataset

    for name in ("dataset.json", "train.h5", "val.h5", "test.h5"):
        (out / name).unlink()
    result = run_cli("finalize", str(out))
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"dataset complete: {out / 'dataset.json'}"
    assert read_manifest(out) == read_manifest(single_run)
    assert_split_file_matches_shards(out, "train", ["train/shard-00000.h5", "train/shard-00001.h5"])
    assert split_file_path(out, "test").is_file()
    assert run_cli("verify", str(out), "--no-progress").exit_code == 0


def test_finalize_sweeps_temporaries_of_dead_processes_only(single_run: Path, tmp_path: Path) -> None:
    out = Path(shutil.copytree(single_run, tmp_path / "out"))
    host = socket.gethostname()
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        dead = out / "train" / f".shard-00001.h5.tmp-{host}-{_dead_pid()}"
        alive = [out / "train" / f".shard-00000.h5.tmp-{host}-{sleeper.pid}",
                 out / "train" / f".shard-00009.h5.tmp-{host}-{os.getpid()}",
                 out / "val" / f".shard-00000.h5.tmp-other-node-{_dead_pid()}"]
        for path in [dead, *alive]:
            path.write_bytes(b"half a shard")
        assert run_cli("finalize", str(out)).exit_code == 0
        assert not dead.exists()
        assert all(path.exists() for path in alive)
    finally:
        sleeper.kill()
        sleeper.wait()


@pytest.mark.parametrize("where, missing", [
    ("empty", "no dataset.json and no complete shard (render into it first)"),
    ("absent", "no such directory"),
])
def test_finalize_without_shards_is_a_one_line_error(tmp_path: Path, where: str, missing: str) -> None:
    out = tmp_path / "out"
    if where == "empty":
        out.mkdir()
    result = run_cli("finalize", str(out))
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [f"Error: {out} is not a clevr-remv dataset: {missing}"]


CONFIGS = [
    RenderConfig(),
    RenderConfig(scenes=7, seed=3, width=100, height=60, grid=5, baseline=0.25, quality=QUALITY_PRESETS["final"],
                 depth_mantissa_bits=23, scenes_per_shard=4, device="cpu"),
    RenderConfig(scenes=1, seed=2**40, quality=Quality(samples=9, denoiser_quality="FAST"), baseline=1 / 3),
]


@pytest.mark.parametrize("config", CONFIGS)
def test_render_arguments_give_back_the_config(config: RenderConfig, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Parsing the printed options with the real `render` command builds a config of equal identity."""
    args = render_arguments(config)
    built: list[RenderConfig] = []

    def capture(config: RenderConfig) -> None:
        built.append(config)
        raise ValueError("captured")  # stop before anything renders

    monkeypatch.setattr(config_module, "validate", capture)
    result = run_cli("render", "--out", str(tmp_path / "out"), *args)
    assert "captured" in result.output and built
    assert built[0].identity() == config.identity()
    assert json.dumps(built[0].identity(), sort_keys=True) == json.dumps(config.identity(), sort_keys=True)


@pytest.mark.parametrize("config", [RenderConfig(lens_mm=50.0), RenderConfig(layout=LayoutConfig(max_objects=5)),
                                    RenderConfig(quality=Quality(samples=8, light_tree=True))])
def test_settings_without_an_option_are_refused(config: RenderConfig) -> None:
    says = (r"the quality settings Quality\(samples=8, .*light_tree=True.*\) match no --quality preset"
            if config.quality != RenderConfig().quality else
            f"^the settings {'lens_mm' if config.lens_mm != RenderConfig().lens_mm else 'layout'} differ from the "
            "defaults and have no render option$")
    with pytest.raises(ValueError, match=says):
        render_arguments(config)


@pytest.mark.parametrize("damage", ["{not json", '["a list"]', '{"splits": {"train": {"shards": 3}}}',
                                    '{"confih": {}, "splits": {}, "views": 9}'])
def test_finalize_rebuilds_a_corrupt_manifest(single_run: Path, tmp_path: Path, damage: str) -> None:
    """A dataset.json cut short or overwritten is rebuilt from the shards, as an absent one is."""
    out = tmp_path / "out"
    shutil.copytree(single_run, out)
    (out / "dataset.json").write_text(damage)
    result = run_cli("finalize", str(out))
    assert result.exit_code == 0, result.output
    assert read_manifest(out) == read_manifest(single_run)
    assert run_cli("verify", str(out), "--no-progress").exit_code == 0


@pytest.mark.blender
def test_a_render_says_dataset_complete_once(tmp_path: Path) -> None:
    """Issue item 7: the log line and the command's own line both said it (on stderr and stdout)."""
    import sys

    out = tmp_path / "out"
    done = subprocess.run([str(Path(sys.executable).parent / "clevr-remv"), "render", "--scenes", "1", "--out", str(out),
                           "--width", "16", "--height", "12", "--rig", "3", "--samples", "1", "--no-progress"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "(1 scene, " in done.stderr and "1 scene (train" in done.stderr, done.stderr  # not "1 scenes"
    assert "1 sample," in done.stderr and "CUEW" not in done.stdout, done.stderr
    said = (done.stdout + done.stderr).count("dataset complete")
    assert said == 1 and done.stdout.strip().endswith(f"dataset complete: {out / 'dataset.json'}"), done.stdout + done.stderr


def test_finalize_on_a_damaged_dataset_says_its_old_dataset_json_stays(tiny_dataset: Path, tmp_path: Path) -> None:
    """Issue item 7: it said "dataset.json not written" while the old one was still there."""
    out = Path(shutil.copytree(tiny_dataset, tmp_path / "out"))
    (out / "val" / "shard-00000.h5").unlink()
    before = (out / "dataset.json").read_bytes()
    result = run_cli("finalize", str(out))
    assert result.exit_code == 1
    last = result.output.strip().splitlines()[-1]
    assert last == (f"Error: {out} is not complete (1 shard missing or incomplete); the dataset.json already there "
                    "(written when it was complete) is left as it was"), last
    assert (out / "dataset.json").read_bytes() == before
