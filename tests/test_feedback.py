"""Feedback protocols: what each tells the agent, that `validation` never reads the test answers, that
every result says which protocol it ran under, and sweeps under each protocol."""

from __future__ import annotations

import json
import os
import shutil

import pandas as pd
import pytest

from dojoflow.dojo.env import MLEEnvironment
from dojoflow.dojo.feedback import PROTOCOLS
from dojoflow.errors import UnknownNameError, UsageError
from dojoflow.flows.config import EpisodeConfig
from dojoflow.tasks_catalog.preparation import prepare_task
from dojoflow.tasks_catalog.registry import get_task
from dojoflow.tasks_catalog.validation_split import validation_view

TASK = "penguins-body-mass"  # regression on a small table; ids shared across train and test from one range

# predicts the training mean for every row of test.csv (whatever rows it holds)
MEAN_STEP = """
import pandas as pd
train, test = pd.read_csv("data/train.csv"), pd.read_csv("data/test.csv")
pd.DataFrame({"id": test["id"], "body_mass_g": train["body_mass_g"].mean()}).to_csv("submission.csv", index=False)
"""


def code(text: str) -> dict:
    return {"type": "execute_code", "code": text}


@pytest.fixture()
def env_for(settings):
    made: list[MLEEnvironment] = []

    def make(feedback: str) -> MLEEnvironment:
        env = MLEEnvironment(TASK, feedback=feedback, sandbox="local", settings=settings, max_steps=4)
        made.append(env)
        return env

    yield make
    for env in made:
        env.close()


def test_the_validation_view_moves_training_rows_among_the_test_inputs(settings):
    spec = get_task(TASK)
    prepared = prepare_task(spec, settings.data_dir)
    view = validation_view(spec, prepared)
    train, test = pd.read_csv(prepared.public / "train.csv"), pd.read_csv(prepared.public / "test.csv")
    v_train, v_test = pd.read_csv(view.public / "train.csv"), pd.read_csv(view.public / "test.csv")
    held = pd.read_csv(view.answers)
    assert len(held) == round(0.2 * len(train)) and len(v_train) == len(train) - len(held)
    assert set(held["id"]) <= set(train["id"]) and not set(held["id"]) & set(v_train["id"])
    assert set(v_test["id"]) == set(test["id"]) | set(held["id"])
    assert "body_mass_g" not in v_test.columns
    # the labels of the held-out rows are the training labels, not anything from the test answers
    labels = train.set_index("id").loc[held["id"], "body_mass_g"].to_numpy()
    assert (held["body_mass_g"].to_numpy() == labels).all()
    assert set(pd.read_csv(view.public / "sample_submission.csv")["id"]) == set(v_test["id"])
    # the test rows are not all first: held-out rows are shuffled in
    positions = v_test.index[v_test["id"].isin(held["id"])]
    assert positions.min() < len(test) - len(held)
    assert validation_view(spec, prepared).root == view.root  # built once, then reused


def test_a_validation_episode_never_reads_the_test_answers(env_for):
    env = env_for("validation")
    _, info = env.reset()
    assert info["feedback_protocol"] == "validation"
    private = env.data.private
    moved = private.with_name("private-moved-away")
    os.rename(private, moved)  # the instrument: during the episode the test answers do not exist at all
    try:
        obs, reward, *_ = env.step(code(MEAN_STEP))
        record = env.history[-1]
        assert record.valid_submission and record.feedback_score is not None and reward > 0, obs.text
        env.step({"type": "validate_code", "code": MEAN_STEP})
        assert env.history[-1].valid_submission, env.history[-1].errors
    finally:
        os.rename(moved, private)
    env.step({"type": "submit"})
    assert env.outcome is not None and env.outcome.grade.valid, env.outcome.grade.errors
    # the final grade scored the real test rows only (held-out rows stripped from the submission)
    final = pd.read_csv(env.step_dir(0) / "final_submission.csv")
    assert set(final["id"]) == set(pd.read_csv(env.data.public / "test.csv")["id"])


def test_the_instrument_catches_public_test_feedback(env_for):
    """The same instrument fails under public-test feedback, so the test above can fail."""
    env = env_for("public-test")
    env.reset()
    private = env.data.private
    moved = private.with_name("private-moved-away")
    os.rename(private, moved)
    try:
        with pytest.raises(OSError):
            env.step(code(MEAN_STEP))
    finally:
        os.rename(moved, private)


def test_format_only_checks_the_format_and_never_scores(env_for):
    env = env_for("format-only")
    env.reset()
    env.step(code(MEAN_STEP))
    good = env.history[-1]
    assert good.valid_submission and good.feedback_score is None and good.reward == 0.0
    obs, *_ = env.step(code("open('submission.csv', 'w').write('id,wrong\\n1,2\\n')"))
    bad = env.history[-1]
    assert not bad.valid_submission and any("missing columns" in e for e in bad.errors)
    env.step({"type": "submit"})
    assert env.outcome.step == 0 and env.outcome.grade.valid and "latest valid" in env.outcome.reason


def test_none_says_nothing_about_the_submission(env_for):
    env = env_for("none")
    obs, _ = env.reset()
    assert "no feedback on submissions" in obs.text
    obs, *_ = env.step(code("open('submission.csv', 'w').write('id,wrong\\n1,2\\n')"))
    record = env.history[-1]
    assert record.errors == [] and record.feedback_score is None and record.reward == 0.0
    assert "missing columns" not in obs.text


def test_unknown_protocols_and_unsupported_tasks_are_clear_errors(settings):
    with pytest.raises(UnknownNameError, match="public-test, validation, format-only, none"):
        EpisodeConfig(task_id=TASK, feedback="kaggle")
    spec = get_task(TASK)
    prepared = prepare_task(spec, settings.data_dir)
    fake = prepared.root.parent / "no-train-layout"
    shutil.rmtree(fake, ignore_errors=True)
    (fake / "public").mkdir(parents=True)
    from dojoflow.tasks_catalog.preparation import PreparedData

    with pytest.raises(UsageError, match="no train.csv and test.csv.*format-only"):
        validation_view(spec, PreparedData(spec.id, "no-train-layout", fake, True))
    shutil.rmtree(fake)


@pytest.mark.integration
@pytest.mark.parametrize("protocol", list(PROTOCOLS))
def test_a_sweep_runs_under_each_protocol_and_records_it(protocol, prefect_api, settings):
    from mlflow.tracking import MlflowClient

    from dojoflow.flows.prefect_sweep import sweep_flow
    from dojoflow.flows.sweep_spec import parse_sweep_spec
    from dojoflow.storage.results import load_results

    name = f"feedback-{protocol}"
    spec = parse_sweep_spec({"name": name, "agents": [{"name": "baseline", "options": {"models": 1}}],
                             "tasks": [TASK], "seeds": [0], "budget": {"max_steps": 2}, "feedback": protocol})
    states = {s["key"]: s["state"] for s in sweep_flow(spec.to_dict())}
    assert list(states.values()) == ["completed"]
    rows = load_results(settings.results_dir)
    row = rows[rows["sweep_id"] == name].iloc[0]
    assert row["feedback_protocol"] == protocol
    assert bool(row["leaderboard_comparable"]) == (protocol != "public-test")
    assert row["provenance_key"] and json.loads(row["provenance"])["feedback_protocol"] == protocol
    client = MlflowClient(settings.tracking_uri)
    experiment = client.get_experiment_by_name("dojoflow").experiment_id
    run = client.search_runs([experiment], f"tags.`dojoflow.sweep_id` = '{name}'")[0]
    assert run.data.params["feedback_protocol"] == protocol
    assert run.data.params["provenance_key"] == row["provenance_key"]
    header = json.loads((settings.episodes_dir / row["episode_id"] / "trajectory.jsonl").read_text().splitlines()[0])
    assert header["feedback_protocol"] == protocol and header["provenance"]["software"]["dojoflow"]
    report = (settings.sweeps_dir / name / "report.md").read_text()
    assert f"feedback protocol {protocol}" in report


def test_command_agents_run_under_format_only_feedback():
    """A command agent's only feedback is MLE-bench's validation endpoint (a format check)."""
    command = {"command": "python agent.py"}
    assert EpisodeConfig(task_id=TASK, command=command).protocol == "format-only"
    assert EpisodeConfig(task_id=TASK).protocol == "public-test"
    with pytest.raises(UsageError, match="format-only validation endpoint"):
        EpisodeConfig(task_id=TASK, command=command, feedback="validation")
