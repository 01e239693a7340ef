"""The LLM gateway: a small OpenAI-compatible proxy the harness runs for one episode.

A command agent (``agents/external/``) runs in a sandbox without network; the gateway is the one thing it
can reach (a unix socket bound into the sandbox, forwarded to a loopback port inside it). For every
``POST /v1/chat/completions`` the gateway:

- forwards the request to the configured endpoint through :class:`~dojoflow.llm.client.LLMClient`
  (retries with backoff on 429/5xx/connection errors), with the API key injected in the
  ``Authorization`` header: the agent is given a placeholder key and never sees the real one (headers
  sent by the agent are not forwarded at all, and a response that contains the key has it replaced by
  ``***``);
- enforces the episode's token and cost budgets: once either is spent, calls are refused with HTTP 402
  and ``code: budget_exceeded`` (402 is not retried by the OpenAI SDKs, unlike 429), and
  :attr:`LLMGateway.exhausted` tells the harness to end the agent;
- accounts prompt and completion tokens (the response's ``usage``, else estimated), cost (the price
  table of ``llm/prices.py``) and latency per call;
- records every call: a summary line per call in ``calls.jsonl`` and the full request and response in
  ``exchanges.jsonl`` (both under the episode's ``llm/`` folder, so they reach the artifact store and
  MLflow; the integrity check reads them back).

``stream: true`` requests are answered in the streaming format (server-sent events: one chunk with the
whole reply, a usage chunk when ``stream_options.include_usage`` is set, then ``[DONE]``) from one
non-streamed upstream call, so accounting always sees the final usage. ``GET /v1/models`` lists the
configured model. Anything else is a 404 that says what is served. With ``model`` set, every request is
sent with that model whatever the agent asked for (agents often hard-code a model name); the record keeps
both.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dojoflow.errors import LLMError
from dojoflow.infra.endpoint import Endpoint, HttpReply, HttpRequest
from dojoflow.llm.client import LLMClient, token_counts
from dojoflow.llm.prices import Price, load_prices, price_for

PLACEHOLDER_KEY = "sk-dojoflow-gateway-no-real-key-here"
CHAT_PATHS = ("/v1/chat/completions", "/chat/completions")
MODELS_PATHS = ("/v1/models", "/models")


@dataclass
class CallRecord:
    """One call through the gateway (a line of ``calls.jsonl``)."""

    index: int
    at: str
    model: str
    requested_model: str
    status: int
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    latency_s: float = 0.0
    usage_estimated: bool = False
    price_known: bool = True
    stream: bool = False
    error: str | None = None

    @property
    def tokens(self) -> int:
        """Prompt plus completion tokens."""
        return self.prompt_tokens + self.completion_tokens


class LLMGateway:
    """See the module docstring. ``client`` talks to the real endpoint (its key stays in this process)."""

    def __init__(self, client: LLMClient, records_dir: Path, *, token_budget: int | None = None,
                 cost_budget_usd: float | None = None, model: str | None = None,
                 prices: dict[str, Price] | None = None) -> None:
        self.client = client
        self.records_dir = Path(records_dir)
        self.records_dir.mkdir(parents=True, exist_ok=True)
        self.calls_file = self.records_dir / "calls.jsonl"
        self.exchanges_file = self.records_dir / "exchanges.jsonl"
        self.token_budget, self.cost_budget_usd, self.model = token_budget, cost_budget_usd, model
        self.prices = prices if prices is not None else load_prices()
        self.calls: list[CallRecord] = []
        self._lock = threading.Lock()
        self._endpoint: Endpoint | None = None

    # -- accounting -----------------------------------------------------------------------------------------
    @property
    def tokens(self) -> int:
        """Tokens of the calls answered so far."""
        return sum(c.tokens for c in self.calls)

    @property
    def cost_usd(self) -> float:
        """Cost of the calls answered so far."""
        return sum(c.cost_usd for c in self.calls)

    @property
    def exhausted(self) -> str | None:
        """``"token"`` or ``"cost"`` once that budget is spent, else None."""
        if self.token_budget is not None and self.tokens >= self.token_budget:
            return "token"
        if self.cost_budget_usd is not None and self.cost_usd >= self.cost_budget_usd:
            return "cost"
        return None

    def usage_info(self) -> dict[str, Any]:
        """The accounting as the trajectory's per-step agent info (answered calls only)."""
        answered = [c for c in self.calls if c.status == 200]
        return {"tokens": sum(c.tokens for c in answered),
                "prompt_tokens": sum(c.prompt_tokens for c in answered),
                "completion_tokens": sum(c.completion_tokens for c in answered),
                "cost_usd": round(sum(c.cost_usd for c in answered), 8),
                "latency_s": round(sum(c.latency_s for c in answered), 4), "llm_calls": len(answered),
                "llm_calls_refused": sum(1 for c in self.calls if c.status == 402),
                "llm_calls_failed": sum(1 for c in self.calls if c.status not in (200, 402)),
                "price_known": all(c.price_known for c in answered)}

    # -- serving ----------------------------------------------------------------------------------------------
    def serve(self, unix_path: Path | None = None) -> Endpoint:
        """Start serving on ``unix_path`` (else a loopback TCP port); returns the endpoint."""
        self._endpoint = Endpoint(self.handle, unix_path=unix_path)
        return self._endpoint

    def close(self) -> None:
        """Stop serving and close the upstream connection pool."""
        if self._endpoint is not None:
            self._endpoint.close()
            self._endpoint = None
        self.client.close()

    def handle(self, request: HttpRequest) -> HttpReply:
        """Route one request (see the module docstring)."""
        path = request.path.split("?", 1)[0].rstrip("/")
        if request.method == "POST" and path in CHAT_PATHS:
            return self._chat(request)
        if request.method == "GET" and path in MODELS_PATHS:
            name = self.model or self.client.model
            return HttpReply.of_json(200, {"object": "list", "data": [{"id": name, "object": "model",
                                                                        "owned_by": "dojoflow-gateway"}]})
        return _error(404, "not_found", f"the dojoflow LLM gateway serves POST /v1/chat/completions and GET "
                                        f"/v1/models, not {request.method} {path}")

    def _chat(self, request: HttpRequest) -> HttpReply:
        try:
            body = request.json()
        except ValueError:
            return _error(400, "invalid_request_error", "the request body is not JSON")
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            return _error(400, "invalid_request_error", "a chat completion needs a JSON object with 'messages'")
        requested = str(body.get("model") or "")
        stream = bool(body.pop("stream", False))
        options = body.pop("stream_options", None) or {}
        body["model"] = self.model or requested or self.client.model
        with self._lock:
            spent = self.exhausted
            index = len(self.calls)
            record = CallRecord(index, datetime.now(UTC).isoformat(timespec="milliseconds"), body["model"],
                                requested, 402 if spent else 0, stream=stream)
            if spent:
                record.error = f"{spent} budget spent"
                self._record(record, body, None)
        if spent:
            limit = (f"{self.token_budget} tokens" if spent == "token" else f"${self.cost_budget_usd:g}")
            return _error(402, "budget_exceeded", f"dojoflow gateway: the episode's {spent} budget ({limit}) is "
                                                  "spent; no more LLM calls are answered")
        started = time.monotonic()
        try:
            data, latency = self.client.post_raw(body)
        except LLMError as exc:
            record.status, record.error, record.latency_s = 502, str(exc), round(time.monotonic() - started, 4)
            with self._lock:
                self._record(record, body, None)
            return _error(502, "upstream_error", f"dojoflow gateway: the LLM endpoint failed: {exc}")
        text = json.dumps(data)
        redacted = self.client.redact(text)
        if redacted != text:  # an endpoint that echoes the request's headers must not hand the key out
            data = json.loads(redacted)
        prompt, completion, estimated = token_counts(body, data)
        price = price_for(str(data.get("model") or body["model"]), self.prices)
        record.status, record.prompt_tokens, record.completion_tokens = 200, prompt, completion
        record.cost_usd = price.cost(prompt, completion)
        record.latency_s, record.usage_estimated, record.price_known = round(latency, 4), estimated, price.known
        with self._lock:
            self._record(record, body, data)
        if stream:
            return HttpReply(200, _as_events(data, prompt, completion, bool(options.get("include_usage"))),
                             {"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        return HttpReply.of_json(200, data)

    def _record(self, record: CallRecord, body: dict[str, Any], response: dict[str, Any] | None) -> None:
        """Append the call (caller holds the lock)."""
        if record.index == len(self.calls):
            self.calls.append(record)
        with self.calls_file.open("a") as fh:
            fh.write(json.dumps(asdict(record)) + "\n")
        with self.exchanges_file.open("a") as fh:
            fh.write(json.dumps({"index": record.index, "request": body, "response": response,
                                 "status": record.status}, ensure_ascii=False) + "\n")


def _error(status: int, code: str, message: str) -> HttpReply:
    return HttpReply.of_json(status, {"error": {"message": message, "type": code, "code": code}})


def _as_events(data: dict[str, Any], prompt: int, completion: int, include_usage: bool) -> bytes:
    """A complete chat completion in the streaming (server-sent events) format."""
    base = {"id": data.get("id") or f"chatcmpl-{uuid.uuid4().hex[:12]}", "object": "chat.completion.chunk",
            "created": data.get("created") or int(time.time()), "model": data.get("model")}
    chunks = []
    for choice in data.get("choices") or []:
        message = dict(choice.get("message") or {})
        delta: dict[str, Any] = {"role": message.get("role", "assistant"), "content": message.get("content")}
        if message.get("tool_calls"):
            delta["tool_calls"] = [{"index": i, **call} for i, call in enumerate(message["tool_calls"])]
        chunks.append({**base, "choices": [{"index": choice.get("index", 0), "delta": delta,
                                            "finish_reason": choice.get("finish_reason") or "stop"}]})
    if include_usage:
        chunks.append({**base, "choices": [], "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                                                       "total_tokens": prompt + completion}})
    return b"".join(f"data: {json.dumps(c)}\n\n".encode() for c in chunks) + b"data: [DONE]\n\n"


def read_calls(records_dir: Path) -> list[dict[str, Any]]:
    """The call records of an episode (``calls.jsonl``), for the integrity check and reports."""
    path = Path(records_dir) / "calls.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
