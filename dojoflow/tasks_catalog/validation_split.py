"""The ``validation`` feedback protocol's data: held-out training rows hidden among the test inputs.

From a prepared entry, :func:`validation_view` builds (once, cached beside the entry) a second public
folder in which a fixed fraction of the training rows has left ``train.csv`` and joined ``test.csv``
without its labels, shuffled among the test rows, with the sample submission extended to them. The agent
predicts every row of that ``test.csv``; feedback scores only the held-out training rows, against labels
that come from the training data (``private/answers.csv`` of the view), and the final grade scores only the
real test rows, against the real answers. So the agent cannot tell which rows give it feedback, and
nothing it hears is derived from the test answers: the view is built from the public files alone.

Rows keep their ids (built-in tasks give train and test rows ids from one shuffled range, so an id tells
nothing); cells are copied as text, unchanged. Works for tasks whose public data is ``train.csv`` and
``test.csv`` with the id column and, in ``train.csv``, the target columns; other layouts get an error that
says which protocols they support.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from dojoflow.atomic import atomic_directory
from dojoflow.errors import UsageError
from dojoflow.tasks_catalog.preparation import ANSWERS_FILE, LEADERBOARD_SPLIT_FILE, PreparedData, exclusive_lock
from dojoflow.tasks_catalog.spec import TaskSpec

if TYPE_CHECKING:
    import pyarrow as pa

FRACTION = 0.2  # of the training rows, held out
MIN_TRAIN_ROWS = 20
VIEW_FORMAT = "1"
PART = "validation"


def _unsupported(spec: TaskSpec, why: str) -> UsageError:
    return UsageError(f"task '{spec.id}' cannot run under the 'validation' feedback protocol: {why}; use "
                      "'format-only' or 'none' for a run with no test-derived signal, or 'public-test'")


def validation_view(spec: TaskSpec, prepared: PreparedData, fraction: float = FRACTION) -> PreparedData:
    """The view of ``prepared`` for the validation protocol (built on first use): a prepared entry whose
    ``public`` is the agent's data and whose ``private`` holds the held-out rows' labels."""
    import pandas as pd

    if spec.grader is not None:
        raise _unsupported(spec, "it is scored by its competition's own grader, which expects that competition's "
                                 "answer files")
    root = prepared.root.parent / f"{prepared.key}.validation"
    view = PreparedData(prepared.task_id, prepared.key, root, cache_hit=True)
    if (root / "view.json").is_file():
        return view
    sub = spec.submission
    id_column, targets = sub.id_column, list(sub.target_columns)
    train_path, test_path = prepared.public / "train.csv", prepared.public / "test.csv"
    if not (train_path.is_file() and test_path.is_file()):
        raise _unsupported(spec, "its public data has no train.csv and test.csv")
    read = {"dtype": str, "keep_default_na": False}
    train, test = pd.read_csv(train_path, **read), pd.read_csv(test_path, **read)
    missing = [c for c in (id_column, *targets) if c not in train.columns] + \
              ([id_column] if id_column not in test.columns else [])
    if missing:
        raise _unsupported(spec, f"train.csv/test.csv lack the columns {', '.join(missing)}")
    if len(train) < MIN_TRAIN_ROWS:
        raise _unsupported(spec, f"it has only {len(train)} training rows")
    if train[id_column].isin(test[id_column]).any():
        raise _unsupported(spec, "some training rows share an id with a test row")
    lacking = [c for c in test.columns if c not in train.columns]
    if lacking:
        raise _unsupported(spec, f"the training rows lack test columns {', '.join(lacking)}")

    held = train.sample(frac=fraction, random_state=spec.split.seed)
    mixed = pd.concat([test, held[list(test.columns)]], ignore_index=True)
    mixed = mixed.sample(frac=1.0, random_state=spec.split.seed + 1).reset_index(drop=True)
    with exclusive_lock(root.parent / f"{prepared.key}.validation.lock"), \
            atomic_directory(root, prefix=f".tmp-{prepared.key}-validation-") as tmp:
        public, private = tmp / "public", tmp / "private"
        _link_tree(prepared.public, public, skip={"train.csv", "test.csv", "sample_submission.csv"})
        private.mkdir()
        train.drop(held.index).to_csv(public / "train.csv", index=False)
        mixed.to_csv(public / "test.csv", index=False)
        _extended_sample(prepared.public / "sample_submission.csv", mixed[id_column], id_column, targets) \
            .to_csv(public / "sample_submission.csv", index=False)
        held[[id_column, *targets]].to_csv(private / ANSWERS_FILE, index=False)
        pd.DataFrame({id_column: held[id_column], "part": PART}).to_csv(private / LEADERBOARD_SPLIT_FILE,
                                                                       index=False)
        (tmp / "view.json").write_text(json.dumps({"format": VIEW_FORMAT, "fraction": fraction,
                                                   "held_out_rows": len(held), "seed": spec.split.seed}))
    return view


def _extended_sample(sample_path: Path, ids, id_column: str, targets: list[str]):
    """The sample submission over ``ids`` (in that order): its own rows as they were, the held-out rows with
    the placeholder values of its first row."""
    import pandas as pd

    frame = pd.DataFrame({id_column: ids})
    if not sample_path.is_file():
        for column in targets:
            frame[column] = "0"
        return frame
    sample = pd.read_csv(sample_path, dtype=str, keep_default_na=False)
    merged = frame.merge(sample, on=id_column, how="left")
    for column in targets:
        merged[column] = merged[column].fillna(sample[column].iloc[0] if len(sample) else "0")
    return merged[[id_column, *[c for c in sample.columns if c != id_column]]]


def _link_tree(source: Path, dest: Path, skip: set[str]) -> None:
    """``source``'s files under ``dest``, hard-linked (copied across filesystems), except the top-level
    names in ``skip``."""
    for folder, _subdirs, files in os.walk(source):
        target = dest / os.path.relpath(folder, source)
        target.mkdir(parents=True, exist_ok=True)
        for name in files:
            if folder == str(source) and name in skip:
                continue
            try:
                os.link(os.path.join(folder, name), target / name)
            except OSError:
                shutil.copy2(os.path.join(folder, name), target / name)


def held_out_ids(view: PreparedData, id_column: str) -> pa.Array:
    """The ids of the held-out training rows (as text)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    options = pacsv.ConvertOptions(column_types={id_column: pa.string()}, include_columns=[id_column])
    return pacsv.read_csv(view.answers, convert_options=options).column(id_column).combine_chunks()


def public_test_ids(public: Path, id_column: str) -> pa.Array:
    """The ids of a public ``test.csv`` (or, where the task has none, of its sample submission), as text:
    the rows a submission must cover, read without touching the answers."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    source = public / "test.csv" if (public / "test.csv").is_file() else public / "sample_submission.csv"
    options = pacsv.ConvertOptions(column_types={id_column: pa.string()}, include_columns=[id_column])
    return pacsv.read_csv(source, convert_options=options).column(id_column).combine_chunks()


def without_held_out(submission: Path, view: PreparedData, id_column: str, dest: Path) -> Path:
    """``submission`` without the held-out training rows, written to ``dest`` (what the final grade scores);
    the file itself when it cannot be read (the final grade then says why)."""
    import pandas as pd

    try:
        frame = pd.read_csv(submission, dtype=str, keep_default_na=False)
    except (OSError, ValueError, pd.errors.ParserError, UnicodeDecodeError):
        return submission
    if id_column not in frame.columns:
        return submission
    held = set(held_out_ids(view, id_column).to_pylist())
    frame[~frame[id_column].isin(held)].to_csv(dest, index=False)
    return dest
