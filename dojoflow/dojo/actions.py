"""Actions an agent can take (after MLE-Dojo), as a typed structure that also accepts a dict/JSON form."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from dojoflow.errors import InvalidActionError

__all__ = ["ACTION_TYPES", "CODE_ACTIONS", "Action", "InvalidActionError"]

ACTION_TYPES = ("request_info", "validate_code", "execute_code", "get_history", "submit")
CODE_ACTIONS = ("validate_code", "execute_code")


@dataclass(frozen=True)
class Action:
    """One agent action.

    - ``request_info``: task overview, data structure, sample submission, metric, budget left
    - ``validate_code``: run ``code`` and check the submission's format, without a score
    - ``execute_code``: run ``code`` and score its ``submission.csv`` on the public part of the test set
    - ``get_history``: the steps so far with their feedback
    - ``submit``: end the episode; the final submission is ``step``'s, or the best by feedback if omitted
    """

    type: str
    code: str | None = None
    step: int | None = None

    def __post_init__(self) -> None:
        """Reject what cannot be run: an unknown type, code that is not UTF-8 text, a step that is no index."""
        if not isinstance(self.type, str) or self.type not in ACTION_TYPES:
            raise InvalidActionError(f"unknown action type '{self.type}'; valid types: {', '.join(ACTION_TYPES)}")
        if self.code is not None:
            if not isinstance(self.code, str):
                raise InvalidActionError(f"'code' must be text (a string), got {type(self.code).__name__}")
            try:
                self.code.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise InvalidActionError(f"'code' is not valid Unicode text: {exc.reason} at position "
                                         f"{exc.start}") from None
        if self.step is not None and (isinstance(self.step, bool) or not isinstance(self.step, int)):
            raise InvalidActionError(f"'step' must be a step index (an integer), got {self.step!r}")
        if self.type in CODE_ACTIONS and not (self.code and self.code.strip()):
            raise InvalidActionError(f"action '{self.type}' needs non-empty 'code'")

    @classmethod
    def from_any(cls, value: Action | dict[str, Any] | str) -> Action:
        """Accept an Action, a dict, or a JSON object string (the form LLM agents produce)."""
        if isinstance(value, Action):
            return value
        if isinstance(value, (bytes, bytearray)):
            try:
                value = value.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise InvalidActionError(f"action is not UTF-8 text: {exc.reason} at byte {exc.start}") from None
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError as exc:
                raise InvalidActionError(f"action is not valid JSON: {exc}") from None
        if not isinstance(value, dict) or "type" not in value:
            raise InvalidActionError('an action is an object with a "type" field, e.g. {"type": "request_info"}')
        unknown = set(value) - {"type", "code", "step"}
        if unknown:
            raise InvalidActionError(f"unknown action fields: {', '.join(sorted(unknown))}")
        code = value.get("code")
        if isinstance(code, (bytes, bytearray)):
            try:
                value = {**value, "code": code.decode("utf-8")}
            except UnicodeDecodeError as exc:
                raise InvalidActionError(f"'code' is not UTF-8 text: {exc.reason} at byte {exc.start}") from None
        return cls(**value)

    def to_dict(self) -> dict[str, Any]:
        """The action as the JSON object an LLM would emit (fields that are None left out)."""
        return {k: v for k, v in asdict(self).items() if v is not None}
