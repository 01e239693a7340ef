"""Graders that are scripts: SandMLE's ``evaluator.py`` contract.

A SandMLE task grades with ``python evaluator.py --submission_path X``, run in the evaluator's folder next to
its ``answer.csv``; it prints one JSON object with ``score``, ``is_lower_better`` and the ``gold_threshold``,
``silver_threshold``, ``bronze_threshold`` and ``median_threshold``; a non-zero exit means the submission is
invalid. dojoflow runs such a script (``grader: {kind: sandmle, file: ...}``) on the rows of the part being
scored: a temporary folder gets the script, an ``answer.csv`` with the part's answers and the part's
submission rows. Like an imported competition's ``grade.py``, it is the task author's code and runs in the
harness (not in the agent's sandbox), in a child process with a time limit.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

EVALUATOR_TIMEOUT_S = 120.0


class EvaluatorRejected(Exception):
    """The evaluator exited non-zero or printed no score: the submission is invalid (the message says why)."""


def parse_evaluator_output(text: str) -> dict[str, Any]:
    """The last JSON object printed by an evaluator (evaluators may print other lines before it)."""
    for line in reversed([ln.strip() for ln in text.strip().splitlines() if ln.strip()]):
        if line.startswith("{"):
            try:
                data = json.loads(line)
            except ValueError:
                continue
            if isinstance(data, dict):
                return data
    try:
        data = json.loads(text)
    except ValueError:
        raise EvaluatorRejected(f"the evaluator printed no JSON object: {text.strip()[-300:]!r}") from None
    if not isinstance(data, dict):
        raise EvaluatorRejected(f"the evaluator printed {type(data).__name__}, not a JSON object")
    return data


def run_evaluator(script: Path, submission, answers, timeout_s: float = EVALUATOR_TIMEOUT_S) -> dict[str, Any]:
    """Run ``script`` on ``submission`` and ``answers`` (pandas frames); its JSON output."""
    with tempfile.TemporaryDirectory(prefix="dojoflow-evaluator-") as tmp:
        folder = Path(tmp)
        shutil.copyfile(script, folder / "evaluator.py")
        answers.to_csv(folder / "answer.csv", index=False)
        submission.to_csv(folder / "submission.csv", index=False)
        try:
            proc = subprocess.run([sys.executable, "evaluator.py", "--submission_path", "submission.csv"], cwd=folder,
                                  capture_output=True, text=True, timeout=timeout_s, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise EvaluatorRejected(f"the evaluator took longer than {timeout_s:g} s") from None
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
        raise EvaluatorRejected(f"the evaluator exited with status {proc.returncode}: {tail}")
    data = parse_evaluator_output(proc.stdout)
    if "score" not in data:
        raise EvaluatorRejected(f"the evaluator's output has no 'score': {proc.stdout.strip()[-300:]!r}")
    return data


def script_grader(script: Path) -> Callable[[Any, Any], float]:
    """``grade(submission, answers) -> score`` over an evaluator script (raises EvaluatorRejected)."""
    def grade(submission, answers) -> float:
        return float(run_evaluator(script, submission, answers)["score"])
    return grade
