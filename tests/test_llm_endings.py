"""The LLM client and scaffolds against the endings a real server gives (issue 18): a default ``max_tokens``
per scaffold, ``finish_reason=length`` said to the model and counted, HTTP 400 ``context_length_exceeded``
answered by trimming the history (and an AIDE node recorded either way), a cache keyed by the endpoint and
every sampling parameter, and sampling options validated in one line. All against the scripted HTTP server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dojoflow.agents.aide import AIDEAgent
from dojoflow.agents.react import ReActAgent
from dojoflow.agents.registry import make_agent
from dojoflow.agents.star import STARAgent
from dojoflow.errors import ContextLengthError, UsageError
from dojoflow.flows.episode import EpisodeConfig, drive_episode
from dojoflow.llm import LLMClient

from scripted_llm_server import Reply, ScriptedLLMServer, context_length_error, fenced, last_user, penguins_script

MESSAGES = [{"role": "user", "content": "Say hello."}]


def test_each_scaffold_sends_a_default_max_tokens_and_the_user_value_wins(tmp_path):
    with ScriptedLLMServer(['{"type": "submit"}']) as server:
        for cls, expected in ((ReActAgent, 2048), (AIDEAgent, 4096), (STARAgent, 4096)):
            agent = cls(model="m", base_url=server.base_url, cache=False)
            agent.client.chat(MESSAGES)
            assert server.requests[-1]["max_tokens"] == expected == cls.default_max_tokens
        ReActAgent(model="m", base_url=server.base_url, cache=False, max_tokens=300).client.chat(MESSAGES)
        assert server.requests[-1]["max_tokens"] == 300


def test_sampling_options_are_sent_and_bad_ones_fail_in_one_line(tmp_path):
    with ScriptedLLMServer(["ok"]) as server:
        agent = make_agent("react", model="m", base_url=server.base_url, cache=False, top_p=0.9, stop=["END"],
                           seed=7)
        agent.client.chat(MESSAGES)
        body = server.requests[-1]
        assert (body["top_p"], body["stop"], body["seed"]) == (0.9, ["END"], 7)
    for bad, match in (({"top_p": 1.5}, "top_p must be"), ({"stop": []}, "stop must be"),
                       ({"seed": "x"}, "seed must be"), ({"max_tokens": 0}, "max_tokens must be"),
                       ({"temperature": -1}, "temperature must be")):
        with pytest.raises(UsageError, match=match) as info:
            make_agent("react", model="m", base_url="http://127.0.0.1:9/v1", **bad)
        assert "\n" not in str(info.value)


def test_the_cache_key_holds_the_base_url_the_model_and_every_sampling_parameter(tmp_path):
    cache = tmp_path / "cache"
    with ScriptedLLMServer(["from server A"]) as a, ScriptedLLMServer(["from server B"]) as b:
        assert LLMClient("m", a.base_url, cache_dir=cache).chat(MESSAGES).text == "from server A"
        replay = LLMClient("m", a.base_url, cache_dir=cache).chat(MESSAGES)
        assert replay.cached and a.count == 1
        other = LLMClient("m", b.base_url, cache_dir=cache).chat(MESSAGES)  # same model name, other endpoint
        assert not other.cached and other.text == "from server B"
        for variant in ({"model": "m2"}, {"top_p": 0.5}, {"seed": 3}, {"stop": "x"}, {"max_tokens": 10}):
            model = variant.pop("model", "m")
            assert not LLMClient(model, b.base_url, cache_dir=cache, **variant).chat(MESSAGES).cached, variant
    dead = LLMClient("m", "http://127.0.0.1:9/v1", cache_dir=cache, max_retries=0)
    with pytest.raises(Exception, match="after 1 attempts"):  # a dead port never replays server A's replies
        dead.chat(MESSAGES)


def test_finish_reason_is_kept_counted_and_cached(tmp_path):
    with ScriptedLLMServer([Reply("```python\nimport pandas as", "length")]) as server:
        llm = LLMClient("m", server.base_url, cache_dir=tmp_path / "c", max_tokens=8)
        response = llm.chat(MESSAGES)
        assert response.finish_reason == "length" and response.truncated
        assert llm.take_step_usage().to_info()["truncated_replies"] == 1
        replay = LLMClient("m", server.base_url, cache_dir=tmp_path / "c", max_tokens=8).chat(MESSAGES)
        assert replay.cached and replay.finish_reason == "length"


def test_a_context_length_error_is_typed_and_not_retried(tmp_path):
    with ScriptedLLMServer([context_length_error()]) as server:
        with pytest.raises(ContextLengthError, match="maximum context length"):
            LLMClient("m", server.base_url, cache=False, backoff_s=0.01).chat(MESSAGES)
        assert server.count == 1


def test_react_tells_the_model_its_reply_was_cut_or_empty_not_a_json_parse_error(settings, tmp_path):
    def responder(body):
        user = last_user(body)
        if user.startswith("Your reply could not be used"):
            return '{"type": "submit"}'
        return Reply('{"type": "execute_code", "code": "import pandas as pd\\nx = ', "length")

    with ScriptedLLMServer(responder) as server:
        agent = ReActAgent(model="m", base_url=server.base_url, cache=False)
        drive_episode(EpisodeConfig(task_id="penguins-body-mass", max_steps=3, track=False), settings=settings,
                      agent=agent)
        repair = last_user(server.requests[1])
        assert "cut off at the 2048-token limit" in repair, repair
    with ScriptedLLMServer(["", "Let me think about the data first."]) as server:
        agent = ReActAgent(model="m", base_url=server.base_url, cache=False, max_repairs=2)
        result = drive_episode(EpisodeConfig(task_id="penguins-body-mass", max_steps=3, track=False),
                               settings=settings, agent=agent)
        first, second = last_user(server.requests[1]), last_user(server.requests[2])
        assert "the reply was empty" in first and "Expecting value" not in first
        assert "no JSON object found" in second and "Expecting value" not in second
        assert "no usable action" in result.trajectory[-1]["agent"]["end_reason"]


def test_aide_names_the_wrong_language_and_the_cut_reply(settings, tmp_path):
    replies = [fenced("ls data/", "bash"), Reply("Plan: a ridge model.\n```python\nimport pandas", "length"),
               "Plan.\n" + fenced(penguins_script("ridge"))]
    with ScriptedLLMServer(replies) as server:
        agent = AIDEAgent(model="m", base_url=server.base_url, cache=False, num_drafts=1, max_nodes=2)
        drive_episode(EpisodeConfig(task_id="penguins-body-mass", max_steps=4, track=False), settings=settings,
                      agent=agent)
        assert "```bash code block, but a Python script is needed" in last_user(server.requests[1])
        tree = agent.tree()
        assert "cut off at the 4096-token limit" in tree["nodes"][0]["error"]


def test_context_length_errors_trim_the_history_and_the_aide_node_is_recorded_either_way(settings, tmp_path):
    limit_chars = 6000

    def responder(body):
        size = sum(len(m["content"]) for m in body["messages"])
        if size > limit_chars:
            return context_length_error()
        return "Plan: ridge.\n" + fenced(penguins_script("ridge"))

    long_brief = "x" * 20000  # a task brief far over the model's context
    with ScriptedLLMServer(responder) as server:
        agent = AIDEAgent(model="m", base_url=server.base_url, cache=False, num_drafts=1, max_nodes=1,
                          artifacts_dir=str(tmp_path / "agent"))
        agent.info = {"task_id": "t", "metric": "rmse"}
        text = agent.ask([{"role": "system", "content": "s"}, {"role": "user", "content": long_brief}])
        assert "ridge" in text and agent.client.episode.context_trims >= 2
        assert server.count == agent.client.episode.context_trims + 1
    with ScriptedLLMServer([context_length_error()]) as server:  # never fits: the node is still recorded
        agent = AIDEAgent(model="m", base_url=server.base_url, cache=False, num_drafts=1)
        result = drive_episode(EpisodeConfig(task_id="penguins-body-mass", max_steps=3, track=False),
                               settings=settings, agent=agent)
        tree = agent.tree()
        assert tree["nodes"] and "context length" in tree["nodes"][0]["error"]
        saved = json.loads((Path(result.episode_dir) / "agent" / "aide_tree.json").read_text())
        assert saved["nodes"][0]["error"] == tree["nodes"][0]["error"]
        assert "ContextLengthError" in json.dumps(result.trajectory[-1]["agent"]["llm_errors"])
