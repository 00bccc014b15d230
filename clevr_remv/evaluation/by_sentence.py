"""`clevr-remv evaluate --by hops` and `--by targets`: every figure of `evaluate` per group of sentences.

The harder language (`--max-hops K --targets any`) makes sentences that differ in kind; these breakdowns
say which kind a model gets wrong. A pair belongs to one group, whatever the view:
- `hops`: how many relations its program chains (`expressions.relation_count`: 0 for "the red cube",
  1 for "... left of the red cube", up to `--max-hops`); groups 0 … 3 (more if a program has more);
- `targets`: how many objects the sentence names: `none` (0), `one` (1), `several` (2 or more).

Per group, as `--by occlusion` gives per bin: the per-view figures, their mean and std over the chosen
views, the pooled figures over every (pair, view) of the group in the chosen views, and MVR. Since a
group is a set of pairs, each view's Q compares it with the centre over the same pairs of the group. The
groups partition the split: their pair counts, and each view's evaluated pairs, add up to the whole.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from clevr_remv.evaluation.metrics import (
    MultiViewReport,
    ViewScores,
    group_json,
    percent,
    score_view,
    score_views,
    table_columns,
)

if TYPE_CHECKING:
    from clevr_remv.evaluation.ground_truth import GroundTruth

TARGET_GROUPS = ("none", "one", "several")
_TARGET_LABELS = {"none": "none (0)", "one": "one (1)", "several": "several (2+)"}
_TITLES = {"hops": "by the sentence's hops (relations its program chains)",
           "targets": "by how many objects the sentence names"}
_FIRST_COLUMN = {"hops": "hops", "targets": "targets"}


@dataclasses.dataclass(frozen=True)
class Grouping:
    """Which group each pair of the split belongs to."""

    kind: str  # "hops" or "targets"
    names: tuple[str, ...]  # the groups, in the order they are reported (JSON keys)
    group: np.ndarray  # (R,) int index into `names`


@dataclasses.dataclass(frozen=True)
class Group:
    name: str
    pairs: int  # pairs of the split in the group
    pooled: ViewScores  # over every (pair, view) of the group in the chosen views
    report: MultiViewReport  # per view, mean and std over the chosen views, MVR


def hop_counts(programs: Sequence[str] | np.ndarray, ids: np.ndarray) -> np.ndarray:
    """(R,) relation count of each pair's JSON program; an unreadable one is a one-line ValueError
    naming the pair, since a broken refs/program would otherwise surface as a JSON traceback."""
    from clevr_remv.expressions.programs import hops_of

    out = np.zeros(len(programs), dtype=np.int64)
    for r, text in enumerate(programs):
        try:
            out[r] = hops_of(str(text))
        except (ValueError, TypeError, KeyError) as error:
            detail = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise ValueError(f"pair ref_id {int(ids[r])} has a program that cannot be read ({detail}), so --by hops "
                             f"cannot count its relations; regenerate the sentences with `clevr-remv expressions`"
                             ) from None
    return out


def group_pairs(kind: str, truth: GroundTruth) -> Grouping:
    """The grouping of every pair of `truth` for `--by hops` or `--by targets`."""
    if kind == "targets":
        count = truth.target_count
        return Grouping(kind, TARGET_GROUPS, np.minimum(count, 2).astype(np.int64))
    if kind == "hops":
        from clevr_remv.expressions.templates import MAX_HOPS

        if truth.program is None:
            raise ValueError(f"{truth.root}: no refs/program to count the hops of")
        hops = hop_counts(truth.program, truth.ids)
        most = max(MAX_HOPS, int(hops.max(initial=0)))
        return Grouping(kind, tuple(str(h) for h in range(most + 1)), hops)
    raise ValueError(f"unknown grouping {kind!r} (choose hops or targets)")


def score_groups(grouping: Grouping, inter: np.ndarray, union: np.ndarray, predicted: np.ndarray,
                 include: np.ndarray, targeted: np.ndarray | None, views: Sequence[int], grid: int,
                 chosen: Sequence[int]) -> list[Group]:
    """One Group per name of `grouping`, from the (R, len(views)) counts of `scoring.count_overlaps`.

    `targeted` (R,) bool for generalised sentences (None: every pair names one object), as
    `metrics.score_views` takes it. A group without pairs has NaN figures (n/a, null), not zeros.
    """
    views = [int(v) for v in views]
    in_chosen = np.isin(views, [int(v) for v in chosen])
    general = {"predicted": predicted, "targeted": targeted} if targeted is not None else {}
    out = []
    for g, name in enumerate(grouping.names):
        members = grouping.group == g
        mine = include & members[:, None]
        report = score_views(inter, union, mine, views, grid, chosen=chosen, **general)
        report = _without_other_groups_left_out(report, include, members, views)
        pooled_mask = mine & in_chosen[None, :]
        extra = ({"predicted": predicted[pooled_mask],
                  "targeted": np.broadcast_to(np.asarray(targeted, bool)[:, None], mine.shape)[pooled_mask]}
                 if general else {})
        pooled = score_view(inter[pooled_mask], union[pooled_mask], **extra)
        out.append(Group(name, int(members.sum()), pooled, report))
    return out


def _without_other_groups_left_out(report: MultiViewReport, include: np.ndarray, members: np.ndarray,
                                   views: list[int]) -> MultiViewReport:
    """`left_out` per view counts the group's own pairs that view leaves out (their targets hidden),
    not the other groups' pairs, so that the groups' `pairs` and `left_out` add up to the whole's."""
    fixed = {v: dataclasses.replace(report.views[v], left_out=int((members & ~include[:, j]).sum()))
             for j, v in enumerate(views)}
    return dataclasses.replace(report, views=fixed)


def groups_json(groups: list[Group]) -> dict[str, Any]:
    """The `by_hops` / `by_targets` part of `evaluate --json`: per group its pair count, pooled figures
    (`pairs` there: the (pair, view) count), per-view figures, mean, std and MVR; NaN as null."""
    return {g.name: {"pairs": g.pairs, **group_json(g.pooled, g.report)} for g in groups}


def format_groups(kind: str, groups: list[Group], chosen: Sequence[int]) -> str:
    """The table printed after `evaluate`'s: one row per group, figures pooled over the chosen views."""
    generalised = bool(groups) and groups[0].report.generalised
    columns = table_columns(generalised)
    mvr = ["MVR cIoU", "MVR gIoU"] if generalised else ["MVR oIoU", "MVR mIoU"]
    headers = [_FIRST_COLUMN[kind], "pairs", "pairs x views", *(header for _, header in columns), *mvr]
    rows = [[_TARGET_LABELS.get(g.name, g.name) if kind == "targets" else g.name, str(g.pairs), str(g.pooled.pairs),
             *(percent(float(g.pooled.as_dict()[k])) for k, _ in columns), percent(g.report.mvr_oiou),
             percent(g.report.mvr_miou)] for g in groups]
    widths = [max(len(h), *(len(x[i]) for x in rows)) for i, h in enumerate(headers)]
    lines = [f"{_TITLES[kind]}, pooled over the {len(chosen)} chosen view(s); figures in %"]
    lines.append("  ".join(h.rjust(w) for h, w in zip(headers, widths)))
    lines += ["  ".join(c.rjust(w) for c, w in zip(x, widths)) for x in rows]
    return "\n".join(lines)
