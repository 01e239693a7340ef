"""Shared machinery of the LLM scaffolds (ReAct, AIDE, MLE-STAR).

A scaffold is written as a generator, :meth:`LLMAgent.run`, that yields :class:`Action` objects and receives
the resulting :class:`Observation` back (``obs = yield Action(...)``), so multi-step algorithms read as
plain code. This base class turns the generator into the ``reset`` / ``act`` protocol and handles, for every
scaffold:

- per-step accounting: ``last_step_info`` holds the tokens, cost, latency, number of LLM calls and cache hits
  of the LLM calls made while choosing that step's action, plus a ``note``;
- the best step so far by the environment's feedback score (direction from the task's ``higher_is_better``);
- a clean end: when one step is left, when ``time_budget_s`` is spent, when the token budget is nearly
  spent (less left than the largest call so far), when :class:`BudgetExceeded` / :class:`LLMError` is raised,
  or when the generator returns, the agent submits its best step and records the reason in
  ``last_step_info["end_reason"]``;
- replies that cannot be used are explained to the model truthfully (:meth:`LLMAgent.no_code_feedback`): a
  reply cut at ``max_tokens`` is told so, a code block in another language is named;
- a request too long for the model's context is re-sent with the longest message shortened (up to
  ``MAX_CONTEXT_TRIMS`` times), counted as ``context_trims``.

Every scaffold sends a ``max_tokens`` (its ``default_max_tokens`` unless the user gives one): without it a
small local model writes until its context is full, minutes per call.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Generator
from pathlib import Path
from typing import Any

from dojoflow.dojo.actions import Action
from dojoflow.dojo.observation import Observation
from dojoflow.errors import BudgetExceeded, ContextLengthError, LLMError, UnknownOptionError, UsageError
from dojoflow.llm.client import LLMClient

Plan = Generator[Action, Observation, None]

_FENCE = re.compile(r"```([A-Za-z0-9_+-]*)[ \t]*\n(.*?)```", re.DOTALL)
MAX_CONTEXT_TRIMS = 3
TRIM_MARKER = "\n...[cut to fit the model's context]...\n"


def extract_code(text: str) -> str | None:
    """The longest ```python fenced block (or, failing that, the longest unlabelled block)."""
    blocks = [(lang.lower(), body.strip()) for lang, body in _FENCE.findall(text or "")]
    for wanted in (("python", "py"), ("",)):
        found = [body for lang, body in blocks if lang in wanted and body]
        if found:
            return max(found, key=len)
    return None


def extract_json(text: str) -> dict[str, Any]:
    """The JSON object in a reply: a ```json block, the whole reply, or the first balanced {...}."""
    text = text or ""
    if not text.strip():
        raise ValueError("the reply was empty")
    candidates = [body for lang, body in _FENCE.findall(text) if lang.lower() in ("json", "")]
    if text.strip().startswith(("{", "[")):
        candidates.append(text.strip())
    start = text.find("{")
    if start >= 0:
        depth, in_string, escape = 0, False, False
        for i, ch in enumerate(text[start:], start):
            if in_string:
                escape = (ch == "\\") and not escape
                if ch == '"' and not escape:
                    in_string = False
                continue
            if ch == '"':
                in_string = True
            elif ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
                if depth == 0:
                    candidates.append(text[start:i + 1])
                    break
    error = "no JSON object found in the reply (it has no {...})"
    for candidate in candidates:
        try:
            value = json.loads(candidate)
        except json.JSONDecodeError as exc:
            error = f"invalid JSON: {exc}"
            continue
        if isinstance(value, dict):
            return value
        error = "the JSON value is not an object"
    raise ValueError(error)


def task_brief(info: dict[str, Any]) -> str:
    """A compact description of the task from the info observation's data (no paths outside ``data/``)."""
    columns = ", ".join(f"{c} ({t})" for c, t in (info.get("columns") or {}).items())
    return (f"Task {info.get('task_id')}: {info.get('task_type')}; metric {info.get('metric')} "
            f"({'higher' if info.get('higher_is_better') else 'lower'} is better); prediction: "
            f"{info.get('prediction')}; id column `{info.get('id_column')}`; target column(s) "
            f"{info.get('target_columns')}.\nTrain columns: {columns}.\n"
            f"Files: data/train.csv ({info.get('train_rows')} rows), data/test.csv ({info.get('test_rows')} rows, "
            f"no target). The script must write `submission.csv` in the working directory, like:\n"
            f"{info.get('sample_submission', '')}")


class LLMAgent:
    """Base of the LLM scaffolds; subclasses implement :meth:`run`."""

    name = "llm"
    default_max_tokens = 4096  # per reply, unless the user sets max_tokens

    def __init__(self, model: str | None = None, base_url: str | None = None, *, api_key_env: str | None = None,
                 temperature: float | None = None, max_tokens: int | None = None, top_p: float | None = None,
                 stop: str | list[str] | None = None, seed: int | None = None, token_budget: int | None = None,
                 time_budget_s: float | None = None, timeout_s: float = 120.0, max_retries: int = 4,
                 cache: bool = True, cache_dir: str | None = None, client: LLMClient | None = None,
                 artifacts_dir: str | None = None, gateway: bool = False, **options: Any) -> None:
        if options:
            raise UnknownOptionError(f"{self.name} agent: unknown options {', '.join(sorted(options))}")
        if api_key_env and not os.environ.get(api_key_env):
            raise UsageError(f"{self.name} agent: the environment variable {api_key_env} (api_key_env) is not set")
        api_key = os.environ.get(api_key_env) if api_key_env else None  # keys never travel in agent options
        self.client = client or LLMClient(model or "", base_url, api_key=api_key, temperature=temperature,
                                          max_tokens=max_tokens if max_tokens is not None
                                          else self.default_max_tokens, top_p=top_p, stop=stop, seed=seed,
                                          token_budget=token_budget, timeout_s=timeout_s,
                                          max_retries=max_retries, cache=cache, cache_dir=cache_dir)
        self.time_budget_s = time_budget_s
        self.artifacts_dir = artifacts_dir
        self.use_gateway = gateway
        self._gateway: Any = None
        self._calls_seen = 0
        self.last_step_info: dict[str, Any] = {}
        self.last_finish_reason: str | None = None
        self._gen: Plan | None = None
        self.info: dict[str, Any] = {}
        self.seed = 0

    def set_episode_dir(self, episode_dir: str | Path) -> None:
        """Optional hook the episode driver calls before ``reset``: unless ``artifacts_dir`` was given, the
        agent's artifacts (AIDE's tree, MLE-STAR's log) go to ``<episode dir>/agent/`` and so travel with the
        episode's files to the artifact store."""
        if self.artifacts_dir is None:
            self.artifacts_dir = str(Path(episode_dir) / "agent")
        if self.use_gateway and self._gateway is None:
            self._start_gateway(Path(episode_dir) / "llm")

    def _start_gateway(self, records_dir: Path) -> None:
        """Send this agent's calls through an LLM gateway (``llm/gateway.py``), the one command agents use, so
        both kinds of agent are accounted and recorded by the same mechanism: the upstream client keeps the
        key and the retries; the agent's own client keeps the cache and the token budget and talks to the
        gateway over a unix socket."""
        import copy
        import tempfile

        import httpx

        from dojoflow.llm.client import Usage
        from dojoflow.llm.gateway import LLMGateway

        upstream = copy.copy(self.client)
        upstream.cache_dir, upstream._http = None, None
        upstream.episode, upstream.step = Usage(), Usage()
        self._socket_dir = Path(tempfile.mkdtemp(prefix="dojoflow-gw-"))
        self._gateway = LLMGateway(upstream, records_dir)
        self._gateway.serve(self._socket_dir / "llm.sock")
        self.client.base_url = "http://dojoflow-gateway/v1"
        self.client._api_key, self.client.max_retries, self.client._http = None, 0, None  # retries: upstream's
        self.client._transport = httpx.HTTPTransport(uds=str(self._socket_dir / "llm.sock"))

    def close(self) -> None:
        """Stop the gateway (if any); the episode driver calls this when the episode ends."""
        if self._gateway is not None:
            import shutil

            self._gateway.close()
            self._gateway = None
            shutil.rmtree(self._socket_dir, ignore_errors=True)
        self.client.close()

    # -- protocol -----------------------------------------------------------------------------------------------
    def reset(self, observation: Observation | None, seed: int) -> None:
        """Start an episode: a fresh token budget, the task info, and a new plan (generator)."""
        self.seed = seed
        self.client.reset_budget(cache_salt=f"seed={seed}")
        self.started = time.monotonic()
        self.info = dict(observation.data) if observation is not None and "columns" in observation.data else {}
        self.higher_is_better = bool(self.info.get("higher_is_better", True))
        self.best: tuple[int, float] | None = None
        self.steps_left = int(observation.data.get("steps_left", 1)) if observation is not None else 1
        self.max_call_tokens = 0
        self.end_reason: str | None = None
        self.note = ""
        self._gen = None
        self._done = False

    def act(self, observation: Observation) -> Action:
        """Advance the plan with ``observation``; the action it yields, with this step's LLM accounting."""
        self._observe(observation)
        self.client.take_step_usage()
        self.note = ""
        action = self._advance(observation)
        usage = self.client.take_step_usage()
        self.max_call_tokens = max(self.max_call_tokens, usage.tokens // max(1, usage.calls))
        self.last_step_info = {"note": self.note or action.type, "model": self.client.model, **usage.to_info()}
        if self._gateway is not None:  # the gateway's record of this step's calls
            calls = self._gateway.calls[self._calls_seen:]
            self._calls_seen += len(calls)
            self.last_step_info["llm"] = [{"index": c.index, "model": c.model, "status": c.status, "tokens": c.tokens,
                                           "cost_usd": round(c.cost_usd, 8), "latency_s": c.latency_s} for c in calls]
        if self.end_reason and action.type == "submit":
            self.last_step_info["end_reason"] = self.end_reason
        return action

    def _advance(self, observation: Observation) -> Action:
        if self._done:
            return self._submit(self.end_reason or "the scaffold has finished")
        if self.steps_left <= 1:
            return self._submit("one step left: submitting the best step so far")
        if not self.time_left():
            return self._submit(f"time budget of {self.time_budget_s:g} s spent")
        if self._tokens_nearly_spent():
            return self._submit(f"token budget nearly spent ({self.client.tokens_left} tokens left)")
        try:
            if self._gen is None:
                self._gen = self.run()
                action = next(self._gen)
            else:
                action = self._gen.send(observation)
        except StopIteration:
            return self._submit(self.end_reason or "the scaffold has finished")
        except BudgetExceeded as exc:
            return self._submit(f"token budget exhausted: {exc}")
        except LLMError as exc:
            self.client.step.errors.append(f"{type(exc).__name__}: {exc}")
            return self._submit(f"LLM endpoint failed: {exc}")
        if action.type == "submit":
            self._done = True
            self.end_reason = self.end_reason or self.note or "the scaffold chose to submit"
        return action

    def _submit(self, reason: str) -> Action:
        self._done = True
        self.end_reason = self.end_reason or reason
        step = self.best[0] if self.best else None
        self.note = f"{reason}; submitting step {step}" if step is not None else f"{reason}; no valid step to submit"
        return Action("submit", step=step)

    def _tokens_nearly_spent(self) -> bool:
        left = self.client.tokens_left
        return left is not None and self.client.episode.calls > 0 and left < self.max_call_tokens

    def _observe(self, observation: Observation) -> None:
        data = observation.data
        if "columns" in data and not self.info:
            self.info = dict(data)
            self.higher_is_better = bool(data.get("higher_is_better", True))
        if "steps_left" in data:
            self.steps_left = int(data["steps_left"])
        score, step = data.get("feedback_score"), data.get("step")
        if score is not None and step is not None and data.get("valid"):
            if self.best is None or self.better(score, self.best[1]):
                self.best = (step, score)
        self.on_observation(observation)

    def on_observation(self, observation: Observation) -> None:
        """Hook: every observation, including the last one before the base class submits."""

    # -- helpers for scaffolds -----------------------------------------------------------------------------------
    def better(self, a: float | None, b: float | None) -> bool:
        """Whether score ``a`` beats ``b`` in the task's direction (None never beats anything)."""
        if a is None:
            return False
        if b is None:
            return True
        return a > b if self.higher_is_better else a < b

    def ask(self, messages: list[dict[str, str]]) -> str:
        """One chat completion through the shared client (retries, accounting, budget, cache); the reply text.

        A request too long for the model's context is re-sent with its longest message (never the system
        prompt) cut in half, head and tail kept, at most ``MAX_CONTEXT_TRIMS`` times; then the error stands.
        ``last_finish_reason`` keeps why the reply ended (``length``: cut at ``max_tokens``)."""
        messages = [dict(m) for m in messages]
        for trim in range(MAX_CONTEXT_TRIMS + 1):
            try:
                response = self.client.chat(messages)
                break
            except ContextLengthError:
                if trim == MAX_CONTEXT_TRIMS or not shorten_longest(messages):
                    raise
                self.client.episode.context_trims += 1
                self.client.step.context_trims += 1
        self.last_finish_reason = response.finish_reason
        return response.text

    def no_code_feedback(self, reply: str) -> str:
        """Why a reply has no usable ```python block, in words the model can act on."""
        if self.last_finish_reason == "length":
            return (f"Your reply was cut off at the {self.client.max_tokens}-token reply limit before the code "
                    "block was complete. Reply with a much shorter plan and the complete script in one "
                    "```python block.")
        other = sorted({lang for lang, _ in _FENCE.findall(reply or "")
                        if lang and lang.lower() not in ("python", "py")})
        if other:
            return (f"Your reply had a ```{other[0]} code block, but a Python script is needed. Reply with a brief "
                    "plan and the complete script in one ```python block.")
        if not (reply or "").strip():
            return "Your reply was empty. Reply with a brief plan and the complete script in one ```python block."
        return "Your reply had no ```python code block. Reply with a brief plan and the complete script in one " \
               "```python block."

    def reply_problem(self) -> str:
        """A note for a reply that could not be used: says when it was cut at ``max_tokens``."""
        return (f" (the reply was cut off at the {self.client.max_tokens}-token limit)"
                if self.last_finish_reason == "length" else "")

    def budget_text(self) -> str:
        """A line telling the model what is left: steps, tokens and time."""
        parts = [f"{self.steps_left} environment steps left (the last one is reserved for submitting)"]
        elapsed = time.monotonic() - self.started
        if self.time_budget_s:
            parts.append(f"{max(0.0, self.time_budget_s - elapsed):.0f} s of {self.time_budget_s:.0f} s left")
        else:
            parts.append(f"{elapsed:.0f} s elapsed")
        left = self.client.tokens_left
        parts.append(f"{left} of {self.client.token_budget} LLM tokens left" if left is not None
                     else f"{self.client.episode.tokens} LLM tokens used (no token budget)")
        return "Budget: " + "; ".join(parts) + "."

    def time_left(self) -> bool:
        """Whether the scaffold's time budget (if any) still has room."""
        return self.time_budget_s is None or time.monotonic() - self.started < self.time_budget_s

    def run(self) -> Plan:  # pragma: no cover - subclasses implement it
        """The scaffold itself, as a generator of actions (see the module docstring)."""
        raise NotImplementedError
        yield


def shorten_longest(messages: list[dict[str, str]]) -> bool:
    """Cut the longest message after the system prompt to half its length (head and tail kept); False when
    nothing is long enough to cut."""
    candidates = [i for i, m in enumerate(messages) if not (i == 0 and m["role"] == "system")]
    if not candidates:
        return False
    index = max(candidates, key=lambda i: len(messages[i]["content"]))
    text = messages[index]["content"]
    if len(text) < 200:
        return False
    keep = len(text) // 4
    messages[index]["content"] = text[:keep] + TRIM_MARKER + text[-keep:]
    return True
