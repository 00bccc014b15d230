"""Metrics on hand-computed cases (clevr_remv/evaluation/metrics.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from clevr_remv.evaluation.metrics import (
    THRESHOLDS,
    iou,
    mask_counts,
    mean_iou,
    mvr,
    overall_iou,
    precision_at,
    score_view,
    score_views,
    view_distance,
)


def box(shape: tuple[int, int], rows: slice, cols: slice) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    mask[rows, cols] = True
    return mask


def test_perfect_empty_and_half_overlapping_predictions():
    target = box((8, 8), slice(0, 4), slice(0, 4))  # 16 px
    perfect = mask_counts(target, target)
    empty = mask_counts(np.zeros_like(target), target)
    # Shifted down by 2 rows inside an 8x4 block: intersection 8, union 24 -> 1/3.
    shifted = mask_counts(box((8, 8), slice(2, 6), slice(0, 4)), target)
    # A prediction covering the target plus 16 px more: 16 / 32.
    doubled = mask_counts(box((8, 8), slice(0, 8), slice(0, 4)), target)
    assert [tuple(map(int, c)) for c in (perfect, empty, shifted, doubled)] == [(16, 16), (0, 16), (8, 24), (16, 32)]
    assert iou(*perfect) == 1.0
    assert iou(*empty) == 0.0
    assert iou(*shifted) == pytest.approx(1 / 3)
    assert iou(*doubled) == 0.5


def test_stacked_masks_count_per_pair():
    target = np.stack([box((4, 4), slice(0, 2), slice(0, 2)), box((4, 4), slice(0, 4), slice(0, 4))])
    prediction = np.stack([box((4, 4), slice(0, 2), slice(0, 1)), np.zeros((4, 4), bool)])
    inter, union = mask_counts(prediction, target)
    assert inter.tolist() == [2, 0] and union.tolist() == [4, 16]


def test_mask_counts_rejects_different_shapes():
    with pytest.raises(ValueError, match="shape"):
        mask_counts(np.zeros((4, 4)), np.zeros((4, 5)))


def test_empty_union_is_a_perfect_iou():
    assert iou(0, 0) == 1.0


def test_precision_counts_an_iou_exactly_at_the_threshold():
    # 1/2 is exact in binary; k/10 division rounds to the same double as the literal k/10.
    ious = iou(np.array([50, 60, 70, 80, 90]), np.array([100, 100, 100, 100, 100]))
    assert ious.tolist() == [0.5, 0.6, 0.7, 0.8, 0.9]
    assert precision_at(ious) == {0.5: 1.0, 0.6: 0.8, 0.7: 0.6, 0.8: 0.4, 0.9: 0.2}
    # One pixel short of each threshold misses it.
    below = iou(np.array([49, 59, 69, 79, 89]), np.array([100] * 5))
    assert precision_at(below) == {0.5: 0.8, 0.6: 0.6, 0.7: 0.4, 0.8: 0.2, 0.9: 0.0}


def test_precision_of_exact_binary_fractions():
    ious = iou(np.array([1, 3, 7]), np.array([2, 4, 8]))  # 0.5, 0.75, 0.875
    assert precision_at(ious, (0.5, 0.75, 0.875, 0.9)) == {0.5: 1.0, 0.75: 2 / 3, 0.875: 1 / 3, 0.9: 0.0}


def test_overall_and_mean_iou_differ_on_unequal_object_sizes():
    # A large object found perfectly (400/400) and a small one missed (0/4):
    # mean IoU weighs both pairs alike (0.5), overall IoU weighs pixels (400 / 404).
    inter, union = np.array([400, 0]), np.array([400, 4])
    assert mean_iou(inter, union) == 0.5
    assert overall_iou(inter, union) == 400 / 404
    # The other way round, overall IoU is close to 0.
    assert overall_iou(np.array([0, 4]), np.array([400, 4])) == 4 / 404


def test_no_pairs_give_nan_not_a_number_that_looks_measured():
    scores = score_view(np.array([], int), np.array([], int), left_out=3)
    assert scores.pairs == 0 and scores.left_out == 3
    assert math.isnan(scores.miou) and math.isnan(scores.oiou)
    assert all(math.isnan(v) for v in scores.precision.values())


def test_view_distance_is_manhattan_from_the_centre():
    assert [view_distance(v, 9) for v in (40, 0, 8, 72, 80, 41, 30, 4)] == [0, 8, 8, 8, 8, 1, 2, 4]
    assert [view_distance(v, 3) for v in range(9)] == [2, 1, 2, 1, 0, 1, 2, 1, 2]


def test_mvr_of_the_thesis_lavt_figures_is_2_20_percent():
    corners = {0: 0.8755, 8: 0.8945, 72: 0.9204, 80: 0.9270}
    value = mvr(corners, 0.9472, grid=9)
    assert round(100 * value, 2) == 2.20
    q = np.array(list(corners.values())) / 0.9472
    assert value == pytest.approx(-np.sum(q * np.log(q)) / 8)


def test_mvr_is_zero_when_every_view_equals_the_centre():
    assert mvr({v: 0.73 for v in range(81)}, 0.73, grid=9) == 0.0
    assert mvr({0: 0.0}, 0.5, grid=3) == 0.0  # Q = 0 is the limit Q ln Q -> 0


def test_mvr_without_other_views_or_with_a_zero_centre_is_nan():
    assert math.isnan(mvr({4: 0.9}, 0.9, grid=3))
    assert math.isnan(mvr({0: 0.5}, 0.0, grid=3))


@given(st.lists(st.integers(0, 50), min_size=1, max_size=20), st.data())
def test_iou_stays_in_0_1_and_overall_equals_mean_for_equal_unions(inters, data):
    unions = [data.draw(st.integers(max(i, 1), 60)) for i in inters]
    values = iou(np.array(inters), np.array(unions))
    assert np.all((values >= 0) & (values <= 1))
    same = np.full(len(inters), 60)
    assert overall_iou(np.array(inters), same) == pytest.approx(mean_iou(np.array(inters), same))


def test_score_views_uses_only_included_pairs_and_the_same_pairs_at_the_centre():
    grid, views = 3, [0, 4]
    # Pair 0: big object, perfect at the centre, half in view 0.
    # Pair 1: small object, perfect at the centre, hidden in view 0 (left out there).
    inter = np.array([[50, 100], [0, 10]])
    union = np.array([[100, 100], [10, 10]])
    include = np.array([[True, True], [False, True]])
    report = score_views(inter, union, include, views, grid, chosen=[0])
    assert report.views[0].pairs == 1 and report.views[0].left_out == 1
    assert report.views[0].oiou == 0.5 and report.views[4].oiou == 1.0
    assert report.views[4].pairs == 2
    # Had the hidden pair counted as IoU 0, view 0's oIoU would be 50/110; it is left out instead.
    assert report.mvr_oiou == pytest.approx(-(0.5 * math.log(0.5)) / 2)
    assert report.mean["oiou"] == 0.5 and report.std["oiou"] == 0.0  # over the chosen view 0 only
    assert report.mean["p@0.5"] == 1.0 and report.mean["p@0.6"] == 0.0


def test_score_views_compares_each_view_with_the_centre_over_its_own_pairs():
    # The centre is perfect on pair 0 and poor on pair 1; view 0 sees only pair 0 and is perfect.
    inter = np.array([[10, 10], [0, 1]])
    union = np.array([[10, 10], [10, 10]])
    include = np.array([[True, True], [False, True]])
    report = score_views(inter, union, include, [0, 4], grid=3)
    assert report.mvr_oiou == 0.0 and report.mvr_miou == 0.0  # same pairs: Q = 1
    assert report.views[4].oiou == 11 / 20  # the centre's own row still counts every pair


def test_score_views_mean_and_std_over_views_like_table_7_3():
    inter = np.array([[9, 8, 10, 6]])
    union = np.array([[10, 10, 10, 10]])
    report = score_views(inter, union, np.ones((1, 4), bool), [0, 2, 4, 6], grid=3)
    assert report.mean["miou"] == pytest.approx(np.mean([0.9, 0.8, 1.0, 0.6]))
    assert report.std["miou"] == pytest.approx(np.std([0.9, 0.8, 1.0, 0.6]))
    q = np.array([0.9, 0.8, 0.6])
    assert report.mvr_oiou == pytest.approx(-np.sum(q * np.log(q)) / 2)


def test_score_views_needs_the_centre_for_mvr():
    with pytest.raises(ValueError, match="centre view 4"):
        score_views(np.ones((1, 2)), np.ones((1, 2)), np.ones((1, 2), bool), [0, 2], grid=3)


def test_thresholds_are_the_five_of_the_literature():
    assert THRESHOLDS == (0.5, 0.6, 0.7, 0.8, 0.9)
