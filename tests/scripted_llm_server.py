"""An OpenAI-compatible chat-completions server for tests: a real HTTP endpoint (``http.server`` in a thread on
127.0.0.1, a random port) whose replies are scripted - a queue of strings or a function of the request - and
which counts requests. Usage is reported honestly from the actual request and reply text with
:func:`dojoflow.llm.tokens.approx_tokens` (prompt: the messages' contents plus 4 tokens of framing each, plus 2;
completion: the reply), so token costs measured against it are meaningful estimates.

Also: working scikit-learn scripts for the built-in ``penguins-body-mass`` task, for scripted replies.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from dojoflow.llm.tokens import approx_message_tokens, approx_tokens


@dataclass(frozen=True)
class Reply:
    """A scripted reply with its ``finish_reason``."""

    text: str
    finish_reason: str = "stop"


@dataclass(frozen=True)
class ErrorReply:
    """A scripted HTTP error answered instead of a completion."""

    status: int
    message: str
    code: str | None = None


def context_length_error(tokens: int = 9000, limit: int = 8192) -> ErrorReply:
    """What an OpenAI-compatible server answers to a request over the model's context (llama.cpp and vLLM
    send the same shape)."""
    return ErrorReply(400, f"This model's maximum context length is {limit} tokens. However, your messages "
                           f"resulted in {tokens} tokens. Please reduce the length of the messages.",
                      "context_length_exceeded")


Responder = Callable[[dict[str, Any]], "str | dict[str, Any] | Reply | ErrorReply"]


class ScriptedLLMServer:
    """``with ScriptedLLMServer(replies) as server: LLMClient("m", server.base_url)``.

    ``replies``: a list (served in order; the last one repeats) or a function ``request body -> reply text``.
    A reply may also be a dict: the assistant message's fields (e.g. ``{"content": None, "tool_calls": [...]}``
    for function calling), completed with ``role``; ``tool_call(name, arguments)`` builds one.
    A reply may also be a :class:`Reply` (a ``finish_reason`` other than ``stop``, e.g. ``length``) or a
    :class:`ErrorReply` (an HTTP error with an OpenAI-style body, e.g. 400 ``context_length_exceeded``).
    ``statuses``: HTTP status codes to answer first, one per request, before scripted replies (retry tests).

    An exception inside a responder (a test's ``assert`` about the request) is answered with HTTP 500 and
    re-raised when the ``with`` block ends, so the test fails with the real assertion, not a dropped
    connection.
    """

    def __init__(self, replies: list[str] | Responder, statuses: list[int] | None = None,
                 include_usage: bool = True) -> None:
        self.queue = deque(replies) if isinstance(replies, list) else None
        self.responder = replies if callable(replies) else None
        self.statuses = deque(statuses or [])
        self.include_usage = include_usage
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.usage = {"prompt_tokens": 0, "completion_tokens": 0}
        self.errors: list[BaseException] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def count(self) -> int:
        return len(self.requests)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def reply_for(self, body: dict[str, Any]) -> str | Reply | ErrorReply:
        if self.responder is not None:
            return self.responder(body)
        if len(self.queue) > 1:
            return self.queue.popleft()
        return self.queue[0]

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length", 0))
        body = json.loads(handler.rfile.read(length) or b"{}")
        with self._lock:
            self.requests.append(body)
            self.headers.append({k.lower(): v for k, v in handler.headers.items()})
            status = self.statuses.popleft() if self.statuses else 200
            if status == 200:
                reply = self.reply_for(body)
        finish_reason = "stop"
        if status == 200 and isinstance(reply, ErrorReply):
            status = reply.status
            payload: dict[str, Any] = {"error": {"message": reply.message, "type": "invalid_request_error",
                                                 "code": reply.code}}
        elif status != 200:
            payload = {"error": {"message": f"scripted status {status}"}}
        else:
            if isinstance(reply, Reply):
                text, finish_reason = reply.text, reply.finish_reason
            else:
                text = reply
            message = {"role": "assistant", **text} if isinstance(text, dict) else {"role": "assistant",
                                                                                      "content": text}
            calls = message.get("tool_calls") or []
            if calls and finish_reason == "stop":
                finish_reason = "tool_calls"
            completion_text = (message.get("content") or "") + "".join(c["function"]["arguments"] for c in calls)
            prompt, completion = approx_message_tokens(body.get("messages", [])), approx_tokens(completion_text)
            with self._lock:
                self.usage["prompt_tokens"] += prompt
                self.usage["completion_tokens"] += completion
            payload = {"id": f"chatcmpl-{len(self.requests)}", "object": "chat.completion",
                       "created": int(time.time()),  # required by the OpenAI schema (strict clients check it)
                       "model": body.get("model"),
                       "choices": [{"index": 0, "message": message, "finish_reason": finish_reason}]}
            if self.include_usage:
                payload["usage"] = {"prompt_tokens": prompt, "completion_tokens": completion,
                                    "total_tokens": prompt + completion}
        data = json.dumps(payload).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def __enter__(self) -> ScriptedLLMServer:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                try:
                    owner._handle(self)
                except Exception as exc:  # surfaced in __exit__
                    owner.errors.append(exc)
                    data = json.dumps({"error": {"message": f"responder raised {exc!r}"}}).encode()
                    self.send_response(500)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self.errors and exc[0] is None:
            raise self.errors[0]


def tool_call(name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """An assistant message that calls function ``name`` with ``arguments`` (OpenAI's tool-call format)."""
    return {"content": None, "tool_calls": [{"id": f"call_{name}", "type": "function",
                                             "function": {"name": name, "arguments": json.dumps(arguments)}}]}


def last_user(body: dict[str, Any]) -> str:
    return next((m["content"] for m in reversed(body["messages"]) if m["role"] == "user"), "")


def stage_of(body: dict[str, Any]) -> str:
    """The ``# Stage: X`` line of AIDE/STAR prompts."""
    for line in last_user(body).splitlines():
        if line.startswith("# Stage: "):
            return line[len("# Stage: "):].strip()
    return ""


# -- real scripts for penguins-body-mass (regression, id `id`, target `body_mass_g`) ----------------------------
PENGUINS_TEMPLATE = '''import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.dummy import DummyRegressor
from sklearn.ensemble import HistGradientBoostingRegressor, RandomForestRegressor, VotingRegressor
from sklearn.impute import SimpleImputer
from sklearn.linear_model import Ridge
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

train = pd.read_csv("data/train.csv")
test = pd.read_csv("data/test.csv")
TARGET, ID = "body_mass_g", "id"
train = train.dropna(subset=[TARGET])
features = [c for c in train.columns if c not in (TARGET, ID)]
categorical = [c for c in features if not pd.api.types.is_numeric_dtype(train[c])]
numeric = [c for c in features if c not in categorical]
{preprocess}
model = {model}
pipe = make_pipeline(preprocess, model)
scores = cross_val_score(pipe, train[features], train[TARGET], cv=3, scoring="neg_root_mean_squared_error")
print(f"3-fold CV rmse: {{-scores.mean():.2f}}")
pipe.fit(train[features], train[TARGET])
pd.DataFrame({{ID: test[ID], TARGET: pipe.predict(test[features])}}).to_csv("submission.csv", index=False)
'''

FULL_PREPROCESS = '''preprocess = ColumnTransformer([
    ("numeric", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
    ("categorical", make_pipeline(SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore")),
     categorical),
])'''
NUMERIC_ONLY_PREPROCESS = 'preprocess = ColumnTransformer([("numeric", SimpleImputer(strategy="median"), numeric)])'

MODELS = {
    "ridge": "Ridge(alpha=1.0)",
    "forest": "RandomForestRegressor(n_estimators=60, random_state=0)",
    "boosting": "HistGradientBoostingRegressor(max_iter=60, random_state=0)",
    "dummy": "DummyRegressor()",
    "voting": ('VotingRegressor([("ridge", Ridge(alpha=1.0)), '
               '("forest", RandomForestRegressor(n_estimators=60, random_state=0))])'),
}


def penguins_script(model: str = "ridge", preprocess: str = FULL_PREPROCESS) -> str:
    return PENGUINS_TEMPLATE.format(model=MODELS.get(model, model), preprocess=preprocess)


BROKEN_SCRIPT = 'import pandas as pd\ntrain = pd.read_csv("data/train.csv")\nprint(train["no_such_column"].mean())\n'


def fenced(code: str, lang: str = "python") -> str:
    return f"```{lang}\n{code}\n```"
