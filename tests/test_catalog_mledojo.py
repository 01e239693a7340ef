"""MLE-Dojo imports: competition folders the tests write in MLE-Dojo's layout (a metric class, an empty
prepare, a direction that disagrees with the board), a baseline episode whose feedback is placed on the public
board and its final grade on the private one, and all 202 shared leaderboard pairs."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from dojoflow.tasks_catalog.grading import feedback_board, grade_submission, task_leaderboard
from dojoflow.tasks_catalog.leaderboard import load_leaderboard
from dojoflow.tasks_catalog.mledojo import (
    NO_PREPARATION,
    import_competitions,
    is_empty_prepare,
    metric_direction,
    summary_rows,
)
from dojoflow.tasks_catalog.preparation import prepare_task
from dojoflow.tasks_catalog.registry import get_task, task_sources

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
DOJO_BOARDS = SHARED / "mledojo-leaderboards"
DIRECTIONS = Path(__file__).parent / "mledojo_metric_directions.csv"

# a small metric class of the tests' own, shaped as MLE-Dojo's (CompetitionMetrics subclass, evaluate(y_true,
# y_pred), validate_submission raising InvalidSubmissionError, the direction as __init__'s default)
METRIC = '''
from typing import Any

import pandas as pd
from sklearn.metrics import accuracy_score

from mledojo.metrics.base import CompetitionMetrics, InvalidSubmissionError


class TinyMetrics(CompetitionMetrics):
    def __init__(self, value: str = "Transported", higher_is_better: bool = {higher}):
        super().__init__(higher_is_better)
        self.value = value

    def evaluate(self, y_true: pd.DataFrame, y_pred: pd.DataFrame) -> float:
        y_true = y_true.sort_values("PassengerId").reset_index(drop=True)
        y_pred = y_pred.sort_values("PassengerId").reset_index(drop=True)
        return accuracy_score(y_true[self.value].astype(str), y_pred[self.value].astype(str))

    def validate_submission(self, submission: Any, ground_truth: Any) -> str:
        if len(submission) != len(ground_truth):
            raise InvalidSubmissionError("row counts differ")
        if set(submission.columns) != set(ground_truth.columns):
            raise InvalidSubmissionError(f"columns must be {{sorted(ground_truth.columns)}}")
        if not set(submission[self.value].astype(str)) <= {{"True", "False"}}:
            raise InvalidSubmissionError("Transported must be True or False")
        return "Submission is valid."
'''

EMPTY_PREPARE = "# This file was automatically generated\n# Add your data preparation code here\n"

RAW_PREPARE = '''
from pathlib import Path

import pandas as pd


def prepare(raw: Path, public: Path, private: Path):
    frame = pd.read_csv(raw / "train.csv")
    train, test = frame.iloc[:140], frame.iloc[140:]
    train.to_csv(public / "train.csv", index=False)
    test.drop(columns="Transported").to_csv(public / "test.csv", index=False)
    sample = test[["PassengerId"]].assign(Transported=False)
    sample.to_csv(public / "sample_submission.csv", index=False)
    test[["PassengerId", "Transported"]].to_csv(private / "test_answer.csv", index=False)
'''


def board(scores: list[float]) -> str:
    return "rank,score\n" + "".join(f"{i},{s:.4f}\n" for i, s in enumerate(scores, start=1))


def write_competition(root: Path, cid: str, *, higher: bool = True, prepare: str = EMPTY_PREPARE,
                      public: list[float] | None = None, private: list[float] | None = None) -> Path:
    """A competition folder in MLE-Dojo's layout: info/ (description, both boards) and utils/ (metric, prepare)."""
    folder = root / cid
    (folder / "info").mkdir(parents=True)
    (folder / "utils").mkdir()
    (folder / "info" / "description.txt").write_text(f"# {cid}\n\nPredict `Transported`.\n")
    public = public if public is not None else [0.99 - 0.01 * i for i in range(40)]
    private = private if private is not None else [0.95 - 0.01 * i for i in range(30)]
    (folder / "info" / "public_leaderboard.csv").write_text(board(public))
    (folder / "info" / "private_leaderboard.csv").write_text(board(private))
    (folder / "utils" / "metric.py").write_text(METRIC.format(higher=higher))
    (folder / "utils" / "prepare.py").write_text(prepare)
    return folder


def frame(n: int = 200, start: int = 0) -> pd.DataFrame:
    ids = [f"{i:04d}_01" for i in range(start, start + n)]
    return pd.DataFrame({"PassengerId": ids, "Age": [20 + i % 40 for i in range(n)],
                         "Spend": [float((i * 7) % 13) for i in range(n)],
                         "Transported": [(i % 40) > 25 for i in range(n)]})


def write_prepared(root: Path, cid: str) -> Path:
    """Already-prepared data in MLE-Dojo's layout: <root>/<id>/public and <root>/<id>/private/test_answer.csv."""
    public, private = root / cid / "public", root / cid / "private"
    public.mkdir(parents=True)
    private.mkdir(parents=True)
    train, test = frame(140), frame(60, start=140)
    train.to_csv(public / "train.csv", index=False)
    test.drop(columns="Transported").to_csv(public / "test.csv", index=False)
    test[["PassengerId"]].assign(Transported=False).to_csv(public / "sample_submission.csv", index=False)
    test[["PassengerId", "Transported"]].to_csv(private / "test_answer.csv", index=False)
    return root


@pytest.fixture()
def checkout(tmp_path, monkeypatch):
    """An MLE-Dojo-like checkout: mledojo/competitions/ with four competitions and competition.json."""
    monkeypatch.setenv("DOJOFLOW_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("DOJOFLOW_MLEDOJO_PREPARED", raising=False)
    monkeypatch.delenv("DOJOFLOW_MLEDOJO_RAW", raising=False)
    comps = tmp_path / "MLE-Dojo" / "mledojo" / "competitions"
    write_competition(comps, "tiny-dojo")
    write_competition(comps, "tiny-empty")
    # the metric says lower-is-better, the board is ordered best-high first
    write_competition(comps, "tiny-flipped", higher=False)
    write_competition(comps, "tiny-raw", prepare=RAW_PREPARE)
    broken = write_competition(comps, "tiny-broken")
    (broken / "utils" / "metric.py").unlink()
    (comps / "competition.json").write_text(json.dumps({
        "Evaluation": {"MLE-Lite": ["tiny-dojo"], "Tabular": ["tiny-flipped"]},
        "Training": ["tiny-empty", "tiny-raw", "tiny-broken"]}))
    prepared = write_prepared(tmp_path / "prepared", "tiny-dojo")
    raw = tmp_path / "raw" / "tiny-raw"
    raw.mkdir(parents=True)
    frame().to_csv(raw / "train.csv", index=False)
    return tmp_path / "MLE-Dojo", prepared, tmp_path / "raw"


def test_import_reports_each_competition_with_a_reason(checkout):
    root, prepared, raw = checkout
    outcomes = {o.id: o for o in import_competitions(root, prepared=prepared, raw_dir=raw)}
    assert set(outcomes) == {"tiny-dojo", "tiny-empty", "tiny-flipped", "tiny-raw", "tiny-broken"}
    broken = outcomes["tiny-broken"]
    assert not broken.ok and "utils/metric.py is required but missing" in broken.reason
    dojo = outcomes["tiny-dojo"]
    assert dojo.ok and dojo.preparation == "prepared data" and dojo.higher_is_better and not dojo.direction_flag
    assert dojo.splits == ["mledojo-eval", "mledojo-lite"]
    empty = outcomes["tiny-empty"]
    assert empty.ok and empty.preparation == NO_PREPARATION and NO_PREPARATION in empty.reason
    assert outcomes["tiny-raw"].preparation == "competition prepare.py"
    flipped = outcomes["tiny-flipped"]
    assert flipped.ok and flipped.higher_is_better is False and flipped.board_higher_is_better is True
    assert "lower-is-better" in flipped.direction_flag and "private board" in flipped.direction_flag
    assert summary_rows(list(outcomes.values())) == {"imported": 4, "failed": 1, "need prepared data": 2,
                                                     "direction disagrees with board": 1}

    spec = get_task("tiny-dojo")
    assert spec.task_type == "mledojo-import" and spec.grader.kind == "mledojo"
    assert spec.grader.function == "TinyMetrics" and spec.higher_is_better
    assert (spec.submission.id_column, spec.submission.target_columns) == ("PassengerId", ("Transported",))
    assert spec.leaderboard.boards == "public+private" and task_sources(spec) == ["mledojo"]
    assert "mledojo-lite" in spec.splits and feedback_board(spec) == "public"
    assert task_leaderboard(spec, "public").num_teams == 40 and task_leaderboard(spec, "private").num_teams == 30
    flipped_spec = get_task("tiny-flipped")  # the metric's direction is used; the disagreement is on record
    assert flipped_spec.direction == "lower-is-better" and "direction_flag" in flipped_spec.tags


def test_empty_prepare_without_prepared_data_says_what_to_supply(checkout):
    root, _, _ = checkout
    import_competitions(root, ids=["tiny-empty"])
    from dojoflow.config import get_settings

    with pytest.raises(Exception, match="no preparation: supply prepared data.*--prepared DIR"):
        prepare_task(get_task("tiny-empty"), get_settings().data_dir)


def test_empty_prepare_template_is_recognised(tmp_path):
    (tmp_path / "p.py").write_text(EMPTY_PREPARE)
    assert is_empty_prepare(tmp_path / "p.py") and is_empty_prepare(tmp_path / "missing.py")
    (tmp_path / "p.py").write_text(RAW_PREPARE)
    assert not is_empty_prepare(tmp_path / "p.py")


def test_grading_uses_the_competitions_metric_and_validation(checkout):
    root, prepared, raw = checkout
    import_competitions(root, ids=["tiny-dojo", "tiny-raw"], prepared=prepared, raw_dir=raw)
    from dojoflow.config import get_settings

    spec = get_task("tiny-dojo")
    data = prepare_task(spec, get_settings().data_dir)
    answers = pd.read_csv(data.answers)
    perfect = data.root / "perfect.csv"
    answers.to_csv(perfect, index=False)
    public, private = (grade_submission(spec, data, perfect, part) for part in ("public", "private"))
    assert public.valid and public.score == 1.0 and public.placement.num_teams == 40  # the public board
    assert private.valid and private.placement.num_teams == 30 and private.medal == "gold"  # the private board
    bad = data.root / "bad.csv"
    answers.assign(Transported="maybe").to_csv(bad, index=False)
    result = grade_submission(spec, data, bad)
    assert not result.valid and "validate_submission rejected it" in result.errors[0]
    assert "Transported must be True or False" in result.errors[0]
    missing = data.root / "missing.csv"
    answers.iloc[5:].to_csv(missing, index=False)
    assert "ids of the test set are missing" in grade_submission(spec, data, missing).errors[0]
    # the competition's own prepare.py on raw data, run in the preparation sandbox
    raw_data = prepare_task(get_task("tiny-raw"), get_settings().data_dir)
    assert len(pd.read_csv(raw_data.answers)) == 60


def test_baseline_episode_feedback_on_public_board_final_on_private(checkout):
    root, prepared, _ = checkout
    import_competitions(root, ids=["tiny-dojo"], prepared=prepared)
    from dojoflow.config import get_settings
    from dojoflow.flows.episode import EpisodeConfig, drive_episode
    from dojoflow.reporting.episode import summary_markdown

    result = drive_episode(EpisodeConfig(task_id="tiny-dojo", max_steps=3, track=False, reward_mode="public_rank",
                                         agent_options={"models": 1}), settings=get_settings())
    assert result.valid, (result.errors, [s["observation"][-400:] for s in result.trajectory])
    assert result.feedback_board == "public" and result.best_feedback_human_rank is not None
    assert result.provenance["grading_mode"] == "mledojo"
    public_teams = task_leaderboard(get_task("tiny-dojo"), "public").num_teams
    final = task_leaderboard(get_task("tiny-dojo"), "private").place(result.score)
    assert result.human_rank == final.human_rank and result.position == final.position  # final: private board
    scored = [s for s in result.trajectory if s["feedback_score"] is not None]
    assert scored and all(s["feedback_human_rank"] ==
                          task_leaderboard(get_task("tiny-dojo"), "public").place(s["feedback_score"]).human_rank
                          for s in scored) and public_teams == 40
    assert any(s["reward"] == s["feedback_human_rank"] for s in scored)  # public_rank reward
    assert "HumanRank on Kaggle's public leaderboard" in scored[0]["observation"]
    row = result.results_row()
    assert row["feedback_board"] == "public" and row["best_feedback_human_rank"] == result.best_feedback_human_rank
    assert "best feedback (public board)" in summary_markdown(result.to_dict())
    from dojoflow.reporting.render import Report, to_markdown

    report = Report.from_results(pd.DataFrame([row]))
    assert report.public_feedback["baseline"]["best_feedback_human_rank"] == result.best_feedback_human_rank
    assert "as on Kaggle's public leaderboard" in to_markdown(report)


def test_public_rank_reward_needs_a_public_board():
    from dojoflow.dojo.env import MLEEnvironment
    from dojoflow.errors import UsageError

    with pytest.raises(UsageError, match="public_rank.*breast-cancer"):
        MLEEnvironment("breast-cancer", reward_mode="public_rank")


def test_cli_import_exits_non_zero_on_failures_and_lists_sources(checkout):
    from typer.testing import CliRunner

    from dojoflow.cli import app

    root, prepared, _ = checkout
    runner = CliRunner()
    result = runner.invoke(app, ["tasks", "import-mledojo", str(root), "--prepared", str(prepared), "--json"])
    assert result.exit_code == 1, result.output
    report = json.loads(result.output)
    assert report["summary"]["failed"] == 1 and report["summary"]["imported"] == 4
    ok = runner.invoke(app, ["tasks", "import-mledojo", str(root), "--split", "lite", "--prepared", str(prepared)])
    assert ok.exit_code == 0 and "tiny-dojo" in ok.output, ok.output
    listed = runner.invoke(app, ["tasks", "list", "--json"])
    rows = {r["id"]: r for r in json.loads(listed.output)}
    assert rows["tiny-dojo"]["sources"] == ["mledojo"] and rows["tiny-dojo"]["boards"] == "public+private"
    assert rows["breast-cancer"]["sources"] == ["built-in"] and rows["breast-cancer"]["boards"] == "private"
    shown = runner.invoke(app, ["tasks", "show", "tiny-flipped"])
    assert "public leaderboard" in shown.output and "direction" in shown.output and "disagree" not in shown.output


@pytest.mark.parametrize("order", ["mlebench-first", "mledojo-first"])
def test_competition_in_mlebench_and_mledojo_is_one_task(checkout, tmp_path, order):
    """Either import order (and importing MLE-bench again afterwards) gives the same one task."""
    from test_catalog_mlebench import write_competition as write_mlebench
    from typer.testing import CliRunner

    from dojoflow.cli import app
    from dojoflow.tasks_catalog import mlebench

    root, _, _ = checkout
    (root / "mledojo" / "competitions" / "tiny-dojo" / "info" / "private_leaderboard.csv").write_text(
        board([0.97 - 0.01 * i for i in range(25)]))  # MLE-Dojo's copy of the board differs from MLE-bench's
    mlebench_folder = write_mlebench(tmp_path / "mlebench", "tiny-dojo").parent
    if order == "mlebench-first":
        mlebench.import_competitions(mlebench_folder)
        outcome = import_competitions(root, ids=["tiny-dojo"])[0]
        assert outcome.ok and outcome.sources == ["mlebench", "mledojo"]
    else:
        assert import_competitions(root, ids=["tiny-dojo"])[0].ok
        assert get_task("tiny-dojo").task_type == "mledojo-import"
        mlebench.import_competitions(mlebench_folder)
    mlebench.import_competitions(mlebench_folder)  # a re-import of MLE-bench keeps MLE-Dojo's part
    spec = get_task("tiny-dojo")
    assert spec.task_type == "mlebench-import" and task_sources(spec) == ["mlebench", "mledojo"]
    assert spec.leaderboard.public_file and "mledojo-lite" in spec.splits and "boards differ" in spec.tags["boards"]
    shown = CliRunner().invoke(app, ["tasks", "show", "tiny-dojo"])
    assert "sources: mlebench, mledojo" in shown.output and "boards differ" in shown.output


def _metric_directions() -> dict[str, bool]:
    with DIRECTIONS.open() as fh:
        rows = csv.DictReader(line for line in fh if not line.startswith("#"))
        return {r["competition"]: r["higher_is_better"] == "True" for r in rows}


@pytest.mark.skipif(not DOJO_BOARDS.is_dir(), reason="needs ../shared/data/mledojo-leaderboards")
def test_all_202_shared_leaderboard_pairs_load_with_thresholds(capsys):
    """Every public/private pair loads with the metric's direction, thresholds compute, and the direction the
    private board's order implies is reported next to the metric's."""
    directions = _metric_directions()
    ids = sorted(p.name for p in DOJO_BOARDS.iterdir() if p.is_dir())
    assert len(ids) == 202 and set(ids) == set(directions)
    lines, disagree = [], []
    for cid in ids:
        higher = directions[cid]
        for part in ("public", "private"):
            b = load_leaderboard(DOJO_BOARDS / cid / f"{part}.csv", higher)
            limits = b.thresholds()
            assert b.num_teams >= 1 and set(limits) == {"gold", "silver", "bronze", "median"}
            assert b.at_least_as_good(limits["gold"], limits["bronze"])
        inferred = load_leaderboard(DOJO_BOARDS / cid / "private.csv").higher_is_better
        if inferred != higher:
            disagree.append(cid)
        lines.append(f"{cid}: metric {'higher' if higher else 'lower'}, board {'higher' if inferred else 'lower'}")
    print("\n".join(lines))
    print(f"{len(disagree)} of 202 boards' order disagrees with the metric: {', '.join(disagree)}")
    assert len(disagree) < 202 // 4  # the metric is the authority; a disagreement is reported, not fatal


def test_metric_direction_reads_the_class_without_running_it(tmp_path):
    (tmp_path / "metric.py").write_text(METRIC.format(higher=False) + "\nraise SystemExit('never run')\n")
    assert metric_direction(tmp_path / "metric.py") == ("TinyMetrics", False)


@pytest.mark.skipif(not DOJO_BOARDS.is_dir(), reason="needs ../shared/data/mledojo-leaderboards")
@pytest.mark.slow  # over ~8 s on 2 cores: CI runs it with -m slow
def test_catalog_lists_200_plus_tasks_with_real_human_leaderboards(tmp_path, monkeypatch):
    """All 202 competitions imported (folders written from the shared boards, with the tests' metric class and
    an empty prepare): `dojoflow tasks list` shows 200+ tasks with real human leaderboards."""
    from typer.testing import CliRunner

    from dojoflow.cli import app

    monkeypatch.setenv("DOJOFLOW_HOME", str(tmp_path / "home"))
    directions = _metric_directions()
    comps = tmp_path / "competitions"
    for cid in sorted(directions):
        write_competition(comps, cid, higher=directions[cid])
        for part in ("public", "private"):
            (comps / cid / "info" / f"{part}_leaderboard.csv").write_text(
                (DOJO_BOARDS / cid / f"{part}.csv").read_text())
    outcomes = import_competitions(comps)
    assert all(o.ok for o in outcomes), [o.reason for o in outcomes if not o.ok]
    listed = CliRunner().invoke(app, ["tasks", "list", "--json"])
    rows = json.loads(listed.output)
    human = [r for r in rows if r["leaderboard"] == "human" and "mledojo" in r["sources"]]
    assert len(human) == 202 and all(r["boards"] == "public+private" for r in human)
    table = CliRunner().invoke(app, ["tasks", "list"], env={"COLUMNS": "200"})
    assert "with real human leaderboards" in table.output


def test_results_rows_written_before_the_new_columns_still_load(tmp_path):
    from dojoflow.storage.results import load_results

    pd.DataFrame([{"episode_id": "old", "task": "x", "score": 1.0}]).to_parquet(tmp_path / "old.parquet")
    frame_ = load_results(tmp_path)
    assert frame_.loc[0, "feedback_board"] == "" and frame_.loc[0, "best_feedback_human_rank"] is None
    assert yaml  # (yaml is used by the merge test's fixture module)
