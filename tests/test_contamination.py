"""The contamination probe (dojo/obfuscation.py): the obfuscated description hides the task's names, the agent sees
it in its observation and in data/description.md, the variant is recorded, reports never pool the variants, and
``dojoflow contamination`` compares them."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest
from typer.testing import CliRunner

from dojoflow.dojo.actions import Action
from dojoflow.dojo.env import MLEEnvironment
from dojoflow.dojo.obfuscation import OBFUSCATED, obfuscated_description
from dojoflow.errors import UsageError
from dojoflow.flows.config import EpisodeConfig
from dojoflow.flows.episode import drive_episode
from dojoflow.flows.sweep import episode_config
from dojoflow.flows.sweep_spec import parse_sweep_spec
from dojoflow.reporting.contamination import contamination_table
from dojoflow.reporting.pooling import report_sections
from dojoflow.tasks_catalog.registry import get_task, list_tasks


@pytest.mark.parametrize("task", ["iris-species", "penguins-body-mass", "trump-tweets-source", "wine-cultivar"])
def test_the_paraphrase_removes_the_names_and_keeps_the_columns(task):
    spec = get_task(task)
    text = obfuscated_description(spec)
    assert text.startswith("# Task\n") and spec.title not in text
    for word in {"iris", "penguins", "palmer", "trump", "tweets", "wine"} & set(re.split(r"\W+", spec.id.lower())):
        outside_code = re.sub(r"`[^`]*`", "", text).lower()
        assert not re.search(rf"\b{word}", outside_code), (word, text)
    for column in (spec.submission.id_column, *spec.submission.target_columns):
        assert column in text
    assert obfuscated_description(spec) == text  # deterministic


def test_every_builtin_task_has_an_obfuscated_description():
    for spec in list_tasks():
        if (spec.folder / "description_obfuscated.md").is_file():
            continue
        text = obfuscated_description(spec)
        assert "## Overview" in text and spec.metric_name in text, spec.id


def test_an_obfuscated_episode_shows_the_obfuscated_description_everywhere(settings):
    env = MLEEnvironment("iris-species", settings=settings, description=OBFUSCATED, max_steps=3)
    obs, _ = env.reset()
    assert "Iris" not in obs.text and "Fisher" not in obs.text and "# Task" in obs.text
    obs, *_ = env.step(Action("execute_code", code="print(open('data/description.md').read())"))
    assert "# Task" in obs.text and "Fisher" not in obs.text
    env.close()
    original = MLEEnvironment("iris-species", settings=settings, max_steps=3)
    first, _ = original.reset()
    assert "Fisher" in first.text and original.public_dir == original.data.public
    original.close()


def test_the_variant_is_recorded_and_checked(settings):
    from dojoflow.storage.results import load_results

    result = drive_episode(EpisodeConfig(task_id="iris-species", max_steps=2, track=False, description=OBFUSCATED,
                                         integrity=()), settings=settings)
    assert result.description_variant == OBFUSCATED and result.valid
    row = load_results(settings.results_dir).set_index("episode_id").loc[result.episode_id]
    assert row["description_variant"] == OBFUSCATED
    with pytest.raises(UsageError, match="unknown description variant 'scrambled'"):
        EpisodeConfig(task_id="iris-species", description="scrambled")


def test_an_imported_competition_uses_its_description_obfuscated(tmp_path, monkeypatch):
    from test_catalog_mlebench import write_competition, write_raw

    from dojoflow.tasks_catalog.mlebench import import_competitions

    monkeypatch.setenv("DOJOFLOW_HOME", str(tmp_path / "home"))
    comps = tmp_path / "competitions"
    folder = write_competition(comps)
    (folder / "description_obfuscated.md").write_text("# Task\n\nPredict a boolean column from passenger data.\n")
    monkeypatch.setenv("DOJOFLOW_MLEBENCH_RAW", str(write_raw(tmp_path / "raw")))
    done, failed = import_competitions(comps)
    assert failed == {}
    text = obfuscated_description(get_task("tiny-titanic"))
    assert text.startswith("# Task\n\nPredict a boolean column") and "Titanic" not in text
    assert "dojoflow notes" in text


def _rows(variant: str, scores: list[float], agent: str = "baseline", task: str = "iris-species") -> list[dict]:
    return [{"episode_id": f"{agent}-{task}-{variant}-{i}", "agent": agent, "task": task, "task_splits": "lite",
             "seed": i, "valid": True, "score": s, "higher_is_better": True, "medal": None, "gold": False,
             "any_medal": False, "above_median": True, "human_rank": s, "steps": 3, "wall_time_s": 1.0, "tokens": 0,
             "cost_usd": 0.0, "integrity_passed": True, "leaderboard_provenance": "reference", "model": "",
             "status": "completed", "feedback_protocol": "public-test", "provenance": "{}", "provenance_key": "k",
             "description_variant": variant} for i, s in enumerate(scores)]


def test_reports_never_pool_the_variants_and_compare_them():
    frame = pd.DataFrame(_rows("original", [0.9, 0.8]) + _rows("obfuscated", [0.6, 0.5]))
    sections = report_sections(frame)
    assert [(s.protocol, s.description, s.episodes) for s in sections] == [
        ("public-test", "obfuscated", 2), ("public-test", "original", 2)]
    assert "obfuscated description" in sections[0].heading and "obfuscated" not in sections[1].heading
    assert sections[0].to_dict()["description_variant"] == "obfuscated"
    table = contamination_table(frame)
    row = table.iloc[0]
    assert (row["agent"], row["task"]) == ("baseline", "iris-species")
    assert row["score_original"] == pytest.approx(0.85) and row["score_obfuscated"] == pytest.approx(0.55)
    assert row["drop"] == pytest.approx(0.3) and row["seeds_original"] == 2
    lower = pd.DataFrame(_rows("original", [1.0]) + _rows("obfuscated", [2.0]))
    lower["higher_is_better"] = False
    assert contamination_table(lower).iloc[0]["drop"] == pytest.approx(1.0)  # an error that grew is a drop
    with pytest.raises(UsageError, match="both the original and the obfuscated"):
        contamination_table(pd.DataFrame(_rows("original", [0.9])))


def test_the_contamination_command(tmp_path):
    from dojoflow.cli import app

    path = tmp_path / "results.parquet"
    pd.DataFrame(_rows("original", [0.9]) + _rows("obfuscated", [0.7])).to_parquet(path)
    out = CliRunner().invoke(app, ["contamination", "--results", str(path), "--json"])
    assert out.exit_code == 0, out.output
    rows = json.loads(out.output)
    assert rows[0]["drop"] == pytest.approx(0.2)
    report = CliRunner().invoke(app, ["report", "--results", str(path)])
    assert report.exit_code == 0 and "Contamination probe" in report.output


def test_sweep_specs_take_integrity_description_and_judge():
    spec = parse_sweep_spec({"name": "probe", "agents": ["baseline"], "tasks": ["iris-species"],
                             "description": "obfuscated", "integrity": ["plagiarism", "judge"],
                             "judge": {"model": "m", "base_url": "http://127.0.0.1:1/v1"}})
    config = episode_config(spec, spec.agents[0], "iris-species", 0)
    assert config.description == OBFUSCATED and config.integrity == ("plagiarism", "judge")
    assert config.judge == {"model": "m", "base_url": "http://127.0.0.1:1/v1"}
    assert parse_sweep_spec(spec.to_dict()) == spec
    default = parse_sweep_spec({"name": "d", "agents": ["baseline"], "tasks": ["iris-species"]})
    assert default.description == "original" and "plagiarism" in default.integrity
    from dojoflow.errors import SweepSpecError

    with pytest.raises(SweepSpecError, match="unknown integrity checks: spelling"):
        parse_sweep_spec({"name": "d", "agents": ["baseline"], "tasks": ["iris-species"], "integrity": ["spelling"]})
    with pytest.raises(SweepSpecError, match="'scrambled' is not one of"):
        parse_sweep_spec({"name": "d", "agents": ["baseline"], "tasks": ["iris-species"], "description": "scrambled"})


@pytest.mark.slow
def test_the_run_command_takes_the_options(settings):
    from dojoflow.cli import app

    out = CliRunner().invoke(app, ["run", "--task", "iris-species", "--max-steps", "2", "--no-prefect", "--json",
                                   "--description", "obfuscated", "--integrity", "plagiarism,leakage"])
    assert out.exit_code == 0, out.output
    result = json.loads(out.output.strip().splitlines()[-1])
    assert result["description_variant"] == "obfuscated"
    assert result["integrity"]["integrity_checks"] == ["plagiarism", "leakage"]
    bad = CliRunner().invoke(app, ["run", "--task", "iris-species", "--integrity", "nope", "--no-prefect"])
    assert bad.exit_code != 0 and "unknown integrity checks: nope" in bad.output


def test_the_gym_environment_takes_the_variant(settings):
    from dojoflow.dojo.gym_env import DojoflowEnv

    env = DojoflowEnv("iris-species", settings=settings, description=OBFUSCATED, max_steps=2)
    obs, _ = env.reset(seed=0)
    assert "# Task" in obs["text"] and "Fisher" not in obs["text"]
    env.close()
    with pytest.raises(UsageError, match="unknown description variant"):
        DojoflowEnv("iris-species", description="scrambled")
