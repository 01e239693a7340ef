"""Task specs (validation errors name the file and field), the task registry, and data preparation."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from dojoflow.errors import TaskSpecError, UnknownTaskError
from dojoflow.tasks_catalog.metrics import METRICS
from dojoflow.tasks_catalog.preparation import (
    MANIFEST,
    PreparationError,
    cache_key,
    prepare_task,
    verify,
)
from dojoflow.tasks_catalog.registry import BUILTIN_DIR, get_task, list_tasks, task_folders
from dojoflow.tasks_catalog.spec import load_spec

BUILTIN_IDS = {
    "air-passengers-forecast",
    "breast-cancer",
    "cars-mpg",
    "credit-card-acceptance",
    "diabetes-progression",
    "diamonds-cut",
    "diamonds-price",
    "digits",
    "digits-distorted-images",
    "digits-images",
    "hmda-mortgage-denial",
    "iris-species",
    "movies-genres",
    "penguins-body-mass",
    "penguins-morphometrics",
    "pima-diabetes",
    "seattle-temperature-forecast",
    "seattle-weather-type",
    "teaching-ratings",
    "trump-tweets-source",
    "wine-cultivar",
}


def copy_task(tmp_path: Path, source: str = "breast-cancer", name: str | None = None) -> Path:
    """A copy of a built-in task folder under tmp_path/tasks/<name>."""
    dest = tmp_path / "tasks" / (name or source)
    shutil.copytree(BUILTIN_DIR / source, dest)
    return dest


def edit_yaml(folder: Path, change) -> None:
    path = folder / "task.yaml"
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def assert_spec_error(folder: Path, file: Path, field: str, *fragments: str) -> TaskSpecError:
    with pytest.raises(TaskSpecError) as info:
        load_spec(folder)
    message = str(info.value)
    assert str(file) in message
    assert f"'{field}'" in message
    for fragment in fragments:
        assert fragment in message
    assert info.value.file == str(file)
    assert info.value.field == field
    return info.value


# --- spec ----------------------------------------------------------------------------------------------

def test_builtin_spec_loads_with_its_fields():
    spec = load_spec(BUILTIN_DIR / "breast-cancer")
    assert spec.id == "breast-cancer"
    assert spec.metric_name == "roc_auc"
    assert spec.metric is METRICS["roc_auc"]
    assert spec.higher_is_better is True
    assert spec.direction == "higher-is-better"
    assert spec.submission.id_column == "id"
    assert spec.submission.target_columns == ("malignant",)
    assert spec.submission.classes is None
    assert (spec.split.test_fraction, spec.split.public_fraction, spec.split.seed) == (0.35, 0.5, 0)
    assert spec.leaderboard.provenance == "reference"
    assert spec.description().strip()
    digits = load_spec(BUILTIN_DIR / "digits")
    assert digits.submission.classes == tuple(str(i) for i in range(10))
    penguins = load_spec(BUILTIN_DIR / "penguins-body-mass")
    assert (penguins.metric_name, penguins.higher_is_better) == ("rmse", False)


def test_copied_spec_loads(tmp_path):
    folder = copy_task(tmp_path)
    assert load_spec(folder).folder == folder


def test_missing_metric(tmp_path):
    folder = copy_task(tmp_path)
    edit_yaml(folder, lambda d: d.pop("metric"))
    assert_spec_error(folder, folder / "task.yaml", "metric", "required")


def test_unknown_metric_lists_known_metrics(tmp_path):
    folder = copy_task(tmp_path)
    edit_yaml(folder, lambda d: d.update(metric="auc-roc"))
    error = assert_spec_error(folder, folder / "task.yaml", "metric", "auc-roc")
    for name in METRICS:
        assert name in str(error)


def test_direction_contradicting_metric(tmp_path):
    folder = copy_task(tmp_path)
    edit_yaml(folder, lambda d: d.update(direction="lower-is-better"))
    assert_spec_error(folder, folder / "task.yaml", "direction", "contradicts", "roc_auc")


def test_unknown_direction(tmp_path):
    folder = copy_task(tmp_path)
    edit_yaml(folder, lambda d: d.update(direction="up"))
    assert_spec_error(folder, folder / "task.yaml", "direction", "'up'", "higher-is-better")


@pytest.mark.parametrize("field, value", [
    ("test_fraction", 1.5), ("test_fraction", 0.0), ("public_fraction", 1.0), ("public_fraction", -0.2),
])
def test_bad_split_fraction(tmp_path, field, value):
    folder = copy_task(tmp_path)
    edit_yaml(folder, lambda d: d["split"].update({field: value}))
    assert_spec_error(folder, folder / "task.yaml", f"split.{field}", "between 0 and 1", str(value))


def test_split_fraction_of_wrong_type(tmp_path):
    folder = copy_task(tmp_path)
    edit_yaml(folder, lambda d: d["split"].update(test_fraction="a third"))
    assert_spec_error(folder, folder / "task.yaml", "split.test_fraction", "must be float")


def test_id_not_equal_to_folder_name(tmp_path):
    folder = copy_task(tmp_path)
    edit_yaml(folder, lambda d: d.update(id="breast-cancer-2"))
    assert_spec_error(folder, folder / "task.yaml", "id", "breast-cancer-2", "'breast-cancer'")


def test_missing_description(tmp_path):
    folder = copy_task(tmp_path)
    (folder / "description.md").unlink()
    assert_spec_error(folder, folder / "description.md", "(file)", "description.md")


def test_missing_prepare(tmp_path):
    folder = copy_task(tmp_path)
    (folder / "prepare.py").unlink()
    assert_spec_error(folder, folder / "prepare.py", "(file)", "prepare.py")


def test_missing_spec_file(tmp_path):
    folder = copy_task(tmp_path)
    (folder / "task.yaml").unlink()
    assert_spec_error(folder, folder / "task.yaml", "(file)", "not found")


def test_invalid_yaml(tmp_path):
    folder = copy_task(tmp_path)
    (folder / "task.yaml").write_text("id: breast-cancer\nmetric: [roc_auc\n  direction: : :\n")
    assert_spec_error(folder, folder / "task.yaml", "(file)", "not valid YAML")


def test_yaml_that_is_not_a_mapping(tmp_path):
    folder = copy_task(tmp_path)
    (folder / "task.yaml").write_text("- just\n- a list\n")
    assert_spec_error(folder, folder / "task.yaml", "(top level)", "mapping")


def test_label_metric_without_classes(tmp_path):
    folder = copy_task(tmp_path)
    edit_yaml(folder, lambda d: d.update(metric="accuracy", task_type="tabular-classification-multiclass"))
    assert_spec_error(folder, folder / "task.yaml", "submission.classes", "accuracy")


def test_empty_target_columns(tmp_path):
    folder = copy_task(tmp_path)
    edit_yaml(folder, lambda d: d["submission"].update(target_columns=[]))
    assert_spec_error(folder, folder / "task.yaml", "submission.target_columns")


def test_unknown_task_type(tmp_path):
    folder = copy_task(tmp_path)
    edit_yaml(folder, lambda d: d.update(task_type="image-segmentation"))
    assert_spec_error(folder, folder / "task.yaml", "task_type", "image-segmentation")


# --- registry ------------------------------------------------------------------------------------------

def test_builtin_tasks_load(monkeypatch):
    monkeypatch.delenv("DOJOFLOW_TASK_PATH", raising=False)
    assert set(task_folders()) == BUILTIN_IDS
    assert {spec.id for spec in list_tasks()} == BUILTIN_IDS
    for task_id in BUILTIN_IDS:
        assert get_task(task_id).id == task_id


def test_task_path_adds_a_task_folder(tmp_path, monkeypatch):
    folder = copy_task(tmp_path, name="my-task")
    edit_yaml(folder, lambda d: d.update(id="my-task", title="My task"))
    other = tmp_path / "empty-root"
    other.mkdir()
    monkeypatch.setenv("DOJOFLOW_TASK_PATH", os.pathsep.join([str(other), str(tmp_path / "tasks")]))
    assert set(task_folders()) == BUILTIN_IDS | {"my-task"}
    spec = get_task("my-task")
    assert (spec.title, spec.folder) == ("My task", folder)
    assert "my-task" in {s.id for s in list_tasks()}


def test_task_path_does_not_shadow_a_builtin(tmp_path, monkeypatch):
    folder = copy_task(tmp_path, "breast-cancer")
    edit_yaml(folder, lambda d: d.update(title="Impostor"))
    monkeypatch.setenv("DOJOFLOW_TASK_PATH", str(tmp_path / "tasks"))
    spec = get_task("breast-cancer")
    assert spec.folder == BUILTIN_DIR / "breast-cancer"
    assert spec.title != "Impostor"


def test_unknown_task_lists_known_ids(monkeypatch):
    monkeypatch.delenv("DOJOFLOW_TASK_PATH", raising=False)
    with pytest.raises(UnknownTaskError) as info:
        get_task("titanic")
    message = str(info.value)
    assert "titanic" in message
    for task_id in BUILTIN_IDS:
        assert task_id in message


# --- preparation ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def bc_spec():
    return load_spec(BUILTIN_DIR / "breast-cancer")


@pytest.fixture(scope="module")
def bc_prepared(bc_spec, tmp_path_factory):
    return prepare_task(bc_spec, tmp_path_factory.mktemp("data"))


def test_prepared_layout(bc_spec, bc_prepared):
    assert bc_prepared.cache_hit is False
    assert bc_prepared.root == bc_prepared.root.parent.parent / "breast-cancer" / bc_prepared.key
    assert bc_prepared.key == cache_key(bc_spec)
    public = {p.name for p in bc_prepared.public.iterdir()}
    assert public == {"train.csv", "test.csv", "sample_submission.csv", "description.md"}
    private = {p.name for p in bc_prepared.private.iterdir()}
    assert private == {"answers.csv", "leaderboard_split.csv"}
    assert (bc_prepared.public / "description.md").read_bytes() == bc_spec.description_path.read_bytes()
    verify(bc_prepared)


def test_prepared_contents(bc_spec, bc_prepared):
    train = pd.read_csv(bc_prepared.public / "train.csv")
    test = pd.read_csv(bc_prepared.public / "test.csv")
    sample = pd.read_csv(bc_prepared.public / "sample_submission.csv")
    answers = pd.read_csv(bc_prepared.answers)
    split = pd.read_csv(bc_prepared.leaderboard_split)

    assert "malignant" in train.columns
    assert "malignant" not in test.columns
    assert list(test.columns) == [c for c in train.columns if c != "malignant"]
    assert list(answers.columns) == ["id", "malignant"]
    assert list(sample.columns) == ["id", "malignant"]
    assert list(split.columns) == ["id", "part"]

    assert len(train) + len(test) == 569  # the whole scikit-learn breast cancer set
    assert len(test) == pytest.approx(0.35 * 569, abs=1)
    assert set(train["id"]).isdisjoint(test["id"])
    assert list(test["id"]) == list(answers["id"]) == list(sample["id"]) == list(split["id"])
    assert test["id"].is_unique

    assert set(split["part"]) == {"public", "private"}
    counts = split["part"].value_counts()
    assert abs(counts["public"] - counts["private"]) <= 1
    assert set(answers["malignant"]) == {0, 1}
    # stratified: both parts contain both classes
    merged = answers.merge(split, on="id")
    for part in ("public", "private"):
        assert set(merged.loc[merged["part"] == part, "malignant"]) == {0, 1}


def _tree_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.name != MANIFEST}


def test_preparation_is_deterministic(bc_spec, bc_prepared, tmp_path):
    again = prepare_task(bc_spec, tmp_path / "other")
    assert again.cache_hit is False
    assert again.key == bc_prepared.key
    assert _tree_bytes(again.root) == _tree_bytes(bc_prepared.root)
    manifest_a = json.loads((again.root / MANIFEST).read_text())
    manifest_b = json.loads((bc_prepared.root / MANIFEST).read_text())
    assert manifest_a["files"] == manifest_b["files"]


def test_second_prepare_is_a_cache_hit(bc_spec, tmp_path):
    first = prepare_task(bc_spec, tmp_path)
    mtime = (first.root / MANIFEST).stat().st_mtime_ns
    second = prepare_task(bc_spec, tmp_path)
    assert (first.cache_hit, second.cache_hit) == (False, True)
    assert second.root == first.root
    assert (second.root / MANIFEST).stat().st_mtime_ns == mtime


def test_changing_task_files_changes_the_key(tmp_path):
    folder = copy_task(tmp_path)
    base = cache_key(load_spec(folder))
    assert base == cache_key(load_spec(BUILTIN_DIR / "breast-cancer"))  # same content, same key

    edit_yaml(folder, lambda d: d.update(title="Another title"))
    spec_changed = cache_key(load_spec(folder))
    assert spec_changed != base

    (folder / "description.md").write_text((folder / "description.md").read_text() + "\nMore.\n")
    desc_changed = cache_key(load_spec(folder))
    assert desc_changed not in (base, spec_changed)

    with (folder / "prepare.py").open("a") as fh:
        fh.write("\n# a comment\n")
    assert cache_key(load_spec(folder)) not in (base, spec_changed, desc_changed)


def test_changed_spec_prepares_a_new_entry(tmp_path):
    folder = copy_task(tmp_path)
    data = tmp_path / "data"
    first = prepare_task(load_spec(folder), data)
    edit_yaml(folder, lambda d: d["split"].update(seed=1))
    second = prepare_task(load_spec(folder), data)
    assert second.cache_hit is False
    assert second.key != first.key
    assert (second.public / "test.csv").read_bytes() != (first.public / "test.csv").read_bytes()


@pytest.mark.parametrize("tamper", ["modify", "delete", "add"])
def test_tampered_cache_fails_verification(bc_spec, tmp_path, tamper):
    prepared = prepare_task(bc_spec, tmp_path)
    verify(prepared)
    if tamper == "modify":
        with prepared.answers.open("a") as fh:
            fh.write("9999,1\n")
    elif tamper == "delete":
        (prepared.public / "sample_submission.csv").unlink()
    else:
        (prepared.private / "extra.csv").write_text("x\n")
    with pytest.raises(PreparationError, match="checksums"):
        verify(prepared)
    with pytest.raises(PreparationError, match="breast-cancer"):
        prepare_task(bc_spec, tmp_path)
    # without the check the tampered entry is returned as is
    assert prepare_task(bc_spec, tmp_path, check=False).cache_hit is True


def test_leftovers_from_a_killed_run_do_not_break_preparation(bc_spec, tmp_path):
    key = cache_key(bc_spec)
    task_dir = tmp_path / "breast-cancer"
    leftover = task_dir / f".tmp-{key}-killed"
    (leftover / "public").mkdir(parents=True)
    (leftover / "public" / "train.csv").write_text("half a fi")
    # an entry directory without a manifest (never completed) and a stale lock file
    (task_dir / key / "public").mkdir(parents=True)
    (task_dir / key / "public" / "train.csv").write_text("garbage")
    (task_dir / f"{key}.lock").write_text("")

    prepared = prepare_task(bc_spec, tmp_path)
    assert prepared.cache_hit is False
    verify(prepared)
    assert (prepared.public / "train.csv").read_text().startswith("id,")
    assert set(p.name for p in prepared.public.iterdir()) == {"train.csv", "test.csv", "sample_submission.csv",
                                                             "description.md"}
    assert prepare_task(bc_spec, tmp_path).cache_hit is True


_CONCURRENT_WORKER = """
import json, sys, time
from pathlib import Path
from dojoflow.tasks_catalog.preparation import prepare_task
from dojoflow.tasks_catalog.registry import get_task
spec = get_task("breast-cancer")
go = Path(sys.argv[2])
deadline = time.time() + 60
while not go.exists() and time.time() < deadline:
    time.sleep(0.005)
prepared = prepare_task(spec, Path(sys.argv[1]))
print(json.dumps({"root": str(prepared.root), "cache_hit": prepared.cache_hit}))
"""


def test_concurrent_preparation_produces_one_entry(tmp_path):
    data = tmp_path / "data"
    go = tmp_path / "go"
    env = {k: v for k, v in os.environ.items() if k != "DOJOFLOW_TASK_PATH"}
    procs = [subprocess.Popen([sys.executable, "-c", _CONCURRENT_WORKER, str(data), str(go)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for _ in range(2)]
    time.sleep(2.0)  # both have imported dojoflow and wait for the start signal
    go.write_text("go")
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    assert results[0]["root"] == results[1]["root"]
    assert sorted(r["cache_hit"] for r in results) == [False, True]
    entries = [p for p in (data / "breast-cancer").iterdir() if p.is_dir()]
    assert [p.name for p in entries] == [Path(results[0]["root"]).name]
    spec = load_spec(BUILTIN_DIR / "breast-cancer")
    prepared = prepare_task(spec, data)
    assert prepared.cache_hit is True
    verify(prepared)
