"""Results as MLE-bench's own grading report, so a dojoflow run compares with the MLE-bench leaderboard
without conversion.

MLE-bench's ``grade_jsonl`` writes ``<timestamp>_grading_report.json``: the totals of
``mlebench.grade.aggregate_reports`` (``total_runs``, ``total_runs_with_submissions``,
``total_valid_submissions``, ``total_medals``, ``total_gold_medals``, ``total_silver_medals``,
``total_bronze_medals``, ``total_above_median``) and ``competition_reports``, one ``CompetitionReport.to_dict``
per run (``competition_id``, ``score``, the four thresholds, the medal flags, ``above_median``,
``submission_exists``, ``valid_submission``, ``is_lower_better``, ``created_at``, ``submission_path``); its
aggregation scripts read that file. :func:`grading_report` writes the same from dojoflow's results table.

MLE-bench grades on every answer row; so the score reported is ``score_all_rows`` (recorded for tasks with
their own grader) and the medals are placed on it with the task's leaderboard, by the same rules
(:meth:`~dojoflow.tasks_catalog.leaderboard.Leaderboard.place`). A row without it (a built-in task, or one
recorded before the column existed) reports its private-part ``score`` and recorded medal.
``submission_exists`` is true for every graded (completed) episode, or when it had a valid submission.
"""

from __future__ import annotations

import json
import math
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

TOTALS = ("total_runs", "total_runs_with_submissions", "total_valid_submissions", "total_medals",
          "total_gold_medals", "total_silver_medals", "total_bronze_medals", "total_above_median")


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def competition_report(row: dict[str, Any]) -> dict[str, Any]:
    """One results row as MLE-bench's ``CompetitionReport.to_dict()``."""
    from dojoflow.errors import DojoflowError
    from dojoflow.tasks_catalog.grading import task_leaderboard
    from dojoflow.tasks_catalog.registry import get_task

    valid = bool(row.get("valid"))
    all_rows = _number(row.get("score_all_rows"))
    raw_score = row.get("score_all_rows") if all_rows is not None else row.get("score")
    score = float(raw_score) if valid and raw_score is not None and not pd.isna(raw_score) else None
    if valid and score is None and raw_score is not None:  # a NaN score: valid under MLE-bench's rules
        score = float("nan")
    medal = row.get("medal") if valid else None
    above = bool(row.get("above_median")) and valid
    nan = float("nan")
    thresholds = {"gold": nan, "silver": nan, "bronze": nan, "median": nan}
    lower = not bool(row.get("higher_is_better", True))
    try:
        board = task_leaderboard(get_task(str(row["task"])))
        thresholds = board.thresholds()
        lower = not board.higher_is_better
        if all_rows is not None and valid:
            placement = board.place(score)
            medal, above = placement.medal, placement.above_median
    except (DojoflowError, OSError, KeyError):  # the task is not registered here: its recorded medal stands
        pass
    finished = str(row.get("finished_at") or "")
    return {
        "competition_id": str(row["task"]),
        "score": score,
        "gold_threshold": float(thresholds["gold"]),
        "silver_threshold": float(thresholds["silver"]),
        "bronze_threshold": float(thresholds["bronze"]),
        "median_threshold": float(thresholds["median"]),
        "any_medal": medal in ("gold", "silver", "bronze"),
        "gold_medal": medal == "gold",
        "silver_medal": medal == "silver",
        "bronze_medal": medal == "bronze",
        "above_median": above,
        "submission_exists": valid or str(row.get("status", "completed")) == "completed",
        "valid_submission": valid,
        "is_lower_better": lower,
        "created_at": finished or datetime.now().isoformat(),
        "submission_path": str(row.get("submission_path") or row.get("episode_id") or ""),
    }


def grading_report(frame: pd.DataFrame) -> dict[str, Any]:
    """MLE-bench's aggregated grading report of a results frame (one competition report per row)."""
    reports = [competition_report(row) for row in frame.to_dict("records")]
    count = {key: sum(bool(r[key]) for r in reports) for key in (
        "gold_medal", "silver_medal", "bronze_medal", "above_median", "submission_exists", "valid_submission")}
    return {
        "total_runs": len(reports),
        "total_runs_with_submissions": count["submission_exists"],
        "total_valid_submissions": count["valid_submission"],
        "total_medals": count["gold_medal"] + count["silver_medal"] + count["bronze_medal"],
        "total_gold_medals": count["gold_medal"],
        "total_silver_medals": count["silver_medal"],
        "total_bronze_medals": count["bronze_medal"],
        "total_above_median": count["above_median"],
        "competition_reports": reports,
    }


def write_grading_report(frame: pd.DataFrame, path: Path) -> Path:
    """:func:`grading_report` as JSON at ``path`` (a folder gets ``<timestamp>_grading_report.json``, the
    name MLE-bench gives it)."""
    import time

    path = Path(path)
    if path.is_dir() or not path.suffix:
        path.mkdir(parents=True, exist_ok=True)
        path = path / f"{time.strftime('%Y-%m-%dT%H-%M-%S-%Z', time.gmtime())}_grading_report.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(grading_report(frame), indent=2))
    return path


__all__ = ["TOTALS", "competition_report", "grading_report", "write_grading_report"]
