"""Verification gates: a generated task is kept only if every gate passes (after SandMLE, which kept a task
only when its thresholds were monotonic and a real solution beat the sample submission).

- ``deterministic``: regenerating from the same seed gives byte-identical task files and prepared data;
- ``answers_best``: the grader gives the true answers a score at least as good as every leaderboard entry
  (and a gold medal): a grader that does not is scoring something else;
- ``thresholds_monotonic``: gold, silver, bronze and median thresholds are ordered in the metric's direction,
  and gold is strictly better than the median (else medals mean nothing);
- ``beats_trivial``: a real solution (the baseline agent, in a real episode) beats the sample submission and
  a constant one on the private part, and neither of those wins a medal;
- ``train_size``: the number of training rows is within the bounds;
- ``step_time``: every code step of the baseline finished within the time bound.

Each failure is one sentence in the generation report.
"""

from __future__ import annotations

import hashlib
import shutil
import statistics
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from dojoflow.config import Settings
from dojoflow.tasks_catalog.grading import grade_submission, task_leaderboard
from dojoflow.tasks_catalog.preparation import MANIFEST, PreparedData, prepare_task
from dojoflow.tasks_catalog.spec import SPEC_FILE, TaskSpec, load_spec

GATES = ("deterministic", "train_size", "answers_best", "thresholds_monotonic", "beats_trivial", "step_time")
TASK_FILES = (SPEC_FILE, "description.md", "prepare.py", "synthetic.json")


@dataclass(frozen=True)
class GateBounds:
    """The bounds the gates check against."""

    min_rows: int = 50
    max_rows: int = 200
    step_time_s: float = 60.0
    baseline_models: int = 2  # the baseline's model ladder: linear, then a random forest


@dataclass
class GateResult:
    """One gate's verdict and why."""

    name: str
    passed: bool
    reason: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return asdict(self)


def gate_deterministic(folder: Path, prepared: PreparedData, regenerate: Callable[[Path], Path],
                       data_dir: Path) -> GateResult:
    """Regenerate into a fresh folder with ``regenerate(root) -> folder`` and compare files and prepared data."""
    with tempfile.TemporaryDirectory(prefix="dojoflow-synth-regen-") as tmp:
        again = regenerate(Path(tmp) / "tasks")
        differ = [n for n in TASK_FILES if (folder / n).is_file() and _digest(folder / n) != _digest(again / n)]
        if differ:
            return GateResult("deterministic", False, f"regenerating from the same seed changed {', '.join(differ)}")
        second = prepare_task(load_spec(again), Path(tmp) / "data")
        first_files = _manifest_files(prepared)
        second_files = _manifest_files(second)
        changed = sorted(k for k in set(first_files) | set(second_files) if first_files.get(k) != second_files.get(k))
        if changed:
            return GateResult("deterministic", False, f"regenerating from the same seed changed the prepared data: "
                              f"{', '.join(changed[:5])}")
    return GateResult("deterministic", True, details={"files": len(first_files)})


def gate_train_size(prepared: PreparedData, bounds: GateBounds) -> GateResult:
    """The training rows are within ``[min_rows, max_rows]``."""
    rows = _csv_rows(prepared.public / "train.csv")
    ok = bounds.min_rows <= rows <= bounds.max_rows
    reason = "" if ok else f"{rows} training rows, outside the bounds {bounds.min_rows}-{bounds.max_rows}"
    return GateResult("train_size", ok, reason, {"train_rows": rows})


def gate_answers_best(spec: TaskSpec, prepared: PreparedData) -> GateResult:
    """The true answers score at least as well as every leaderboard entry, and win gold."""
    grade = grade_submission(spec, prepared, prepared.answers, "private")
    if not grade.valid or grade.score is None or grade.placement is None:
        return GateResult("answers_best", False, "the grader rejects the true answers: " + "; ".join(grade.errors))
    board = task_leaderboard(spec, "private")
    best = board.scores[0]
    ok = board.at_least_as_good(grade.score, best) and grade.placement.medal == "gold"
    reason = "" if ok else (f"the true answers score {grade.score:.6g}, worse than the leaderboard's best "
                            f"{best:.6g} (or without gold): the grader does not reward being right")
    return GateResult("answers_best", ok, reason, {"answers_score": grade.score, "leaderboard_best": best})


def gate_thresholds(spec: TaskSpec) -> GateResult:
    """Medal and median thresholds are ordered, with gold strictly better than the median, on both parts."""
    details = {}
    for part in ("private", "public"):
        board = task_leaderboard(spec, part)
        t = board.thresholds()
        details[part] = t
        order = [t["gold"], t["silver"], t["bronze"], t["median"]]
        ordered = all(board.at_least_as_good(a, b) for a, b in zip(order, order[1:], strict=False))
        if not ordered or not board.strictly_better(t["gold"], t["median"]):
            return GateResult("thresholds_monotonic", False, f"{part} thresholds are not monotonic (gold "
                              f"{t['gold']:.6g}, silver {t['silver']:.6g}, bronze {t['bronze']:.6g}, median "
                              f"{t['median']:.6g}, {spec.direction})", details)
    return GateResult("thresholds_monotonic", True, details=details)


def gate_beats_trivial(spec: TaskSpec, prepared: PreparedData, baseline: dict[str, Any]) -> GateResult:
    """The baseline's final private score beats the sample and constant submissions, which win no medal."""
    with tempfile.TemporaryDirectory(prefix="dojoflow-synth-const-") as tmp:
        constant = write_constant_submission(spec, prepared, Path(tmp) / "constant.csv")
        trivial = {"sample": grade_submission(spec, prepared, prepared.public / "sample_submission.csv", "private"),
                   "constant": grade_submission(spec, prepared, constant, "private")}
    details: dict[str, Any] = {"real": baseline.get("score"), **{k: g.score for k, g in trivial.items()}}
    real = baseline.get("score")
    if real is None:
        return GateResult("beats_trivial", False, "the baseline produced no valid submission: "
                          + "; ".join(baseline.get("errors", [])[:2]), details)
    board = task_leaderboard(spec, "private")
    for name, grade in trivial.items():
        if grade.valid and grade.medal:
            return GateResult("beats_trivial", False, f"the {name} submission wins {grade.medal}", details)
        if grade.valid and grade.score is not None and not board.strictly_better(real, grade.score):
            return GateResult("beats_trivial", False, f"the real solution ({real:.6g}) does not beat the {name} "
                              f"submission ({grade.score:.6g})", details)
    return GateResult("beats_trivial", True, details=details)


def gate_step_time(baseline: dict[str, Any], bounds: GateBounds) -> GateResult:
    """Every code step of the baseline finished within ``bounds.step_time_s``."""
    times = baseline.get("step_times", [])
    if not times:
        return GateResult("step_time", False, "the baseline ran no code step")
    slowest = max(times)
    ok = slowest <= bounds.step_time_s and not baseline.get("timed_out")
    reason = "" if ok else f"the slowest baseline step took {slowest:.2f} s, over the bound of {bounds.step_time_s:g} s"
    return GateResult("step_time", ok, reason, {"max_step_s": slowest, "median_step_s": statistics.median(times)})


def run_baseline(spec: TaskSpec, settings: Settings, bounds: GateBounds, sandbox: str | None = None) -> dict[str, Any]:
    """A real episode of the baseline on ``spec`` (no tracking); its final score, step times and errors."""
    from dojoflow.agents.baseline import BaselineAgent
    from dojoflow.dojo.env import MLEEnvironment

    env = MLEEnvironment(spec, seed=0, max_steps=bounds.baseline_models + 2, settings=settings, sandbox=sandbox,
                         wall_time_s=max(60.0, bounds.step_time_s * (bounds.baseline_models + 2)))
    agent = BaselineAgent(models=bounds.baseline_models)
    try:
        obs, _ = env.reset()
        agent.reset(obs, 0)
        done = False
        while not done:
            obs, _, terminated, truncated, _ = env.step(agent.act(obs))
            done = terminated or truncated
        outcome = env.outcome
        grade = outcome.grade if outcome is not None else None
        steps = [r for r in env.history if r.execution is not None]
        return {"score": grade.score if grade is not None and grade.valid else None,
                "errors": list(grade.errors) if grade is not None else ["no final grade"],
                "step_times": [float(r.execution.get("duration_s", 0.0)) for r in steps if r.execution],
                "timed_out": any(r.execution.get("timed_out") for r in steps if r.execution),
                "medal": grade.medal if grade is not None else None}
    finally:
        env.close()
        shutil.rmtree(env.episode_dir, ignore_errors=True)


def write_constant_submission(spec: TaskSpec, prepared: PreparedData, path: Path) -> Path:
    """One value for every row: the training majority class, or the training mean (a prior of 0.5 for
    probabilities), in the sample submission's format."""
    import pandas as pd

    sample = pd.read_csv(prepared.public / "sample_submission.csv")
    train = pd.read_csv(prepared.public / "train.csv")
    for column in spec.submission.target_columns:
        if column not in train.columns or column not in sample.columns:
            continue
        y = train[column].dropna()
        if spec.metric.prediction == "value":
            sample[column] = round(float(y.mean()), 6)
        elif spec.metric.prediction == "probability":
            sample[column] = round(float(pd.to_numeric(y, errors="coerce").mean()), 6)
        else:
            sample[column] = y.mode().iloc[0]
    sample.to_csv(path, index=False)
    return path


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "(missing)"


def _manifest_files(prepared: PreparedData) -> dict[str, str]:
    import json

    return json.loads((prepared.root / MANIFEST).read_text())["files"]


def _csv_rows(path: Path) -> int:
    import pandas as pd

    return len(pd.read_csv(path, usecols=[0]))

