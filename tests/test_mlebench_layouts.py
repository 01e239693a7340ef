"""An MLE-bench checkout in its real layouts (written by mlebench_layouts.py) imports whole, grades by
MLE-bench's rules, and runs baseline episodes."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
import yaml
from mlebench_layouts import LAYOUTS, write_checkout, write_raw

from dojoflow.dojo.layout import describe_folder
from dojoflow.tasks_catalog.grading import grade_submission
from dojoflow.tasks_catalog.mlebench import (
    OVERRIDES_FILE,
    id_key,
    import_competitions_summary,
    infer_columns,
)
from dojoflow.tasks_catalog.preparation import prepare_task
from dojoflow.tasks_catalog.registry import get_task


def _import(tmp_path: Path, monkeypatch, ids: tuple[str, ...]):
    monkeypatch.setenv("DOJOFLOW_HOME", str(tmp_path / "home"))
    competitions = write_checkout(tmp_path / "mle-bench", ids)
    raw = write_raw(tmp_path / "raw", ids)
    monkeypatch.setenv("DOJOFLOW_MLEBENCH_RAW", str(raw))
    return import_competitions_summary(competitions), competitions


def _prepared(cid: str, tmp_path: Path):
    spec = get_task(cid)
    return spec, prepare_task(spec, tmp_path / "home" / "data")


def test_relative_imports_private_sample_and_id_not_first(tmp_path, monkeypatch):
    summary, _ = _import(tmp_path, monkeypatch, ("leafy", "privsample", "insults"))
    assert summary.failed == {} and summary.exit_code == 0
    leafy = get_task("leafy")
    assert leafy.grader.file == "competition/grade.py"
    assert (leafy.folder / "mlebench_lib" / "mlebench" / "grade_helpers.py").is_file()  # the checkout's library
    assert (leafy.submission.id_column, leafy.submission.target_columns) == ("id", ("acer", "betula", "quercus"))
    private = get_task("privsample")
    assert private.tags["mlebench_sample_submission"] == "private/sample_submission.csv"
    assert (private.submission.id_column, private.submission.target_columns) == ("id", ("after",))
    insults = get_task("insults")
    assert insults.submission.id_column == "Comment"  # not the sample's first column (Insult)
    assert insults.submission.target_columns == ("Insult", "Date")


def test_a_private_sample_is_stood_in_for_by_its_one_public_copy(tmp_path):
    from dojoflow.dojo.observation import sample_submission_name

    spec = SimpleNamespace(tags={"mlebench_sample_submission": "private/sample_submission.csv"})
    public = tmp_path / "public"
    public.mkdir()
    assert sample_submission_name(spec, public) == ""  # none: the episode has no sample to start from
    (public / "en_sample_submission_2.csv.zip").write_bytes(b"")
    assert sample_submission_name(spec, public) == "en_sample_submission_2.csv.zip"
    assert sample_submission_name(spec) == ""  # without the folder nothing is guessed
    (public / "other_sample_submission.csv").write_text("id,after\n")
    assert sample_submission_name(spec, public) == ""  # two candidates: no guess
    public_spec = SimpleNamespace(tags={"mlebench_sample_submission": "public/sample.csv"})
    assert sample_submission_name(public_spec, public) == "sample.csv"


def test_overrides_survive_reimport_and_failures_are_one_line(tmp_path, monkeypatch):
    summary, competitions = _import(tmp_path, monkeypatch, ("insults",))
    imports = tmp_path / "home" / "imported"
    (imports / OVERRIDES_FILE).write_text(yaml.safe_dump({"insults": {"target_columns": "Insult"}}))
    broken = competitions / "broken"
    broken.mkdir()
    for name in ("config.yaml", "description.md", "leaderboard.csv", "prepare.py"):
        text = (competitions / "insults" / name).read_text().replace("insults", "broken")
        (broken / name).write_text(text)
    (broken / "grade.py").write_text("def grade(submission, answers):\n    return 1 +\n")
    needs = competitions / "needs-module"
    needs.mkdir()
    for name in ("config.yaml", "description.md", "leaderboard.csv", "prepare.py"):
        (needs / name).write_text((competitions / "insults" / name).read_text().replace("insults", "needs-module"))
    (needs / "grade.py").write_text("import py7zr_not_installed_here\n\ndef grade(s, a):\n    return 0.0\n")
    again = import_competitions_summary(competitions, ids=["insults", "broken", "needs-module"])
    assert [o.id for o in again.imported] == ["insults"] and again.exit_code == 1
    assert again.failed["broken"].startswith("SyntaxError")  # the grader loads at import
    assert "py7zr_not_installed_here" in again.failed["needs-module"]
    assert "pip install 'dojoflow[mlebench]'" in again.failed["needs-module"]
    assert str(needs / "grade.py") in again.failed["needs-module"]  # the checkout's file, not a staging copy
    assert all("\n" not in reason for reason in again.failed.values())
    spec = get_task("insults")
    assert spec.submission.target_columns == ("Insult",) and spec.submission.id_column == "Comment"
    assert spec.tags["submission_columns"] == f"from {OVERRIDES_FILE}"
    assert again.table().row_count == 3


def test_cli_import_prints_a_summary_and_fails_when_any_failed(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from dojoflow.cli import app

    monkeypatch.setenv("DOJOFLOW_HOME", str(tmp_path / "home"))
    competitions = write_checkout(tmp_path / "mle-bench", ("tables",))
    (competitions / "tables" / "grade.py").write_text("raise RuntimeError('broken grader')\n")
    result = CliRunner().invoke(app, ["tasks", "import-mlebench", str(competitions)])
    assert result.exit_code == 1
    assert "broken grader" in result.output and "1 failed" in result.output


def test_mlebench_rules_rounding_validity_and_nan(tmp_path, monkeypatch):
    summary, _ = _import(tmp_path, monkeypatch, ("leafy", "tables"))
    assert summary.failed == {}
    spec, prepared = _prepared("leafy", tmp_path)
    answers = pd.read_csv(prepared.answers)
    answers.to_csv(tmp_path / "perfect.csv", index=False)
    final = grade_submission(spec, prepared, tmp_path / "perfect.csv")
    assert final.valid and final.grading_mode == "mlebench"
    assert final.score == 0.0 and final.medal == "gold"  # 1.1e-15 rounded to 5 decimals, as MLE-bench does
    assert final.score_all_rows == 0.0
    strict = grade_submission(spec, prepared, tmp_path / "perfect.csv", mode="mlebench-strict")
    assert strict.valid and 0 < strict.score < 1e-14 and strict.medal != "gold"

    spec, prepared = _prepared("tables", tmp_path)
    answers = pd.read_csv(prepared.answers)
    cases = {
        "extra": answers.assign(note="x"),
        "float-ids": answers.assign(id=answers["id"].astype(float)),
        "duplicated": answers.assign(id=[answers["id"].iloc[1], *answers["id"].iloc[1:]]),
        "nan": answers.assign(sales=float("nan")),
    }
    for name, frame in cases.items():
        frame.to_csv(tmp_path / f"{name}.csv", index=False)
        result = grade_submission(spec, prepared, tmp_path / f"{name}.csv", part="all")
        assert result.valid, (name, result.errors)
        strict = grade_submission(spec, prepared, tmp_path / f"{name}.csv", part="all", mode="mlebench-strict")
        assert not strict.valid or name == "float-ids", name
        if name != "float-ids":
            assert result.warnings, name
    nan = grade_submission(spec, prepared, tmp_path / "nan.csv", part="all")
    assert nan.score != nan.score and nan.medal is None  # NaN: valid, no medal
    empty = answers.astype({"id": object})
    empty.loc[0, "id"] = ""
    empty.to_csv(tmp_path / "empty-id.csv", index=False)
    for mode in ("mlebench", "mlebench-strict"):  # never a crash
        result = grade_submission(spec, prepared, tmp_path / "empty-id.csv", mode=mode)
        assert mode == "mlebench" or not result.valid
    assert id_key(10.0) == "10" and id_key(float("nan")) == "" and id_key("0012") == "0012"


def test_infer_columns_prefers_the_identifying_column():
    sample = pd.DataFrame({"Insult": [0, 0, 0], "Date": [None, "x", "y"], "Comment": ["a", "b", "c"]})
    answers = sample.assign(Usage="PrivateTest")
    assert infer_columns(sample, answers) == ("Comment", ["Insult", "Date"])
    sample = pd.DataFrame({"key": ["a", "b"], "id": ["1", "2"], "y": [0, 0]})
    assert infer_columns(sample, sample)[0] == "id"


def test_describe_folder_on_every_layout(tmp_path):
    from PIL import Image

    root = tmp_path / "public"
    (root / "train").mkdir(parents=True)
    for i in range(15):
        Image.new("RGB", (4, 3)).save(root / "train" / f"{i}.jpg")
    pd.DataFrame({"a": [1, 2], "b": ["x", "y"]}).to_csv(root / "labels.csv", index=False)
    pd.DataFrame({"a": [1.5]}).to_parquet(root / "t.parquet")
    (root / "train.jsonl").write_text('{"k": 1}\n{"k": 2}\n')
    (root / "train.json").write_text(json.dumps([{"k": 1}]))
    import zipfile

    with zipfile.ZipFile(root / "extra.zip", "w") as archive:
        archive.writestr("inside/one.wav", b"RIFF")
    (root / "audio").mkdir()
    (root / "audio" / "x.wav").write_bytes(b"RIFF")
    (root / "broken.csv").write_bytes(b"\xff\xfe\x00garbage\n\x00")
    text = describe_folder(root)
    assert "train/ (15 files" in text and "15 images (15 .jpg)" in text and "4x3 RGB" in text
    assert "labels.csv: 2 rows x 2 columns: a (int64), b" in text
    assert "t.parquet: 1 rows" in text and "train.jsonl: 2 rows" in text and "train.json: 1 rows" in text
    assert "extra.zip: archive of 1 entries" in text and "inside/one.wav" in text
    assert "audio/: 1 audio files" in text


@pytest.mark.slow
@pytest.mark.parametrize("cid", LAYOUTS)
def test_baseline_episode_on_every_layout(tmp_path, monkeypatch, cid):
    from dojoflow.config import get_settings
    from dojoflow.flows.episode import EpisodeConfig, drive_episode

    summary, _ = _import(tmp_path, monkeypatch, (cid,))
    assert summary.failed == {}
    result = drive_episode(EpisodeConfig(task_id=cid, max_steps=3, track=False, agent_options={"models": 1}),
                           settings=get_settings())
    assert "## Data structure" in result.initial_observation
    # privsample: the graded sample is private; the baseline submits from the zipped public copy
    assert result.valid, (result.errors, [s["observation"][-600:] for s in result.trajectory])


def test_mlebench_grading_report_from_results(tmp_path, monkeypatch):
    from dojoflow.reporting.mlebench_report import TOTALS, write_grading_report

    monkeypatch.setenv("DOJOFLOW_HOME", str(tmp_path / "home"))
    competitions = write_checkout(tmp_path / "mle-bench", ("tables",))
    assert import_competitions_summary(competitions).exit_code == 0  # no raw data: registered, unverified
    frame = pd.DataFrame([
        {"task": "tables", "valid": True, "score": 2.5, "score_all_rows": 1.2, "medal": "bronze",
         "above_median": True, "higher_is_better": False, "status": "completed", "finished_at": "2026-01-01T00:00:00",
         "submission_path": "/x/submission.csv"},
        {"task": "tables", "valid": False, "score": None, "score_all_rows": float("nan"), "medal": None,
         "above_median": False, "higher_is_better": False, "status": "completed", "finished_at": "",
         "episode_id": "e2"},
        {"task": "not-registered", "valid": True, "score": 0.7, "score_all_rows": float("nan"), "medal": "silver",
         "above_median": True, "higher_is_better": True, "status": "completed", "finished_at": ""},
    ])
    path = write_grading_report(frame, tmp_path / "reports")
    assert path.name.endswith("_grading_report.json")
    report = json.loads(path.read_text())
    assert set(TOTALS) | {"competition_reports"} == set(report)
    assert report["total_runs"] == 3 and report["total_valid_submissions"] == 2
    first = report["competition_reports"][0]
    assert set(first) == {"competition_id", "score", "gold_threshold", "silver_threshold", "bronze_threshold",
                          "median_threshold", "any_medal", "gold_medal", "silver_medal", "bronze_medal",
                          "above_median", "submission_exists", "valid_submission", "is_lower_better", "created_at",
                          "submission_path"}
    assert first["score"] == 1.2 and first["gold_medal"] and first["is_lower_better"]  # placed on all rows
    assert first["gold_threshold"] == 2.0
    assert report["competition_reports"][2]["silver_medal"]  # not registered: the recorded medal
    assert report["total_gold_medals"] == 1 and report["total_medals"] == 2


def test_cli_grade_names_the_mode_and_the_grader(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from dojoflow.cli import app

    summary, _ = _import(tmp_path, monkeypatch, ("tables",))
    spec, prepared = _prepared("tables", tmp_path)
    pd.read_csv(prepared.answers).assign(note="x").to_csv(tmp_path / "extra.csv", index=False)
    result = CliRunner().invoke(app, ["grade", str(tmp_path / "extra.csv"), "--task", "tables"])
    assert result.exit_code == 0, result.output
    assert "grading mode: mlebench" in result.output and "unexpected extra columns: note" in result.output
    assert "external" not in result.output and "the competition's own grader" in result.output
    strict = CliRunner().invoke(app, ["grade", str(tmp_path / "extra.csv"), "--task", "tables", "--mode",
                                      "mlebench-strict", "--json"])
    assert strict.exit_code == 1 and json.loads(strict.output)["grading_mode"] == "mlebench-strict"
