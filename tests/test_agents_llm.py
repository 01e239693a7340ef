"""The LLM scaffolds (ReAct, AIDE, MLE-STAR) complete real episodes on a built-in task against a scripted
OpenAI-compatible HTTP endpoint: each branch of each scaffold is exercised, tokens and cost are recorded per
step, re-runs replay from the response cache with no HTTP call, and a useless model ends episodes cleanly."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from dojoflow.agents.aide import AIDEAgent
from dojoflow.agents.react import ReActAgent
from dojoflow.agents.star import STARAgent
from dojoflow.flows.episode import EpisodeConfig, drive_episode

from scripted_llm_server import (
    BROKEN_SCRIPT,
    NUMERIC_ONLY_PREPROCESS,
    ScriptedLLMServer,
    fenced,
    last_user,
    penguins_script,
    stage_of,
)

TASK = "penguins-body-mass"


def episode(settings, agent, max_steps):
    return drive_episode(EpisodeConfig(task_id=TASK, max_steps=max_steps, track=False), settings=settings,
                         agent=agent)


def assert_accounted(result, server):
    """Every step records tokens and cost; the totals match what the endpoint served, priced as gpt-4o-mini."""
    infos = [s["agent"] for s in result.trajectory]
    assert all("tokens" in i and "cost_usd" in i for i in infos), infos
    total = sum(i["tokens"] for i in infos)
    prompt, completion = server.usage["prompt_tokens"], server.usage["completion_tokens"]
    assert total == prompt + completion > 0
    assert sum(i["llm_calls"] for i in infos) == server.count
    assert sum(i["cost_usd"] for i in infos) == pytest.approx((prompt * 0.15 + completion * 0.60) / 1e6, rel=1e-4)
    return total


# -- ReAct ----------------------------------------------------------------------------------------------------
def react_responder(body):
    user = last_user(body)
    if user.startswith("Your reply could not be used"):
        return 'Sorry. ```json\n{"type": "request_info"}\n```'
    observations = sum(m["role"] == "user" and m["content"].startswith("Observation:") for m in body["messages"])
    if observations == 0:
        return 'I will look at the data first: {"type": "request_info"'  # malformed: repaired next
    if observations == 1:
        return 'Try a quick script.\n{"type": "execute_code"}\n' + fenced(BROKEN_SCRIPT)
    if observations == 2:
        return "The column does not exist; fix it.\n" + fenced(json.dumps(
            {"type": "execute_code", "code": penguins_script("ridge")}), "json")
    return '{"type": "submit"}'


def react_agent(server, tmp_path, **kwargs):
    return ReActAgent(model="gpt-4o-mini", base_url=server.base_url, cache_dir=str(tmp_path / "cache"), **kwargs)


@pytest.mark.slow  # over ~8 s on 2 cores: CI runs it with -m slow
def test_react_repairs_bad_json_debugs_and_submits_then_replays_from_cache(settings, tmp_path):
    with ScriptedLLMServer(react_responder) as server:
        result = episode(settings, react_agent(server, tmp_path), max_steps=6)
        assert result.valid, result.errors
        actions = [s["action"]["type"] for s in result.trajectory]
        assert actions == ["request_info", "execute_code", "execute_code", "submit"]
        assert result.trajectory[1]["errors"] and result.trajectory[2]["feedback_score"] is not None
        assert result.trajectory[0]["agent"]["llm_calls"] == 2  # the malformed reply and its repair
        assert result.final_step == 2
        assert_accounted(result, server)
        assert all(s["agent"]["cost_usd"] > 0 for s in result.trajectory)
        calls = server.count
        replay = episode(settings, react_agent(server, tmp_path), max_steps=6)
        assert server.count == calls, "a re-run must not call the endpoint"
        assert replay.score == result.score and [s["action"] for s in replay.trajectory] == \
            [s["action"] for s in result.trajectory]
        assert sum(s["agent"]["cost_usd"] for s in replay.trajectory) == 0
        assert sum(s["agent"]["cache_hits"] for s in replay.trajectory) == calls


def test_react_context_is_truncated_and_token_budget_ends_cleanly(settings, tmp_path):
    def failing(body):
        return '{"type": "execute_code"}\n' + fenced(BROKEN_SCRIPT)

    with ScriptedLLMServer(failing) as server:
        agent = react_agent(server, tmp_path, token_budget=4000, context_tokens=1200)
        result = episode(settings, agent, max_steps=12)
        last = result.trajectory[-1]
        assert last["action"]["type"] == "submit" and "token budget" in last["agent"]["end_reason"]
        assert result.steps < 12 and not result.valid
        assert any("truncated]" in m["content"] for m in server.requests[-1]["messages"])


def test_api_key_never_reaches_the_sandbox_observations_or_trajectory(settings, tmp_path, monkeypatch):
    secret = "sk-test-NEVER-LEAK-42"
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    probe = "import os\nprint(sorted(os.environ.items()))"

    def reply(body):
        if any(m["content"].startswith("Observation:") for m in body["messages"]):
            return '{"type": "submit"}'
        return '{"type": "execute_code"}\n' + fenced(probe)

    with ScriptedLLMServer(reply) as server:
        agent = react_agent(server, tmp_path)
        result = episode(settings, agent, max_steps=3)
        assert server.headers[0]["authorization"] == f"Bearer {secret}"
        assert "OPENAI_API_KEY" not in result.trajectory[0]["observation"]
        episode_dir = Path(result.episode_dir)
        for path in episode_dir.rglob("*"):
            if path.is_file() and path.suffix in (".txt", ".jsonl", ".py", ".json"):
                assert secret not in path.read_text(errors="ignore"), path
        assert secret not in json.dumps(server.requests) and secret not in repr(agent.client)


# -- AIDE -----------------------------------------------------------------------------------------------------
def aide_responder():
    seen = Counter()

    def reply(body):
        stage = stage_of(body)
        seen[stage] += 1
        if stage == "draft":
            if seen["draft"] == 1:
                return "Plan: a quick look.\n" + fenced(BROKEN_SCRIPT)
            return "Plan: ridge regression on one-hot features.\n" + fenced(penguins_script("ridge"))
        if stage == "debug":
            assert "no_such_column" in last_user(body)
            return "Plan: use the real columns with a random forest.\n" + fenced(penguins_script("forest"))
        if stage == "improve":
            assert "Memory" in last_user(body)
            return "Plan: gradient boosting instead.\n" + fenced(penguins_script("boosting"))
        raise AssertionError(f"unexpected prompt: {last_user(body)[:200]}")
    return reply


def test_aide_drafts_debugs_improves_and_saves_the_tree(settings, tmp_path):
    with ScriptedLLMServer(aide_responder()) as server:
        agent = AIDEAgent(model="gpt-4o-mini", base_url=server.base_url, cache_dir=str(tmp_path / "cache"),
                          num_drafts=2, debug_prob=1.0, max_debug_depth=2, artifacts_dir=str(tmp_path / "tree"))
        result = episode(settings, agent, max_steps=6)
        assert result.valid, result.errors
        stages = [n.stage for n in agent.nodes]
        assert stages[:3] == ["draft", "draft", "debug"] and "improve" in stages
        assert agent.nodes[0].buggy and not agent.nodes[2].buggy and agent.nodes[2].parent == 0
        best = agent.best_node
        assert result.final_step == best.step and result.trajectory[-1]["action"] == {"type": "submit",
                                                                                         "step": best.step}
        scores = [n.score for n in agent.nodes if not n.buggy]
        assert best.score == min(scores)  # rmse: lower is better, from the environment's feedback
        tree = json.loads((tmp_path / "tree" / "aide_tree.json").read_text())
        assert tree["best_node"] == best.id and len(tree["nodes"]) == len(agent.nodes)
        page = (tmp_path / "tree" / "aide_tree.html").read_text()
        assert "<script" not in page and "node 2" in page
        assert_accounted(result, server)


# -- MLE-STAR -------------------------------------------------------------------------------------------------
LEAKY = penguins_script("ridge").replace("pipe.fit(train[features], train[TARGET])",
                                         "pipe.fit(pd.concat([train[features], test[features]]).iloc[:len(train)], "
                                         "train[TARGET])")


def star_responder():
    seen = Counter()

    def reply(body):
        stage = stage_of(body)
        seen[stage] += 1
        user = last_user(body)
        if stage == "initial solution":
            if "Ridge" in user:
                return "Ridge.\n" + fenced(LEAKY)
            if "HistGradientBoosting" in user:
                return "Boosting.\n" + fenced(BROKEN_SCRIPT)  # fails: debugged
            return "Forest.\n" + fenced(penguins_script("forest"))
        if stage == "data leakage check":
            if seen[stage] == 1:
                return "LEAKAGE: yes - test rows are concatenated before fitting.\n" + fenced(penguins_script("ridge"))
            return "LEAKAGE: no"
        if stage == "debug":
            return "Fixed.\n" + fenced(penguins_script("forest"))
        if stage == "merge":
            return "Average both.\n" + fenced(penguins_script("voting"))
        if stage == "data usage check":
            return "All the provided information is used."
        if stage == "ablation":
            return ("### Ablation: model\n" + fenced(penguins_script("dummy")) + "\n### Ablation: preprocessing\n"
                    + fenced(penguins_script("ridge", NUMERIC_ONLY_PREPROCESS)))
        if stage == "extract block":
            assert "The block that matters most is: model." in user
            line = next(text for text in user.splitlines() if text.startswith("model = "))
            return fenced(line) + "\nPlan: use gradient boosting."
        if stage == "refine block":
            return fenced("model = " + "HistGradientBoostingRegressor(max_iter=80, random_state=0)")
        if stage == "plan":
            return "Plan: a random forest with more trees."
        if stage == "ensemble plan":
            return "Average the predictions of the two best solutions."
        if stage == "ensemble":
            return fenced(penguins_script("voting").replace("n_estimators=60", "n_estimators=40"))
        raise AssertionError(f"unexpected prompt stage {stage!r}: {user[:200]}")
    reply.seen = seen
    return reply


@pytest.mark.slow  # over ~8 s on 2 cores: CI runs it with -m slow
def test_star_candidates_merge_ablation_refinement_ensemble_and_checks(settings, tmp_path):
    responder = star_responder()
    with ScriptedLLMServer(responder) as server:
        agent = STARAgent(model="gpt-4o-mini", base_url=server.base_url, cache_dir=str(tmp_path / "cache"),
                          num_candidates=2, outer_loops=1, inner_loops=2, ablation_variants=2, ensemble_rounds=1,
                          max_debug_rounds=1, artifacts_dir=str(tmp_path / "star"))
        result = episode(settings, agent, max_steps=12)
        assert result.valid, result.errors
        events = {e["stage"] for e in agent.log}
        assert {"leakage", "evaluate", "data_usage", "ablation", "ablation_choice", "refine", "ensemble"} <= events
        assert next(e for e in agent.log if e["stage"] == "ablation_choice")["block"] == "model"
        assert any(e["stage"] == "leakage" and e["found"] and e["fixed"] for e in agent.log)
        notes = [s["agent"].get("note", "") for s in result.trajectory]
        assert any("leakage found and fixed" in n for n in notes)
        assert "pd.concat" not in result.trajectory[0]["action"]["code"]  # the fixed script ran
        assert any("(debug 1)" in n for n in notes) and any("ensemble" in n for n in notes)
        refine = [e for e in agent.log if e["stage"] == "refine"]
        assert refine and refine[0]["score"] is not None
        assert result.trajectory[-1]["action"]["type"] == "submit" and result.steps <= 12
        assert (tmp_path / "star" / "star_log.json").is_file()
        assert_accounted(result, server)


# -- a model that never produces usable output ----------------------------------------------------------------
@pytest.mark.parametrize("cls", [ReActAgent, AIDEAgent, STARAgent])
def test_useless_model_ends_the_episode_cleanly(settings, tmp_path, cls):
    with ScriptedLLMServer(["I am unable to help with that."]) as server:
        agent = cls(model="gpt-4o-mini", base_url=server.base_url, cache_dir=str(tmp_path / "cache"))
        result = episode(settings, agent, max_steps=8)
        last = result.trajectory[-1]
        assert last["action"]["type"] == "submit" and last["agent"]["end_reason"]
        assert not result.valid and result.steps <= 8 and server.count <= 8
        assert result.final_reason == "no valid submission was made during the episode"


def test_unreachable_endpoint_ends_the_episode_cleanly(settings, tmp_path):
    agent = ReActAgent(model="m", base_url="http://127.0.0.1:9/v1", max_retries=1, cache=False)
    agent.client.backoff_s = 0.01
    result = episode(settings, agent, max_steps=4)
    assert result.steps == 1 and "LLM endpoint failed" in result.trajectory[0]["agent"]["end_reason"]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["aide", "star"])
def test_tree_and_star_episodes_replay_from_the_cache(settings, tmp_path, name):
    responder = aide_responder() if name == "aide" else star_responder()
    make = {"aide": lambda url: AIDEAgent(model="m", base_url=url, cache_dir=str(tmp_path / "cache"), num_drafts=2),
            "star": lambda url: STARAgent(model="m", base_url=url, cache_dir=str(tmp_path / "cache"),
                                          num_candidates=2, outer_loops=1, inner_loops=1, ensemble_rounds=1)}[name]
    with ScriptedLLMServer(responder) as server:
        first = episode(settings, make(server.base_url), max_steps=8)
        calls = server.count
        replay = episode(settings, make(server.base_url), max_steps=8)
        assert server.count == calls and calls > 0
        assert [s["action"] for s in replay.trajectory] == [s["action"] for s in first.trajectory]
        assert replay.score == first.score


@pytest.mark.slow
@pytest.mark.parametrize("name", ["react", "aide", "star"])
def test_token_costs_with_default_parameters(settings, tmp_path, name):
    """Tokens per episode with each scaffold's default parameters, 15 steps, on penguins-body-mass (the
    figures in docs/agents.md): ``pytest -m slow -s tests/test_agents_llm.py -k token_costs``."""
    responder = {"react": react_responder, "aide": aide_responder(), "star": star_responder()}[name]
    cls = {"react": ReActAgent, "aide": AIDEAgent, "star": STARAgent}[name]
    with ScriptedLLMServer(responder) as server:
        agent = cls(model="gpt-4o-mini", base_url=server.base_url, cache_dir=str(tmp_path / "cache"))
        result = episode(settings, agent, max_steps=15)
        assert result.valid, result.errors
        tokens = assert_accounted(result, server)
        print(f"\n{name}: {tokens} tokens (prompt {server.usage['prompt_tokens']}, completion "
              f"{server.usage['completion_tokens']}), {server.count} LLM calls, {result.steps} steps, "
              f"${sum(s['agent']['cost_usd'] for s in result.trajectory):.5f} at gpt-4o-mini prices")
