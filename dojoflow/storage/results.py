"""The results table: one row per episode, stored as Parquet.

Each episode writes its own file ``$DOJOFLOW_HOME/results/<episode-id>.parquet`` (atomically: written to a
temporary name, then renamed), so concurrent episodes never contend for one file and re-recording an
episode replaces its row instead of duplicating it. :func:`load_results` reads the folder as one table.

Failed episodes have a row too (``status`` ``failed``, ``end_reason``, ``error_class``; no score). Columns
added later (``model``, ``status``, ``end_reason``, ``error_class``) are filled in for rows written before
them (:data:`ADDED_COLUMNS`: an old row is a completed episode of an unknown model), so old results load.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from dojoflow.atomic import atomic_file

if TYPE_CHECKING:
    import pandas as pd

COLUMNS = ("sweep_id", "episode_key", "episode_id", "agent", "task", "task_splits", "seed", "valid", "score",
           "higher_is_better", "medal",
           "gold", "any_medal", "above_median", "human_rank", "steps", "wall_time_s", "tokens", "cost_usd",
           "integrity_passed", "leaderboard_provenance", "model", "status", "end_reason", "error_class",
           "finished_at", "feedback_protocol", "leaderboard_comparable", "provenance", "provenance_key",
           "feedback_board", "best_feedback_human_rank", "best_feedback_medal",
           "integrity_flags", "description_variant", "plagiarism_score",
           "grading_mode", "score_all_rows", "submission_path")
# The value of each later column in rows written before it existed (every such episode ran under public-test
# feedback, with no recorded provenance).
ADDED_COLUMNS = {"model": "", "status": "completed", "end_reason": "", "error_class": "",
                 "feedback_protocol": "public-test", "leaderboard_comparable": False, "provenance": "{}",
                 "provenance_key": "", "feedback_board": "", "best_feedback_human_rank": None,
                 "best_feedback_medal": None, "integrity_flags": "", "description_variant": "original",
                 "plagiarism_score": float("nan"), "grading_mode": "", "score_all_rows": float("nan"),
                 "submission_path": ""}
# grading_mode: how the final grade judged (tasks_catalog.grading.GRADING_MODES; "" before it was recorded);
# score_all_rows: the final submission's score on every answer row, as MLE-bench grades (tasks with their own
# grader); submission_path: the file that was graded.


def write_result(results_dir: Path, row: dict[str, Any]) -> Path:
    """Write one episode's row; returns the file written."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    row = {"sweep_id": "", "episode_key": "", **ADDED_COLUMNS, **row}  # sweep ids: set only for sweep episodes
    missing = set(COLUMNS) - set(row)
    if missing:
        raise ValueError(f"result row lacks columns: {', '.join(sorted(missing))}")
    table = pa.Table.from_pylist([{c: row[c] for c in COLUMNS}])
    target = results_dir / f"{row['episode_id']}.parquet"
    with atomic_file(target) as tmp:
        pq.write_table(table, tmp)
    return target


def load_results(source: Path) -> pd.DataFrame:
    """All rows from a results folder (one file per episode) or from a single Parquet file."""
    import pandas as pd
    import pyarrow.parquet as pq

    source = Path(source)
    if source.is_file():
        return _with_added_columns(pq.read_table(source).to_pandas())
    files = sorted(p for p in source.glob("*.parquet") if not p.name.startswith(".tmp-")) if source.is_dir() else []
    if not files:
        return pd.DataFrame(columns=list(COLUMNS))
    return _with_added_columns(pd.concat([_with_added_columns(pq.read_table(f).to_pandas()) for f in files],
                                         ignore_index=True))


def with_added_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with every later column present (rows from before it get its default); changes ``frame``."""
    return _with_added_columns(frame)


def _with_added_columns(frame: pd.DataFrame) -> pd.DataFrame:
    for column, default in ADDED_COLUMNS.items():
        if column not in frame:
            frame[column] = default
        elif default is not None:  # (no value to fill in for a column whose old rows are simply unknown)
            frame[column] = frame[column].fillna(default)
    return frame


def completed(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows of episodes that were graded (the ones reports aggregate)."""
    frame = _with_added_columns(frame.copy())
    return frame[frame["status"] != "failed"]


def with_model_label(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows whose ``agent`` names the model too (``react (gpt-4o-mini)``) where the model is known, so two
    models behind one scaffold are never pooled into one report row; the ``model`` column is kept."""
    frame = _with_added_columns(frame.copy())
    model = frame["model"].fillna("").astype(str)
    frame["agent"] = [f"{a} ({m})" if m else a for a, m in zip(frame["agent"], model)]
    frame["model"] = model
    return frame
