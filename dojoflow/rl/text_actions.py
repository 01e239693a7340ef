"""Turning a policy's text into an environment action, for trainers whose policies emit plain text.

Accepted, in order: a JSON action object (bare, or in a ```json fence), else a ```python fence (run as
``execute_code``). Anything else is passed on as-is, so the environment answers with its own
``invalid_action`` observation (and the policy learns from it) instead of the harness crashing.
"""

from __future__ import annotations

import json
import re
from typing import Any

FENCE = re.compile(r"```([A-Za-z0-9_+-]*)[ \t]*\n(.*?)```", re.DOTALL)


def _first_json_object(text: str) -> dict[str, Any] | None:
    decoder = json.JSONDecoder()
    for match in re.finditer(r"\{", text):
        try:
            value, _ = decoder.raw_decode(text, match.start())
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict) and "type" in value:
            return value
    return None


def parse_action_text(text: str) -> dict[str, Any] | str:
    """The action in ``text`` as a dict, or ``text`` itself when it holds none (see the module docstring)."""
    fences = FENCE.findall(text)
    for lang, body in fences:
        if lang.lower() in ("json", ""):
            found = _first_json_object(body)
            if found is not None:
                return found
    found = _first_json_object(text)
    if found is not None:
        return found
    for lang, body in fences:
        if lang.lower() in ("python", "py") and body.strip():
            return {"type": "execute_code", "code": body}
    return text
