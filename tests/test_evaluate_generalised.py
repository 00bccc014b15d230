"""`clevr-remv evaluate` on generalised sentences (`--targets any`: one object, several or none).

The figures are checked against a direct computation written here, in the shape of ReLA's GRES
evaluator loop (henghuiding/ReLA, gres_model/evaluation/refer_evaluation.py): the ground truth read
straight from the shards with h5py (`np.isin` of the named ids), each (pair, view) sorted into a
no-target true positive (empty prediction: IoU 1, nothing added to the sums) or false negative (IoU 0,
its pixels added to the union), or a targeted sample (IoU = I / U, counted for P@K and T-acc).
`harder_dataset`'s train split has 24 pairs in 3 scenes naming 0, 1, 2, 5 and 6 objects.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import pytest
from test_evaluate import assert_one_error_line, invoke

from clevr_remv.data.dataset import RefDataset
from clevr_remv.evaluation.metrics import THRESHOLDS, score_view
from clevr_remv.evaluation.predictions import write_predictions
from clevr_remv.evaluation.scorecard import format_report, report_json
from clevr_remv.evaluation.scoring import evaluate
from clevr_remv.expressions import from_json, relation_count
from clevr_remv.store import DatasetReader

SPLIT = "train"
ALL_VIEWS = list(range(9))
CORNERS = [0, 2, 6, 8]
CENTRE = 4


# ------------------------------------------------------------------------- the direct computation


@dataclass(frozen=True)
class Sample:
    ref_id: int
    view: int
    inter: int
    union: int
    predicted: int  # predicted pixels
    target_count: int
    hops: int


def direct_samples(root: Path, predict, views: Iterable[int] = ALL_VIEWS) -> list[Sample]:
    """One Sample per (pair, view) whose targets are visible, from the shards read with h5py;
    `predict(ref_id, view, truth)` gives the prediction."""
    out = []
    for path in DatasetReader(root).shard_paths(SPLIT):
        with h5py.File(path, "r") as f:
            masks = f["masks"][()]
            refs = {name: f[f"refs/{name}"][()] for name in ("scene", "id", "targets", "visible", "program")}
        for row, ref_id, targets, visible, program in zip(*refs.values()):
            named = np.flatnonzero(targets) + 1
            hops = relation_count(from_json(program.decode() if isinstance(program, bytes) else program))
            for view in views:
                if not visible[view]:
                    continue
                truth = np.isin(masks[row, view], named)
                prediction = np.asarray(predict(int(ref_id), view, truth), bool)
                out.append(Sample(int(ref_id), view, int((prediction & truth).sum()), int((prediction | truth).sum()),
                                  int(prediction.sum()), len(named), hops))
    return out


def pair_table(root: Path) -> dict[int, tuple[int, int]]:
    """ref_id -> (hops, target count) of every pair of the split, visible or not."""
    out = {}
    for path in DatasetReader(root).shard_paths(SPLIT):
        with h5py.File(path, "r") as f:
            for ref_id, targets, program in zip(f["refs/id"][()], f["refs/targets"][()], f["refs/program"][()]):
                text = program.decode() if isinstance(program, bytes) else program
                out[int(ref_id)] = (relation_count(from_json(text)), int(targets.sum()))
    return out


def rela(samples: list[Sample]) -> dict[str, float]:
    """gIoU, cIoU, N-acc, T-acc and P@K as ReLA's evaluator accumulates them (NaN where undefined;
    cIoU 1.0 when every union is empty, where ReLA would divide by zero)."""
    total_iou, total_i, total_u = 0.0, 0, 0
    tp = fn = fp = tn = 0
    hits = dict.fromkeys(THRESHOLDS, 0)
    for s in samples:
        if s.target_count == 0:  # ReLA's gt_nt
            if s.predicted == 0:
                tp += 1
                total_iou += 1
            else:
                fn += 1
                total_u += s.union
        else:
            if s.predicted == 0:
                fp += 1
            else:
                tn += 1
            this = s.inter / s.union
            total_iou += this
            total_i += s.inter
            total_u += s.union
            for k in THRESHOLDS:
                hits[k] += this >= k
    n, targeted = len(samples), tn + fp
    out = {"pairs": n, "giou": total_iou / n if n else math.nan,
           "ciou": (total_i / total_u if total_u else 1.0) if n else math.nan,
           "n_acc": tp / (tp + fn) if tp + fn else math.nan, "t_acc": tn / (tn + fp) if tn + fp else math.nan}
    out |= {f"p@{k:g}": hits[k] / targeted if targeted else math.nan for k in THRESHOLDS}
    return out


def direct_mvr(samples: list[Sample], views: Iterable[int], score: str = "ciou") -> float:
    """−Σ Q ln Q / distance over the non-centre views, Q against the centre over the same pairs."""
    total = 0.0
    for view in views:
        if view == CENTRE:
            continue
        here = [s for s in samples if s.view == view]
        ids = {s.ref_id for s in here}
        centre = [s for s in samples if s.view == CENTRE and s.ref_id in ids]
        q = rela(here)[score] / rela(centre)[score]
        distance = abs(view // 3 - 1) + abs(view % 3 - 1)
        total += (q * math.log(q) if q > 0 else 0.0) / distance
    return -total


def assert_figures(got: dict, want: dict, where: str) -> None:
    for key, value in want.items():
        if isinstance(value, float) and math.isnan(value):
            assert got[key] is None or math.isnan(got[key]), (where, key, got[key])
        else:
            assert got[key] == pytest.approx(value, abs=1e-12), (where, key, got[key], value)


# ---------------------------------------------------------------------------------- predictions


def random_predictions(root: Path, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ref_ids, views, masks) for every visible (pair, view): the truth shifted, grown, missed (empty) or
    replaced by a random box; no-target sentences answered empty in some views and with a box in others."""
    rng = np.random.default_rng(seed)
    ref_ids, views, masks = [], [], []
    for k, sample in enumerate(RefDataset(root, SPLIT, views=ALL_VIEWS)):
        truth = sample["mask"]
        h, w = truth.shape
        box = np.zeros_like(truth)
        y, x = rng.integers(0, h - 10), rng.integers(0, w - 10)
        box[y:y + rng.integers(3, 10), x:x + rng.integers(3, 10)] = True
        if sample["target_count"] == 0:
            mask = box if sample["view"] in (0, 2, 3, 8) else np.zeros_like(truth)
        else:
            kind = k % 5
            mask = [np.roll(truth, int(rng.integers(-4, 5)), axis=int(rng.integers(0, 2))),
                    truth | (rng.random(truth.shape) < 0.02), np.zeros_like(truth), box, truth][kind]
        ref_ids.append(sample["ref_id"]), views.append(sample["view"]), masks.append(mask)
    return np.array(ref_ids), np.array(views), np.stack(masks)


@pytest.fixture(scope="module")
def random_file(harder_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    ref_ids, views, masks = random_predictions(harder_dataset)
    path = tmp_path_factory.mktemp("generalised") / "pred.h5"
    return write_predictions(path, ref_ids, views, masks, dataset=harder_dataset, split=SPLIT)


def from_file(path: Path):
    """predict(ref_id, view, truth) reading the predictions file back."""
    with h5py.File(path, "r") as f:
        table = {(int(r), int(v)): m != 0 for r, v, m in zip(f["ref_id"][()], f["view"][()], f["mask"][()])}
    return lambda ref_id, view, truth: table[ref_id, view]


# ---------------------------------------------------------------------------------------- tests


def test_the_harder_split_has_every_kind_of_sample(harder_dataset: Path, random_file: Path) -> None:
    """The premise of the comparisons below: no-target pairs answered both ways, targeted pairs missed."""
    samples = direct_samples(harder_dataset, from_file(random_file))
    assert {s.target_count for s in samples} >= {0, 1, 2}
    assert any(s.target_count == 0 and s.predicted == 0 for s in samples)
    assert any(s.target_count == 0 and s.predicted > 0 for s in samples)
    assert any(s.target_count > 0 and s.predicted == 0 for s in samples)
    assert {s.hops for s in samples} >= {0, 1, 2, 3}


def test_figures_equal_a_direct_computation(harder_dataset: Path, random_file: Path) -> None:
    """(a) gIoU, cIoU, N-acc, T-acc and P@K (targeted only) per view, their mean, and MVR from cIoU and gIoU."""
    evaluation = evaluate(harder_dataset, SPLIT, predictions=random_file, views="all")
    document = report_json(evaluation)
    samples = direct_samples(harder_dataset, from_file(random_file))
    per_view = {v: rela([s for s in samples if s.view == v]) for v in ALL_VIEWS}
    for view, want in per_view.items():
        got = document["views"][str(view)]
        assert_figures(got, want, f"view {view}")
        assert got["miou"] == got["giou"] and got["oiou"] == got["ciou"]  # the same computations
        assert got["no_target"] == sum(s.target_count == 0 for s in samples if s.view == view)
        assert got["targeted"] + got["no_target"] == got["pairs"]
    for key in ("giou", "ciou", "n_acc", "t_acc", "p@0.7"):
        assert document["mean"][key] == pytest.approx(np.mean([per_view[v][key] for v in ALL_VIEWS]), abs=1e-12)
        assert document["std"][key] == pytest.approx(np.std([per_view[v][key] for v in ALL_VIEWS]), abs=1e-12)
    assert document["mvr_ciou"] == document["mvr_oiou"] == pytest.approx(direct_mvr(samples, ALL_VIEWS), abs=1e-12)
    assert document["mvr_giou"] == pytest.approx(direct_mvr(samples, ALL_VIEWS, "giou"), abs=1e-12)
    assert {per_view[v]["n_acc"] for v in ALL_VIEWS} == {0.0, 1.0}  # the no-target pair answered both ways
    assert all(0 < per_view[v]["t_acc"] < 1 for v in ALL_VIEWS)
    counts = {k: sum(1 for s in samples if s.view == 0 and min(s.target_count, 2) == k) for k in (0, 1, 2)}
    assert document["target_pairs"] == {"none": counts[0], "one": counts[1], "several": counts[2]}


def test_the_printed_table_shows_the_generalised_figures(harder_dataset: Path, random_file: Path) -> None:
    result = invoke("evaluate", harder_dataset, "--split", SPLIT, "--predictions", random_file, "--views", "corners",
                    "--no-progress")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    first = next(i for i, line in enumerate(lines) if " on train (" in line)
    assert "24 pairs: 1 with no target, 6 with several, 3x3 rig" in lines[first]
    assert lines[first + 1].split()[-4:] == ["gIoU", "cIoU", "N-acc", "T-acc"]
    assert "mIoU" not in result.output and "oIoU" not in result.output
    assert "MVR (cIoU): " in result.output and "MVR (gIoU): " in result.output
    assert "P@K over the targeted pairs" in result.output


def test_the_ground_truth_scores_1_on_every_figure(harder_dataset: Path, tmp_path: Path) -> None:
    """(b) the oracle, and the ground truth written as predictions (read by RefDataset, independently)."""
    samples = list(RefDataset(harder_dataset, SPLIT, views=ALL_VIEWS))
    assert any(s["target_count"] == 0 and not s["mask"].any() for s in samples)
    path = write_predictions(tmp_path / "truth.h5", [s["ref_id"] for s in samples], [s["view"] for s in samples],
                             np.stack([s["mask"] for s in samples]), dataset=harder_dataset, split=SPLIT)
    oracle = report_json(evaluate(harder_dataset, SPLIT, baseline="oracle", views="all"))
    truth = report_json(evaluate(harder_dataset, SPLIT, predictions=path, views="all"))
    assert {k: v for k, v in truth.items() if k != "source"} == {k: v for k, v in oracle.items() if k != "source"}
    figures = ["giou", "ciou", "n_acc", "t_acc", "miou", "oiou", *(f"p@{k:g}" for k in THRESHOLDS)]
    for document in (oracle, truth):
        for view, scores in document["views"].items():
            assert all(scores[key] == 1.0 for key in figures), (view, scores)
        assert all(document["mean"][key] == 1.0 and document["std"][key] == 0.0 for key in figures)
        assert document["mvr_ciou"] == document["mvr_giou"] == 0.0


def test_by_hops_and_by_targets_partition_and_equal_direct_computation(harder_dataset: Path, random_file: Path,
                                                                       tmp_path: Path) -> None:
    """(c) each group's figures equal the direct computation on its pairs; the groups add up to the whole.
    One targeted pair is hidden in view 8, so that `left_out` is counted in its group."""
    root = tmp_path / "copy"
    shutil.copytree(harder_dataset, root)
    shard = DatasetReader(root).shard_paths(SPLIT)[0]
    with h5py.File(shard, "r+") as f:
        hidden = int(np.flatnonzero(f["refs/targets"][()].sum(axis=1) > 0)[0])
        f["refs/visible"][hidden, 8] = False
        hidden_id = int(f["refs/id"][hidden])
    # The file was written for the unmodified fixture: same settings, so the same dataset id.
    result = invoke("evaluate", root, "--split", SPLIT, "--predictions", random_file, "--views", "corners",
                    "--by", "hops", "--by", "targets", "--json", tmp_path / "scores.json", "--no-progress")
    assert result.exit_code == 0, result.output
    assert "by the sentence's hops" in result.output and "by how many objects the sentence names" in result.output
    assert "several (2+)" in result.output
    document = json.loads((tmp_path / "scores.json").read_text())
    assert document["views"]["8"]["left_out"] == 1
    samples = direct_samples(root, from_file(random_file), views=[*CORNERS, CENTRE])
    assert not any(s.ref_id == hidden_id and s.view == 8 for s in samples)
    pairs = pair_table(root)
    groupings = {"by_hops": (lambda hops, count: str(hops), ["0", "1", "2", "3"]),
                 "by_targets": (lambda hops, count: ["none", "one", "several"][min(count, 2)],
                                ["none", "one", "several"])}
    for key, (group_of, names) in groupings.items():
        groups = document[key]
        assert list(groups) == names
        assert sum(g["pairs"] for g in groups.values()) == len(pairs) == 24
        for view in map(str, [*CORNERS, CENTRE]):
            for count in ("pairs", "left_out"):
                assert sum(g["views"][view][count] for g in groups.values()) == document["views"][view][count]
        for name, group in groups.items():
            assert group["pairs"] == sum(group_of(*pairs[r]) == name for r in pairs)
            mine = [s for s in samples if group_of(s.hops, s.target_count) == name]
            pooled = [s for s in mine if s.view in CORNERS]
            assert group["pooled"]["pairs"] == len(pooled)
            assert_figures(group["pooled"], rela(pooled), f"{key} {name} pooled")
            for view in [*CORNERS, CENTRE]:
                assert group["views"][str(view)]["left_out"] == (view == 8 and group_of(*pairs[hidden_id]) == name)
                assert_figures(group["views"][str(view)], rela([s for s in mine if s.view == view]),
                               f"{key} {name} view {view}")
            if mine:
                assert group["mvr_ciou"] == pytest.approx(direct_mvr(mine, CORNERS), abs=1e-12), (key, name)
                assert group["mvr_giou"] == pytest.approx(direct_mvr(mine, CORNERS, "giou"), abs=1e-12), (key, name)
    none = document["by_targets"]["none"]["pooled"]
    assert none["targeted"] == 0 and none["p@0.5"] is None and none["t_acc"] is None and none["n_acc"] is not None


def test_single_target_figures_are_the_published_ones(lightfield_dataset: Path, tmp_path: Path) -> None:
    """(d) on single-target data: no generalised key or column, and P@K, mIoU, oIoU over every pair as before."""
    ref_ids, views, masks = random_predictions(lightfield_dataset, seed=1)
    path = write_predictions(tmp_path / "pred.h5", ref_ids, views, masks)
    evaluation = evaluate(lightfield_dataset, SPLIT, predictions=path, views="all", by=("targets", "hops"))
    document = report_json(evaluation)
    assert not evaluation.generalised
    old_keys = {"p@0.5", "p@0.6", "p@0.7", "p@0.8", "p@0.9", "miou", "oiou", "pairs", "left_out"}
    assert all(set(scores) == old_keys for scores in document["views"].values())
    assert set(document["mean"]) == old_keys - {"pairs", "left_out"}
    assert set(document) == {"views", "mean", "std", "mvr_oiou", "mvr_miou", "chosen_views", "centre_view", "grid",
                             "split", "source", "by_hops", "by_targets"}
    samples = direct_samples(lightfield_dataset, from_file(path))
    assert all(s.target_count == 1 for s in samples)
    for view in ALL_VIEWS:
        here = [s for s in samples if s.view == view]
        ious = np.array([s.inter / s.union for s in here])
        want = {"miou": float(ious.mean()), "oiou": sum(s.inter for s in here) / sum(s.union for s in here),
                **{f"p@{k:g}": float(np.mean(ious >= k)) for k in THRESHOLDS}}
        assert_figures(document["views"][str(view)], want, f"view {view}")
    text = format_report(evaluation)
    assert text.splitlines()[1].split()[-2:] == ["mIoU", "oIoU"] and "gIoU" not in text and "N-acc" not in text
    assert "MVR (overall IoU): " in text and "P@K over the targeted" not in text
    targets = document["by_targets"]
    assert targets["one"]["pairs"] == 24 and targets["none"]["pairs"] == targets["several"]["pairs"] == 0
    assert targets["none"]["pooled"]["oiou"] is None  # an empty group is n/a, not 0
    assert set(targets["one"]["pooled"]) == old_keys - {"left_out"}
    assert targets["one"]["views"] == document["views"] and targets["one"]["mvr_oiou"] == document["mvr_oiou"]


def test_generalised_figures_on_hand_made_counts() -> None:
    """ReLA's cases, one by one: a no-target sentence predicted empty (IoU 1, adds nothing to cIoU's sums),
    one predicted with 5 pixels (IoU 0, 5 in the union), a targeted one found (8/10), one missed (0/4)."""
    inter, union = np.array([0, 0, 8, 0]), np.array([0, 5, 10, 4])
    predicted, targeted = np.array([0, 5, 9, 0]), np.array([False, False, True, True])
    scores = score_view(inter, union, predicted=predicted, targeted=targeted)
    assert scores.giou == pytest.approx((1 + 0 + 0.8 + 0) / 4)
    assert scores.ciou == 8 / 19
    assert scores.targets.n_acc == 0.5 and scores.targets.t_acc == 0.5
    assert scores.precision[0.8] == 0.5 and scores.precision[0.9] == 0.0  # over the two targeted sentences
    # Only no-target sentences, all answered with nothing: every union is empty, and nothing divides by zero.
    empty = score_view(np.zeros(3, int), np.zeros(3, int), predicted=np.zeros(3, int), targeted=np.zeros(3, bool))
    assert empty.giou == empty.ciou == empty.targets.n_acc == 1.0
    assert math.isnan(empty.targets.t_acc) and all(math.isnan(p) for p in empty.precision.values())
    with pytest.raises(ValueError, match="predicted"):
        score_view(inter, union, targeted=targeted)


def test_a_missing_no_target_prediction_is_one_line(harder_dataset: Path, random_file: Path, tmp_path: Path) -> None:
    """A no-target sentence is scored in every view, so its prediction is needed in every view."""
    with h5py.File(random_file, "r") as f:
        ref_ids, views, masks = f["ref_id"][()], f["view"][()], f["mask"][()]
    none = {s["ref_id"] for s in RefDataset(harder_dataset, SPLIT, views=[CENTRE]) if s["target_count"] == 0}
    drop = np.isin(ref_ids, list(none)) & (views == 8)
    path = write_predictions(tmp_path / "pred.h5", ref_ids[~drop], views[~drop], masks[~drop], dataset=harder_dataset,
                             split=SPLIT)
    result = invoke("evaluate", harder_dataset, "--split", SPLIT, "--predictions", path, "--no-progress")
    assert_one_error_line(result, "1 pair(s) visible in view 8 have no prediction there",
                          f"ref_id {min(none)}", "no-target sentence in every view")


def test_an_unreadable_program_stops_by_hops_in_one_line(harder_dataset: Path, tmp_path: Path) -> None:
    root = tmp_path / "copy"
    shutil.copytree(harder_dataset, root)
    with h5py.File(DatasetReader(root).shard_paths(SPLIT)[0], "r+") as f:
        f["refs/program"][1] = "not a program"
        ref_id = int(f["refs/id"][1])
    result = invoke("evaluate", root, "--split", SPLIT, "--baseline", "oracle", "--by", "hops", "--no-progress",
                    "--json", tmp_path / "scores.json")
    assert_one_error_line(result, f"pair ref_id {ref_id} has a program that cannot be read", "clevr-remv expressions")
    assert not (tmp_path / "scores.json").exists()
    result = invoke("evaluate", root, "--split", SPLIT, "--baseline", "oracle", "--by", "targets", "--no-progress")
    assert result.exit_code == 0, result.output  # the other breakdowns do not read programs
    result = invoke("evaluate", root, "--split", SPLIT, "--baseline", "oracle", "--by", "words")
    assert result.exit_code == 2 and "Traceback" not in result.output
