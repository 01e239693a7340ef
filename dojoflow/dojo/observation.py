"""Observations: text an LLM can read plus structured fields for programs.

Execution output is cut to its head and tail; errors carry a type, a message and likely causes.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dojoflow.tasks_catalog.spec import TaskSpec

if TYPE_CHECKING:
    from dojoflow.dojo.actions import Action
    from dojoflow.dojo.records import StepRecord
    from dojoflow.infra.sandbox import ExecutionResult
    from dojoflow.tasks_catalog.preparation import PreparedData

OBSERVATION_OUTPUT_CHARS = 4000


@dataclass(frozen=True)
class Observation:
    """What the agent sees after an action."""

    text: str
    kind: str
    data: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def error(cls, error_type: str, message: str, causes: list[str], steps_left: int) -> Observation:
        """An error observation: type, message, likely causes and the steps left."""
        text = f"Error ({error_type}): {message}\nLikely causes: " + "; ".join(causes) + f"\n{steps_left} steps left."
        return cls(text=text, kind="error",
                   data={"error": {"type": error_type, "message": message, "likely_causes": causes},
                         "steps_left": steps_left})

    def with_text(self, text: str) -> Observation:
        """The same observation with another text."""
        return replace(self, text=text)


def head_tail(text: str, limit: int = OBSERVATION_OUTPUT_CHARS) -> str:
    """Keep the start and the end of long output, where setup messages and final errors are."""
    if len(text) <= limit:
        return text
    half = limit // 2
    return f"{text[:half]}\n... [{len(text) - 2 * half} characters omitted] ...\n{text[-half:]}"


SAMPLE_PATTERNS = ("*sample_submission*.csv", "*sample_submission*.csv.zip", "*sample_submission*.csv.gz")


def sample_submission_name(spec: TaskSpec, public: Path | None = None) -> str:
    """The sample submission's file name in the public folder (an imported task's config may name another).

    Where the configured sample is private, the one public file named like a sample submission (``public``'s
    ``*sample_submission*.csv``, zipped or gzipped) stands in: MLE-bench's text-normalization competitions
    keep the graded sample in ``private/`` and give agents a zipped copy (``en_sample_submission_2.csv.zip``).
    Empty when there is no such file, or more than one to choose from."""
    rel = str(spec.tags.get("mlebench_sample_submission") or "public/sample_submission.csv")
    if "/" not in rel:
        return rel
    part, _, name = rel.partition("/")
    if part == "public":
        return name
    if public is None:
        return ""
    found = sorted({p.name for pattern in SAMPLE_PATTERNS for p in public.glob(pattern) if p.is_file()})
    return found[0] if len(found) == 1 else ""


def describe_data(spec: TaskSpec, prepared: PreparedData) -> dict[str, Any]:
    """Columns, dtypes and shapes of the public files, and the first rows of the sample submission.

    A public folder without ``train.csv``/``test.csv``/``sample_submission.csv`` (an imported competition's
    own layout) is described as it is (:func:`~dojoflow.dojo.layout.describe_folder`), with
    ``layout: "files"`` and no columns."""
    import pandas as pd

    public = prepared.public
    if not all((public / n).is_file() for n in ("train.csv", "test.csv", "sample_submission.csv")):
        return _describe_files(spec, prepared)
    train = pd.read_csv(prepared.public / "train.csv")
    test = pd.read_csv(prepared.public / "test.csv", nrows=5)
    sample = pd.read_csv(prepared.public / "sample_submission.csv", nrows=5)
    n_test = sum(1 for _ in (prepared.public / "test.csv").open()) - 1
    columns = {c: str(t) for c, t in train.dtypes.items()}
    missing = {c: int(n) for c, n in train.isna().sum().items() if n}
    lines = [f"data/train.csv: {len(train)} rows x {train.shape[1]} columns",
             f"data/test.csv: {n_test} rows x {test.shape[1]} columns (no target columns)",
             "train columns: " + ", ".join(f"{c} ({t})" for c, t in columns.items())]
    if missing:
        lines.append("missing values in train: " + ", ".join(f"{c}: {n}" for c, n in missing.items()))
    prediction = spec.metric.prediction
    if spec.grader is not None:  # the competition's own grader says nothing of it: the training target does
        prediction = _guessed_prediction(train, sample, list(spec.submission.target_columns))
    return {
        **_common(spec),
        "prediction": prediction,
        "layout": "tables",
        "columns": columns,
        "train_rows": len(train),
        "test_rows": n_test,
        "data_structure": "\n".join(lines),
        "sample_submission": sample.to_csv(index=False),
        "sample_submission_file": "sample_submission.csv",
    }


def _guessed_prediction(train, sample, targets: list[str]) -> str:
    """``value``, ``probability`` or ``label`` for a task whose metric is its own grader's: a numeric target
    with many values is a value; a two-valued one whose sample holds fractions a probability; else a label."""
    target = targets[0]
    if target not in train.columns:
        return "label"
    column = train[target].dropna()
    if column.dtype.kind in "if" and column.nunique() > 20:
        return "value"
    if column.nunique() <= 2 and target in sample.columns and sample[target].dtype.kind == "f":
        return "probability"
    return "label"


def _common(spec: TaskSpec) -> dict[str, Any]:
    return {
        "task_id": spec.id,
        "task_type": spec.task_type,
        "metric": spec.metric_name,
        "higher_is_better": spec.higher_is_better,
        "prediction": spec.metric.prediction,
        "id_column": spec.submission.id_column,
        "target_columns": list(spec.submission.target_columns),
        "classes": list(spec.submission.classes) if spec.submission.classes else None,
        "inputs": {"kind": spec.inputs.kind, "column": spec.inputs.column, "dir": spec.inputs.dir},
        "time_column": spec.split.time_column,
    }


def _describe_files(spec: TaskSpec, prepared: PreparedData) -> dict[str, Any]:
    import pandas as pd

    from dojoflow.dojo.layout import describe_folder

    name = sample_submission_name(spec, prepared.public)
    sample = ""
    if name and (prepared.public / name).is_file():
        sample = pd.read_csv(prepared.public / name, nrows=5).to_csv(index=False)
    return {**_common(spec), "layout": "files", "columns": {}, "train_rows": None, "test_rows": None,
            "data_structure": describe_folder(prepared.public),
            "sample_submission": sample or "(none among the public files)",
            "sample_submission_file": name if sample else ""}


def render_execution(spec: TaskSpec, action: Action, execution: ExecutionResult, failure: str | None,
                     record: StepRecord, steps_left: int, feedback: str = "public-test") -> Observation:
    """Observation for validate_code / execute_code: output, then what the feedback protocol ``feedback``
    says about the submission (see ``dojo/feedback.py``)."""
    parts = [f"Step {record.index} ({action.type}): exit code {execution.exit_code}, "
             f"{execution.duration_s:.2f} s, peak memory {execution.peak_memory_mb:.0f} MB"]
    if execution.stdout:
        parts.append("--- stdout ---\n" + head_tail(execution.stdout))
    if execution.stderr:
        parts.append("--- stderr ---\n" + head_tail(execution.stderr))
    data: dict[str, Any] = {"step": record.index, "exit_code": execution.exit_code,
                            "timed_out": execution.timed_out, "oom": execution.oom,
                            "output_limited": execution.output_limited, "valid": record.valid_submission,
                            "feedback_score": record.feedback_score, "human_rank": record.feedback_human_rank,
                            "reward": record.reward, "steps_left": steps_left}
    if failure:
        causes = _likely_causes(execution)
        data["error"] = {"type": _failure_type(execution), "message": failure, "likely_causes": causes}
        parts.append(f"--- error ---\n{failure}\nLikely causes: " + "; ".join(causes))
    elif feedback == "none":
        written = "was written" if record.valid_submission else "was not written"
        parts.append(f"--- no feedback on submissions (protocol 'none') --- submission.csv {written}")
    elif record.valid_submission is False:
        data["error"] = {"type": "invalid_submission", "message": "; ".join(record.errors),
                         "likely_causes": ["the submission does not follow the format in sample_submission.csv"]}
        parts.append("--- submission is invalid ---\n" + "\n".join(f"- {e}" for e in record.errors))
    elif action.type == "validate_code":
        parts.append("--- submission format is valid --- (no score: use execute_code for feedback)")
    elif feedback == "format-only" or record.feedback_score is None:
        parts.append("--- submission format is valid --- (format-only feedback: submissions are never scored)")
    elif feedback == "validation":
        parts.append(f"--- feedback (held-out training rows hidden among test.csv) ---\n{spec.metric_name} = "
                     f"{record.feedback_score:.6g} ({spec.direction}); HumanRank on the public leaderboard, as an "
                     f"estimate = {record.feedback_human_rank:.3f}")
    else:
        kaggle = spec.leaderboard.public_file and spec.leaderboard.provenance == "human"
        board = "Kaggle's public leaderboard" if kaggle else "the public leaderboard"
        medal = f", medal band {record.feedback_medal or 'none'}" if spec.leaderboard.public_file else ""
        parts.append(f"--- feedback (public part of the test set) ---\n{spec.metric_name} = "
                     f"{record.feedback_score:.6g} ({spec.direction}); HumanRank on {board} = "
                     f"{record.feedback_human_rank:.3f}{medal}")
    parts.append(f"{steps_left} steps left.")
    return Observation(text="\n".join(parts), kind=action.type, data=data)


def _failure_type(execution: ExecutionResult) -> str:
    if execution.error:
        return "sandbox_error"
    if execution.timed_out:
        return "timeout"
    if execution.output_limited:
        return "output_limit"
    if execution.oom:
        return "out_of_memory"
    return "runtime_error"


def _likely_causes(execution: ExecutionResult) -> list[str]:
    kind = _failure_type(execution)
    return {
        "timeout": ["an infinite loop", "a model too slow for the step limit: use fewer estimators or rows"],
        "output_limit": ["printing a whole data frame or a training log every iteration"],
        "out_of_memory": ["a dense matrix too large for memory", "loading data many times"],
        "sandbox_error": ["the sandbox backend is not available on this machine"],
    }.get(kind, ["an exception in the code: read the traceback above"])
