"""Grading: validate a submission, score it on a part of the hidden answers, place it on the leaderboard.

The hidden test rows are split (``private/leaderboard_split.csv``) into a ``public`` part, used for
feedback during an episode, and a ``private`` part, used for the final grade; ``all`` scores both.
During an episode only the public part is ever scored, so feedback cannot reveal the final answers.

Answers are read once per process with pyarrow and cached; predictions are aligned to answers by a hash
lookup of ids (Arrow's ``index_in``), so grading a million rows takes a fraction of a second.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from dojoflow.errors import MetricInputError, UsageError
from dojoflow.tasks_catalog.leaderboard import Leaderboard, Placement, load_leaderboard
from dojoflow.tasks_catalog.preparation import PreparedData
from dojoflow.tasks_catalog.spec import TaskSpec
from dojoflow.tasks_catalog.submission import validate_submission

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

log = logging.getLogger(__name__)

PARTS = ("public", "private", "all")
# How a submission is judged, recorded with every grade: ``mlebench`` (imported MLE-bench tasks' default):
# MLE-bench's own rules (the competition's grader decides validity, scores rounded to 5 decimals, NaN valid
# without a medal; dojoflow's checks as warnings); ``mlebench-strict``: the competition's grader after
# dojoflow's validation, unrounded; ``dojoflow``: dojoflow's validation and metrics (built-in tasks).
GRADING_MODES = ("mlebench", "mlebench-strict", "mledojo", "dojoflow")


def grading_mode(spec: TaskSpec, mode: str | None = None) -> str:
    """The grading mode of ``spec`` (``mode`` when given, else the task's ``tags.grading_mode``, else
    ``mlebench`` for an MLE-bench grader and ``dojoflow`` for all others)."""
    if mode is not None and mode not in GRADING_MODES:
        raise UsageError(f"unknown grading mode '{mode}'; choose one of {', '.join(GRADING_MODES)}")
    if spec.grader is None:
        if mode not in (None, "dojoflow"):
            raise UsageError(f"task '{spec.id}' has no grader of its own: only the 'dojoflow' grading mode applies")
        return "dojoflow"
    if spec.grader.kind == "mledojo":  # the competition's CompetitionMetrics class: its own rules only
        if mode not in (None, "mledojo"):
            raise UsageError(f"task '{spec.id}' is graded by MLE-Dojo's metric class: only the 'mledojo' mode applies")
        return "mledojo"
    default = "mlebench" if spec.grader.kind == "mlebench" else "mlebench-strict"
    return mode or str(spec.tags.get("grading_mode") or default)


@dataclass
class GradeResult:
    """Validation outcome, score on the requested part, and leaderboard placement (when valid)."""

    task_id: str
    part: str
    valid: bool
    errors: list[str] = field(default_factory=list)
    score: float | None = None
    placement: Placement | None = None
    format_ok: bool = False  # parsed with the expected columns (even if invalid otherwise)
    grading_mode: str = "dojoflow"  # see GRADING_MODES
    warnings: list[str] = field(default_factory=list)  # dojoflow's findings that did not decide validity
    score_all_rows: float | None = None  # on every answer row, as MLE-bench grades (tasks with their own grader)

    @property
    def medal(self) -> str | None:
        """The medal of a valid grade (None otherwise)."""
        return self.placement.medal if self.placement else None

    def to_dict(self) -> dict:
        """JSON-ready, with the placement expanded."""
        data = asdict(self)
        data["placement"] = self.placement.to_dict() if self.placement else None
        return data


@lru_cache(maxsize=16)
def _answer_table(answers_path: str, split_path: str, id_column: str, text_targets: tuple[str, ...],
                  mtime: float) -> pa.Table:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    def read(path: str, text: tuple[str, ...]) -> pa.Table:
        types = {c: pa.string() for c in (id_column, *text)}
        return pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(column_types=types))

    answers = read(answers_path, text_targets).combine_chunks()
    parts = read(split_path, ("part",)).combine_chunks()
    if parts.column(id_column).equals(answers.column(id_column)):  # same order (as dojoflow writes them)
        return answers.append_column("part", parts.column("part"))
    return answers.join(parts, id_column, join_type="left outer").combine_chunks()


def answer_table(spec: TaskSpec, prepared: PreparedData, part: str) -> pa.Table:
    """The hidden answers of one part as an Arrow table (ids as text), cached per process."""
    import pyarrow.compute as pc

    if part not in PARTS:
        raise UsageError(f"unknown part '{part}'; choose one of {', '.join(PARTS)}")
    text = tuple(spec.submission.target_columns) if spec.metric.text_predictions else ()
    table = _answer_table(str(prepared.answers), str(prepared.leaderboard_split), spec.submission.id_column,
                          text, prepared.answers.stat().st_mtime)
    return table if part == "all" else table.filter(pc.equal(table.column("part"), part))


def load_answers(spec: TaskSpec, prepared: PreparedData, part: str) -> pd.DataFrame:
    """The hidden answers of one part as a pandas frame indexed by id (as text)."""
    return answer_table(spec, prepared, part).to_pandas().set_index(spec.submission.id_column)


def task_leaderboard(spec: TaskSpec, part: str = "private") -> Leaderboard:
    """The task's leaderboard. A reference leaderboard may score the public part in its own column
    (``public_score``); feedback is placed on that column when present, else on ``score``."""
    import dataclasses

    if part == "public" and spec.leaderboard.public_file:  # a real public board (Kaggle's, MLE-Dojo imports)
        return load_leaderboard(spec.folder / spec.leaderboard.public_file, spec.higher_is_better,
                                spec.leaderboard.provenance)
    column = "public_score" if part == "public" else "score"
    board = load_leaderboard(spec.leaderboard_path, spec.higher_is_better, spec.leaderboard.provenance, column,
                             fallback_column="score")
    if spec.tags.get("direction_source", "").startswith("inferred"):  # imported MLE-bench tasks
        board = dataclasses.replace(board, direction_inferred=True)
    return board


def feedback_board(spec: TaskSpec) -> str:
    """Which board feedback scores are placed on: ``public`` (a separate public leaderboard: Kaggle's, for
    MLE-Dojo imports), ``public_score`` (a reference board's column scored on the public part) or ``private``
    (the task's only board, the one the final grade is placed on: MLE-bench imports)."""
    if spec.leaderboard.public_file:
        return "public"
    try:
        with spec.leaderboard_path.open() as fh:
            header = next((line for line in fh if not line.startswith("#")), "")
    except OSError:
        return "private"
    return "public_score" if "public_score" in header.split(",") else "private"


def score_predictions(spec: TaskSpec, answers: pa.Table, predictions: pa.Table,
                      positions: pa.Array | None = None) -> float:
    """Metric of ``predictions`` against ``answers`` (Arrow tables with the id and target columns).

    Rows are aligned by id (``positions``: the prediction row of each answer row, computed if not given);
    every answer id must be present in the predictions.
    """
    import numpy as np
    import pyarrow.compute as pc

    id_column = spec.submission.id_column
    if positions is None:
        positions = pc.index_in(answers.column(id_column), value_set=predictions.column(id_column))
    if positions.null_count:
        raise MetricInputError(f"{positions.null_count} answer ids have no prediction")
    as_text = spec.metric.text_predictions

    def values(array) -> np.ndarray:
        return np.asarray(array.to_pylist(), dtype=object) if as_text else array.to_numpy().astype(float)

    targets = list(spec.submission.target_columns)
    y_true = np.column_stack([values(answers.column(c)) for c in targets])
    y_pred = np.column_stack([values(pc.take(predictions.column(c), positions)) for c in targets])
    if len(targets) == 1:
        y_true, y_pred = y_true[:, 0], y_pred[:, 0]
    return spec.metric(y_true, y_pred)


def _grade_with_task_grader(spec: TaskSpec, prepared: PreparedData, submission: Path, part: str, mode: str):
    """The task's own grader on ``part`` (an MLE-bench competition's grade.py, or MLE-Dojo's metric class),
    with the score on every answer row as well when grading the private part (MLE-bench's own number)."""
    from dojoflow.tasks_catalog.mlebench import ExternalGrade, grade_with_grader

    if spec.grader is not None and spec.grader.kind == "mledojo":
        from dojoflow.tasks_catalog.mledojo import grade_mledojo

        errors, score, format_ok = grade_mledojo(spec, prepared, submission, part)
        all_rows = grade_mledojo(spec, prepared, submission, "all")[1] if part == "private" and not errors else None
        return ExternalGrade(errors, score, format_ok, score_all_rows=all_rows)
    return grade_with_grader(spec, prepared, submission, part, strict=mode != "mlebench", all_rows=part == "private")


def grade_submission(spec: TaskSpec, prepared: PreparedData, submission: Path, part: str = "private",
                     leaderboard: Leaderboard | None = None, mode: str | None = None) -> GradeResult:
    """Validate ``submission`` against all test ids, then score it on ``part`` and place it, under the
    grading ``mode`` (:func:`grading_mode`; recorded in the result). The final (private) grade of a task
    with its own grader also scores every answer row (``score_all_rows``), the number MLE-bench reports."""
    import pyarrow.compute as pc

    if part not in PARTS:
        raise UsageError(f"unknown part '{part}'; choose one of {', '.join(PARTS)}")
    chosen = grading_mode(spec, mode)
    if spec.grader is not None:  # the task's own grader (an imported MLE-bench competition)
        graded = _grade_with_task_grader(spec, prepared, Path(submission), part, chosen)
        if graded.errors:
            return GradeResult(spec.id, part, valid=False, errors=graded.errors, format_ok=graded.format_ok,
                               grading_mode=chosen, warnings=graded.warnings)
        board = leaderboard or task_leaderboard(spec, "public" if part == "public" else "private")
        return GradeResult(spec.id, part, valid=True, score=graded.score, placement=board.place(graded.score),
                           format_ok=graded.format_ok, grading_mode=chosen, warnings=graded.warnings,
                           score_all_rows=graded.score_all_rows)
    answers = answer_table(spec, prepared, "all")
    validation = validate_submission(Path(submission), spec, answers.column(spec.submission.id_column))
    if not validation.valid:
        return GradeResult(spec.id, part, valid=False, errors=validation.errors, format_ok=validation.format_ok)
    positions = validation.positions
    assert positions is not None  # a valid submission has its id positions
    if part != "all":
        in_part = pc.equal(answers.column("part"), part)
        answers, positions = answers.filter(in_part), positions.filter(in_part)
    try:
        score = score_predictions(spec, answers, validation.table, positions)
    except MetricInputError as exc:
        return GradeResult(spec.id, part, valid=False, errors=[f"could not score the submission: {exc}"],
                           format_ok=True)
    except ValueError as exc:  # from inside a library: validation let through something the metric rejects
        log.warning("metric %s failed on a validated submission of %s", spec.metric_name, spec.id, exc_info=True)
        return GradeResult(spec.id, part, valid=False, format_ok=True,
                           errors=[f"could not score the submission: {type(exc).__name__}: {exc} (validation "
                                   "accepted it, so this may be a dojoflow bug: please report it)"])
    if not math.isfinite(score):
        return GradeResult(spec.id, part, valid=False, errors=[f"the metric is not finite ({score})"],
                           format_ok=True)
    board = leaderboard or task_leaderboard(spec, "public" if part == "public" else "private")
    return GradeResult(spec.id, part, valid=True, score=score, placement=board.place(score), format_ok=True)


def grade_validation(spec: TaskSpec, view: PreparedData, submission: Path) -> GradeResult:
    """Feedback under the ``validation`` protocol: validate ``submission`` against every row of the view's
    ``test.csv`` (test rows and held-out training rows alike), score the held-out rows against their labels
    from the training data, and place the score on the public leaderboard. Never reads the test answers."""
    import pyarrow.compute as pc

    from dojoflow.tasks_catalog.validation_split import PART, public_test_ids

    id_column = spec.submission.id_column
    validation = validate_submission(Path(submission), spec, public_test_ids(view.public, id_column))
    if not validation.valid:
        return GradeResult(spec.id, PART, valid=False, errors=validation.errors, format_ok=validation.format_ok)
    answers, table = answer_table(spec, view, "all"), validation.table
    assert table is not None  # a valid submission has its table
    positions = pc.index_in(answers.column(id_column), value_set=table.column(id_column))
    try:
        score = score_predictions(spec, answers, table, positions)
    except (MetricInputError, ValueError) as exc:
        return GradeResult(spec.id, PART, valid=False, errors=[f"could not score the submission: {exc}"],
                           format_ok=True)
    if not math.isfinite(score):
        return GradeResult(spec.id, PART, valid=False, errors=[f"the metric is not finite ({score})"], format_ok=True)
    return GradeResult(spec.id, PART, valid=True, score=score, placement=task_leaderboard(spec, "public").place(score),
                       format_ok=True)
