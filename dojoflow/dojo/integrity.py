"""Integrity checks: was the final result earned?

- ``reproducible``: the final step's code, re-run alone in a fresh workspace holding only the public
  data, produces the same submission (so it did not depend on hand-edited files or hidden state). The
  re-run uses the episode's own sandbox (with the warm mode, a fresh fork of its worker): everything the
  agent left in the workspace is first moved out of it, to ``<episode>/workspace-at-end/``, so the
  workspace the code sees is as fresh as at the start and no second sandbox has to start
- ``not_constant``: the predictions are not one constant value (a hand-written or degenerate submission)

Each check reports passed / failed with a detail; the episode result carries them all.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

from dojoflow.dojo.env import SUBMISSION_FILE, MLEEnvironment
from dojoflow.dojo.workspace_files import WORKSPACE_AT_END, WorkspaceProblem, write_harness_file
from dojoflow.infra.sandbox import python_command
from dojoflow.infra.sandbox.workspace import DATA_DIR, TMP_DIR

RERUN_SCRIPT = "rerun_final_step.py"


@dataclass(frozen=True)
class Check:
    """One check's verdict and the evidence for it."""

    name: str
    passed: bool
    detail: str
    evidence: dict = field(default_factory=dict)


def _same_submission(a: Path, b: Path, text_columns: bool) -> tuple[bool, str]:
    import numpy as np
    import pandas as pd

    left, right = pd.read_csv(a), pd.read_csv(b)
    if list(left.columns) != list(right.columns) or len(left) != len(right):
        return False, "the re-run produced a submission with different columns or rows"
    left, right = left.sort_values(left.columns[0]).reset_index(drop=True), right.sort_values(
        right.columns[0]).reset_index(drop=True)
    for column in left.columns:
        if text_columns or left[column].dtype.kind not in "if":
            same = left[column].astype(str).equals(right[column].astype(str))
        else:
            same = bool(np.allclose(left[column], right[column], rtol=1e-6, atol=1e-9, equal_nan=True))
        if not same:
            return False, f"the re-run produced different values in column '{column}'"
    return True, "the final code re-run in a clean workspace reproduced the submission"


def empty_workspace(workspace: Path, keep_in: Path) -> None:
    """Move everything the agent left in ``workspace`` into ``keep_in`` (kept for inspection), leaving only
    the data mount point and an empty ``tmp/``: renames on one filesystem, so instant at any size."""
    keep_in.mkdir(parents=True, exist_ok=True)
    for entry in os.scandir(workspace):
        if entry.name == DATA_DIR and entry.is_dir(follow_symlinks=False):
            continue  # a sandbox's mount point: it stays where the sandbox mounted it
        target = keep_in / entry.name
        if entry.name == TMP_DIR and entry.is_dir(follow_symlinks=False):
            target.mkdir(exist_ok=True)
            for inner in os.scandir(entry.path):
                os.rename(inner.path, target / inner.name)
            continue
        os.rename(entry.path, target)


def check_reproducible(env: MLEEnvironment) -> Check:
    """Re-run the final step's code alone in the emptied workspace and compare the submissions."""
    submitted = env.chosen_submission
    if submitted is None or env.outcome is None or env.outcome.step is None:
        return Check("reproducible", False, "no final submission to reproduce")
    code = (env.step_dir(env.outcome.step) / "code.py").read_text()
    workspace = env.workspace
    try:
        empty_workspace(workspace, env.episode_dir / WORKSPACE_AT_END)
        if env.disk_full:  # what the code left filled the disk: it cannot be kept, and the re-run needs room
            shutil.rmtree(env.episode_dir / WORKSPACE_AT_END, ignore_errors=True)
        write_harness_file(workspace / RERUN_SCRIPT, code)
    except (OSError, WorkspaceProblem) as exc:
        return Check("reproducible", False, f"the re-run could not be prepared: {exc}")
    result = env.sandbox.run(env.request(python_command(RERUN_SCRIPT)))
    evidence = {"exit_code": result.exit_code, "duration_s": result.duration_s, "startup_s": result.startup_s,
                "backend": result.backend}
    if not result.ok:
        return Check("reproducible", False, f"the re-run failed: {result.failure_message(env.limits)}", evidence)
    rerun = workspace / SUBMISSION_FILE
    if not rerun.is_file():
        return Check("reproducible", False, f"the re-run wrote no {SUBMISSION_FILE}", evidence)
    same, detail = _same_submission(submitted, rerun, env.spec.metric.text_predictions)
    return Check("reproducible", same, detail, evidence)


def check_not_constant(env: MLEEnvironment) -> Check:
    """Flag submissions whose predictions are all the same value."""
    import pandas as pd

    submitted = env.chosen_submission
    if submitted is None:
        return Check("not_constant", False, "no final submission")
    frame = pd.read_csv(submitted)
    constant = [c for c in env.spec.submission.target_columns if frame[c].nunique(dropna=False) <= 1]
    if constant:
        return Check("not_constant", False, f"constant predictions in: {', '.join(constant)}")
    return Check("not_constant", True, "predictions vary across rows")


def run_integrity_checks(env: MLEEnvironment) -> dict:
    """All checks; ``passed`` is True only when every check passed."""
    checks = [check_reproducible(env), check_not_constant(env)]
    return {"passed": all(c.passed for c in checks), "checks": [asdict(c) for c in checks],
            "rerun": checks[0].evidence}
