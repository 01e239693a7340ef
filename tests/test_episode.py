"""The environment and the baseline agent end to end, without Prefect (fast), plus failure handling."""

from __future__ import annotations

import pytest

from dojoflow.agents.baseline import BaselineAgent, write_script
from dojoflow.dojo.actions import Action, InvalidActionError
from dojoflow.dojo.env import MLEEnvironment
from dojoflow.flows.episode import EpisodeConfig, drive_episode
from dojoflow.infra.sandbox import ExecutionLimits
from dojoflow.storage.trajectory import read_trajectory

# digits (the largest of the three) with the slow tests: ~25 s on 2 cores
BUILTIN = ["breast-cancer", pytest.param("digits", marks=pytest.mark.slow), "penguins-body-mass"]


def _env(settings, task="penguins-body-mass", **kwargs) -> MLEEnvironment:
    env = MLEEnvironment(task, settings=settings, **kwargs)
    env.reset()
    return env


@pytest.mark.parametrize("task", BUILTIN)
def test_baseline_episode_is_valid_and_recorded(settings, task):
    result = drive_episode(EpisodeConfig(task_id=task, max_steps=4), settings=settings)
    assert result.valid, result.errors
    assert result.score is not None and 0.0 < result.human_rank <= 1.0
    assert result.leaderboard_provenance == "reference"
    assert result.integrity["passed"], result.integrity
    assert result.mlflow_run_id
    header, steps = read_trajectory(__import__("pathlib").Path(result.episode_dir) / "trajectory.jsonl")
    assert header["episode_id"] == result.episode_id and len(steps) == result.steps
    assert any(s["feedback_score"] is not None for s in steps)
    from dojoflow.storage.results import load_results

    rows = load_results(settings.results_dir).set_index("episode_id")
    assert rows.loc[result.episode_id, "score"] == result.score and rows.loc[result.episode_id, "valid"]


@pytest.mark.slow  # over ~8 s on 2 cores: CI runs it with -m slow
def test_same_seed_gives_same_score(settings):
    first = drive_episode(EpisodeConfig(task_id="breast-cancer", seed=3, max_steps=3, track=False), settings=settings)
    second = drive_episode(EpisodeConfig(task_id="breast-cancer", seed=3, max_steps=3, track=False), settings=settings)
    assert first.score == second.score
    assert [s["feedback_score"] for s in first.trajectory] == [s["feedback_score"] for s in second.trajectory]


@pytest.mark.parametrize("code, expected", [
    ("raise RuntimeError('agent bug')", "RuntimeError: agent bug"),
    ("while True:\n    pass", "timed out"),
    ("import sys\nchunk = 'x' * 1023 + '\\n'\nfor _ in range(100 * 1024):\n    sys.stdout.write(chunk)",
     "output limit exceeded"),
])
def test_failing_code_is_a_failed_step_and_the_episode_continues(settings, code, expected):
    env = MLEEnvironment("penguins-body-mass", settings=settings, max_steps=4,
                         limits=ExecutionLimits(timeout_s=3.0))
    env.reset()
    obs, reward, terminated, truncated, _ = env.step(Action("execute_code", code=code))
    assert expected in obs.text and obs.data["error"]["message"]
    assert reward == 0.0 and not terminated and not truncated
    info_obs, *_ = env.step({"type": "request_info"})  # the episode goes on
    assert "Data structure" in info_obs.text


def test_feedback_uses_public_part_and_final_uses_private(settings):
    env = _env(settings, "digits", max_steps=5)
    from dojoflow.tasks_catalog.grading import load_answers

    answers = load_answers(env.spec, env.prepared, "all")
    public = answers["part"] == "public"
    wrong = answers["digit"].where(public, answers["digit"].map(lambda d: str((int(d) + 1) % 10)))
    (env.workspace / "crafted.csv").write_text("id,digit\n" + "\n".join(f"{i},{d}" for i, d in wrong.items()) + "\n")
    code = "import shutil\nshutil.copy('crafted.csv', 'submission.csv')"
    obs, reward, *_ = env.step(Action("execute_code", code=code))
    assert obs.data["feedback_score"] == 1.0 and reward == 1.0
    _, _, terminated, _, info = env.step(Action("submit"))
    assert terminated and info["final"]["part"] == "private" and info["final"]["score"] == 0.0


def test_budget_exhaustion_truncates_and_grades_best(settings):
    env = _env(settings, "breast-cancer", max_steps=2)
    info = env.reset()[0].data
    env.step(Action("execute_code", code=write_script(info, 0, 0)))
    _, _, terminated, truncated, step_info = env.step({"type": "get_history"})
    assert truncated and not terminated
    assert step_info["final_step"] == 0 and step_info["final"]["valid"]
    assert "budget" in step_info["final_reason"]


def test_invalid_actions_are_observations_not_crashes(settings):
    env = _env(settings)
    for bad in ["not json", {"type": "dance"}, {"type": "execute_code"}, {"type": "submit", "bogus": 1}]:
        obs, reward, terminated, truncated, _ = env.step(bad)
        assert obs.kind == "error" and reward == 0.0 and not terminated
    with pytest.raises(InvalidActionError, match="valid types"):
        Action("dance")


def test_validate_code_checks_format_without_score(settings):
    env = _env(settings)
    obs, reward, *_ = env.step(Action("validate_code", code="import shutil\nshutil.copy('data/sample_submission.csv', "
                                                             "'submission.csv')"))
    assert obs.data["valid"] is True and obs.data["feedback_score"] is None and reward == 0.0
    obs, *_ = env.step(Action("validate_code", code="open('submission.csv', 'w').write('id,x\\n1,2\\n')"))
    assert obs.data["valid"] is False and "missing columns: body_mass_g" in obs.text


def test_agent_crash_ends_episode_cleanly(settings):
    class Crashing(BaselineAgent):
        def act(self, observation):
            raise ZeroDivisionError("agent crashed")

    result = drive_episode(EpisodeConfig(task_id="penguins-body-mass", max_steps=3, track=False),
                           settings=settings, agent=Crashing())
    assert not result.valid and result.trajectory[0]["agent"]["agent_error"].startswith("ZeroDivisionError")


def test_integrity_flags_constant_predictions(settings):
    env = _env(settings, "penguins-body-mass", max_steps=3)
    env.step(Action("execute_code", code="import shutil\nshutil.copy('data/sample_submission.csv', 'submission.csv')"))
    env.step(Action("submit"))
    from dojoflow.dojo.integrity import run_integrity_checks

    report = run_integrity_checks(env)
    checks = {c["name"]: c["passed"] for c in report["checks"]}
    assert checks == {"reproducible": True, "not_constant": False} and not report["passed"]
