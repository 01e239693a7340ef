"""One client for any OpenAI-compatible ``/v1/chat/completions`` endpoint (OpenAI, vLLM, Ollama, llama.cpp,
LiteLLM, OpenRouter...), with retries, per-call accounting, a per-episode token budget and a response cache.

- The API key comes from the ``api_key`` argument, ``$DOJOFLOW_LLM_API_KEY`` or ``$OPENAI_API_KEY``. It is
  only ever put in the ``Authorization`` header: never in prompts, code, observations, logs, ``repr`` or
  error messages (which are redacted).
- Retries: connection errors, timeouts, 429 and 5xx are retried with exponential backoff (bounded by
  ``max_retries``; a ``Retry-After`` header is honoured up to ``max_backoff_s``).
- ``temperature=None`` leaves the field out of the request (some reasoning models reject it). ``top_p``,
  ``stop`` and ``seed`` are passed through when given and checked first (:func:`check_sampling`: one-line
  :class:`UsageError`). ``max_tokens`` caps every reply (the scaffolds set a default: a small local model
  otherwise writes until its context is full).
- ``finish_reason`` is kept on every response; a reply cut at ``max_tokens`` (``length``) is counted
  (``Usage.truncated``) so the agent can say so to the model.
- A request too long for the model's context (HTTP 400 whose error says ``context_length_exceeded`` or
  "maximum context length") raises :class:`ContextLengthError`, which the agents answer by trimming history.
- Accounting: prompt/completion tokens from the response's ``usage`` (estimated with
  :func:`dojoflow.llm.tokens.approx_tokens` when a server sends none), latency, and cost from the price table.
- Budget: ``token_budget`` caps the tokens of one episode (``reset_budget()`` starts a new one); a call when
  the budget is spent raises :class:`BudgetExceeded`, which agents turn into a clean end of the episode.
- Cache: responses are stored under ``cache_dir`` (default ``$DOJOFLOW_HOME/llm-cache``) keyed by a SHA-256 of
  the endpoint's base URL and the full request (model, messages, every sampling parameter), the episode seed
  and the request's occurrence number within the episode, so repeated identical prompts (several drafts) still
  get distinct samples, and a re-run of an episode replays the same replies with no HTTP call and no cost; a
  different endpoint (another server, or a dead port) never replays another endpoint's replies. Cache hits
  still count their tokens towards the budget so a replayed episode takes the same decisions. Measurements
  that vary between identical runs - durations (``0.84 s``) and memory (``212 MB``) in observations and budget
  lines - are masked in the key (not in the request), so a re-run of an episode finds its replies.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from dojoflow.errors import BudgetExceeded, ContextLengthError, LLMError, UsageError
from dojoflow.llm.prices import Price, load_prices, price_for
from dojoflow.llm.tokens import approx_message_tokens, approx_tokens

API_KEY_ENVS = ("DOJOFLOW_LLM_API_KEY", "OPENAI_API_KEY")
BASE_URL_ENV = "DOJOFLOW_LLM_BASE_URL"
DEFAULT_BASE_URL = "https://api.openai.com/v1"
_VOLATILE = re.compile(r"\b\d+(?:\.\d+)?(\s?)(s|ms|MB|GB|KB)\b")
RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504, 520, 522, 524, 529}
_CONTEXT_ERROR = re.compile(r"context_length_exceeded|maximum context length|context length|context window|"
                            r"too many tokens|exceeds? the (?:model's )?context", re.IGNORECASE)
MAX_STOP_SEQUENCES = 4  # the OpenAI API's limit


def check_sampling(*, temperature: float | None = None, top_p: float | None = None, max_tokens: int | None = None,
                   stop: str | list[str] | None = None, seed: int | None = None) -> None:
    """Reject unusable sampling options with one line that says what is allowed."""
    def number(value: Any) -> bool:
        return isinstance(value, int | float) and not isinstance(value, bool)

    if temperature is not None and not (number(temperature) and 0 <= temperature <= 2):
        raise UsageError(f"temperature must be a number from 0 to 2, got {temperature!r}")
    if top_p is not None and not (number(top_p) and 0 < top_p <= 1):
        raise UsageError(f"top_p must be a number in (0, 1], got {top_p!r}")
    if max_tokens is not None and not (isinstance(max_tokens, int) and not isinstance(max_tokens, bool)
                                       and max_tokens >= 1):
        raise UsageError(f"max_tokens must be a whole number >= 1, got {max_tokens!r}")
    if seed is not None and not (isinstance(seed, int) and not isinstance(seed, bool)):
        raise UsageError(f"seed must be a whole number, got {seed!r}")
    if stop is not None:
        stops = [stop] if isinstance(stop, str) else stop
        if not (isinstance(stops, list) and 1 <= len(stops) <= MAX_STOP_SEQUENCES
                and all(isinstance(x, str) and x for x in stops)):
            raise UsageError(f"stop must be a non-empty string or a list of 1 to {MAX_STOP_SEQUENCES} of them, "
                             f"got {stop!r}")


@dataclass
class ChatResponse:
    """One completion: its text, token counts, cost, latency, and whether it came from the cache."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    latency_s: float
    cached: bool
    model: str
    usage_estimated: bool = False
    price_known: bool = True
    finish_reason: str | None = None  # "stop", "length" (cut at max_tokens), ... as the server says

    @property
    def truncated(self) -> bool:
        """Whether the reply was cut off at ``max_tokens``."""
        return self.finish_reason == "length"

    @property
    def tokens(self) -> int:
        """Prompt plus completion tokens."""
        return self.prompt_tokens + self.completion_tokens


@dataclass
class Usage:
    """Accumulated accounting (for a step, or for the episode)."""

    calls: int = 0
    cache_hits: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    latency_s: float = 0.0
    retries: int = 0
    truncated: int = 0  # replies cut off at max_tokens
    context_trims: int = 0  # requests re-sent with a shortened history after a context-length error
    price_known: bool = True
    errors: list[str] = field(default_factory=list)

    @property
    def tokens(self) -> int:
        """Prompt plus completion tokens."""
        return self.prompt_tokens + self.completion_tokens

    def add(self, response: ChatResponse) -> None:
        """Account one response."""
        self.calls += 1
        self.cache_hits += int(response.cached)
        self.prompt_tokens += response.prompt_tokens
        self.completion_tokens += response.completion_tokens
        self.cost_usd += response.cost_usd
        self.latency_s += response.latency_s
        self.truncated += int(response.truncated)
        self.price_known = self.price_known and response.price_known

    def to_info(self) -> dict[str, Any]:
        """The accounting as the per-step agent info the trajectory records."""
        info: dict[str, Any] = {"tokens": self.tokens, "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens, "cost_usd": round(self.cost_usd, 8),
                "latency_s": round(self.latency_s, 4), "llm_calls": self.calls, "cache_hits": self.cache_hits}
        for name in ("retries", "truncated", "context_trims"):
            if getattr(self, name):
                info[name if name != "truncated" else "truncated_replies"] = getattr(self, name)
        if not self.price_known:
            info["price_known"] = False
        if self.errors:
            info["llm_errors"] = list(self.errors)
        return info


def cache_digest(body: dict[str, Any], salt: str = "") -> str:
    """SHA-256 of the request (and salt) with volatile measurements (durations, memory sizes) masked."""
    text = json.dumps(body, sort_keys=True, ensure_ascii=False) + salt
    return hashlib.sha256(_VOLATILE.sub(r"#\1\2", text).encode()).hexdigest()


def resolve_api_key(explicit: str | None = None) -> str | None:
    """The API key: the explicit one, else ``$DOJOFLOW_LLM_API_KEY``, else ``$OPENAI_API_KEY``."""
    if explicit:
        return explicit
    for name in API_KEY_ENVS:
        if os.environ.get(name):
            return os.environ[name]
    return None


def default_cache_dir() -> Path:
    """``$DOJOFLOW_HOME/llm-cache``."""
    from dojoflow.config import get_settings

    return get_settings().home / "llm-cache"


class LLMClient:
    """Chat completions with retries, accounting, a token budget and a response cache."""

    def __init__(self, model: str, base_url: str | None = None, *, api_key: str | None = None,
                 temperature: float | None = None, max_tokens: int | None = None, top_p: float | None = None,
                 stop: str | list[str] | None = None, seed: int | None = None, timeout_s: float = 120.0,
                 max_retries: int = 4, backoff_s: float = 1.0, max_backoff_s: float = 30.0,
                 token_budget: int | None = None, cache: bool = True, cache_dir: str | Path | None = None,
                 prices: dict[str, Price] | None = None, extra_params: dict[str, Any] | None = None,
                 transport: httpx.BaseTransport | None = None) -> None:
        if not model:
            raise UsageError("an LLM agent needs a model name (--model)")
        check_sampling(temperature=temperature, top_p=top_p, max_tokens=max_tokens, stop=stop, seed=seed)
        self.model = model
        self.base_url = (base_url or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL).rstrip("/")
        self._api_key = resolve_api_key(api_key)
        self.temperature, self.max_tokens = temperature, max_tokens
        self.sampling = {k: v for k, v in (("top_p", top_p), ("stop", stop), ("seed", seed)) if v is not None}
        self.timeout_s, self.max_retries = timeout_s, max_retries
        self.backoff_s, self.max_backoff_s = backoff_s, max_backoff_s
        self.token_budget = token_budget
        self.cache_dir = Path(cache_dir) if cache_dir else (default_cache_dir() if cache else None)
        self.price = price_for(model, prices if prices is not None else load_prices())
        self.extra_params = dict(extra_params or {})
        self._transport = transport
        self._http: httpx.Client | None = None
        self.episode = Usage()
        self.step = Usage()
        self._occurrences: dict[str, int] = {}
        self.cache_salt = ""

    def __repr__(self) -> str:  # never shows the key
        return (f"LLMClient(model={self.model!r}, base_url={self.base_url!r}, "
                f"api_key={'***' if self._api_key else None}, token_budget={self.token_budget})")

    # -- budget and accounting ------------------------------------------------------------------------------
    def reset_budget(self, cache_salt: str = "") -> None:
        """Start a new episode: budget, accounting and cache occurrence counters. ``cache_salt`` (agents pass
        the episode seed) separates the cached samples of different seeds."""
        self.episode, self.step, self._occurrences = Usage(), Usage(), {}
        self.cache_salt = cache_salt

    def take_step_usage(self) -> Usage:
        """The usage since the last call (one agent step's worth), and start a new step."""
        usage, self.step = self.step, Usage()
        return usage

    @property
    def tokens_left(self) -> int | None:
        """Tokens left in the episode's budget (None without a budget)."""
        return None if self.token_budget is None else max(0, self.token_budget - self.episode.tokens)

    # -- the request ------------------------------------------------------------------------------------------
    def request_body(self, messages: list[dict[str, str]], **params: Any) -> dict[str, Any]:
        """The exact JSON body sent to ``/chat/completions`` (parameters that are None are left out)."""
        body: dict[str, Any] = {"model": self.model, "messages": messages}
        temperature = params.pop("temperature", self.temperature)
        if temperature is not None:
            body["temperature"] = temperature
        max_tokens = params.pop("max_tokens", self.max_tokens)
        if max_tokens is not None:
            body["max_tokens"] = max_tokens
        body.update(self.sampling)
        body.update(self.extra_params)
        body.update({k: v for k, v in params.items() if v is not None})
        return body

    def chat(self, messages: list[dict[str, str]], **params: Any) -> ChatResponse:
        """One chat completion (from the cache when this request was answered before)."""
        if self.token_budget is not None and self.episode.tokens >= self.token_budget:
            raise BudgetExceeded(f"token budget of {self.token_budget} tokens is spent "
                                 f"({self.episode.tokens} used)")
        body = self.request_body(messages, **params)
        digest = cache_digest(body, f"{self.base_url}|{self.cache_salt}")
        occurrence = self._occurrences.get(digest, 0)
        self._occurrences[digest] = occurrence + 1
        key = f"{digest}-{occurrence}"
        response = self._cache_get(key)
        if response is None:
            response = self._post(body)
            self._cache_put(key, body, response)
        for usage in (self.episode, self.step):
            usage.add(response)
        return response

    def _cache_path(self, key: str) -> Path | None:
        return self.cache_dir / key[:2] / f"{key}.json" if self.cache_dir else None

    def _cache_get(self, key: str) -> ChatResponse | None:
        path = self._cache_path(key)
        if path is None or not path.is_file():
            return None
        try:
            entry = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            return None
        return ChatResponse(text=entry["text"], prompt_tokens=entry["prompt_tokens"],
                            completion_tokens=entry["completion_tokens"], cost_usd=0.0, latency_s=0.0, cached=True,
                            model=entry.get("model", self.model), usage_estimated=entry.get("usage_estimated", False),
                            finish_reason=entry.get("finish_reason"))

    def _cache_put(self, key: str, body: dict[str, Any], response: ChatResponse) -> None:
        path = self._cache_path(key)
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        entry = {"request": body, "text": response.text, "prompt_tokens": response.prompt_tokens,
                 "completion_tokens": response.completion_tokens, "model": response.model,
                 "usage_estimated": response.usage_estimated, "cost_usd": response.cost_usd,
                 "finish_reason": response.finish_reason, "base_url": self.base_url}
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(entry, ensure_ascii=False))
        tmp.replace(path)

    def _client(self) -> httpx.Client:
        if self._http is None:
            self._http = httpx.Client(timeout=httpx.Timeout(self.timeout_s, connect=min(10.0, self.timeout_s)),
                                      transport=self._transport)
        return self._http

    def close(self) -> None:
        """Close the HTTP connection pool."""
        if self._http is not None:
            self._http.close()
            self._http = None

    def redact(self, text: str) -> str:
        """``text`` with the API key replaced by ``***``."""
        return text.replace(self._api_key, "***") if self._api_key else text

    def _post(self, body: dict[str, Any]) -> ChatResponse:
        data, latency = self.post_raw(body)
        return self._parse(body, data, latency)

    def post_raw(self, body: dict[str, Any], path: str = "/chat/completions") -> tuple[dict[str, Any], float]:
        """POST ``body`` to ``{base_url}{path}`` with the key, retries and backoff; the decoded JSON answer and
        the latency of the successful attempt (the LLM gateway forwards the answer as it is)."""
        headers = {"Content-Type": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        url = f"{self.base_url}{path}"
        last = ""
        for attempt in range(self.max_retries + 1):
            started = time.monotonic()
            delay = min(self.max_backoff_s, self.backoff_s * (2 ** attempt))
            try:
                reply = self._client().post(url, json=body, headers=headers)
            except httpx.HTTPError as exc:  # connection refused, timeouts, protocol errors
                last = f"{type(exc).__name__}: {self.redact(str(exc))}"
            else:
                latency = time.monotonic() - started
                if reply.status_code == 200:
                    try:
                        return reply.json(), latency
                    except ValueError:
                        raise LLMError(f"unexpected response from {self.base_url}: "
                                       f"{self.redact(reply.text[:300])}") from None
                last = f"HTTP {reply.status_code}: {self.redact(reply.text[:500])}"
                if reply.status_code == 400 and _CONTEXT_ERROR.search(reply.text):
                    raise ContextLengthError(f"{url} answered {last}")
                if reply.status_code not in RETRY_STATUS:
                    raise LLMError(f"{url} answered {last}")
                retry_after = reply.headers.get("retry-after")
                if retry_after:
                    try:
                        delay = min(self.max_backoff_s, max(delay, float(retry_after)))
                    except ValueError:
                        pass
            if attempt < self.max_retries:
                self.episode.retries += 1
                self.step.retries += 1
                time.sleep(delay)
        raise LLMError(f"{url} failed after {self.max_retries + 1} attempts; last error: {last}")

    def _parse(self, body: dict[str, Any], data: dict[str, Any], latency: float) -> ChatResponse:
        try:
            choice = data["choices"][0]
            message = choice["message"]
        except (KeyError, IndexError, TypeError):
            raise LLMError(f"unexpected response from {self.base_url}: "
                           f"{self.redact(json.dumps(data)[:300])}") from None
        text = message.get("content") or ""
        prompt, completion, estimated = token_counts(body, data)
        return ChatResponse(text=text, prompt_tokens=prompt, completion_tokens=completion,
                            cost_usd=self.price.cost(prompt, completion), latency_s=round(latency, 4), cached=False,
                            model=data.get("model") or self.model, usage_estimated=estimated,
                            price_known=self.price.known, finish_reason=choice.get("finish_reason"))


def token_counts(body: dict[str, Any], data: dict[str, Any]) -> tuple[int, int, bool]:
    """(prompt tokens, completion tokens, estimated) of one chat completion: the response's ``usage``, else
    estimates from the request's messages and the reply (content and tool-call arguments)."""
    usage = data.get("usage") or {}
    estimated = not usage.get("prompt_tokens")
    prompt = int(usage.get("prompt_tokens") or approx_message_tokens(body.get("messages") or []))
    completion = usage.get("completion_tokens")
    if completion is None or estimated:
        texts = []
        for choice in data.get("choices") or []:
            message = choice.get("message") or {}
            texts.append(message.get("content") or "")
            texts += [(call.get("function") or {}).get("arguments") or "" for call in message.get("tool_calls") or []]
        completion = completion if completion is not None and not estimated else approx_tokens("\n".join(texts))
    return prompt, int(completion), estimated
