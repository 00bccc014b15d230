"""Scoring a model: predictions files (written and read), the ground truth they are scored against,
the metrics (IoU, P@K, MVR; GRES's gIoU, cIoU, N-acc and T-acc for sentences that name several objects
or none), the report, the breakdowns by occlusion, hops and targets, and the disparity metrics.

    from clevr_remv.evaluation import evaluate, write_predictions

    write_predictions("pred.h5", ref_ids, views, masks)
    result = evaluate("out", "test", "pred.h5", views="corners")
"""

from clevr_remv.evaluation.predictions import PredictionsWriter, open_predictions, write_predictions
from clevr_remv.evaluation.scorecard import format_report, report_json, write_report_json
from clevr_remv.evaluation.scoring import BASELINES, Evaluation, evaluate

__all__ = [
    "BASELINES",
    "Evaluation",
    "PredictionsWriter",
    "evaluate",
    "format_report",
    "open_predictions",
    "report_json",
    "write_predictions",
    "write_report_json",
]
