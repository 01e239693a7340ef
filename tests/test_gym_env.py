"""The gymnasium environment: API conformance, a scripted episode, leak-free feedback, budgets, export."""

from __future__ import annotations

import json

import gymnasium as gym
import pyarrow.parquet as pq
import pytest
from gymnasium.utils.env_checker import check_env

import dojoflow.dojo.gym_env  # noqa: F401 - registers the environments
from dojoflow.dojo.gym_env import OBSERVATION_KINDS, DojoflowEnv
from dojoflow.storage.export import EpisodeFilter, export
from dojoflow.tasks_catalog.grading import load_answers

SAMPLE = "import shutil\nshutil.copy('data/sample_submission.csv', 'submission.csv')\n"


def test_check_env_passes_on_a_builtin_task(settings):
    env = gym.make("dojoflow/penguins-body-mass", max_steps=4, settings=settings)
    check_env(env.unwrapped)  # step determinism is skipped: the spec is marked nondeterministic (documented)
    assert env.spec.nondeterministic


def test_reset_options_switch_the_task(settings):
    env = DojoflowEnv("digits", max_steps=3, settings=settings)
    _, info = env.reset(seed=1, options={"task": "breast-cancer"})
    assert info["task"] == "breast-cancer" and info["observation"]["metric"] == "roc_auc"


def test_scripted_episode_through_the_raw_api(settings):
    env = DojoflowEnv("breast-cancer", max_steps=6, settings=settings)
    obs, info = env.reset(seed=0)
    assert OBSERVATION_KINDS[obs["kind"]] == "info" and obs["steps_left"] == 6 and "roc_auc" in obs["text"]

    obs, reward, terminated, truncated, info = env.step({"type": "request_info"})
    assert "Data structure" in obs["text"] and reward == 0.0 and not (terminated or truncated)

    failing = "import pandas as pd\ntrain = pd.read_csv('data/train.csv')\nprint(train['no_such_column'])\n"
    obs, reward, terminated, truncated, info = env.step({"type": "execute_code", "code": failing})
    assert "KeyError" in obs["text"] and "no_such_column" in obs["text"]
    assert info["observation"]["error"]["type"] == "runtime_error" and reward == 0.0

    fixed = ("import pandas as pd\nfrom sklearn.linear_model import LogisticRegression\n"
             "train, test = pd.read_csv('data/train.csv'), pd.read_csv('data/test.csv')\n"
             "X = train.drop(columns=['id', 'malignant'])\n"
             "model = LogisticRegression(max_iter=5000).fit(X, train['malignant'])\n"
             "pd.DataFrame({'id': test['id'], 'malignant': model.predict_proba(test[X.columns])[:, 1]})"
             ".to_csv('submission.csv', index=False)\n")
    obs, reward, terminated, truncated, info = env.step(json.dumps({"type": "execute_code", "code": fixed}))
    feedback = info["observation"]
    assert feedback["valid"] and feedback["feedback_score"] > 0.9
    assert reward == pytest.approx(feedback["human_rank"]) and 0 < reward <= 1

    obs, reward, terminated, truncated, info = env.step({"type": "validate_code", "code": fixed})
    assert info["observation"]["valid"] is True and info["observation"]["feedback_score"] is None and reward == 0.0

    obs, reward, terminated, truncated, info = env.step({"type": "submit", "step": 2})
    assert terminated and not truncated and reward == 0.0
    assert info["final"]["part"] == "private" and info["final"]["valid"] and info["final_step"] == 2
    assert info["final"]["score"] != feedback["feedback_score"]  # scored on other rows


def test_feedback_cannot_reveal_the_private_answers(settings):
    env = DojoflowEnv("digits", max_steps=4, settings=settings)
    env.reset(seed=0)
    answers = load_answers(env.inner.spec, env.inner.prepared, "all")
    public = answers["part"] == "public"
    crafted = answers["digit"].where(public, answers["digit"].map(lambda d: str((int(d) + 1) % 10)))
    (env.inner.workspace / "crafted.csv").write_text(
        "id,digit\n" + "\n".join(f"{i},{d}" for i, d in crafted.items()) + "\n")
    _, reward, _, _, info = env.step({"type": "execute_code", "code": "import shutil\n"
                                      "shutil.copy('crafted.csv', 'submission.csv')\n"})
    assert info["observation"]["feedback_score"] == 1.0 and reward == 1.0  # full feedback reward
    _, _, terminated, _, info = env.step({"type": "submit"})
    assert terminated and info["final"]["score"] == 0.0 and info["final"]["placement"]["medal"] is None


def test_space_samples_are_valid_actions(settings):
    env = DojoflowEnv("penguins-body-mass", max_steps=3, settings=settings)
    env.reset(seed=0)
    env.action_space.seed(0)
    for _ in range(3):
        obs, reward, terminated, truncated, _ = env.step(env.action_space.sample())
        assert obs in env.observation_space
        if terminated or truncated:
            break


@pytest.mark.parametrize("mode, expected", [("milestone", 0.4), ("score", -839.4692353), ("improvement", 0.0)])
def test_reward_modes(settings, mode, expected):
    env = DojoflowEnv("penguins-body-mass", max_steps=3, reward_mode=mode, settings=settings)
    env.reset(seed=0)
    _, reward, *_ = env.step({"type": "execute_code", "code": SAMPLE})
    assert reward == pytest.approx(expected)


def test_milestone_format_ok_for_an_invalid_but_well_formed_file(settings):
    env = DojoflowEnv("penguins-body-mass", max_steps=3, reward_mode="milestone", settings=settings)
    env.reset(seed=0)
    code = ("import pandas as pd\ns = pd.read_csv('data/sample_submission.csv')\n"
            "s.iloc[:-1].to_csv('submission.csv', index=False)\n")
    _, reward, *_ = env.step({"type": "execute_code", "code": code})
    assert reward == pytest.approx(0.2)


def test_cost_and_wall_time_budgets_truncate(settings):
    env = DojoflowEnv("penguins-body-mass", max_steps=10, cost_budget_usd=0.5, settings=settings)
    env.reset(seed=0)
    env.step({"type": "execute_code", "code": SAMPLE, "usage": {"tokens": 100, "cost_usd": 0.3}})
    _, _, terminated, truncated, info = env.step({"type": "get_history", "usage": {"cost_usd": 0.3}})
    assert truncated and not terminated and info["truncated_by"] == "cost" and info["final"]["valid"]

    env = DojoflowEnv("penguins-body-mass", max_steps=10, wall_time_s=0.0, settings=settings)
    env.reset(seed=0)
    _, _, _, truncated, info = env.step({"type": "request_info"})
    assert truncated and info["truncated_by"] == "wall-time" and not info["final"]["valid"]


def test_rl_export_rewards_equal_environment_rewards(settings, tmp_path):
    env = DojoflowEnv("penguins-body-mass", max_steps=5, settings=settings, agent_name="scripted-export")
    env.reset(seed=0)
    rewards = []
    for action in ({"type": "request_info"}, {"type": "execute_code", "code": SAMPLE},
                   {"type": "execute_code", "code": "raise SystemExit(3)"}, {"type": "submit"}):
        _, reward, terminated, truncated, _ = env.step(action)
        rewards.append(reward)
    assert terminated
    selection = EpisodeFilter(agent="scripted-export")
    summary = export(settings.episodes_dir, "rl", tmp_path / "rl.parquet", selection)
    table = pq.read_table(summary["parquet"]).to_pylist()
    assert summary["episodes"] == 1 and [row["reward"] for row in table] == rewards
    assert table[-1]["terminated"] and table[0]["return"] == pytest.approx(sum(rewards))

    sft = export(settings.episodes_dir, "sft", tmp_path / "sft.parquet", selection)
    rows = pq.read_table(sft["parquet"]).to_pylist()
    assert len(rows) == 1
    roles = [m["role"] for m in rows[0]["messages"]]
    assert roles[:2] == ["system", "user"] and roles[2:] == ["assistant", "user"] * 4
    assert json.loads(rows[0]["messages"][2]["content"]) == {"type": "request_info"}
    assert (tmp_path / "sft.jsonl").read_text().count("\n") == 1


def test_export_filters(tmp_path):
    with pytest.raises(ValueError, match="bad filter"):
        EpisodeFilter.parse(["colour=red"])
    selection = EpisodeFilter.parse(["medal=any", "valid=true"])
    assert selection.matches({"medal": "gold", "valid": True}) and not selection.matches({"medal": None, "valid": True})


def test_vector_env_steps_in_parallel_without_sharing_workspaces(settings):
    envs = gym.vector.AsyncVectorEnv([lambda: DojoflowEnv("penguins-body-mass", max_steps=3, settings=settings)] * 2,
                                     shared_memory=False)
    try:
        envs.reset(seed=[0, 1])
        actions = {"type": [2, 2], "code": [SAMPLE, "open('submission.csv', 'w').write('id\\n')"], "step": [-1, -1]}
        _, rewards, terminated, truncated, infos = envs.step(actions)
        assert rewards[0] > 0 and rewards[1] == 0.0
        assert infos["observation"]["valid"].tolist() == [True, False]
    finally:
        envs.close()


@pytest.mark.slow  # over ~8 s on 2 cores: CI runs it with -m slow
def test_gym_loop_and_episode_flow_give_the_same_trajectory(settings):
    from dojoflow.agents.baseline import BaselineAgent
    from dojoflow.dojo.observation import Observation
    from dojoflow.flows.episode import EpisodeConfig, drive_episode

    flowed = drive_episode(EpisodeConfig(task_id="penguins-body-mass", seed=4, max_steps=4, track=False),
                           settings=settings)
    env = DojoflowEnv("penguins-body-mass", max_steps=4, settings=settings)
    obs, info = env.reset(seed=4)
    agent = BaselineAgent()
    observation = Observation(obs["text"], OBSERVATION_KINDS[obs["kind"]], info["observation"])
    agent.reset(observation, 4)
    done = False
    while not done:
        obs, _, terminated, truncated, info = env.step(agent.act(observation).to_dict())
        observation = Observation(obs["text"], OBSERVATION_KINDS[obs["kind"]], info["observation"])
        done = terminated or truncated

    def strip(steps):
        return [(s["action"], s["reward"], s["feedback_score"], s["valid_submission"]) for s in steps]

    from dataclasses import asdict

    assert strip([asdict(s) for s in env.inner.history]) == strip(flowed.trajectory)


@pytest.mark.parametrize("action", [{"type": "execute_code", "code": 123}, {"type": "execute_code", "code": b"x=1"},
                                    {"type": "execute_code", "code": b"\xff\xfe"}, {"type": "execute_code",
                                                                                     "code": "print('\udcff')"},
                                    b"\xff{", {"type": 5}, {"type": "submit", "step": "3"}, 42, None,
                                    {"type": "execute_code", "code": ["print(1)"]}])
def test_a_bad_action_never_raises(settings, action):
    from dojoflow.dojo.gym_env import DojoflowEnv

    env = DojoflowEnv("iris-species", max_steps=3, settings=settings, sandbox="local")
    env.reset(seed=0)
    observation, reward, terminated, truncated, info = env.step(action)
    assert not terminated and reward == 0.0
    kind = info["observation"].get("error", {}).get("type")
    # bytes code that is valid UTF-8 is accepted and runs (no submission written)
    assert kind == "invalid_action" or action == {"type": "execute_code", "code": b"x=1"}, (action, observation)
    env.close()
