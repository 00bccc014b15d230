"""The reference model (clevr_remv/model/, `train` and `predict`): it learns, it repeats itself, it
resumes after SIGINT, SIGTERM and kill -9 exactly where it stopped, `--text none` cannot read, and
bad input gets one line.

Trained for real on a small real render (10 scenes, 32x24, 3x3 views): each run takes seconds.
This module imports without torch (render_fixtures.py reads MODEL_ARGS from it on a Python that
has none); the tests themselves need it.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
from conftest import need, render_tiny, run_cli

MODEL_ARGS = ["--scenes", "10", "--width", "32", "--height", "24", "--rig", "3", "--samples", "1",
              "--quality", "draft", "--scenes-per-shard", "4", "--seed", "5", "--no-progress"]
# 4 samples a batch over the train split's ~56 centre-view samples: ~14 steps per epoch.
QUICK = ["--batch-size", "4", "--threads", "1", "--no-progress"]
LONG = ["--steps", "70", "--save-every", "1", *QUICK]  # five epochs: long enough for a signal to land mid-run


@pytest.fixture(scope="module")
def torch():
    return need("torch", "pip install 'clevr-remv[train]'")


@pytest.fixture(scope="module")
def model_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return render_tiny(tmp_path_factory, "model", MODEL_ARGS)


def train_args(dataset: Path, run: Path, *extra: str) -> list[str]:
    return ["train", str(dataset), "--out", str(run), *extra]


@pytest.fixture(scope="module")
def trained(torch, model_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("trained") / "run"
    result = run_cli(*train_args(model_dataset, run, "--steps", "60", *QUICK))
    assert result.exit_code == 0, result.output
    return run


def predict_file(dataset: Path, run: Path, out: Path, *extra: str) -> Path:
    result = run_cli("predict", str(dataset), str(run), "--out", str(out), "--no-progress", *extra)
    assert result.exit_code == 0, result.output
    return out


def read_predictions(path: Path) -> dict[tuple[int, int], np.ndarray]:
    with h5py.File(path, "r") as f:
        return {(int(r), int(v)): m.astype(bool) for r, v, m in zip(f["ref_id"][()], f["view"][()], f["mask"][()])}


def log_of(run: Path) -> list[dict]:
    from clevr_remv.model.checkpoint import read_log

    return read_log(run)


# -- it learns, and predict -> evaluate scores what the masks say


def test_a_short_run_learns_and_writes_its_run_folder(trained: Path, torch) -> None:
    assert sorted(p.name for p in trained.iterdir()) == ["best.pt", "config.json", "last.pt", "log.jsonl"]
    losses = [r["loss"] for r in log_of(trained) if r["event"] == "train"]
    assert len(losses) >= 5
    assert np.mean(losses[-2:]) < 0.8 * np.mean(losses[:2]), losses  # the loss falls
    end = log_of(trained)[-1]
    assert end["event"] == "end" and end["step"] == end["steps"] == 60
    assert end["samples_per_s"] > 0 and 0 <= end["loader_share"] < 1 and end["peak_memory_mb"] > 0
    vals = [r for r in log_of(trained) if r["event"] == "val"]
    assert vals and all(0 <= r["val_oiou"] <= 1 for r in vals)
    from clevr_remv.model.prediction import load_trained

    for which in ("best", "last"):  # both checkpoints load into the network
        _, model, state = load_trained(trained, which, "cpu")
        assert state["step"] <= 60 and sum(p.numel() for p in model.parameters()) > 100_000


def test_predict_then_evaluate_gives_the_ious_of_the_masks(trained: Path, model_dataset: Path, tmp_path: Path) -> None:
    from clevr_remv.data import RefDataset
    from clevr_remv.evaluation.scoring import evaluate

    pred = predict_file(model_dataset, trained, tmp_path / "pred.h5", "--split", "test", "--views", "corners")
    masks = read_predictions(pred)
    with h5py.File(pred, "r") as f:
        assert f.attrs["split"] == "test"
    truth = RefDataset(model_dataset, "test", views="all")
    assert {v for _, v in masks} == {0, 2, 4, 6, 8}  # the corners and the centre, added for MVR
    inter: dict[int, int] = {}
    union: dict[int, int] = {}
    ious: dict[int, list[float]] = {}
    for sample in truth:
        key = (sample["ref_id"], sample["view"])
        if key[1] not in (0, 2, 4, 6, 8):
            continue
        predicted, actual = masks.pop(key), sample["mask"]
        i, u = int((predicted & actual).sum()), int((predicted | actual).sum())
        inter[key[1]] = inter.get(key[1], 0) + i
        union[key[1]] = union.get(key[1], 0) + u
        ious.setdefault(key[1], []).append(i / u)
    assert not masks  # nothing predicted beyond the visible (pair, view)s
    report = evaluate(model_dataset, "test", predictions=pred).report
    for view, scores in report.views.items():
        assert scores.oiou == pytest.approx(inter[view] / union[view], abs=1e-12)
        assert scores.miou == pytest.approx(np.mean(ious[view]), abs=1e-12)
    result = run_cli("evaluate", str(model_dataset), "--predictions", str(pred), "--no-progress")
    assert result.exit_code == 0 and "MVR" in result.output


# -- the same seed gives the same run; stopped and resumed, the same run again


def test_same_seed_same_weights_and_predictions(trained: Path, model_dataset: Path, tmp_path: Path, torch) -> None:
    again = tmp_path / "again"
    assert run_cli(*train_args(model_dataset, again, "--steps", "60", *QUICK)).exit_code == 0
    first, second = (torch.load(r / "last.pt", weights_only=True)["model"] for r in (trained, again))
    assert all(torch.equal(first[k], second[k]) for k in first)
    a = read_predictions(predict_file(model_dataset, trained, tmp_path / "a.h5", "--views", "all"))
    b = read_predictions(predict_file(model_dataset, again, tmp_path / "b.h5", "--views", "all"))
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    other = tmp_path / "other-seed"  # negative control: another seed, other weights
    assert run_cli(*train_args(model_dataset, other, "--steps", "5", "--seed", "1", *QUICK)).exit_code == 0
    third = torch.load(other / "last.pt", weights_only=True)["model"]
    assert not all(torch.equal(first[k], third[k]) for k in first)


def _command(dataset: Path, run: Path) -> list[str]:
    return [str(Path(sys.executable).with_name("clevr-remv")), *train_args(dataset, run, *LONG)]


def _stop_once_saved(dataset: Path, run: Path, sig: int) -> tuple[int, int]:
    """Start the long run (or resume it), send `sig` as soon as it has written a checkpoint;
    its exit status and the step its last.pt holds."""
    import torch

    before = torch.load(run / "last.pt", weights_only=True)["step"] if (run / "last.pt").exists() else 0
    proc = subprocess.Popen(_command(dataset, run), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        try:  # a checkpoint newer than the one it started from: it is mid-run
            if torch.load(run / "last.pt", weights_only=True)["step"] > before:
                break
        except Exception:  # noqa: BLE001 - not there yet, or being renamed into place
            pass
        time.sleep(0.02)
    assert proc.poll() is None, f"the run ended before it could be stopped: {proc.communicate()[0]!r}"
    proc.send_signal(sig)
    proc.communicate(timeout=120)
    return proc.returncode, torch.load(run / "last.pt", weights_only=True)["step"]


@pytest.fixture(scope="module")
def uninterrupted(torch, model_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    run = tmp_path_factory.mktemp("uninterrupted") / "run"
    subprocess.run(_command(model_dataset, run), check=True, capture_output=True)
    return read_predictions(predict_file(model_dataset, run, run.parent / "pred.h5", "--views", "all",
                                         "--checkpoint", "last"))


@pytest.mark.parametrize("sig, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_stopped_mid_epoch_then_resumed_equals_uninterrupted(sig: int, status: int, uninterrupted: dict,
                                                             model_dataset: Path, tmp_path: Path) -> None:
    from clevr_remv.data import RefDataset

    per_epoch = len(RefDataset(model_dataset, "train")) // 4
    run = tmp_path / "run"
    stops = []
    for _ in range(5):  # until one stop falls inside an epoch (each one resumes exactly anyway)
        code, step = _stop_once_saved(model_dataset, run, sig)
        assert code == status
        stops.append(step)
        if step % per_epoch:
            break
    assert stops[-1] % per_epoch and 0 < stops[-1] < 70, stops
    assert not list(run.glob(".*tmp*"))  # no temporary left behind
    done = subprocess.run(_command(model_dataset, run), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    resumed = read_predictions(predict_file(model_dataset, run, tmp_path / "pred.h5", "--views", "all",
                                            "--checkpoint", "last"))
    assert resumed.keys() == uninterrupted.keys()
    assert all(np.array_equal(resumed[k], uninterrupted[k]) for k in resumed)
    steps = [r["step"] for r in log_of(run) if r["event"] == "train"]
    assert steps == sorted(set(steps))  # the log reads as that of one run: no step twice


def test_killed_with_sigkill_resumes_and_completes(uninterrupted: dict, model_dataset: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    code, step = _stop_once_saved(model_dataset, run, signal.SIGKILL)
    assert code == -signal.SIGKILL and 0 < step < 70
    done = subprocess.run(_command(model_dataset, run), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert log_of(run)[-1]["event"] == "end"
    resumed = read_predictions(predict_file(model_dataset, run, tmp_path / "pred.h5", "--views", "all",
                                            "--checkpoint", "last"))
    assert all(np.array_equal(resumed[k], uninterrupted[k]) for k in uninterrupted)
    again = subprocess.run(_command(model_dataset, run), capture_output=True, text=True)  # complete: nothing to do
    assert again.returncode == 0 and "nothing to do" in again.stderr


# -- the text-blind control


def _masks_by_scene_view(dataset: Path, predictions: dict) -> dict[tuple[int, int], list[np.ndarray]]:
    from clevr_remv.data import RefDataset

    refs = RefDataset(dataset, "test")
    scene_of = dict(zip(refs.ref_ids.tolist(), refs.ref_scenes.tolist()))
    grouped: dict[tuple[int, int], list[np.ndarray]] = {}
    for (ref_id, view), mask in predictions.items():
        grouped.setdefault((scene_of[ref_id], view), []).append(mask)
    return grouped


def test_text_none_gives_one_mask_per_image_whatever_the_sentence(model_dataset: Path, trained: Path,
                                                                  tmp_path: Path) -> None:
    blind = tmp_path / "blind"
    assert run_cli(*train_args(model_dataset, blind, "--steps", "10", "--text", "none", *QUICK)).exit_code == 0
    groups = _masks_by_scene_view(model_dataset, read_predictions(
        predict_file(model_dataset, blind, tmp_path / "blind.h5", "--views", "all", "--checkpoint", "last")))
    assert max(len(g) for g in groups.values()) >= 2  # several sentences about one image
    assert all(np.array_equal(g[0], m) for g in groups.values() for m in g)
    # The control's control: the same network reading the sentence gives different masks for them.
    read = _masks_by_scene_view(model_dataset, read_predictions(
        predict_file(model_dataset, trained, tmp_path / "read.h5", "--views", "all", "--checkpoint", "last")))
    assert any(not np.array_equal(g[0], m) for g in read.values() for m in g)


# -- what a user gets wrong: one line, exit 1, nothing written


def one_line_error(result, *words: str) -> str:
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def test_without_torch_both_commands_say_what_to_install(monkeypatch, model_dataset: Path, tmp_path: Path) -> None:
    import clevr_remv.model.runtime as runtime

    monkeypatch.setattr(runtime, "module_available", lambda name: name != "torch")
    one_line_error(run_cli(*train_args(model_dataset, tmp_path / "run")), "PyTorch", "clevr-remv[train]")
    one_line_error(run_cli("predict", str(model_dataset), str(tmp_path / "run"), "--out", str(tmp_path / "p.h5")),
                   "PyTorch", "clevr-remv[train]")
    assert not (tmp_path / "run").exists() and not (tmp_path / "p.h5").exists()


def test_not_a_dataset_and_unknown_views_write_nothing(torch, model_dataset: Path, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    one_line_error(run_cli(*train_args(tmp_path / "empty", tmp_path / "run")), "dataset.json")
    one_line_error(run_cli(*train_args(model_dataset, tmp_path / "run", "--views", "9")), "9")
    one_line_error(run_cli(*train_args(model_dataset, tmp_path / "run", "--size", "big")), "--size")
    one_line_error(run_cli(*train_args(model_dataset, tmp_path / "run", "--epochs", "1", "--steps", "2")),
                   "--epochs", "--steps")
    assert not (tmp_path / "run").exists()
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    one_line_error(run_cli(*train_args(model_dataset, tmp_path / "busy")), "not a training run")
    assert [p.name for p in (tmp_path / "busy").iterdir()] == ["notes.txt"]


def test_a_run_refuses_another_dataset_and_other_settings(trained: Path, tiny_dataset: Path, model_dataset: Path,
                                                          tmp_path: Path) -> None:
    before = {p.name: p.read_bytes() for p in trained.iterdir()}
    one_line_error(run_cli(*train_args(tiny_dataset, trained, "--steps", "60", *QUICK)), "another dataset")
    one_line_error(run_cli(*train_args(model_dataset, trained, "--steps", "60", "--batch-size", "8", "--threads",
                                       "1")), "batch_size 4", "8")
    one_line_error(run_cli(*train_args(model_dataset, trained, "--steps", "60", "--text", "none", *QUICK)), "text")
    assert {p.name: p.read_bytes() for p in trained.iterdir()} == before
    one_line_error(run_cli("predict", str(tiny_dataset), str(trained), "--out", str(tmp_path / "p.h5")),
                   "another dataset", "--other-dataset")
    assert not (tmp_path / "p.h5").exists()


def test_predict_never_writes_over_and_needs_a_run(trained: Path, model_dataset: Path, tmp_path: Path) -> None:
    existing = tmp_path / "pred.h5"
    existing.write_bytes(b"someone's predictions")
    one_line_error(run_cli("predict", str(model_dataset), str(trained), "--out", str(existing)), "exists")
    assert existing.read_bytes() == b"someone's predictions"
    one_line_error(run_cli("predict", str(model_dataset), str(tmp_path), "--out", str(tmp_path / "p.h5")),
                   "not a training run")
    one_line_error(run_cli("predict", str(model_dataset), str(trained), "--out", str(tmp_path / "p.txt")), ".h5")
    one_line_error(run_cli("predict", str(model_dataset), str(trained), "--split", "dev",
                           "--out", str(tmp_path / "p.h5")), "dev")
    one_line_error(run_cli("predict", str(model_dataset), str(trained), "--views", "all,99",
                           "--out", str(tmp_path / "p.h5")), "99")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pred.h5"]


def test_a_damaged_checkpoint_is_named(trained: Path, model_dataset: Path, tmp_path: Path) -> None:
    import shutil

    run = tmp_path / "run"
    shutil.copytree(trained, run)
    (run / "best.pt").write_bytes(b"\0" * 100)
    one_line_error(run_cli("predict", str(model_dataset), str(run), "--out", str(tmp_path / "p.h5")),
                   "best.pt", "damaged")


# -- devices


def test_device_selection() -> None:
    from clevr_remv.contract import UserError
    from clevr_remv.model.runtime import select_device

    assert select_device("auto", cuda_available=False) == "cpu"
    assert select_device("auto", cuda_available=True) == "cuda"
    assert select_device("cpu", cuda_available=True) == "cpu"
    with pytest.raises(UserError, match="--device cuda: PyTorch sees no CUDA GPU"):
        select_device("cuda", cuda_available=False)
    with pytest.raises(ValueError, match="--device 'tpu'"):
        select_device("tpu", cuda_available=True)


def test_cuda_asked_for_and_absent_is_one_line(torch, model_dataset: Path, tmp_path: Path) -> None:
    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is present: test_trains_on_cuda runs instead")
    one_line_error(run_cli(*train_args(model_dataset, tmp_path / "run", "--device", "cuda", *QUICK)),
                   "--device cuda")


@pytest.mark.gpu
def test_trains_on_cuda(torch, model_dataset: Path, tmp_path: Path) -> None:
    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU: --device cuda is tested where one is present")
    run = tmp_path / "run"
    result = run_cli(*train_args(model_dataset, run, "--steps", "30", "--device", "cuda", *QUICK))
    assert result.exit_code == 0, result.output
    assert log_of(run)[-1]["device"] == "cuda"
    masks = read_predictions(predict_file(model_dataset, run, tmp_path / "p.h5", "--device", "cuda"))
    assert masks
