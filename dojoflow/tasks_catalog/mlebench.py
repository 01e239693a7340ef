"""Importing MLE-bench competitions as dojoflow tasks.

An MLE-bench competitions directory has one folder per competition with ``config.yaml`` (id, name,
competition_type, awards_medals, prizes, description, dataset.answers / dataset.sample_submission, grader
with ``grade_fn: "module:function"``, preparer), ``description.md``, ``prepare.py`` with
``prepare(raw, public, private)``, ``grade.py`` with ``grade(submission, answers) -> float``,
``leaderboard.csv`` (the real Kaggle private leaderboard) and ``checksums.yaml``.

:func:`import_competitions` turns each into a dojoflow task folder under ``$DOJOFLOW_HOME/imported/<id>/``
(picked up by the registry automatically):

- ``competition/``: a copy of the competition folder, loaded as a package (see
  :func:`~dojoflow.tasks_catalog.importing.load_package_module`) so that ``from .classes import X`` and
  sibling modules work in its ``prepare.py`` and ``grade.py``; ``mlebench_lib/mlebench/``: a copy of the
  checkout's own ``mlebench`` library modules (``grade_helpers``, ``utils``, ``metrics``,
  ``competitions/utils``) that competition code imports, used when MLE-bench is not installed;
- ``task.yaml``: ``task_type: mlebench-import``, ``metric: external`` with a ``grader`` section naming
  ``competition/grade.py``; the direction is **inferred** from the leaderboard as MLE-bench does (the
  first row's score better than the last row's) and the spec says so (tag ``direction_source``);
- ``prepare.py``: a wrapper that finds the user's raw Kaggle download and runs the competition's own
  ``prepare``, then writes dojoflow's ``private/answers.csv`` and ``private/leaderboard_split.csv`` (the
  answers file under MLE-bench's own name stays too: the grader reads it as MLE-bench does);
- ``leaderboard.csv``: the competition's real leaderboard (``provenance: human``).

Raw data: ``$DOJOFLOW_MLEBENCH_RAW/<id>/`` (or ``.../<id>/raw/``, MLE-bench's own layout), or the
``raw_dir`` given at import. dojoflow never downloads competition data itself (each competition's rules
must be accepted on kaggle.com); when the Kaggle API is installed and configured, the error says the exact
``kaggle competitions download`` command.

Public/private split: MLE-bench has none (it grades on all answers). dojoflow splits the answer rows
deterministically by a hash of their id: a row is *public* when ``sha256(id as text)``, read as a fraction
of 2**256, is below ``split.public_fraction`` (default 0.5). The same ids always land in the same part.

Submission columns (id column and targets, shown to agents) come from the competition's sample submission
(at the path its config names, ``public/`` or ``private/``) and its answers together, read by running its
preparation once at import time when the raw data is available: the id column is the sample column that is
also in the answers and identifies their rows (unique, the same values), not the first column. Without raw
data the task is still registered, with ``tags.submission_columns: unverified`` - import again once the data
is there. ``<import dir>/mlebench_overrides.yaml`` (``<id>: {id_column: ..., target_columns: [...]}``) overrides
what was inferred, and survives every re-import.

Each competition imports or fails on its own (:func:`import_competitions_summary`); ``grade.py`` is loaded at
import, so a broken grader (or a missing module, named with its install) fails the import, not a later grade.
"""

from __future__ import annotations

import hashlib
import importlib.util
import math
import os
import shutil
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from dojoflow.atomic import atomic_directory
from dojoflow.errors import BenchmarkImportError
from dojoflow.tasks_catalog.importing import (
    ImportSummary,
    MissingModuleError,
    is_public_id,
    load_package_function,
    prepared_at_import,
    run_each,
)
from dojoflow.tasks_catalog.kinds import PREPARE_RAW_ENV
from dojoflow.tasks_catalog.leaderboard import LeaderboardError, load_leaderboard
from dojoflow.tasks_catalog.mledojo import keep_mledojo_part
from dojoflow.tasks_catalog.preparation import load_file_module

SPLITS_DIR = Path(__file__).parent / "mlebench_splits"
SPLIT_FILES = {"lite": "low.txt", "low": "low.txt", "medium": "medium.txt", "high": "high.txt",
               "split75": "split75.txt", "all": "split75.txt", "dev": "dev.txt"}
DIFFICULTY = {"low.txt": "easy", "medium.txt": "medium", "high.txt": "hard"}
RAW_ENV = "DOJOFLOW_MLEBENCH_RAW"
GRADE_FILE = "mlebench_grade.py"  # the layout of imports before competition/ (still graded)
PREPARE_FILE = "mlebench_prepare.py"
CONFIG_FILE = "mlebench_config.yaml"
COMPETITION_DIR = "competition"
LIBRARY_DIR = "mlebench_lib"
OVERRIDES_FILE = "mlebench_overrides.yaml"
LIBRARY_MODULES = ("__init__.py", "grade_helpers.py", "utils.py", "metrics.py", "competitions/__init__.py",
                   "competitions/utils.py")
# What MLE-bench's graders and preparers import beyond dojoflow's own dependencies (the `mlebench` extra).
INSTALL = "pip install 'dojoflow[mlebench]'"
EXTRA_MODULES = {"py7zr", "tqdm", "Levenshtein"}  # what the `mlebench` extra installs
PIP_NAMES = {"PIL": "pillow", "Levenshtein": "levenshtein", "sklearn": "scikit-learn", "yaml": "pyyaml",
             "bson": "pymongo", "cv2": "opencv-python-headless", "skimage": "scikit-image"}

WRAPPER = '''"""dojoflow preparation of an imported MLE-bench competition
(generated by `dojoflow tasks import-mlebench`).

Runs the competition's own prepare(raw, public, private) (competition/, loaded as a package) on the raw Kaggle data
(found in $DOJOFLOW_MLEBENCH_RAW/<id>/), then writes private/answers.csv and private/leaderboard_split.csv.
"""

from pathlib import Path

from dojoflow.tasks_catalog.mlebench import prepare_imported


def prepare(spec, public_dir: Path, private_dir: Path) -> None:
    prepare_imported(spec, public_dir, private_dir)
'''


# -- splits ------------------------------------------------------------------------------------------------
def split_names() -> list[str]:
    """Names accepted by :func:`competition_ids` (``lite`` is MLE-bench Lite, the low-complexity split)."""
    return sorted(SPLIT_FILES)


def competition_ids(split: str = "lite") -> list[str]:
    """The competition ids of an MLE-bench split (``lite``/``low``, ``medium``, ``high``, ``split75``, ``dev``).

    ``mlebench-lite`` and ``mlebench-low`` are accepted too.
    """
    name = split.removeprefix("mlebench-")
    if name not in SPLIT_FILES:
        raise BenchmarkImportError(f"unknown MLE-bench split '{split}'; known: {', '.join(split_names())}")
    path = SPLITS_DIR / SPLIT_FILES[name]
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def _membership(competition_id: str) -> tuple[list[str], str]:
    """(dojoflow split tags, difficulty) of a competition from MLE-bench's lists."""
    splits, difficulty = [], "unknown"
    for file, level in DIFFICULTY.items():
        if competition_id in competition_ids(file.removesuffix(".txt")):
            difficulty = level
            if file == "low.txt":
                splits.append("mlebench-lite")
            splits.append(f"mlebench-{file.removesuffix('.txt')}")
    if competition_id in competition_ids("split75"):
        splits.append("mlebench-split75")
    if competition_id in competition_ids("dev"):
        splits.append("mlebench-dev")
    return splits, difficulty


# -- import ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ImportedTask:
    """One imported competition: where its dojoflow task folder is and what was inferred."""

    id: str
    folder: Path
    higher_is_better: bool
    leaderboard_rows: int
    columns_verified: bool
    note: str = ""


def default_import_dir() -> Path:
    """``$DOJOFLOW_HOME/imported``: the registry searches it automatically."""
    from dojoflow.tasks_catalog.registry import imported_dir

    return imported_dir()


def _read_config(folder: Path) -> dict[str, Any]:
    path = folder / "config.yaml"
    try:
        config = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise BenchmarkImportError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(config, dict):
        raise BenchmarkImportError(f"{path}: must be a mapping")
    for key in ("id", "name", "grader", "dataset"):
        if key not in config:
            raise BenchmarkImportError(f"{path}: field '{key}' is required but missing")
    grade_fn = (config.get("grader") or {}).get("grade_fn")
    if not isinstance(grade_fn, str) or ":" not in grade_fn:
        raise BenchmarkImportError(f"{path}: field 'grader.grade_fn' must be 'module:function', got {grade_fn!r}")
    for key in ("answers", "sample_submission"):
        if not isinstance((config.get("dataset") or {}).get(key), str):
            raise BenchmarkImportError(f"{path}: field 'dataset.{key}' is required but missing")
    if config["id"] != folder.name:
        raise BenchmarkImportError(f"{path}: field 'id': '{config['id']}' differs from the folder name '{folder.name}'")
    return config


def _grade_source(folder: Path, config: dict) -> tuple[Path, str]:
    """The file and function of ``grader.grade_fn`` ("mlebench.competitions.<id>.grade:grade" -> grade.py)."""
    module, function = config["grader"]["grade_fn"].split(":", 1)
    path = folder / (module.rsplit(".", 1)[-1] + ".py")
    if not path.is_file():
        raise BenchmarkImportError(f"{folder / 'config.yaml'}: field 'grader.grade_fn': {path.name} not found "
                                   f"in {folder}")
    return path, function


def infer_direction(leaderboard: Path) -> bool:
    """True when higher is better, inferred as MLE-bench's ``Grader.is_lower_better`` does (first row better
    than last; see :func:`~dojoflow.tasks_catalog.leaderboard.load_leaderboard`)."""
    try:
        return load_leaderboard(leaderboard).higher_is_better
    except LeaderboardError as exc:
        raise BenchmarkImportError(str(exc)) from None


def _find_leaderboard(folder: Path, competition_id: str, leaderboards_dir: Path | None) -> Path:
    candidates = [folder / "leaderboard.csv"]
    if leaderboards_dir:
        candidates.append(Path(leaderboards_dir) / f"{competition_id}.csv")
    for path in candidates:
        if path.is_file() and not path.read_text(errors="replace")[:100].startswith("version https://git-lfs"):
            return path
    raise BenchmarkImportError(f"no leaderboard for '{competition_id}': looked at "
                              f"{', '.join(map(str, candidates))} (a Git LFS pointer does not count: run "
                              "`git lfs pull` in the checkout, or pass --leaderboards DIR with <id>.csv files)")


def find_raw_dir(competition_id: str, raw_dir: Path | str | None = None) -> Path:
    """The raw Kaggle download of a competition, or an error saying how to get it.

    Looks in ``raw_dir`` and ``$DOJOFLOW_MLEBENCH_RAW``: ``<base>/<id>/raw/`` (MLE-bench's layout), then
    ``<base>/<id>/``; an explicit ``raw_dir`` may also be the competition's raw folder itself.
    """
    sandboxed = os.environ.get(PREPARE_RAW_ENV)
    if sandboxed:  # inside the preparation sandbox: the harness has put a writable view of it here
        return Path(sandboxed)
    candidates = []
    for base, direct in ((raw_dir, True), (os.environ.get(RAW_ENV), False)):
        if base:
            base = Path(base).expanduser()
            candidates += [base / competition_id / "raw", base / competition_id] + ([base] if direct else [])
    for path in candidates:
        if path.is_dir() and any(path.iterdir()):
            return path
    kaggle_ready = importlib.util.find_spec("kaggle") is not None and (
        (Path.home() / ".kaggle" / "kaggle.json").is_file() or bool(os.environ.get("KAGGLE_USERNAME")))
    if kaggle_ready:
        how = (f"the Kaggle API is installed and configured: run `kaggle competitions download -c {competition_id} "
               f"-p $DOJOFLOW_MLEBENCH_RAW/{competition_id}` (after accepting the competition's rules on kaggle.com), "
               "unzip it there and prepare again")
    else:
        how = (f"download it from https://www.kaggle.com/competitions/{competition_id}/data (or install and configure "
               f"the Kaggle API: pip install kaggle, ~/.kaggle/kaggle.json), unzip it into "
               f"$DOJOFLOW_MLEBENCH_RAW/{competition_id}/ and prepare again")
    looked = ", ".join(map(str, candidates)) if candidates else f"nowhere: ${RAW_ENV} is not set"
    raise BenchmarkImportError(f"raw data of MLE-bench competition '{competition_id}' not found (looked in {looked}); "
                              f"{how}")


def prepare_competition_folder(folder: Path, public: Path, private: Path) -> None:
    """The competition's own prepare on its raw data, from a staged import folder (``prepare_runner``'s entry
    at import time, inside the preparation sandbox)."""
    _run_prepare(folder, find_raw_dir(""), public, private)


def raw_dir_of(spec) -> Path:
    """The raw data an imported competition's preparation reads (``TaskKind.raw_data`` of its kind)."""
    return find_raw_dir(spec.id, spec.tags.get("raw_dir"))


def install_hint(module: str) -> str:
    """How to install a module MLE-bench's code imports (named in the error when it is missing)."""
    if module == "mlebench":
        return (f"{INSTALL} and install MLE-bench's code without its heavy dependencies (pip install --no-deps "
                "git+https://github.com/openai/mle-bench), or import from a checkout of it (its mlebench library "
                "is then copied beside the task)")
    if module in EXTRA_MODULES:
        return f"{INSTALL} (or pip install {PIP_NAMES.get(module, module)})"
    return f"pip install {PIP_NAMES.get(module, module)} (this competition's own need, beyond {INSTALL})"


def _load_function(path: Path, function: str, label: str) -> Callable:
    """``function`` of a competition's module: ``path`` inside an import's ``competition/`` folder is loaded
    as a module of that package (relative imports work); a loose file (an import of an earlier layout) as
    a file."""
    library = path.parent.parent / LIBRARY_DIR
    if path.parent.name == COMPETITION_DIR:
        try:
            return load_package_function(path.parent, path.stem, function, library, install_hint)
        except (AttributeError, MissingModuleError) as exc:  # a clear one-line error, not a traceback
            raise BenchmarkImportError(str(exc)) from None
    name = f"dojoflow_mlebench_{label}_{hashlib.sha1(str(path).encode()).hexdigest()[:8]}"
    try:
        module = load_file_module(path, name)
    except ModuleNotFoundError as exc:
        top = (exc.name or "").split(".")[0]
        raise BenchmarkImportError(f"{path} imports '{exc.name}', which is not installed: {install_hint(top)}") \
            from None
    if not hasattr(module, function):
        raise BenchmarkImportError(f"{path}: defines no function '{function}'")
    return getattr(module, function)


def _entry_module(config: dict, key: str, default: str) -> tuple[str, str]:
    """(module file stem, function) of ``config[key]`` ("mlebench.competitions.<id>.prepare:prepare")."""
    value = config.get(key) if key != "grader" else (config.get("grader") or {}).get("grade_fn")
    if not isinstance(value, str) or ":" not in value:
        return default, default
    module, function = value.split(":", 1)
    return module.rsplit(".", 1)[-1], function


def _run_prepare(task_folder: Path, raw: Path, public: Path, private: Path) -> None:
    if (task_folder / COMPETITION_DIR).is_dir():
        config = yaml.safe_load((task_folder / CONFIG_FILE).read_text()) or {}
        module, function = _entry_module(config, "preparer", "prepare")
        prepare = _load_function(task_folder / COMPETITION_DIR / f"{module}.py", function, "prepare")
    else:
        prepare = _load_function(task_folder / PREPARE_FILE, "prepare", "prepare")
    public.mkdir(parents=True, exist_ok=True)
    private.mkdir(parents=True, exist_ok=True)
    prepare(raw, public, private)


def dataset_path(config: dict, key: str) -> str:
    """Where ``dataset.<key>`` lies in the prepared folder, as ``public/...`` or ``private/...``.

    MLE-bench's configs write ``<id>/prepared/private/test.csv``; the part after ``prepared/`` is kept (a
    sample submission may be private, an answers file in a subfolder). A path without ``prepared/`` is
    taken to be in the usual part (answers private, sample public)."""
    parts = Path(str(config["dataset"][key])).parts
    if "prepared" in parts:
        rest = parts[parts.index("prepared") + 1:]
        if rest and rest[0] in ("public", "private") and len(rest) > 1:
            return "/".join(rest)
    return ("private/" if key == "answers" else "public/") + parts[-1]


def read_table(path: Path):
    """A prepared CSV (or JSON lines) file as MLE-bench's ``load_answers`` reads it (``float_precision=
    "round_trip"``; JSON lines as a list of dicts, as its graders get them)."""
    import json

    import pandas as pd

    if path.suffix == ".jsonl":
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    try:
        with warnings.catch_warnings():  # pandas 3+ reads round-trip by default and deprecates the argument
            warnings.filterwarnings("ignore", message=".*float_precision")
            return pd.read_csv(path, float_precision="round_trip")
    except pd.errors.EmptyDataError:
        return pd.DataFrame()


def infer_columns(sample, answers) -> tuple[str, list[str]]:
    """(id column, target columns) of a competition from its sample submission and its answers.

    The id column identifies the rows: a sample column that is also an answers column, unique in the sample,
    with values the answers have too; among several, one named like an id, else the first such. The targets are
    the other sample columns. Without any such column the first sample column is the id (a layout dojoflow
    cannot check by id; overrides say otherwise)."""
    import pandas as pd

    columns = [str(c) for c in sample.columns]
    if not columns:
        raise BenchmarkImportError("the sample submission has no columns")
    answers = pd.DataFrame(answers) if isinstance(answers, list) else answers
    answer_columns = set(map(str, answers.columns))

    def identifies(column: str) -> bool:
        values = sample[column]
        if column not in answer_columns or values.isna().any() or values.duplicated().any():
            return False
        return set(values.astype(str)) <= set(answers[column].astype(str))

    candidates = [c for c in columns if identifies(c)]
    named = [c for c in candidates if c.lower() in ("id", "ids") or c.lower().endswith(("id", "_id", "ids"))]
    id_column = (named or candidates or columns)[0]
    targets = [c for c in columns if c != id_column] or [id_column]
    return id_column, targets


def read_overrides(dest: Path, competition_id: str) -> dict[str, Any]:
    """The user's overrides of one competition (``<dest>/mlebench_overrides.yaml``), which every re-import
    applies again: ``id_column``, ``target_columns``, ``direction``."""
    path = Path(dest) / OVERRIDES_FILE
    if not path.is_file():
        return {}
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise BenchmarkImportError(f"{path}: not valid YAML: {exc}") from None
    entry = data.get(competition_id) if isinstance(data, dict) else None
    if entry is None:
        return {}
    known = {"id_column", "target_columns", "direction"}
    if not isinstance(entry, dict) or set(entry) - known:
        raise BenchmarkImportError(f"{path}: field '{competition_id}' must be a mapping with only "
                                   f"{', '.join(sorted(known))}")
    if "target_columns" in entry and isinstance(entry["target_columns"], str):
        entry["target_columns"] = [entry["target_columns"]]
    return entry


def _copy_library(folder: Path, staging: Path) -> bool:
    """Copy the checkout's ``mlebench`` library modules (a competition folder at
    ``<checkout>/mlebench/competitions/<id>``) beside the task; False when ``folder`` is not in a checkout."""
    library = folder.resolve().parent.parent
    if folder.resolve().parent.name != "competitions" or not (library / "grade_helpers.py").is_file():
        return False
    for name in LIBRARY_MODULES:
        if (library / name).is_file():
            target = staging / LIBRARY_DIR / "mlebench" / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(library / name, target)
    return True


def import_competition(folder: Path, dest: Path | None = None, raw_dir: Path | str | None = None,
                       leaderboards_dir: Path | None = None, public_fraction: float = 0.5) -> ImportedTask:
    """Write the dojoflow task folder of one MLE-bench competition folder (overwriting an earlier import)."""
    folder = Path(folder)
    config = _read_config(folder)
    cid = config["id"]
    dest = Path(dest or default_import_dir())
    grade_path, grade_function = _grade_source(folder, config)
    prepare_module, _ = _entry_module(config, "preparer", "prepare")
    if not (folder / f"{prepare_module}.py").is_file():
        raise BenchmarkImportError(f"{folder}: {prepare_module}.py is required but missing")
    leaderboard = _find_leaderboard(folder, cid, leaderboards_dir)
    higher = infer_direction(leaderboard)
    description = folder / "description.md"
    if not description.is_file():
        raise BenchmarkImportError(f"{folder}: description.md is required but missing")
    overrides = read_overrides(dest, cid)
    if "direction" in overrides:
        higher = overrides["direction"] == "higher-is-better"

    task = dest / cid
    with atomic_directory(task, prefix=f".tmp-import-{cid}-") as staging:
        shutil.copytree(folder, staging / COMPETITION_DIR, ignore=shutil.ignore_patterns(
            "__pycache__", "*.pyc", "leaderboard.csv"))
        has_library = _copy_library(folder, staging)
        shutil.copyfile(folder / "config.yaml", staging / CONFIG_FILE)
        shutil.copyfile(leaderboard, staging / "leaderboard.csv")
        if (folder / "checksums.yaml").is_file():
            shutil.copyfile(folder / "checksums.yaml", staging / "checksums.yaml")
        (staging / "prepare.py").write_text(WRAPPER)
        grade_file = f"{COMPETITION_DIR}/{grade_path.name}"
        # the grader loads now: a broken grade.py (or a module it needs and nobody installed) fails the import
        try:
            _load_function(staging / grade_file, grade_function, "grade")
        except BenchmarkImportError as exc:  # named by the checkout's file, not the staging copy's
            raise BenchmarkImportError(str(exc).replace(str((staging / COMPETITION_DIR).resolve()), str(folder))) \
                from None
        answers_rel, sample_rel = dataset_path(config, "answers"), dataset_path(config, "sample_submission")

        columns, note = None, ""
        try:
            raw = find_raw_dir(cid, raw_dir)
        except BenchmarkImportError as exc:
            raw, note = None, str(exc)
        if raw is not None:  # the competition's own code: in a child process, sandboxed like every preparation
            with prepared_at_import(staging, dest, raw, cid, entry=f"{__name__}:prepare_competition_folder",
                                    label=f"{folder / (prepare_module + '.py')}") as scratch:
                sample_path, answers_path = scratch / sample_rel, scratch / answers_rel
                if not sample_path.is_file():
                    raise BenchmarkImportError(f"{folder / (prepare_module + '.py')}: prepare() wrote no {sample_rel} "
                                               f"(config.yaml's dataset.sample_submission)")
                if not answers_path.is_file():
                    raise BenchmarkImportError(f"{folder / (prepare_module + '.py')}: prepare() wrote no {answers_rel} "
                                               f"(config.yaml's dataset.answers)")
                columns = infer_columns(read_table(sample_path), read_table(answers_path))
        id_column, targets = columns if columns else ("id", ["target"])
        id_column = overrides.get("id_column", id_column)
        targets = list(overrides.get("target_columns", targets))

        splits, difficulty = _membership(cid)
        source_hash = hashlib.sha256(b"".join(p.read_bytes() for p in sorted((staging / COMPETITION_DIR).rglob("*"))
                                              if p.is_file())).hexdigest()[:16]
        spec = {
            "id": cid,
            "title": str(config["name"]),
            "task_type": "mlebench-import",
            "metric": "external",
            "direction": "higher-is-better" if higher else "lower-is-better",
            "grader": {"kind": "mlebench", "file": grade_file, "function": grade_function},
            "submission": {"id_column": id_column, "target_columns": targets},
            "split": {"public_fraction": public_fraction, "seed": 0},
            "resources": {"gpu": False, "step_timeout_s": 600, "memory_mb": 16384},
            "tags": {
                "size": "unknown", "difficulty": difficulty,
                "splits": ",".join(splits),
                "source": f"MLE-bench competition {cid} (Kaggle: {config['name']})",
                "license": f"Kaggle competition rules (https://www.kaggle.com/competitions/{cid}/rules); "
                           "MLE-bench code MIT",
                "competition_type": str(config.get("competition_type", "")),
                "awards_medals": str(config.get("awards_medals", "")),
                "direction_source": ("set in " + OVERRIDES_FILE if "direction" in overrides else
                                     "inferred from the leaderboard order (first row vs last row), as MLE-bench does"),
                "grading_mode": "mlebench",
                "mlebench_answers": answers_rel,
                "mlebench_sample_submission": sample_rel,
                "mlebench_grader": str(config["grader"].get("name", "")),
                "mlebench_library": "copied from the checkout" if has_library else "installed",
                "mlebench_source_sha256": source_hash,
                "submission_columns": ("from " + OVERRIDES_FILE if {"id_column", "target_columns"} & set(overrides)
                                       else "from sample submission and answers" if columns else "unverified"),
                **({"raw_dir": str(Path(raw_dir).expanduser().resolve())} if raw_dir else {}),
            },
            "leaderboard": {"file": "leaderboard.csv", "provenance": "human"},
        }
        (staging / "task.yaml").write_text(yaml.safe_dump(spec, sort_keys=False, width=1000))
        notes = ("## dojoflow notes\n\n"
                 "Imported from MLE-bench. The leaderboard is the competition's real Kaggle private leaderboard. "
                 f"Scores are {'higher' if higher else 'lower'}-is-better (inferred from the leaderboard, as MLE-bench "
                 "does). During the episode your submission is scored on a fixed half of the test rows (chosen by a "
                 "hash of the id); the final grade uses the other half.\n")
        (staging / "description.md").write_text(description.read_text().rstrip() + "\n\n" + notes)
        obfuscated = folder / "description_obfuscated.md"  # MLE-bench's contamination probe (dojo/obfuscation.py)
        if obfuscated.is_file():
            (staging / "description_obfuscated.md").write_text(obfuscated.read_text().rstrip() + "\n\n" + notes)
        keep_mledojo_part(task, staging)  # imported from MLE-Dojo before: still one task with both sources
    from dojoflow.tasks_catalog.spec import load_spec

    load_spec(task)  # the written spec must validate
    rows = sum(1 for line in leaderboard.read_text().splitlines()[1:] if line.strip())
    return ImportedTask(cid, task, higher, rows, columns is not None, note)


def _competition_folders(competitions_dir: Path, ids: list[str] | None) -> tuple[list[Path], list[str]]:
    root = Path(competitions_dir)
    if not root.is_dir():
        raise BenchmarkImportError(f"not a directory: {root}")
    if (root / "config.yaml").is_file():  # a single competition folder
        folders = [root]
    else:
        folders = sorted(p for p in root.iterdir() if (p / "config.yaml").is_file())
    if ids is None:
        return folders, []
    wanted = set(ids)
    folders = [f for f in folders if f.name in wanted]
    return folders, sorted(wanted - {f.name for f in folders})


def _detail(task: ImportedTask) -> str:
    spec = yaml.safe_load((task.folder / "task.yaml").read_text())
    sub = spec["submission"]
    targets = [str(t) for t in sub["target_columns"]]
    shown = ", ".join(targets[:5]) + (f" (+{len(targets) - 5} more)" if len(targets) > 5 else "")
    columns = f"id {sub['id_column']}, targets {shown}"
    if not task.columns_verified:
        return f"columns unverified (no raw data: import again once it is in place); {columns}"
    return columns


def import_competitions_summary(competitions_dir: Path, dest: Path | None = None, ids: list[str] | None = None,
                                raw_dir: Path | str | None = None, leaderboards_dir: Path | None = None,
                                ) -> ImportSummary:
    """Import every competition folder (with a config.yaml) under ``competitions_dir`` (or only ``ids``), each
    on its own: one that fails (whatever its code raises) gets a one-line reason and the rest go on."""
    from dojoflow.tasks_catalog.importing import ImportOutcome

    folders, missing = _competition_folders(competitions_dir, ids)
    summary = run_each(folders, lambda f: import_competition(f, dest, raw_dir, leaderboards_dir),
                       lambda f: f.name, _detail)
    summary.outcomes += [ImportOutcome(cid, False, "no competition folder with a config.yaml") for cid in missing]
    return summary


def import_competitions(competitions_dir: Path, dest: Path | None = None, ids: list[str] | None = None,
                        raw_dir: Path | str | None = None, leaderboards_dir: Path | None = None,
                        ) -> tuple[list[ImportedTask], dict[str, str]]:
    """:func:`import_competitions_summary` as (imported tasks, per failed competition its reason)."""
    summary = import_competitions_summary(competitions_dir, dest, ids, raw_dir, leaderboards_dir)
    return [o.result for o in summary.imported], summary.failed


# -- preparation (called by the generated prepare.py) ------------------------------------------------------
def prepare_imported(spec, public_dir: Path, private_dir: Path) -> None:
    """Run the competition's prepare on the raw data and write dojoflow's answers and public/private split."""
    import pandas as pd

    raw = find_raw_dir(spec.id, spec.tags.get("raw_dir"))
    _run_prepare(spec.folder, raw, Path(public_dir), Path(private_dir))
    answers_rel = spec.tags.get("mlebench_answers", "answers.csv")
    if "/" not in answers_rel:  # an import of an earlier layout: the answers' file name only
        answers_rel = f"private/{answers_rel}"
    answers_path = Path(private_dir).parent / answers_rel
    if not answers_path.is_file():
        raise BenchmarkImportError(f"{spec.folder}: the competition's prepare() wrote no {answers_rel}")
    target = Path(private_dir) / "answers.csv"
    if answers_path.suffix == ".jsonl":  # dojoflow's split and checks read a table; the grader gets the JSON
        pd.DataFrame(read_table(answers_path)).to_csv(target, index=False)
    elif answers_path != target:
        shutil.copyfile(answers_path, target)
    answers = pd.read_csv(target, dtype=str, keep_default_na=False)
    id_column = spec.submission.id_column
    if id_column not in answers.columns:
        raise BenchmarkImportError(
            f"{spec.folder / 'task.yaml'}: field 'submission.id_column': '{id_column}' is not a column of the "
            f"answers ({', '.join(answers.columns[:10])}); import the competition again with its raw data available")
    parts = pd.DataFrame({id_column: answers[id_column],
                          "part": ["public" if is_public_id(v, spec.split.public_fraction) else "private"
                                   for v in answers[id_column]]})
    parts.to_csv(Path(private_dir) / "leaderboard_split.csv", index=False)


# -- grading -----------------------------------------------------------------------------------------------
ROUND_DIGITS = 5  # MLE-bench's Grader.__call__: round(score, 5) before a score is placed


@dataclass
class ExternalGrade:
    """One grade by the competition's own grader: ``errors`` (empty when valid), the score, whether the file
    parsed with the expected columns, dojoflow's own findings that did not decide validity (``warnings``),
    and the score on every answer row (``score_all_rows``, MLE-bench's own number) when asked for."""

    errors: list[str]
    score: float | None
    format_ok: bool
    warnings: list[str] = field(default_factory=list)
    score_all_rows: float | None = None


def id_key(value: Any) -> str:
    """An id as text, the same however pandas read it: ``10``, ``10.0`` and ``"10"`` are ``"10"``; an
    empty cell is ``""``."""
    if value is None:
        return ""
    if isinstance(value, float) or type(value).__name__.startswith("float"):
        number = float(value)
        if math.isnan(number):
            return ""
        if number.is_integer():
            return str(int(number))
    return str(value)


def _answers_file(spec, prepared) -> Path:
    """The answers as the competition's prepare wrote them (MLE-bench's own file), else dojoflow's copy."""
    rel = str(spec.tags.get("mlebench_answers", ""))
    path = prepared.root / rel if "/" in rel else prepared.answers
    return path if path.is_file() else prepared.answers


def _in_part(answers, id_column: str, parts, part: str):
    """The answer rows of ``part`` (positionally: dojoflow's split lists the answers' rows in order) and the
    ids of those rows as :func:`id_key`."""
    import numpy as np
    import pandas as pd

    if isinstance(answers, list):
        frame = pd.DataFrame(answers)
    else:
        frame = answers
    if len(parts) == len(frame):
        mask = parts["part"].to_numpy() == part
    else:  # a split written from other rows: match by id
        wanted = {id_key(v) for v in parts.loc[parts["part"] == part, id_column]}
        mask = np.array([id_key(v) in wanted for v in frame[id_column]], dtype=bool)
    keys = {id_key(v) for v in frame.loc[mask, id_column]} if id_column in frame.columns else set()
    if isinstance(answers, list):
        return [row for row, keep in zip(answers, mask, strict=True) if keep], keys
    return answers[mask].reset_index(drop=True), keys


def dojoflow_checks(spec, prepared, frame, answers) -> tuple[list[str], bool]:
    """Dojoflow's own checks of a submission against the answers' ids: the columns of the sample submission,
    no duplicated, missing or unknown ids. Errors in strict modes, warnings in ``mlebench`` mode. Never
    raises, whatever the cells hold (empty ids, ``10.0`` for ``10``, mixed types)."""
    import pandas as pd

    id_column = spec.submission.id_column
    sample_rel = str(spec.tags.get("mlebench_sample_submission", "sample_submission.csv"))
    sample = prepared.root / sample_rel if "/" in sample_rel else prepared.public / sample_rel
    expected = [str(c) for c in pd.read_csv(sample, nrows=0).columns] if sample.is_file() \
        else [id_column, *spec.submission.target_columns]
    columns = [str(c) for c in frame.columns]
    errors = []
    missing_cols = [c for c in expected if c not in columns]
    extra_cols = [c for c in columns if c not in expected]
    if missing_cols:
        errors.append(f"missing columns: {', '.join(missing_cols)} (expected columns: {', '.join(expected)})")
    if extra_cols:
        errors.append(f"unexpected extra columns: {', '.join(extra_cols)}")
    format_ok = not errors
    answer_frame = pd.DataFrame(answers) if isinstance(answers, list) else answers
    if id_column not in frame.columns or id_column not in answer_frame.columns:
        return errors, False
    ids = [id_key(v) for v in frame[id_column]]
    answer_ids = {id_key(v) for v in answer_frame[id_column]}
    empty = sum(1 for v in ids if v == "")
    if empty:
        errors.append(f"{empty} rows have an empty id")
    seen: set[str] = set()
    duplicated = sorted({v for v in ids if v in seen or seen.add(v)} - {""})  # type: ignore[func-returns-value]
    if duplicated:
        errors.append(f"{len(duplicated)} duplicated ids, e.g. {', '.join(map(repr, duplicated[:5]))}")
    missing_ids = sorted(answer_ids - set(ids))
    extra_ids = sorted(set(ids) - answer_ids - {""})
    if missing_ids:
        shown = ", ".join(map(repr, missing_ids[:5]))
        errors.append(f"{len(missing_ids)} ids of the test set are missing, e.g. {shown}")
    if extra_ids:
        errors.append(f"{len(extra_ids)} ids are not in the test set, e.g. {', '.join(map(repr, extra_ids[:5]))}")
    return errors, format_ok


def _call_grader(grade: Callable, submission, answers, rounded: bool) -> tuple[float | None, str]:
    """(score, "") or (None, why): the grader's exception makes a submission invalid, as in MLE-bench's
    ``Grader.__call__``; in MLE-bench mode the score is rounded exactly as there (``round(score, 5)`` on the
    value the grader returned, before any conversion)."""
    import copy

    try:
        score = grade(submission.copy() if hasattr(submission, "copy") else copy.deepcopy(submission),
                      answers.copy() if hasattr(answers, "copy") else copy.deepcopy(answers))
    except Exception as exc:  # noqa: BLE001 - the competition's grader says why (InvalidSubmissionError, ...)
        return None, f"the task's grader rejected the submission: {type(exc).__name__}: {exc}"
    try:
        return float(round(score, ROUND_DIGITS) if rounded else score), ""
    except (TypeError, ValueError):
        return None, f"the task's grader returned {score!r}, not a number"


def grade_with_grader(spec, prepared, submission: Path, part: str = "private", strict: bool = False,
                      all_rows: bool = False) -> ExternalGrade:
    """Grade ``submission`` with the competition's own grader on ``part`` of the answers.

    ``strict=False`` (``grading_mode: mlebench``) follows MLE-bench's rules: the grader alone decides
    validity (any exception it raises makes the submission invalid), the score is rounded to 5 decimals, a
    NaN score is a valid submission that wins nothing; dojoflow's own checks (:func:`dojoflow_checks`) become
    warnings. ``strict=True`` keeps dojoflow's validation (its checks reject) and the unrounded score, and a
    non-finite score is invalid. ``all_rows``: also grade on every answer row (``score_all_rows``).
    """
    import pandas as pd

    id_column = spec.submission.id_column
    path = Path(submission)
    if not path.is_file():
        return ExternalGrade([f"submission file not found: {path.name} (write your predictions to {path.name})"],
                             None, False)
    try:
        frame = read_table(path)
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        return ExternalGrade([f"submission file {path.name} is not a parseable CSV: {str(exc).splitlines()[0]}"],
                             None, False)
    if strict and not len(frame.columns):
        return ExternalGrade([f"submission file {path.name} is empty"], None, False)
    answers = read_table(_answers_file(spec, prepared))
    checks, format_ok = dojoflow_checks(spec, prepared, frame, answers)
    if strict and checks:
        return ExternalGrade(checks, None, format_ok)
    warnings = [f"dojoflow's stricter checks (not deciding validity under MLE-bench's rules): {c}" for c in checks]
    if spec.grader.kind == "sandmle":  # a SandMLE evaluator.py script (see evaluator_script.py)
        from dojoflow.tasks_catalog.evaluator_script import script_grader

        grade = script_grader(spec.folder / spec.grader.file)
    else:
        grade = _load_function(spec.folder / spec.grader.file, spec.grader.function, "grade")
    part_frame, part_answers = frame, answers
    if part != "all":
        parts = pd.read_csv(prepared.leaderboard_split, dtype=str, keep_default_na=False)
        part_answers, keys = _in_part(answers, id_column, parts, part)
        if id_column in frame.columns:
            part_frame = frame[[id_key(v) in keys for v in frame[id_column]]].reset_index(drop=True)
    score, why = _call_grader(grade, part_frame, part_answers, rounded=not strict)
    if score is None:
        return ExternalGrade([why], None, format_ok, warnings)
    if strict and not math.isfinite(score):
        return ExternalGrade([f"the competition's grader returned a non-finite score ({score})"], None, True)
    if not math.isfinite(score):
        warnings.append(f"the competition's grader returned {score}: valid under MLE-bench's rules, no medal")
    everything = None
    if all_rows:
        everything = score if part == "all" else _call_grader(grade, frame, answers, rounded=not strict)[0]
    return ExternalGrade([], score, True, warnings, everything)


def grade_external(spec, prepared, submission: Path, part: str = "private", strict: bool = True):
    """``(errors, score, format_ok)`` of :func:`grade_with_grader` (dojoflow's strict rules unless told)."""
    result = grade_with_grader(spec, prepared, submission, part, strict)
    return result.errors, result.score, result.format_ok


__all__ = ["BenchmarkImportError", "ExternalGrade", "ImportedTask", "competition_ids", "dataset_path",
           "find_raw_dir", "grade_external", "grade_with_grader", "id_key", "import_competition",
           "import_competitions", "import_competitions_summary", "infer_columns", "infer_direction",
           "prepare_imported", "read_overrides", "read_table", "split_names"]
