"""ReAct-style agent: one JSON action per turn, with the whole conversation kept (old observations shortened).

Each turn the model sees the latest observation and the budget (steps, time, tokens) and replies with one
action as a JSON object, optionally in a ```json block, e.g. ``{"type": "execute_code", "code": "..."}``.
Because escaping a script inside JSON is error-prone, a code action may also leave out ``code`` and put the
script in a ```python block of the same reply. A reply that cannot be parsed is answered with the parse
error and the model is asked again, at most ``max_repairs`` times per turn; after that the agent submits its
best step (the reason is recorded). Old observations are cut to a few hundred characters, oldest first,
whenever the conversation's approximate size exceeds ``context_tokens``.
"""

from __future__ import annotations

from typing import Any

from dojoflow.agents.llm_base import LLMAgent, Plan, extract_code, extract_json, task_brief
from dojoflow.dojo.actions import Action, InvalidActionError
from dojoflow.llm.tokens import approx_message_tokens

SYSTEM = """You are a machine-learning engineer solving a prediction task in a sandboxed Python environment.
Each turn, reply with exactly ONE action as a JSON object (you may wrap it in a ```json block):
- {"type": "request_info"}: task overview, data structure, metric and budget
- {"type": "validate_code", "code": "..."}: run a script and check the submission format (no score)
- {"type": "execute_code", "code": "..."}: run a script; its submission.csv is scored on the public test rows
- {"type": "get_history"}: the steps so far with their feedback
- {"type": "submit", "step": N}: end the episode with step N's submission (omit "step" for the best one)
For code actions you may omit "code" and put the full script in a ```python block after the JSON object.
Scripts read data/train.csv and data/test.csv and must write submission.csv in the working directory.
There is no network access. Think briefly before the JSON if you like; only the action is executed."""

TRUNCATED_CHARS = 300


class ReActAgent(LLMAgent):
    """Thought + one action per turn, repaired when malformed."""

    name = "react"
    default_max_tokens = 2048  # one action (a script at most) per reply

    def __init__(self, *args: Any, max_repairs: int = 2, context_tokens: int = 24000, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_repairs, self.context_tokens = max_repairs, context_tokens

    def run(self) -> Plan:
        """Think-act loop: each reply is one JSON action; bad replies are repaired, then the loop goes on."""
        messages = [{"role": "system", "content": SYSTEM},
                    {"role": "user", "content": self._first_prompt()}]
        while True:
            action, reply = yield from self._next_action(messages)
            if action is None:
                return
            messages.append({"role": "assistant", "content": reply})
            self.note = f"{action.type}" + (f" (step {action.step})" if action.step is not None else "")
            observation = yield action
            messages.append({"role": "user", "content": f"Observation:\n{observation.text}\n\n{self.budget_text()}"})
            self._fit_context(messages)

    def _first_prompt(self) -> str:
        text = "Start of the episode."
        if self.info.get("columns"):
            text += "\n" + task_brief(self.info)
        return f"{text}\n\n{self.budget_text()}\nReply with your first action."

    def _next_action(self, messages: list[dict[str, str]]):
        attempts: list[dict[str, str]] = []
        for _ in range(self.max_repairs + 1):
            reply = self.ask(messages + attempts)
            try:
                return parse_action(reply), reply
            except ValueError as exc:
                error = str(exc) + self.reply_problem()
            attempts += [{"role": "assistant", "content": reply},
                         {"role": "user", "content": f"Your reply could not be used: {error}. Reply again with "
                                                     "exactly one action as a JSON object."}]
        self.end_reason = f"the model gave no usable action after {self.max_repairs} repairs (last error: {error})"
        return None, ""
        yield  # a generator helper

    def _fit_context(self, messages: list[dict[str, str]]) -> None:
        index = 2  # keep the system prompt and the task overview
        while approx_message_tokens(messages) > self.context_tokens and index < len(messages) - 2:
            message = messages[index]
            if len(message["content"]) > TRUNCATED_CHARS:
                what = "observation" if message["role"] == "user" else "reply"
                message["content"] = message["content"][:TRUNCATED_CHARS] + f" ...[old {what} truncated]"
            index += 1


def parse_action(reply: str) -> Action:
    """The action in a model reply; ``ValueError`` with a message for the model when there is none."""
    value = extract_json(reply)
    if value.get("type") in ("execute_code", "validate_code") and not value.get("code"):
        code = extract_code(reply)
        if code:
            value["code"] = code
    try:
        return Action.from_any(value)
    except (InvalidActionError, TypeError) as exc:
        raise ValueError(str(exc)) from None
