"""SandMLE interop: import SandMLE-format task folders as dojoflow tasks; export dojoflow tasks in that layout.

SandMLE's task contract (its released bundle and ``SynScoreTool``): ``<task>/prepared/public/`` holds
``description.md``, the train and test files, ``sample_submission.csv``, the hidden ``answer.csv`` and
``evaluator.py``, run as ``python evaluator.py --submission_path X`` in that folder and printing one JSON
object with ``score``, ``is_lower_better`` and ``gold_threshold``, ``silver_threshold``, ``bronze_threshold``,
``median_threshold`` (a non-zero exit means invalid).

**Import** copies a task into a dojoflow folder: the public files under ``source/public`` (served as the
task's public data), ``answer.csv`` under ``source/private`` (the hidden answers), the evaluator as the task's
grader (``grader: {kind: sandmle}``, see ``tasks_catalog/evaluator_script.py``). SandMLE has no public/private
split of the test rows: a row is public when ``sha256(id)`` falls below the public fraction (as for imported
MLE-bench competitions). SandMLE gives thresholds, not a leaderboard: the reference leaderboard is ten entries
placed so that dojoflow's medal rules reproduce exactly the evaluator's gold, silver, bronze and median (its
header says so). A task whose thresholds are not monotonic is not imported (SandMLE's own rule).

**Export** writes a dojoflow task (one scored by a dojoflow metric) in SandMLE's layout with a standalone
``evaluator.py`` (pandas, numpy, scikit-learn; no dojoflow) that implements the task's metric exactly as
dojoflow does and prints the task's private-leaderboard thresholds.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path
from typing import Any

import yaml

from dojoflow.errors import DojoflowError, SynthesisError
from dojoflow.tasks_catalog.evaluator_script import EvaluatorRejected, run_evaluator
from dojoflow.tasks_catalog.importing import is_public_id
from dojoflow.tasks_catalog.spec import SPEC_FILE

REQUIRED = ("description.md", "sample_submission.csv", "answer.csv", "evaluator.py")
EVALUATOR_FILE = "sandmle_evaluator.py"
SOURCE_DIR = "source"
IMPORT_GENERATOR = "sandmle-import"
THRESHOLD_KEYS = ("gold_threshold", "silver_threshold", "bronze_threshold", "median_threshold")

PREPARE = '''"""Imported from a SandMLE task by dojoflow synth import-sandmle: serves its files from source/."""

from pathlib import Path


def prepare(spec, public_dir: Path, private_dir: Path) -> None:
    from dojoflow.synth.sandmle import prepare_sandmle

    prepare_sandmle(spec, public_dir, private_dir)
'''


# -- import ---------------------------------------------------------------------------------------------------
def public_folder(task_dir: Path) -> Path:
    """Where a SandMLE task's files are: ``<task>/prepared/public`` (the bundle's layout) or the folder itself."""
    nested = Path(task_dir) / "prepared" / "public"
    return nested if nested.is_dir() else Path(task_dir)


def find_tasks(path: Path) -> list[Path]:
    """The SandMLE task folders at ``path`` (a bundle of folders, or one task)."""
    path = Path(path)
    if not path.is_dir():
        raise SynthesisError(f"{path}: not a folder of SandMLE tasks")
    if (public_folder(path) / "evaluator.py").is_file():
        return [path]
    return [p for p in sorted(path.iterdir()) if p.is_dir() and (public_folder(p) / "evaluator.py").is_file()]


def import_sandmle_tasks(path: Path, dest: Path | None = None) -> tuple[list[Path], dict[str, str]]:
    """Import every SandMLE task under ``path``: (the dojoflow folders written, {task: why not imported})."""
    from dojoflow.tasks_catalog.registry import synthetic_dir

    root = Path(dest) if dest else synthetic_dir()
    done, failed = [], {}
    tasks = find_tasks(path)
    if not tasks:
        raise SynthesisError(f"{path}: no SandMLE task folders (each needs {', '.join(REQUIRED)} in "
                             "prepared/public/ or in the folder itself)")
    for task_dir in tasks:
        try:
            done.append(import_sandmle_task(task_dir, root))
        except DojoflowError as exc:
            failed[task_dir.name] = str(exc)
    return done, failed


def import_sandmle_task(task_dir: Path, root: Path) -> Path:
    """Import one SandMLE task folder as ``<root>/sandmle-<name>``."""
    import pandas as pd

    public = public_folder(task_dir)
    missing = [n for n in REQUIRED if not (public / n).is_file()]
    if missing:
        raise SynthesisError(f"{public}: missing {', '.join(missing)}")
    sample = pd.read_csv(public / "sample_submission.csv")
    answers = pd.read_csv(public / "answer.csv")
    if sample.shape[1] < 2:
        raise SynthesisError(f"{public / 'sample_submission.csv'}: needs an id column and at least one target")
    id_column, targets = str(sample.columns[0]), [str(c) for c in sample.columns[1:]]
    lost = [c for c in (id_column, *targets) if c not in answers.columns]
    if lost:
        raise SynthesisError(f"{public / 'answer.csv'}: lacks the sample submission's columns {', '.join(lost)}")
    try:
        output = run_evaluator(public / "evaluator.py", sample, answers)
    except EvaluatorRejected as exc:
        raise SynthesisError(f"{public / 'evaluator.py'}: does not grade the sample submission: {exc}") from None
    lower = _as_bool(output.get("is_lower_better"))
    thresholds = [_number(output, k) for k in THRESHOLD_KEYS]
    if lower is None or any(t is None for t in thresholds):
        raise SynthesisError(f"{public / 'evaluator.py'}: its output lacks is_lower_better or a threshold "
                             f"({', '.join(THRESHOLD_KEYS)}): {json.dumps(output)[:300]}")
    values = [float(t) for t in thresholds if t is not None]
    if not thresholds_monotonic(values, not lower):
        raise SynthesisError(f"{public / 'evaluator.py'}: thresholds are not monotonic (gold, silver, bronze, "
                             f"median = {', '.join(f'{v:g}' for v in values)}; lower is better: {lower})")
    task_id = "sandmle-" + re.sub(r"[^a-z0-9-]+", "-", task_dir.name.lower()).strip("-")
    folder = Path(root) / task_id
    if folder.exists():
        shutil.rmtree(folder)
    (folder / SOURCE_DIR / "private").mkdir(parents=True)
    shutil.copytree(public, folder / SOURCE_DIR / "public",
                    ignore=shutil.ignore_patterns("answer.csv", "evaluator.py", "description.md"))
    shutil.copyfile(public / "answer.csv", folder / SOURCE_DIR / "private" / "answer.csv")
    shutil.copyfile(public / "evaluator.py", folder / EVALUATOR_FILE)
    y = answers[targets[0]].dropna()
    regression = y.dtype.kind in "if" and y.nunique() > 20
    spec = {"id": task_id, "title": f"SandMLE task {task_dir.name}", "task_type": "sandmle-import",
            "metric": "external", "direction": "lower-is-better" if lower else "higher-is-better",
            "grader": {"kind": "sandmle", "file": EVALUATOR_FILE},
            "submission": {"id_column": id_column, "target_columns": targets},
            "split": {"public_fraction": 0.5},
            "resources": {"gpu": False, "step_timeout_s": 120, "memory_mb": 4096},
            "tags": {"size": "micro", "splits": "synthetic,sandmle", "source": f"SandMLE task {task_dir.name}",
                     "license": "see the SandMLE bundle", "generator": IMPORT_GENERATOR, "generator_version": "1",
                     "seed_task": task_dir.name, "target_kind": "regression" if regression else "classification",
                     "source_digest": _digest_tree(public)},
            "leaderboard": {"file": "leaderboard.csv", "provenance": "reference"},
            "exposure": {"source": "external"}}
    (folder / SPEC_FILE).write_text(yaml.safe_dump(spec, sort_keys=False, width=110))
    note = ("\n\n## dojoflow notes\n\nThe data files are in `data/`; write your predictions to `submission.csv` "
            "in the format of `data/sample_submission.csv`. Imported from a SandMLE task; graded by its "
            "evaluator.\n")
    (folder / "description.md").write_text((public / "description.md").read_text().rstrip() + note)
    (folder / "prepare.py").write_text(PREPARE)
    (folder / "leaderboard.csv").write_text(threshold_leaderboard(values, not lower, task_id))
    return folder


def prepare_sandmle(spec, public_dir: Path, private_dir: Path) -> None:
    """``prepare()`` of an imported SandMLE task: serve ``source/public``, hide the answers, split by id hash."""
    import pandas as pd

    source = Path(spec.folder) / SOURCE_DIR
    for item in (source / "public").iterdir():
        target = Path(public_dir) / item.name
        shutil.copytree(item, target) if item.is_dir() else shutil.copyfile(item, target)
    answers = pd.read_csv(source / "private" / "answer.csv", dtype=str, keep_default_na=False)
    answers.to_csv(Path(private_dir) / "answers.csv", index=False)
    id_column = spec.submission.id_column
    parts = pd.DataFrame({id_column: answers[id_column],
                          "part": ["public" if is_public_id(v, spec.split.public_fraction) else "private"
                                   for v in answers[id_column]]})
    parts.to_csv(Path(private_dir) / "leaderboard_split.csv", index=False)


def threshold_leaderboard(thresholds: list[float], higher_is_better: bool, task_id: str) -> str:
    """Ten entries whose medal positions (dojoflow's rules for fewer than 100 teams: gold 1, silver 2, bronze 4)
    and median (the mean of entries 5 and 6) are exactly the given gold, silver, bronze and median."""
    gold, silver, bronze, median = thresholds
    step = abs(gold - median) / 4 or 1e-3
    worse = [median - k * step if higher_is_better else median + k * step for k in range(1, 5)]
    scores = [gold, silver, (silver + bronze) / 2, bronze, median, median, *worse]
    lines = [f"# provenance: reference (not human). 10 entries derived from the SandMLE evaluator's thresholds of "
             f"task '{task_id}' (gold, silver, bronze, median), placed so that dojoflow's medal rules reproduce them.",
             "rank,team,score,public_score"]
    lines += [f"{i},sandmle-threshold-{i},{s:.10g},{s:.10g}" for i, s in enumerate(scores, start=1)]
    return "\n".join(lines) + "\n"


def thresholds_monotonic(values: list[float], higher_is_better: bool) -> bool:
    """Gold, silver, bronze, median ordered in the direction, gold strictly better than the median."""
    ordered = all((a >= b) if higher_is_better else (a <= b) for a, b in zip(values, values[1:], strict=False))
    return ordered and ((values[0] > values[-1]) if higher_is_better else (values[0] < values[-1]))


def _digest_tree(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(folder)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def _as_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return value != 0
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    return None


def _number(data: dict, key: str) -> float | None:
    try:
        return float(data[key])
    except (KeyError, TypeError, ValueError):
        return None


# -- export ---------------------------------------------------------------------------------------------------
EXPORT_METRICS = ("accuracy", "f1_macro", "roc_auc", "log_loss", "rmse", "mae", "rmsle", "r2", "mape",
                  "quadratic_weighted_kappa", "roc_auc_mean_columnwise", "rmse_mean_columnwise")

EVALUATOR = '''"""SandMLE-format evaluator exported by dojoflow for task {task_id!r}.

python evaluator.py --submission_path submission.csv   (run in this folder, next to answer.csv)
Prints one JSON object: score, is_lower_better and the gold/silver/bronze/median thresholds of the task's
reference leaderboard (private part). Exits 1 with a message when the submission is invalid.
"""

import argparse
import json
import sys

import numpy as np
import pandas as pd

METRIC = {metric!r}
ID = {id_column!r}
TARGETS = {targets!r}
LOWER_IS_BETTER = {lower!r}
THRESHOLDS = {thresholds!r}
TEXT = {text!r}


def fail(message):
    print(message, file=sys.stderr)
    sys.exit(1)


def score(y_true, y_pred):
    from sklearn import metrics

    if METRIC == "accuracy":
        return metrics.accuracy_score(y_true, y_pred)
    if METRIC == "f1_macro":
        return metrics.f1_score(y_true, y_pred, average="macro", zero_division=0.0)
    if METRIC == "quadratic_weighted_kappa":
        return metrics.cohen_kappa_score(y_true, y_pred, weights="quadratic")
    y_true, y_pred = np.asarray(y_true, float), np.asarray(y_pred, float)
    if METRIC == "roc_auc":
        return metrics.roc_auc_score(y_true, y_pred)
    if METRIC == "roc_auc_mean_columnwise":
        return float(np.mean([metrics.roc_auc_score(y_true[:, i], y_pred[:, i]) for i in range(y_true.shape[1])]))
    if METRIC == "log_loss":
        return metrics.log_loss(y_true, np.clip(y_pred, 1e-15, 1 - 1e-15), labels=[0, 1])
    if METRIC == "rmse":
        return float(np.sqrt(np.mean((y_true - y_pred) ** 2)))
    if METRIC == "rmse_mean_columnwise":
        return float(np.mean(np.sqrt(np.mean((y_true - y_pred) ** 2, axis=0))))
    if METRIC == "mae":
        return float(np.mean(np.abs(y_true - y_pred)))
    if METRIC == "rmsle":
        if (y_pred < 0).any():
            fail("RMSLE is undefined for negative predictions")
        return float(np.sqrt(np.mean((np.log1p(y_true) - np.log1p(y_pred)) ** 2)))
    if METRIC == "r2":
        return metrics.r2_score(y_true, y_pred)
    if METRIC == "mape":
        return 100.0 * metrics.mean_absolute_percentage_error(y_true, y_pred)
    fail("unknown metric " + METRIC)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--submission_path", required=True)
    args = parser.parse_args()
    kinds = dict.fromkeys([ID, *TARGETS], str) if TEXT else {{ID: str}}
    answers = pd.read_csv("answer.csv", dtype=kinds, keep_default_na=False)
    try:
        submission = pd.read_csv(args.submission_path, dtype=kinds, keep_default_na=False)
    except Exception as exc:
        fail(f"cannot read the submission: {{exc}}")
    missing = [c for c in [ID, *TARGETS] if c not in submission.columns]
    if missing:
        fail(f"missing columns: {{missing}}")
    if submission[ID].duplicated().any() or set(submission[ID]) != set(answers[ID]):
        fail("the submission's ids must be exactly the test ids, once each")
    submission = submission.set_index(ID).loc[answers[ID]]
    y_true = answers[TARGETS].to_numpy()
    y_pred = submission[TARGETS].to_numpy()
    if not TEXT:
        try:
            y_pred = y_pred.astype(float)
        except ValueError:
            fail("predictions must be numbers")
        if not np.isfinite(y_pred).all():
            fail("predictions must be finite")
    if len(TARGETS) == 1:
        y_true, y_pred = y_true[:, 0], y_pred[:, 0]
    value = float(score(y_true, y_pred))
    print(json.dumps({{"score": value, "is_lower_better": LOWER_IS_BETTER, **THRESHOLDS}}))


if __name__ == "__main__":
    main()
'''


def export_sandmle_task(task_id: str, out: Path) -> Path:
    """Write ``task_id`` as ``<out>/<task_id>/prepared/public/`` in SandMLE's layout; returns that folder."""
    from dojoflow.config import get_settings
    from dojoflow.tasks_catalog.grading import task_leaderboard
    from dojoflow.tasks_catalog.preparation import prepare_task
    from dojoflow.tasks_catalog.registry import get_task

    spec = get_task(task_id)
    if spec.metric_name not in EXPORT_METRICS:
        raise SynthesisError(f"task '{task_id}' is scored by '{spec.metric_name}'; SandMLE export writes evaluators "
                             f"for {', '.join(EXPORT_METRICS)}")
    prepared = prepare_task(spec, get_settings().data_dir)
    folder = Path(out) / task_id / "prepared" / "public"
    if folder.exists():
        shutil.rmtree(folder)
    shutil.copytree(prepared.public, folder)
    shutil.copyfile(prepared.answers, folder / "answer.csv")
    board = task_leaderboard(spec, "private").thresholds()
    thresholds = {f"{k}_threshold": float(board[k]) for k in ("gold", "silver", "bronze", "median")}
    (folder / "evaluator.py").write_text(EVALUATOR.format(
        task_id=task_id, metric=spec.metric_name, id_column=spec.submission.id_column,
        targets=list(spec.submission.target_columns), lower=not spec.higher_is_better, thresholds=thresholds,
        text=spec.metric.text_predictions))
    return folder
