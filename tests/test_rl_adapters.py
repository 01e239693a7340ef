"""The trainer adapters against the real libraries (the ``rl`` extra): TRL, verifiers, SkyRL-gym.

Skipped with the reason when the extra is not installed (``pip install -e .[rl]``).
"""

from __future__ import annotations

import asyncio
import json

import pytest

from dojoflow.rl.config import RolloutConfig, environment_accepts
from dojoflow.rl.policy import solution_code

TASK = "iris-species"
SOLVE = solution_code(0, 0)


def _need(module: str):
    return pytest.importorskip(module, reason=f"the rl extra is not installed ({module} missing): pip install -e .[rl]")


def test_trl_environment_contract_and_rewards():
    _need("trl")
    from transformers.utils import get_json_schema

    from dojoflow.rl.trl_env import REWARD_FUNCS, DojoflowTRLEnv, trl_dataset, trl_environment_factory

    factory = trl_environment_factory(RolloutConfig(max_steps=3))
    env = factory()  # TRL calls the factory with no arguments
    tools = [name for name in dir(env) if not name.startswith("_") and callable(getattr(env, name)) and name != "reset"]
    assert sorted(tools) == ["execute_code", "request_info", "submit", "validate_code"]
    schemas = {name: get_json_schema(getattr(env, name)) for name in tools}  # what TRL renders in the prompt
    assert schemas["execute_code"]["function"]["parameters"]["required"] == ["code"]
    assert schemas["submit"]["function"]["parameters"]["properties"]["step"]["type"] == "integer"
    row = trl_dataset([TASK])[0]
    overview = env.reset(**row)  # TRL passes every dataset column
    assert "Data structure" in overview
    assert "feedback" in env.execute_code(SOLVE).lower()
    env.submit()
    with pytest.raises(Exception, match="over"):  # TRL feeds a tool's exception back to the model
        env.execute_code(SOLVE)
    other = DojoflowTRLEnv(RolloutConfig(max_steps=3))
    other.reset(task=TASK, seed=1)  # stops without submitting: the reward function grades the best so far
    final, best = (f(environments=[env, other]) for f in REWARD_FUNCS)
    assert final[0] > 0 and best[0] > 0 and final[1] == 0.0 and best[1] == 0.0
    first_episode = env._live().env.episode_id
    env.reset(**row)  # TRL reuses instances: reset starts a fresh episode
    assert env._live().env.episode_id != first_episode and not env._live().done and env._live().step_rewards == []


def test_trl_grpo_trainer_accepts_the_environment(tmp_path):
    _need("trl")
    from trl import GRPOConfig, GRPOTrainer

    from dojoflow.rl.grpo_demo import build_policy
    from dojoflow.rl.trl_env import REWARD_FUNCS, trl_dataset, trl_environment_factory

    model, tokenizer = build_policy(tmp_path / "policy", tool_template=True)
    args = GRPOConfig(output_dir=str(tmp_path / "out"), per_device_train_batch_size=2, num_generations=2,
                      max_completion_length=8, max_steps=1, report_to=[], use_cpu=True, logging_steps=1)
    trainer = GRPOTrainer(model=model, processing_class=tokenizer, args=args, train_dataset=trl_dataset([TASK]),
                          reward_funcs=REWARD_FUNCS, environment_factory=trl_environment_factory())
    names = sorted(t.__name__ for t in trainer.tools)
    assert names == ["execute_code", "request_info", "submit", "validate_code"]


def test_verifiers_load_environment_runs_a_group_against_a_model_server():
    vf = _need("verifiers")
    from dojoflow.rl.verifiers_env import load_environment

    from scripted_llm_server import ScriptedLLMServer

    env = load_environment([TASK], max_steps=3, max_turns=3)
    assert isinstance(env, vf.MultiTurnEnv)
    row = env.get_dataset()[0]
    assert row["info"]["dojoflow_task"] == TASK
    replies = [json.dumps({"type": "execute_code", "code": SOLVE}), '{"type": "submit"}']

    with ScriptedLLMServer(lambda request: replies[sum(m["role"] == "assistant" for m in request["messages"]) % 2]
                           ) as server:
        client = vf.ClientConfig(api_base_url=server.base_url, api_key_var="DOJOFLOW_TEST_KEY")
        inputs = [{"prompt": row["prompt"], "example_id": 0, "info": row["info"], "answer": ""} for _ in range(2)]
        import os

        os.environ.setdefault("DOJOFLOW_TEST_KEY", "test")
        outputs = asyncio.run(env.run_group(inputs, client, "scripted", {}))
    assert len(outputs) == 2
    for out in outputs:
        assert out["reward"] > 0, out.get("error")
        assert out["metrics"]["masked"] == 0.0 and out["metrics"]["best_step_reward"] > 0


def test_skyrl_text_env_contract():
    skyrl_gym = _need("skyrl_gym")
    from skyrl_gym.envs.base_text_env import BaseTextEnv

    from dojoflow.rl.skyrl_env import register_skyrl

    env = skyrl_gym.make(register_skyrl(), env_config={"max_steps": 3, "max_turns": 3},
                         extras={"extra_info": {"task": TASK}, "seed": 2})
    assert isinstance(env, BaseTextEnv)
    prompt, meta = env.init([{"role": "user", "content": "Solve it."}])
    assert len(prompt) == 1 and "Data structure" in prompt[0]["content"] and meta["task"] == TASK
    out = env.step(f"Let me fit a model.\n```python\n{SOLVE}```")
    assert not out["done"] and out["reward"] > 0 and out["observations"][0]["role"] == "user"
    out = env.step('{"type": "submit"}')
    assert out["done"] and out["observations"] == [] and out["reward"] == out["metadata"]["final_reward"] > 0
    assert env.get_metrics()["steps"] == 2
    env.close()
    with pytest.raises(Exception, match="task"):
        skyrl_gym.make("dojoflow", extras={})


@pytest.mark.skipif(not environment_accepts("feedback"), reason="this dojoflow's MLEEnvironment has no feedback=")
def test_feedback_protocol_reaches_the_environment():
    from dojoflow.rl.session import EpisodeSession

    session = EpisodeSession(TASK, RolloutConfig(max_steps=2, feedback="format-only"))
    try:
        session.start()
        assert session.env.feedback.name == "format-only"
    finally:
        session.close()
