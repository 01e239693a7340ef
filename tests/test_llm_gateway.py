"""The LLM gateway and the validation endpoint, over real unix sockets (no sandbox): key injection and
redaction, budgets, per-call records, the streaming format, model override, upstream failures; the
validation endpoint answers the same for the true answers as for any other well-formed file."""

from __future__ import annotations

import json
import shutil
import socket
import tempfile
from pathlib import Path

import pytest

from dojoflow.agents.external.validation import ValidationEndpoint
from dojoflow.infra.endpoint import Endpoint, HttpRequest, unix_request
from dojoflow.llm.client import LLMClient
from dojoflow.llm.gateway import LLMGateway, read_calls
from dojoflow.llm.prices import Price

from scripted_llm_server import ScriptedLLMServer

KEY = "sk-host-only-0123456789abcdef"


@pytest.fixture
def sockets():
    folder = Path(tempfile.mkdtemp(prefix="dojoflow-gw-test-"))  # short: unix socket paths are limited
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def chat(path: Path, body: dict, headers: dict | None = None) -> tuple[int, dict | str]:
    status, raw = unix_request(path, "POST", "/v1/chat/completions", json.dumps(body).encode(),
                               {"Content-Type": "application/json", **(headers or {})})
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode()


def make_gateway(server: ScriptedLLMServer, records: Path, **kwargs) -> LLMGateway:
    client = LLMClient("scripted-model", server.base_url, api_key=KEY, cache=False, max_retries=0)
    return LLMGateway(client, records, **kwargs)


def test_key_is_injected_never_returned_and_every_call_is_recorded(sockets, tmp_path):
    with ScriptedLLMServer(["hello from the model"]) as server:
        gateway = make_gateway(server, tmp_path / "llm")
        gateway.serve(sockets / "llm.sock")
        try:
            status, reply = chat(sockets / "llm.sock", {"model": "whatever", "messages": [
                {"role": "user", "content": "hi"}]}, {"Authorization": "Bearer sk-agent-placeholder"})
        finally:
            gateway.close()
    assert status == 200 and reply["choices"][0]["message"]["content"] == "hello from the model"
    assert server.headers[0]["authorization"] == f"Bearer {KEY}"  # the host's key, not the agent's
    assert reply["usage"]["prompt_tokens"] > 0
    calls = read_calls(tmp_path / "llm")
    assert len(calls) == 1 and calls[0]["status"] == 200 and calls[0]["requested_model"] == "whatever"
    assert calls[0]["prompt_tokens"] + calls[0]["completion_tokens"] == gateway.tokens > 0
    exchanges = [json.loads(line) for line in (tmp_path / "llm" / "exchanges.jsonl").read_text().splitlines()]
    assert exchanges[0]["request"]["messages"][0]["content"] == "hi"
    assert exchanges[0]["response"]["choices"][0]["message"]["content"] == "hello from the model"
    for name in ("calls.jsonl", "exchanges.jsonl"):
        assert KEY not in (tmp_path / "llm" / name).read_text()


def test_an_endpoint_that_echoes_the_key_does_not_hand_it_out(sockets, tmp_path):
    with ScriptedLLMServer(lambda body: f"your header was: {server.headers[-1]['authorization']}") as server:
        gateway = make_gateway(server, tmp_path / "llm")
        gateway.serve(sockets / "llm.sock")
        try:
            status, reply = chat(sockets / "llm.sock", {"messages": [{"role": "user", "content": "echo"}]})
        finally:
            gateway.close()
    assert status == 200 and KEY not in json.dumps(reply) and "***" in reply["choices"][0]["message"]["content"]
    assert KEY not in (tmp_path / "llm" / "exchanges.jsonl").read_text()


def test_token_budget_refuses_calls_once_spent(sockets, tmp_path):
    with ScriptedLLMServer(["a reply of several tokens, more than the budget allows"]) as server:
        gateway = make_gateway(server, tmp_path / "llm", token_budget=20)
        gateway.serve(sockets / "llm.sock")
        try:
            first = chat(sockets / "llm.sock", {"messages": [{"role": "user", "content": "one"}]})
            second = chat(sockets / "llm.sock", {"messages": [{"role": "user", "content": "two"}]})
        finally:
            gateway.close()
    assert first[0] == 200 and second[0] == 402
    assert second[1]["error"]["code"] == "budget_exceeded" and "token budget" in second[1]["error"]["message"]
    assert server.count == 1, "a call over the budget reached the endpoint"
    assert gateway.exhausted == "token"
    assert [c["status"] for c in read_calls(tmp_path / "llm")] == [200, 402]
    info = gateway.usage_info()
    assert info["llm_calls"] == 1 and info["llm_calls_refused"] == 1


def test_cost_budget_uses_the_price_table(sockets, tmp_path):
    prices = {"priced-model": Price(1000.0, 1000.0)}  # $0.001 per token
    with ScriptedLLMServer(["ok"]) as server:
        gateway = make_gateway(server, tmp_path / "llm", cost_budget_usd=0.005, model="priced-model", prices=prices)
        gateway.serve(sockets / "llm.sock")
        try:
            first = chat(sockets / "llm.sock", {"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}]})
            second = chat(sockets / "llm.sock", {"messages": [{"role": "user", "content": "y"}]})
        finally:
            gateway.close()
    assert first[0] == 200 and server.requests[0]["model"] == "priced-model"  # the configured model is forced
    calls = read_calls(tmp_path / "llm")
    assert calls[0]["cost_usd"] == pytest.approx((calls[0]["prompt_tokens"] + calls[0]["completion_tokens"]) * 0.001)
    assert gateway.exhausted == "cost" and second[0] == 402


def test_streaming_requests_get_server_sent_events_with_usage(sockets, tmp_path):
    with ScriptedLLMServer(["streamed reply"]) as server:
        gateway = make_gateway(server, tmp_path / "llm")
        gateway.serve(sockets / "llm.sock")
        try:
            status, text = chat(sockets / "llm.sock", {"messages": [{"role": "user", "content": "s"}], "stream": True,
                                                       "stream_options": {"include_usage": True}})
        finally:
            gateway.close()
    assert status == 200 and isinstance(text, str)
    events = [line[len("data: "):] for line in text.splitlines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert chunks[0]["choices"][0]["delta"]["content"] == "streamed reply"
    assert chunks[-1]["usage"]["total_tokens"] == gateway.tokens
    assert "stream" not in server.requests[0], "the upstream call is not streamed (its usage is needed)"


def test_other_paths_bad_bodies_and_a_dead_endpoint(sockets, tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead = probe.getsockname()[1]  # nothing listens there once the socket is closed
    client = LLMClient("m", f"http://127.0.0.1:{dead}/v1", api_key=KEY, cache=False, max_retries=0, timeout_s=2)
    gateway = LLMGateway(client, tmp_path / "llm")
    gateway.serve(sockets / "llm.sock")
    try:
        assert unix_request(sockets / "llm.sock", "GET", "/v1/chat/completions/../../admin")[0] == 404
        assert unix_request(sockets / "llm.sock", "POST", "/v1/embeddings", b"{}")[0] == 404
        status, raw = unix_request(sockets / "llm.sock", "GET", "/v1/models")
        assert status == 200 and json.loads(raw)["data"][0]["id"] == "m"
        assert unix_request(sockets / "llm.sock", "POST", "/v1/chat/completions", b"not json")[0] == 400
        status, reply = chat(sockets / "llm.sock", {"messages": [{"role": "user", "content": "hi"}]})
    finally:
        gateway.close()
    assert status == 502 and "failed" in reply["error"]["message"] and KEY not in json.dumps(reply)
    assert [c["status"] for c in read_calls(tmp_path / "llm")] == [502]


def test_validation_endpoint_gives_the_same_answer_for_the_true_answers(settings, tmp_path):
    import pandas as pd

    from dojoflow.tasks_catalog.grading import answer_table
    from dojoflow.tasks_catalog.preparation import prepare_task
    from dojoflow.tasks_catalog.registry import get_task

    spec = get_task("penguins-body-mass")
    data = prepare_task(spec, settings.data_dir)
    answers = answer_table(spec, data, "all").to_pandas()
    ids = answers[spec.submission.id_column].astype(str)
    endpoint = ValidationEndpoint(spec, answer_table(spec, data, "all").column(spec.submission.id_column),
                                  tmp_path / "validation")
    target = spec.submission.target_columns[0]
    files = {"true": answers[[spec.submission.id_column, target]],
             "constant": pd.DataFrame({spec.submission.id_column: ids, target: 4000.0}),
             "wrong": pd.DataFrame({spec.submission.id_column: ids, target: range(len(ids))})}
    answers_seen = {}
    for name, frame in files.items():
        boundary = "XyZ"
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"s.csv\"\r\n\r\n".encode()
                + frame.to_csv(index=False).encode() + f"\r\n--{boundary}--\r\n".encode())
        reply = endpoint.handle(HttpRequest("POST", "/validate", {
            "content-type": f"multipart/form-data; boundary={boundary}"}, body))
        answers_seen[name] = json.loads(reply.body)
    assert answers_seen["true"] == answers_seen["constant"] == answers_seen["wrong"] == {
        "result": "Submission is valid.", "valid": True, "errors": []}
    bad = endpoint.handle(HttpRequest("POST", "/validate", {"content-type": "text/csv"}, b"id,other\n1,2\n"))
    answer = json.loads(bad.body)
    assert answer["valid"] is False and any("missing columns" in e for e in answer["errors"])
    assert endpoint.calls == 4 and len((tmp_path / "validation" / "calls.jsonl").read_text().splitlines()) == 4


def test_endpoint_survives_a_handler_bug(sockets):
    def broken(request):
        raise RuntimeError("boom")

    endpoint = Endpoint(broken, unix_path=sockets / "x.sock")
    try:
        status, raw = unix_request(sockets / "x.sock", "GET", "/")
        assert status == 500 and "boom" in raw.decode()
        assert unix_request(sockets / "x.sock", "GET", "/")[0] == 500  # still serving
    finally:
        endpoint.close()
    assert not (sockets / "x.sock").exists()


def test_an_in_harness_scaffold_can_use_the_same_gateway(settings, tmp_path):
    """``gateway=True``: a ReAct episode's calls go through the gateway, so they are accounted and recorded the
    same way as a command agent's (records under the episode's llm/, per-call entries in the trajectory)."""
    from dojoflow.agents.react import ReActAgent
    from dojoflow.flows.config import EpisodeConfig
    from dojoflow.flows.episode import drive_episode

    from scripted_llm_server import fenced, penguins_script

    replies = ['{"type": "execute_code"}\n' + fenced(penguins_script("ridge")), '{"type": "submit"}']
    with ScriptedLLMServer(replies) as server:
        agent = ReActAgent(model="gpt-4o-mini", base_url=server.base_url, api_key_env=None, cache=False,
                           gateway=True)
        agent.client._api_key = KEY  # as if from DOJOFLOW_LLM_API_KEY
        result = drive_episode(EpisodeConfig(task_id="penguins-body-mass", max_steps=4, track=False), agent=agent)
    assert result.valid and server.count == 2
    assert all(h["authorization"] == f"Bearer {KEY}" for h in server.headers)  # injected by the gateway
    calls = read_calls(Path(result.episode_dir) / "llm")
    assert [c["status"] for c in calls] == [200, 200]
    per_step = [c for s in result.trajectory for c in s["agent"].get("llm", [])]
    assert [c["index"] for c in per_step] == [0, 1]
    assert sum(c["tokens"] for c in per_step) == result.tokens == sum(server.usage.values())
    assert agent._gateway is None  # closed with the episode
