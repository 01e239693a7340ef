"""The test double itself: an assertion inside a responder fails the test that made it."""

from __future__ import annotations

import httpx
import pytest

from scripted_llm_server import ScriptedLLMServer


def test_a_failing_responder_assertion_fails_the_test():
    def responder(body):
        assert body["model"] == "expected-model", "the client sent the wrong model"
        return "ok"

    with pytest.raises(AssertionError, match="the client sent the wrong model"):
        with ScriptedLLMServer(responder) as server:
            reply = httpx.post(f"{server.base_url}/chat/completions", json={"model": "other", "messages": []})
            assert reply.status_code == 500 and "responder raised" in reply.text


def test_a_passing_responder_answers():
    with ScriptedLLMServer(["hello"]) as server:
        reply = httpx.post(f"{server.base_url}/chat/completions", json={"model": "m", "messages": []}).json()
    assert reply["choices"][0]["message"]["content"] == "hello" and server.count == 1
