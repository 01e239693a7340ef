"""Group rollouts and the rollout record: real episodes in warm bwrap sandboxes, scripted policies."""

from __future__ import annotations

import json

import pytest

from dojoflow.errors import UnknownTaskError, UsageError
from dojoflow.rl.config import RolloutConfig, dataset_rows, resolve_task
from dojoflow.rl.policy import PolicyTurn, ScriptedPolicy, solution_code
from dojoflow.rl.records import RolloutRecord, read_records, write_records
from dojoflow.rl.rollout import RolloutPool, group_seeds, run_rollout
from dojoflow.rl.session import EpisodeSession
from dojoflow.rl.text_actions import parse_action_text

TASK = "iris-species"


@pytest.fixture(scope="module")
def slot():
    """One warm sandbox for the module's episodes (a worker start costs seconds on a loaded machine)."""
    from dojoflow.rl.slot import RolloutSlot

    shared = RolloutSlot()
    yield shared
    shared.close()


def test_text_actions_parse_json_fences_and_code():
    assert parse_action_text('ok {"type": "submit", "step": 1} done') == {"type": "submit", "step": 1}
    assert parse_action_text('```json\n{"type": "request_info"}\n```') == {"type": "request_info"}
    fenced = parse_action_text("plan\n```python\nprint(1)\n```")
    assert fenced == {"type": "execute_code", "code": "print(1)\n"}
    assert parse_action_text("no action here") == "no action here"


def test_tasks_by_id_or_folder_and_bad_refs(tmp_path):
    folder = resolve_task(TASK).folder
    assert resolve_task(str(folder)).id == TASK
    rows = dataset_rows([TASK, folder], repeats=2, seed=5)
    assert [r["seed"] for r in rows] == [5, 6, 7, 8]
    assert rows[1]["task"] == str(folder.resolve()) and rows[0]["prompt"][0]["role"] == "user"
    with pytest.raises(UnknownTaskError, match="known tasks"):
        dataset_rows(["no-such-task"])
    with pytest.raises(UsageError, match="task.yaml"):
        resolve_task(tmp_path)
    with pytest.raises(UsageError):
        RolloutConfig(reward_mode="nope")


def test_session_rewards_and_truncation_by_turns(slot):
    config = RolloutConfig(max_steps=4, max_turns=2)
    policy = ScriptedPolicy(code_steps=5)  # never submits within 2 turns
    record = run_rollout(TASK, policy, seed=3, config=config, group_id="g", index=0, slot=slot)
    assert record.error is None, record.error
    assert record.turns == 2 and record.steps == 2 and len(record.step_rewards) == 2
    assert record.truncated_by == "turns" and not record.masked  # out of turns is not a timeout
    assert all(0.0 <= r <= 1.0 for r in record.step_rewards) and max(record.step_rewards) > 0
    assert record.final is not None and record.final["part"] == "private" and record.final_reward > 0
    assert [m["role"] for m in record.completion] == ["assistant", "user"] * 2 + ["user"]
    assert record.prompt[1]["content"].startswith("#") or "Data structure" in record.prompt[1]["content"]


def test_step_timeout_is_masked(slot):
    config = RolloutConfig(max_steps=3, step_timeout_s=1.0)
    session = EpisodeSession(TASK, config, seed=0, slot=slot)
    try:
        session.start()
        text, reward, done = session.act({"type": "execute_code", "code": "import time\ntime.sleep(30)\n"})
        assert reward == 0.0 and not done and "time" in text.lower()
        session.act({"type": "submit"})
        assert session.done and session.truncated_by == "step-timeout" and session.masked
    finally:
        session.close()


def test_policy_failure_and_token_ids_are_recorded(slot):
    class Broken:
        def __call__(self, messages, *, seed):
            raise RuntimeError("the model server went away")

    record = run_rollout(TASK, Broken(), seed=0, config=RolloutConfig(max_steps=2), slot=slot)
    assert record.masked and record.truncated_by == "harness-error" and "model server" in record.error

    class WithTokens:
        def __call__(self, messages, *, seed):
            return PolicyTurn('{"type": "submit"}', prompt_ids=[1, 2], completion_ids=[3, 4], logprobs=[-0.1, -0.2])

    record = run_rollout(TASK, WithTokens(), seed=0, config=RolloutConfig(max_steps=2), slot=slot)
    assert record.tokens[0].completion_ids == [3, 4] and record.tokens[0].logprobs == [-0.1, -0.2]
    assert record.final_reward == 0.0 and record.final["valid"] is False  # submitted nothing


@pytest.mark.slow  # two worker processes, each starting warm sandboxes (~40 s on 2 loaded cores)
def test_group_in_parallel_processes(tmp_path):
    config = RolloutConfig(max_steps=4)
    with RolloutPool(2) as pool:
        group = pool.group("penguins-body-mass", ScriptedPolicy(code_steps=1), 4, base_seed=10, config=config)
        again = pool.group(TASK, ScriptedPolicy(code_steps=1), 2, config=config)
    assert [r.index for r in group.records] == [0, 1, 2, 3]
    assert [r.seed for r in group.records] == [10, 11, 12, 13]
    assert len({r.episode_id for r in group.records}) == 4 and len({r.worker for r in group.records}) >= 1
    assert all(r.error is None and r.truncated_by is None for r in group.records), [r.error for r in group.records]
    assert len(set(group.rewards)) > 1  # the seeds pick different models: GRPO sees a spread
    path = write_records(tmp_path / "g.jsonl", group.records)
    back = read_records(path)
    assert [r.key for r in back] == [r.key for r in group.records]
    assert isinstance(back[0], RolloutRecord)
    assert json.loads(path.read_text().splitlines()[0])["task"] == "penguins-body-mass"
    with pytest.raises(UsageError):
        group_seeds(3, [1, 2])
    # the pool's workers keep their warm sandboxes: the second group starts no worker for a task already seen
    assert all(r.error is None and r.final_reward > 0 for r in again.records)


def test_slot_reuses_the_warm_worker_and_starts_each_episode_clean():
    from dojoflow.rl.slot import RolloutSlot

    slot = RolloutSlot()  # a fresh slot: the test counts its worker starts
    try:
        first = EpisodeSession(TASK, RolloutConfig(max_steps=3), slot=slot)
        first.start()
        first.act({"type": "execute_code", "code": "open('scratch.txt', 'w').write('x')\nprint('hi')\n"})
        assert (slot.workspace / "scratch.txt").exists()
        first.act({"type": "submit"})
        second = EpisodeSession(TASK, RolloutConfig(max_steps=3), slot=slot)
        second.start()
        text, _, _ = second.act({"type": "execute_code", "code": "import os\nprint(sorted(os.listdir('.')))\n"})
        assert "scratch.txt" not in text and second.startup_s == 0.0 and first.startup_s > 0
        _, reward, _ = second.act({"type": "execute_code", "code": solution_code(0, 0)})
        assert reward > 0  # the public data is still there for the slot's next episode
        assert slot.sandbox.workers_started == 1
        assert first.env.episode_dir != second.env.episode_dir and (first.env.step_dir(0) / "code.py").exists()
    finally:
        slot.close()
