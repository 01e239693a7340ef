"""The LLM client against a real local HTTP endpoint: request shape, retries, accounting, prices, budget,
cache, key redaction; reply parsing helpers; the agent registry with entry-point plugins."""

from __future__ import annotations

import sys

import pytest

from dojoflow.agents.llm_base import extract_code, extract_json
from dojoflow.agents.react import parse_action
from dojoflow.llm import BudgetExceeded, LLMClient, LLMError, approx_tokens, load_prices, price_for

from scripted_llm_server import ScriptedLLMServer

SECRET = "sk-test-SECRET-123456"
MESSAGES = [{"role": "user", "content": "Say hello."}]


def client(server, tmp_path, **kwargs) -> LLMClient:
    kwargs.setdefault("cache_dir", tmp_path / "cache")
    return LLMClient("gpt-4o-mini", server.base_url, backoff_s=0.01, **kwargs)


def test_request_shape_key_and_accounting(tmp_path, monkeypatch):
    monkeypatch.setenv("DOJOFLOW_LLM_API_KEY", SECRET)
    with ScriptedLLMServer(["hello there"]) as server:
        llm = client(server, tmp_path)
        response = llm.chat(MESSAGES)
        assert response.text == "hello there" and not response.cached
        body, headers = server.requests[0], server.headers[0]
        assert "temperature" not in body and body["model"] == "gpt-4o-mini" and body["messages"] == MESSAGES
        assert headers["authorization"] == f"Bearer {SECRET}"
        assert SECRET not in repr(llm)
        assert response.completion_tokens == approx_tokens("hello there")
        assert response.prompt_tokens == server.usage["prompt_tokens"]
        expected = (response.prompt_tokens * 0.15 + response.completion_tokens * 0.60) / 1e6
        assert response.cost_usd == pytest.approx(expected)
        llm.chat(MESSAGES, temperature=0.3)
        assert server.requests[1]["temperature"] == 0.3
        step = llm.take_step_usage().to_info()
        assert step["llm_calls"] == 2 and step["tokens"] == llm.episode.tokens and step["cost_usd"] > 0


def test_retries_on_5xx_and_429_then_succeeds(tmp_path):
    with ScriptedLLMServer(["ok"], statuses=[503, 429]) as server:
        llm = client(server, tmp_path)
        assert llm.chat(MESSAGES).text == "ok"
        assert server.count == 3 and llm.episode.retries == 2


def test_non_retryable_status_and_unreachable_endpoint_fail_cleanly_without_the_key(tmp_path):
    with ScriptedLLMServer(["never"], statuses=[400]) as server:
        llm = client(server, tmp_path, api_key=SECRET)
        with pytest.raises(LLMError) as info:
            llm.chat(MESSAGES)
        assert server.count == 1 and "HTTP 400" in str(info.value) and SECRET not in str(info.value)
    llm = LLMClient("m", "http://127.0.0.1:9/v1", api_key=SECRET, max_retries=2, backoff_s=0.01, cache=False)
    with pytest.raises(LLMError, match="after 3 attempts") as info:
        llm.chat(MESSAGES)
    assert SECRET not in str(info.value)


def test_cache_replays_identical_requests_without_http(tmp_path):
    with ScriptedLLMServer(["first", "second", "third"]) as server:
        llm = client(server, tmp_path)
        replies = [llm.chat(MESSAGES).text, llm.chat(MESSAGES).text]  # same request twice: two samples
        assert replies == ["first", "second"] and server.count == 2
        again = client(server, tmp_path)  # a re-run of the episode
        replayed = [again.chat(MESSAGES), again.chat(MESSAGES)]
        assert [r.text for r in replayed] == replies and server.count == 2
        assert all(r.cached and r.cost_usd == 0 for r in replayed) and again.episode.cache_hits == 2
        assert again.episode.tokens == llm.episode.tokens  # tokens still count (same decisions on replay)
        again.reset_budget(cache_salt="seed=1")  # another seed: its own samples
        assert again.chat(MESSAGES).text == "third" and server.count == 3


def test_token_budget_raises_budget_exceeded(tmp_path):
    with ScriptedLLMServer(["a fairly long reply " * 10]) as server:
        llm = client(server, tmp_path, token_budget=30)
        llm.chat(MESSAGES)
        with pytest.raises(BudgetExceeded):
            llm.chat([{"role": "user", "content": "more"}])
        llm.reset_budget()
        llm.chat([{"role": "user", "content": "new episode"}])


def test_missing_usage_is_estimated_and_prices_file_extends_the_table(tmp_path, monkeypatch):
    prices = tmp_path / "prices.yaml"
    prices.write_text("my-local-model: {input_per_mtok: 1.0, output_per_mtok: 2.0}\n")
    monkeypatch.setenv("DOJOFLOW_LLM_PRICES", str(prices))
    assert price_for("my-local-model", load_prices()).output_per_mtok == 2.0
    assert price_for("gpt-4o-2024-08-06", load_prices()).input_per_mtok == 2.5
    assert price_for("gpt-4o-mini-2024-07-18", load_prices()).input_per_mtok == 0.15
    assert not price_for("unknown-model", load_prices()).known
    with ScriptedLLMServer(["hi"], include_usage=False) as server:
        llm = LLMClient("my-local-model", server.base_url, cache_dir=tmp_path / "c")
        response = llm.chat(MESSAGES)
        assert response.usage_estimated and response.completion_tokens == approx_tokens("hi")
        assert response.cost_usd == pytest.approx((response.prompt_tokens + 2 * response.completion_tokens) / 1e6)


def test_reply_parsing():
    assert extract_code("plan\n```python\nprint(1)\n```\n```\nx\n```") == "print(1)"
    assert extract_json('thinking... ```json\n{"type": "submit"}\n```') == {"type": "submit"}
    assert extract_json('I will do {"type": "request_info"} now') == {"type": "request_info"}
    action = parse_action('{"type": "execute_code"}\n```python\nprint("a {b}")\n```')
    assert action.type == "execute_code" and action.code == 'print("a {b}")'
    for bad in ('{"type": "execute_code"', '{"type": "fly"}', "no json here"):
        with pytest.raises(ValueError):
            parse_action(bad)


def test_registry_builds_agents_and_loads_entry_point_plugins(tmp_path, monkeypatch):
    from dojoflow.agents.registry import available_agents, make_agent

    assert make_agent("baseline", model=None).name == "baseline"
    for name in ("react", "aide", "star"):
        agent = make_agent(name, model="m", base_url="http://127.0.0.1:9/v1", cache=False)
        assert agent.name == name and agent.client.model == "m"
    with pytest.raises(ValueError, match="known agents"):
        make_agent("nope")
    with pytest.raises(ValueError, match="model"):
        make_agent("react")
    with pytest.raises(TypeError, match="api_key"):  # keys are never options (options get recorded)
        make_agent("react", model="m", api_key=SECRET)
    monkeypatch.setenv("MY_PROVIDER_KEY", SECRET)
    agent = make_agent("aide", model="m", api_key_env="MY_PROVIDER_KEY", cache=False)
    assert agent.client._api_key == SECRET and SECRET not in repr(agent.client)
    agent.set_episode_dir(tmp_path / "episode")
    assert agent.artifacts_dir == str(tmp_path / "episode" / "agent")
    dist = tmp_path / "myplugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: myplugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[dojoflow.agents]\nmyagent = myplugin_agent:make\n")
    (tmp_path / "myplugin_agent.py").write_text(
        "from dojoflow.agents.baseline import BaselineAgent\n"
        "def make(**options):\n    agent = BaselineAgent(**options)\n    agent.name = 'myagent'\n    return agent\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "myagent" in available_agents()
    assert make_agent("myagent", models=1).name == "myagent"
    sys.modules.pop("myplugin_agent", None)
