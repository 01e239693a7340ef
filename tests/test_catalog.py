"""The built-in task catalog: coverage of task types, specs' new fields, splits, images, offline preparation."""

from __future__ import annotations

import csv
import shutil
import socket
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from dojoflow.errors import TaskSpecError
from dojoflow.tasks_catalog.grading import grade_submission, task_leaderboard
from dojoflow.tasks_catalog.preparation import prepare_task, verify
from dojoflow.tasks_catalog.registry import BUILTIN_DIR, get_task, list_tasks, tasks_in_split
from dojoflow.tasks_catalog.spec import TASK_TYPES, load_spec

# tasks whose reference leaderboard has fewer than 50 entries, with the reason (documented in docs/tasks.md)
FEWER_THAN_50: dict[str, str] = {}


@pytest.fixture(scope="module")
def builtin(tmp_path_factory):
    return [s for s in list_tasks() if s.folder.parent == BUILTIN_DIR]


def test_at_least_20_builtin_tasks_cover_the_task_types(builtin):
    assert len(builtin) >= 20
    types = {s.task_type for s in builtin}
    for needed in ("tabular-classification-binary", "tabular-classification-multiclass", "tabular-regression",
                   "tabular-classification-multilabel", "tabular-classification-ordinal",
                   "tabular-regression-multioutput", "time-series-forecasting", "image-classification",
                   "text-classification"):
        assert needed in types, needed
    assert all(s.task_type in TASK_TYPES for s in builtin)
    assert any(s.tags.get("imbalanced") for s in builtin)
    assert any(s.resources.gpu for s in builtin)
    ordinal = [s for s in builtin if s.task_type == "tabular-classification-ordinal"]
    assert all(s.metric_name == "quadratic_weighted_kappa" for s in ordinal)
    assert any(s.split.method == "time" for s in builtin if s.task_type == "time-series-forecasting")


def test_every_builtin_task_is_documented_and_has_a_reference_leaderboard(builtin):
    for spec in builtin:
        for tag in ("size", "difficulty", "source", "license"):
            assert spec.tags.get(tag), (spec.id, tag)
        text = spec.description()
        for section in ("## Overview", "## Data", "## Evaluation", "## Submission format") if spec.id not in (
                "breast-cancer", "digits", "penguins-body-mass") else ():
            assert section in text, (spec.id, section)
        assert spec.leaderboard.provenance == "reference"
        lines = [line for line in spec.leaderboard_path.read_text().splitlines() if not line.startswith("#")]
        rows = list(csv.DictReader(lines))
        assert len(rows) >= 50 or spec.id in FEWER_THAN_50, (spec.id, len(rows))
        assert {"score", "public_score"} <= set(rows[0])
        board = task_leaderboard(spec)
        assert board.higher_is_better == spec.higher_is_better
        assert spec.leaderboard_path.read_text().startswith("# provenance: reference")


def test_lite_split(builtin):
    lite = tasks_in_split("lite")
    assert 5 <= len(lite) < len(builtin)
    assert {s.task_type for s in lite} >= {"image-classification", "text-classification", "time-series-forecasting"}


@pytest.mark.slow  # tens of seconds on 2 cores: CI runs it with -m slow
def test_preparing_every_builtin_task_works_offline(builtin, tmp_path, monkeypatch):
    def no_network(*args, **kwargs):
        raise OSError("network access attempted during preparation")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    for spec in builtin:
        prepared = prepare_task(spec, tmp_path)
        verify(prepared)
        answers = pd.read_csv(prepared.answers)
        sample = pd.read_csv(prepared.public / "sample_submission.csv")
        assert list(sample.columns) == [spec.submission.id_column, *spec.submission.target_columns]
        assert len(sample) == len(answers)
        test = pd.read_csv(prepared.public / "test.csv")
        assert not set(spec.submission.target_columns) & set(test.columns)
        # the sample submission is a valid submission on every task
        result = grade_submission(spec, prepared, prepared.public / "sample_submission.csv", "public")
        assert result.valid, (spec.id, result.errors)


def test_time_split_holds_out_the_last_period():
    spec = get_task("seattle-temperature-forecast")
    assert (spec.split.method, spec.split.time_column) == ("time", "date")


def test_time_split_layout(tmp_path):
    spec = get_task("seattle-temperature-forecast")
    prepared = prepare_task(spec, tmp_path)
    train = pd.read_csv(prepared.public / "train.csv")
    test = pd.read_csv(prepared.public / "test.csv")
    parts = pd.read_csv(prepared.leaderboard_split).merge(test, on="id")
    assert train["date"].max() < test["date"].min()
    assert train["date"].is_monotonic_increasing and test["date"].is_monotonic_increasing
    assert parts.loc[parts["part"] == "public", "date"].max() < parts.loc[parts["part"] == "private", "date"].min()
    assert len(test) == round(0.25 * (len(train) + len(test)))


def test_image_task_ships_png_files(tmp_path):
    from PIL import Image

    spec = get_task("digits-images")
    prepared = prepare_task(spec, tmp_path)
    train = pd.read_csv(prepared.public / "train.csv")
    test = pd.read_csv(prepared.public / "test.csv")
    assert list(train.columns) == ["id", "image", "digit"] and list(test.columns) == ["id", "image"]
    files = {p.name for p in (prepared.public / "images").iterdir()}
    assert files == set(train["image"]) | set(test["image"])
    image = np.asarray(Image.open(prepared.public / "images" / train["image"][0]))
    assert image.shape == (8, 8) and image.dtype == np.uint8
    # names do not give the label away: same-label images share no name pattern
    assert train.groupby("digit")["image"].apply(lambda s: s.str[:2].nunique()).min() > 5


def test_multilabel_and_multioutput_grading(tmp_path):
    for task_id in ("movies-genres", "penguins-morphometrics"):
        spec = get_task(task_id)
        prepared = prepare_task(spec, tmp_path)
        answers = pd.read_csv(prepared.answers)
        assert list(answers.columns) == [spec.submission.id_column, *spec.submission.target_columns]
        answers.to_csv(tmp_path / f"{task_id}.csv", index=False)
        result = grade_submission(spec, prepared, tmp_path / f"{task_id}.csv", "private")
        assert result.valid and result.score == pytest.approx(1.0 if spec.higher_is_better else 0.0)
        answers.drop(columns=spec.submission.target_columns[-1]).to_csv(tmp_path / "bad.csv", index=False)
        assert not grade_submission(spec, prepared, tmp_path / "bad.csv", "public").valid


@pytest.mark.slow  # tens of seconds on 2 cores: CI runs it with -m slow
def test_reference_builder_handles_the_new_kinds(tmp_path, monkeypatch):
    """A small population on each new kind of task (the full ones are built by the leaderboard command)."""
    from dojoflow.tasks_catalog import reference

    def two_classifiers(large=False):
        from sklearn.dummy import DummyClassifier
        from sklearn.linear_model import LogisticRegression

        yield "dummy-prior", lambda s: DummyClassifier(strategy="prior")
        yield "logreg-C1.0", lambda s: LogisticRegression(max_iter=500)

    def two_regressors(large=False):
        from sklearn.dummy import DummyRegressor
        from sklearn.linear_model import Ridge

        yield "dummy-mean", lambda s: DummyRegressor()
        yield "ridge-a1.0", lambda s: Ridge()

    def two_text():
        from sklearn.dummy import DummyClassifier
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression

        yield "dummy-prior", lambda s: DummyClassifier(strategy="prior"), lambda: TfidfVectorizer(min_df=2)
        yield "tfidf-logreg", lambda s: LogisticRegression(max_iter=500), lambda: TfidfVectorizer(min_df=2)

    monkeypatch.setattr(reference, "_classifiers", two_classifiers)
    monkeypatch.setattr(reference, "_regressors", two_regressors)
    monkeypatch.setattr(reference, "_text_population", two_text)
    for task_id in ("air-passengers-forecast", "movies-genres", "penguins-morphometrics", "digits-images",
                    "trump-tweets-source", "diamonds-cut"):
        spec = get_task(task_id)
        entries = reference.build_reference_leaderboard(spec, prepare_task(spec, tmp_path))
        assert len(entries) == 2
        dummy = next(e for e in entries if e["team"].startswith("ref-dummy"))
        other = next(e for e in entries if not e["team"].startswith("ref-dummy"))
        assert spec.metric.is_better(other["score"], dummy["score"]) or task_id == "diamonds-cut", task_id


def test_time_features():
    from dojoflow.tasks_catalog.reference import _time_features

    frame = pd.DataFrame({"date": ["2015-01-01", "2015-07-01"], "x": [1, 2]})
    out = _time_features(frame, "date")
    assert "date" not in out and {"t_days", "t_year", "t_month", "t_doy_sin", "t_doy_cos", "x"} <= set(out)
    assert out["t_days"].diff().iloc[1] == 181


# --- spec validation of the new fields -----------------------------------------------------------------

def copy_task(tmp_path: Path, source: str = "seattle-temperature-forecast") -> Path:
    dest = tmp_path / source
    shutil.copytree(BUILTIN_DIR / source, dest)
    return dest


def edit(folder: Path, change) -> None:
    data = yaml.safe_load((folder / "task.yaml").read_text())
    change(data)
    (folder / "task.yaml").write_text(yaml.safe_dump(data, sort_keys=False))


@pytest.mark.parametrize("source, change, field, fragment", [
    ("seattle-temperature-forecast", lambda d: d["split"].update(method="stratified"), "split.method",
     "not one of: random, time"),
    ("seattle-temperature-forecast", lambda d: d["split"].pop("time_column"), "split.time_column", "required"),
    ("iris-species", lambda d: d["split"].update(time_column="date"), "split.time_column", "only allowed"),
    ("digits-images", lambda d: d["inputs"].update(kind="video"), "inputs.kind", "not one of"),
    ("digits-images", lambda d: d["inputs"].pop("column"), "inputs.column", "required"),
    ("digits-images", lambda d: d["inputs"].pop("dir"), "inputs.dir", "required"),
    ("trump-tweets-source", lambda d: d.update(inputs=["text"]), "inputs", "must be a mapping"),
    ("cars-mpg", lambda d: d.update(metric="external"), "grader", "needs a grader section"),
    ("cars-mpg", lambda d: d.update(metric="external", grader={"kind": "mlebench", "file": "grade.py"}),
     "grader.file", "not found"),
    ("cars-mpg", lambda d: d.update(metric="external", grader={"kind": "other", "file": "prepare.py"}),
     "grader.kind", "not one of"),
    ("cars-mpg", lambda d: d["submission"].update(target_columns=["mpg", "weight_lbs"]),
     "submission.target_columns", "multioutput"),
    ("movies-genres", lambda d: d.update(task_type="tabular-classification-multilabels"), "task_type",
     "not one of"),
])
def test_new_fields_are_validated(tmp_path, source, change, field, fragment):
    folder = copy_task(tmp_path, source)
    edit(folder, change)
    with pytest.raises(TaskSpecError) as info:
        load_spec(folder)
    assert info.value.field == field and info.value.file == str(folder / "task.yaml")
    assert fragment in str(info.value)


def test_time_column_missing_from_the_data_names_the_field(tmp_path):
    folder = copy_task(tmp_path)
    edit(folder, lambda d: d["split"].update(time_column="day"))
    with pytest.raises(Exception, match="split.time_column.*'day'"):
        prepare_task(load_spec(folder), tmp_path / "data")
