"""Reference leaderboards of generated tasks: the built-in population of honest solutions, trained on the
(micro) training rows, so that medals and HumanRank place an agent against solutions of varied strength
on the same data it sees.

Tasks scored by dojoflow's metrics use :func:`~dojoflow.tasks_catalog.reference.build_reference_leaderboard`
unchanged. Tasks with their own grader (micro variants of imported competitions) score each setting's
predictions through that grader (:func:`~dojoflow.tasks_catalog.grading.grade_submission`), on both parts.

``population="quick"`` leaves out the slowest settings (the 200-tree ensembles, the widest MLPs, 200-round
boosting), keeping about 40 entries: the spread from trivial to strong remains.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dojoflow.errors import SynthesisError
from dojoflow.tasks_catalog.leaderboard import Leaderboard
from dojoflow.tasks_catalog.preparation import PreparedData
from dojoflow.tasks_catalog.reference import build_reference_leaderboard, leaderboard_csv, population_predictions
from dojoflow.tasks_catalog.spec import TaskSpec

POPULATIONS = ("full", "quick")
SLOW_SETTINGS = ("rf-n200", "et-n200", "mlp-128", "mlp-64x32", "-it200", "svc-rbf-C10.0", "svr-rbf-C1000.0")
PLACEHOLDER = ("# provenance: reference (placeholder written by dojoflow synth before the population is built)\n"
               "rank,team,score,public_score\n1,placeholder,0,0\n")


def keep_for(population: str) -> Callable[[str], bool] | None:
    """The selection of settings for ``population`` (None: all of them)."""
    if population not in POPULATIONS:
        raise SynthesisError(f"unknown population '{population}'; choose one of {', '.join(POPULATIONS)}")
    if population == "full":
        return None
    return lambda name: not any(s in name for s in SLOW_SETTINGS)


def build_entries(spec: TaskSpec, prepared: PreparedData, population: str = "full",
                  regression: bool | None = None) -> list[dict[str, Any]]:
    """Leaderboard entries (team, score, public_score), best first."""
    keep = keep_for(population)
    if spec.grader is None:
        return build_reference_leaderboard(spec, prepared, keep=keep)
    neutral = Leaderboard((0.0,), spec.higher_is_better, "reference")  # placement is not needed here
    from dojoflow.tasks_catalog.grading import grade_submission

    entries: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="dojoflow-synth-lb-") as tmp:
        path = Path(tmp) / "submission.csv"
        for team, table in population_predictions(spec, prepared, keep=keep, regression=regression):
            table.to_pandas().to_csv(path, index=False)
            private = grade_submission(spec, prepared, path, "private", leaderboard=neutral)
            public = grade_submission(spec, prepared, path, "public", leaderboard=neutral)
            if private.valid and public.valid and private.score is not None and public.score is not None:
                entries.append({"team": team, "score": private.score, "public_score": public.score})
    if not entries:
        raise SynthesisError(f"{spec.id}: no setting of the reference population produced a gradable submission")
    entries.sort(key=lambda e: float(e["score"]), reverse=spec.higher_is_better)
    return entries


def write_leaderboard(spec: TaskSpec, prepared: PreparedData, population: str = "full",
                      regression: bool | None = None) -> int:
    """Build and write the task's reference leaderboard; returns the number of entries."""
    entries = build_entries(spec, prepared, population, regression)
    text = leaderboard_csv(spec, entries).replace("# built by: dojoflow tasks build-leaderboard",
                                                  "# built by: dojoflow synth (population " + population + ")")
    spec.leaderboard_path.write_text(text)
    return len(entries)
